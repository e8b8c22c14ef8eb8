/**
 * /poi/network/1/: a requester that knows only a bootstrap address asks it which poi contracts
 * the network uses (chain id, registry, task manager, slashing manager, model registry), so
 * `poi request` needs no deployment file.
 *
 * Trust boundary: the answering node is untrusted. fetchNetworkInfo only checks the answer is a
 * well-formed NetworkInfo; the caller (node/network-info.ts) turns it into a Deployment and checks it against the chain (contracts'
 * checkDeployment) before using it.
 */
export * from './constants.js'
export {
  NetworkInfoServer, NETWORK_EXCHANGE, NO_CHAIN_INFO, fetchNetworkInfo,
  decodeNetworkInfoRequest, decodeNetworkInfo, encodeNetworkInfo
} from './network-protocol.js'
/** @deprecated A fetch fails with the ExchangeError every exchange throws; this is its old name. */
export { ExchangeError as NetworkInfoFetchError } from '../exchange/index.js'
export type {
  NetworkInfoFetchErrorCode, NetworkInfoServerInit, FetchNetworkInfoOptions
} from './network-protocol.js'
export { NetworkInfo, NetworkInfoRequest } from '../wire/index.js'
