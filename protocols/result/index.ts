/**
 * /poi/result/1/: light requesters fetch a task's quorum certificate and output from any full
 * node, then verify both locally against the on-chain operator set (verifyResult).
 *
 * Trust boundary: the answering node is untrusted; fetchResult checks the answer is for the
 * task and that an output matches the certificate's resultHash, verifyResult checks the
 * certificate against the operator set.
 */
export * from './constants.js'
export {
  ResultServer, RESULT_EXCHANGE, fetchResult, verifyResult,
  decodeResultRequest, decodeResultResponse, encodeResultResponse
} from './result-protocol.js'
/** @deprecated A fetch fails with the ExchangeError every exchange throws; this is its old name. */
export { ExchangeError as ResultFetchError } from '../exchange/index.js'
export type {
  ResultFetchErrorCode, ResultSource, RefusalSource, OutputSource, ResultServerInit, FetchResultOptions, FetchResultResult
} from './result-protocol.js'
