/**
 * One request, one response over a libp2p stream: the shape /poi/stream/1/, /poi/result/1/
 * and /poi/network/1/ share, each one `defineExchange` definition. Every exchange is bounded in
 * time and size, and fails with an ExchangeError naming the peer, the protocol, the kind of
 * failure and the reason.
 */
export { defineExchange, ExchangeServer } from './exchange.js'
export type { Exchange, ExchangeDefinition, ExchangeFetchOptions, ExchangeResponse, ExchangeServerInit, ResolvedExchangeDefinition } from './exchange.js'
export * from './constants.js'
export { ExchangeError } from './errors.js'
export type { ExchangeErrorCode, ExchangeErrorInit, ExchangeFailureKind } from './errors.js'
export { requestOnce, serveOnce } from './transport.js'
export type { ExchangeLibp2p, ExchangePeer, RequestOptions, ServeOptions } from './transport.js'
