/**
 * The poi client library: `import { PoiClient } from 'poi'` (the package's root export).
 *
 * A requester joins a network as a light peer (PoiClient.connect), submits tasks checked as the
 * network's nodes would check them, and gets results it verified itself: certificates against
 * the operator set of their epoch, outputs against the certified result hash. The CLI's
 * `poi request` and `poi result`, and the HTTP gateway, are built on it.
 *
 * Errors are PoiError subclasses with a stable `code`; those that are the request's fault name
 * the request field at fault (`field`, or requestErrorField(err)).
 */
export { PoiClient, MANIFEST_LOOKUP_TIMEOUT_MS, modelIdOf, encodeInput, taskIdOf } from './poi-client.js'
export type { PoiClientOptions, JsonTensors, TaskRequest, PoiResult, SubmittedTask, CertificateVerdict } from './poi-client.js'
export {
  ClientOptionsError, InvalidModelIdError, InvalidTaskIdError, ModelRefusedError, DepositTooLowError, FeeRefusedError,
  OnChainResultMismatchError, requestErrorField
} from './errors.js'
export { outputTensorLines } from './output-tensors.js'
export type { OutputTensorLine } from './output-tensors.js'
export { ChainReadError, readChain, operatorSource, chainOperatorSets } from './chain-read.js'
export type { OperatorSource } from './chain-read.js'
export { NetworkDiscoveryError, chainFromBootstrap, throwawayKeystore } from './network-config.js'
export { isEth, readAsset, formatAmount, readTaskFee } from './payment.js'
export type { PaymentAsset, TaskFeeTerms } from './payment.js'
export { findResult, explainLookupFailure, settledTask } from './result-lookup.js'
export type { FindResultOptions, SettledTask } from './result-lookup.js'

// The errors a client's caller meets, from the layers below, so that one import serves.
export { PoiError } from '../../protocols/wire/index.js'
export type { QuorumCertificate } from '../../protocols/wire/index.js'
export { InputError } from '../inference/index.js'
export type { ModelManifest } from '../inference/index.js'
export { ModelNotFoundError } from '../models/index.js'
export {
  InvalidRequestError, InputTooLargeError, NotConnectedError, NoQuorumError, ResultNotFoundError, OutputNotFoundError,
  CertificateRejectedError, AnnounceError, RequestAbortedError, TaskRefusedError, DEFAULT_TASK_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS
} from '../requester/index.js'
export type { PeerFailure, Settlement } from '../requester/index.js'
export { DEFAULT_QUORUM_BPS } from '../../consensus/index.js'
export type { OperatorSet } from '../../consensus/index.js'
