export { TaskAnnouncement, Attestation, QuorumCertificate } from './messages.js'
export { uint256ToBytes, bytesToUint256, Uint256Error, UINT256_MAX_BYTES } from './uint256.js'
export { TOPICS, MAX_PROBE_BYTES, GossipRouter, gossipsubOptions, messageId } from './gossip.js'
export type { TopicName, TopicHandler, Verdict, GossipOptions } from './gossip.js'
export * from './constants.js'
export {
  DecodeError, EncodeError,
  decodeTaskAnnouncement, encodeTaskAnnouncement,
  decodeAttestation, encodeAttestation,
  decodeQuorumCertificate, encodeQuorumCertificate,
  checkTaskAnnouncement, checkAttestation, checkQuorumCertificate
} from './codec.js'
export type { DecodeErrorCode, EncodeErrorCode, WireMessageType, FieldViolation, TaskCheckOptions } from './codec.js'
export {
  signTask, verifyTaskSignature, taskIdOf, taskDomain,
  TASK_DOMAIN_NAME, TASK_DOMAIN_VERSION, TASK_TYPED_DATA_TYPES
} from './task.js'
export type { TaskFields } from './task.js'
