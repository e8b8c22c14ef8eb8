/**
 * One request, one response over a libp2p stream: the shape /poi/stream/1/, /poi/result/1/
 * and /poi/network/1/ share. Every exchange is bounded in time and size, and fails with a
 * typed ExchangeFailure naming what went wrong.
 */
export { requestOnce, serveOnce, ExchangeFailure, ExchangeServer } from './exchange.js'
export type { ExchangeFailureKind, ExchangeLibp2p, ExchangeServerInit, RequestOptions, ServeOptions } from './exchange.js'
