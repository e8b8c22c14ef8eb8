/**
 * The requester client: announce a signed task as a light peer (or from a full node), wait for
 * its quorum certificate, verify it against the operator set and fetch the output; or look up
 * the result of a task announced earlier.
 *
 * Trust boundary: nothing a peer says is trusted. Certificates are verified against the
 * operator set of their epoch, outputs against the certified result hash; a peer whose answer
 * fails is skipped and its reason kept (PeerFailure) for the error the caller sees. The chain,
 * when given, is trusted as far as its RPC endpoint: a task it settled is not NoQuorum.
 *
 * Every call takes an AbortSignal (`options.signal`), and every wait has a time limit.
 */
export { requestInference, announceTask, randomTaskNonce, RANDOM_NONCE_BIT } from './requester.js'
export { RequesterTab, TabStateError, tabFilePath } from './tab.js'
export type { TabOpenOptions, TabPayment, TabReader, OnChainTab } from './tab.js'
export type { RequestParams, RequestResult, SettledResult, RequestOptions, Progress, AnnouncedTask } from './requester.js'
export { readSettlement, describeSettlement } from './chain.js'
export type { RequesterChain, Settlement } from './chain.js'
export { waitForNetwork, connectedPeerIds } from './network-wait.js'
export type { WaitForNetworkOptions } from './network-wait.js'
export { lookupResult, fetchOutput } from './lookup.js'
export type { LookupResultOptions, FetchOutputOptions, FoundResult, OperatorSetOf } from './lookup.js'
export {
  NoQuorumError, NotConnectedError, InputTooLargeError, ResultNotFoundError, OutputNotFoundError,
  CertificateRejectedError, AnnounceError, RequestAbortedError, TaskRefusedError, formatFailures
} from './errors.js'
export type { PeerFailure } from './errors.js'
export { InvalidRequestError, checkRequestParams, checkRequestBounds, checkTaskTtl, checkOperatorCount } from './params.js'
export { readNetworkTaskTtl } from './task-ttl.js'
export type { NetworkTaskTtl } from './task-ttl.js'
export type { RequestLimits } from './params.js'
export * from './constants.js'
export {
  requestZkInference, zkInputCommitment, zkOutputCommitment, NoProofError, NotZkCapableError,
  type ZkRequestParams, type ZkRequestOptions, type ZkResult
} from './zk.js'
