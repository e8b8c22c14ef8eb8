/**
 * protocols/wire: the bottom layer (DESIGN §4, §11). The .proto schemas and their generated
 * code (`*.pb.ts`), the strict codec every message goes through, the protocol's limits, the
 * EIP-712 typing of tasks, stream messages and block content addressing. It imports nothing
 * of poi's.
 *
 * Trust boundary: bytes handed to any decode* are untrusted; a decoded message has passed its
 * structure and field rules, not any signature check (verifyTaskSignature, verifyStreamMessage
 * and consensus do those).
 */
export {
  TaskAnnouncement, TaskVoucher, Attestation, QuorumCertificate,
  LeafEntry, ModelChargeEntry, TabChargeEntry, ValidationEntry, BatchProposal, BatchSignature, BatchCertificate, BatchGossip,
  ZkProofBody, ZkProofAnnouncement
} from './messages.pb.js'
export { StreamMessage, StreamRequest, StreamResponse } from './stream.pb.js'
export { ResultRequest, ResultResponse } from './result.pb.js'
export { NetworkInfo, NetworkInfoRequest } from './network.pb.js'
export { uint256ToBytes, uint256ToBytes32, bytesToUint256, Uint256Error, UINT256_MAX_BYTES } from './uint256.js'
export * from './constants.js'
export * from './stream-constants.js'
export * from './bounds.js'
export {
  DecodeError, EncodeError, defineCodec, violation, ruleVersion, ruleBytes, ruleExactBytes, ruleBoundedBytes,
  ruleUint64, ruleUint32, ruleUint256, ruleOneOf, isAllZero, WIRE_VARINT, WIRE_LENGTH_DELIMITED
} from './codec.js'
export type {
  DecodeErrorCode, EncodeErrorCode, FieldViolation, FieldTable, ProtoCodec, CodecDefinition, StrictCodec, WireType
} from './codec.js'
export {
  decodeTaskAnnouncement, encodeTaskAnnouncement,
  decodeAttestation, encodeAttestation,
  decodeQuorumCertificate, encodeQuorumCertificate,
  checkTaskAnnouncement, checkTaskVoucher, checkAttestation, checkQuorumCertificate
} from './gossip-codecs.js'
export {
  decodeBatchProposal, encodeBatchProposal, decodeBatchSignature, encodeBatchSignature,
  decodeBatchCertificate, encodeBatchCertificate, decodeBatchGossip, encodeBatchGossip,
  checkBatchProposal, checkBatchSignature, checkBatchCertificate, checkBatchSummary, checkBatchGossip, checkLeaves,
  type BatchGossipMessage, type BatchSummaryFields
} from './batch-codecs.js'
export type { TaskCheckOptions } from './gossip-codecs.js'
export {
  ZK_PROOF_COORDINATES, fieldElementOf, checkZkProofBody, decodeZkProofBody, encodeZkProofBody, zkProofBodyOf, proofRefOf,
  checkZkProofAnnouncement, decodeZkProofAnnouncement, encodeZkProofAnnouncement, zkProofAnnouncementOf
} from './zk-codecs.js'
export {
  signTask, verifyTaskSignature, taskIdOf, taskDomain, isCanonicalSignature,
  TASK_DOMAIN_NAME, TASK_DOMAIN_VERSION, TASK_TYPED_DATA_TYPES
} from './task.js'
export type { TaskFields } from './task.js'
export { VOUCHER_TYPED_DATA_TYPES, voucherDigest, signVoucher, verifyVoucherSignature, type TabVoucher } from './voucher.js'
export {
  StreamMessageError, createStreamMessage, verifyStreamMessage, decodeStreamMessage, encodeStreamMessage,
  streamMessageId, streamMessageIdOfBytes, payloadRefOf, channelAddressOf, channelNameOf,
  streamMessageCid, msgIdFromCid
} from './stream-message.js'
export type { StreamMessageErrorCode } from './stream-message.js'
export {
  MAX_BLOCK_BYTES, BLOCK_CODECS, SHA256_BYTES, BadBlockError, BlockTooLargeError, blockCid, checkBlockCid, verifyBlock
} from './blocks.js'
export { toHex, to0xHex, shortHex, fromHex, bytesEqual } from './bytes.js'
export { PoiError, isPoiError, errorWithCode } from './errors.js'
export type { PoiErrorClass } from './errors.js'
