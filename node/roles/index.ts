/**
 * The role services a node is composed of (DESIGN §11). Each is built by a factory from the
 * components it declares and is Startable:
 * - epochs: operator sets by epoch, this node's index in the current one;
 * - relay: validates and forwards the three topics, holds stream data before forwarding;
 * - operator: runs a task's model and gossips the signed result;
 * - aggregator: counts attestations, forms the quorum certificate, ends tasks NoQuorum; reloads
 *   open tasks at start; on relay-only full nodes it runs as a backup;
 * - model service: shares models on the DHT, fetches and prefetches them;
 * - stream data: inputs and outputs by reference;
 * - conflicts: conflicting certificates (and a certificate, or a batch signature, against an attestation) kept as evidence;
 * - submitter: gets certificates and evidence on-chain exactly once;
 * - payment gate: on a chain, admits only tasks their requesters' deposits pay for;
 * - batches (issue 15): the batcher (aggregators) closes batches of certified tab tasks and
 *   settles them; the batch signer (operators) signs proposals that pass its checks; the batch
 *   gossip relays the batches topic between them.
 */
export { createEpochs, Epochs, type EpochsComponents, type EpochsInit } from './epochs.js'
export { TaskBook, TASK_MEMORY_TTL_MS, type TrackedTask } from './task-book.js'
export { AttestationLedger, type AttestationLedgerComponents } from './attestation-ledger.js'
export { Conflicts, type ConflictsComponents, type VerifiedBatchSignature } from './conflicts.js'
export {
  createStreamData, StreamData, InputTooLargeForStreamError, InputNotHeldError, STREAM_CACHE_RETENTION_MS, OUTPUT_CHANNEL, INPUT_CHANNEL,
  type StreamDataComponents
} from './stream-data.js'
export { createModelService, ModelService, NoBlockStoreError, NotZkModelError, type ZkVerifier, PREFETCH_TIMEOUT_MS, displayModelId, type ModelServiceComponents, type ModelServiceInit } from './model-service.js'
export { createOperator, Operator, type OperatorComponents } from './operator.js'
export { NetworkQuorum, NETWORK_PARAMETERS_REFRESH_MS } from './network-quorum.js'
export { createAggregator, Aggregator, BACKUP_AGGREGATION_DELAY_MS, type AggregatorComponents, type AggregatorInit } from './aggregator.js'
export {
  PaymentGate, PAYMENT_CACHE_MS, PAYMENT_SWEEP_MS, PAYMENT_TERMS_TTL_MS,
  type CreditAccount, type PaymentChain, type PaymentGateInit, type PaymentRefusal, type PaymentTerms, type RequesterAccount, type TabChain, type TabReading
} from './payment-gate.js'
export { createRelay, Relay, type RelayComponents, type RelayInit, type ModelGate } from './relay.js'
export {
  Submitter, PermanentSubmissionError, SubmissionNotSettledError, RETRY_BASE_MS, RETRY_CAP_MS,
  type BatchSettlementChain, type BatchSubmission, type BatchOutcome, type Settlement, type SettlementChain, type SubmitOptions, type SubmitterEvents, type TxReceipt
} from './submitter.js'
export { buildBatch, summarize, modelKeyOf, compareTaskIds, NO_BATCH_REF, type BatchItem, type BuiltBatch, type TaskVoucher } from './batch-contents.js'
export {
  BatchSigner, SignedBatches, reviewBatchProposal, SIGNED_BATCH_EXPIRY_MS,
  type BatchProposalContent, type BatchRefusal, type BatchRefusalCode, type BatchSignerSource, type BatchSignerComponents
} from './batch-signer.js'
export {
  Batcher, DEFAULT_BATCH_MAX_LEAVES, DEFAULT_BATCH_MAX_WAIT_MS, BATCH_SIGNATURE_TIMEOUT_MS, MAX_BATCH_ATTEMPTS,
  type BatcherComponents, type BatcherInit, type BatcherTabs, type BatchReport, type BatchState, type TaskDrop, type TaskDropCode
} from './batcher.js'
export { BatchGossip, storeBatchSource, storedBatchItem, voucherOf } from './batch-gossip.js'
export { BatchBackup, BATCH_BACKUP_DELAY_MS, type BatchBackupComponents, type BatchBackupInit } from './batch-backup.js'
export { preciseNow, type PoiNodeEvents, type NodeEvents, type ConflictReport, type Rejection, type DuplicateIdentity } from './events.js'
