/**
 * Gossip (DESIGN §4): the three topics, gossipsub's options for poi, and the router that runs
 * each topic's validator and handler.
 *
 * Trust boundary: every gossip payload is untrusted until its topic's validator accepts it.
 */
export { TOPICS, MAX_PROBE_BYTES, GossipRouter, gossipsubOptions, messageId } from './router.js'
export type { TopicName, TopicHandler, Verdict, GossipOptions } from './router.js'
export { checkTask, checkAttestation, precheckAttestation, checkCertificate, outputMismatch, outputRefOf } from './validators.js'
export type { Validation, TaskCheckContext, AttestationCheckContext, AttestationPrecheckContext, CertificateCheckContext } from './validators.js'
