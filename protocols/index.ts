export { TaskAnnouncement, Attestation, QuorumCertificate } from './messages.js'
export { uint256ToBytes, bytesToUint256, Uint256Error, UINT256_MAX_BYTES } from './uint256.js'
