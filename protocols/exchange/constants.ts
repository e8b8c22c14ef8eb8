/**
 * Bounds every request/response protocol gets unless its definition says otherwise. Each
 * exchange of /poi/stream/1/, /poi/result/1/ and /poi/network/1/ is one short request and one
 * answer of at most ~1 MiB, so they share these; a protocol sets its own only where its traffic
 * differs.
 */

/**
 * Whole request/response exchange. A 1 MiB answer on loopback takes milliseconds; 10 s leaves
 * room for a slow link without letting a stalled peer hold a stream (and the caller) for long.
 */
export const EXCHANGE_TIMEOUT_MS = 10_000

/**
 * Concurrent streams per connection and protocol. An exchange is one short request; 32 inbound
 * lets a peer pipeline a task's worth of fetches without letting it pin memory (32 × 1 MiB at
 * most in flight), and a full node may ask as many at once.
 */
export const EXCHANGE_MAX_INBOUND_STREAMS = 32
export const EXCHANGE_MAX_OUTBOUND_STREAMS = 32
