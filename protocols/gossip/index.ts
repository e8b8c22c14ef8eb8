/**
 * Gossip (DESIGN §4): the topics, gossipsub's options for poi (with the bounds of issue 9), peer
 * scoring, and the router that admits messages and runs each topic's validator and handler.
 *
 * Trust boundary: every gossip payload is untrusted until its topic's validator accepts it.
 */
export { TOPICS, MAX_PROBE_BYTES, GossipRouter, gossipsubOptions, messageId } from './router.js'
export type { TopicName, TopicHandler, Verdict, GossipOptions } from './router.js'
export { peerScoreParams, peerScoreThresholds, topicScoreParams, mustDisconnect, LOOPBACK_ADDRESSES } from './scoring.js'
export { checkTask, checkAttestation, precheckAttestation, checkCertificate, outputMismatch, outputRefOf } from './validators.js'
export type { Validation, TaskCheckContext, AttestationCheckContext, AttestationPrecheckContext, CertificateCheckContext } from './validators.js'
export {
  leafToWire, leafFromWire, summaryToWire, summaryFromWire, batchProposalOf, batchProposalParts, batchSignatureOf,
  batchCertificateOf, batchCertificateParts, batchSignatureSet, wireBatchCertificateSignatureSet, checkBatchMessage
} from './batches.js'
export type { BatchProposalParts, BatchCertificateParts, BatchCheckContext } from './batches.js'
