/**
 * Time and count bounds of the requester client. Every wait has one; none is open-ended.
 */

/** How long a requester waits for gossip peers (a subscriber of `tasks`, a mesh peer on `certificates`). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 20_000

/** How long a task may take to be certified: its deadline is announce time plus this. */
export const DEFAULT_TASK_TIMEOUT_MS = 30_000

/**
 * How often the waits for the network look at the gossip topics again. The node's public API
 * has counts, not events, for topic peers; 50 ms is well under a gossipsub heartbeat (1 s), so
 * polling adds no noticeable delay, and an abort is seen at once (the sleep listens to it).
 */
export const NETWORK_POLL_MS = 50

/**
 * How often a requester given the chain asks it, while waiting for the certificate, whether its
 * task settled: one eth_call (isSettled) each. A task whose certificate no relay passes on is
 * then returned within this long of its settlement instead of at its deadline (30 s by default).
 */
export const SETTLEMENT_POLL_MS = 2_000

/**
 * Full nodes asked over /poi/result/1/ for a task's certificate, all at once, and how long each
 * may take. Three answers are enough to get past a node that lies or lags; each answer is at
 * most one certificate and one output (about 1 MiB), so asking in parallel stays cheap.
 */
export const RESULT_LOOKUP_PEERS = 3
export const RESULT_LOOKUP_TIMEOUT_MS = 3_000

/**
 * Full nodes asked one after another for an output by reference over /poi/stream/1/, and how
 * long each may take. One after another because an output can be 1 MiB: asking eight peers
 * at once would download it eight times.
 */
export const OUTPUT_LOOKUP_PEERS = 8
export const OUTPUT_LOOKUP_TIMEOUT_MS = 5_000

/**
 * While waiting for its certificate, a requester asks its connected full nodes over
 * /poi/result/1/ whether they refused the task (a model they do not allow, a deposit that does
 * not cover the fee, a deadline too far out): first this long after announcing (gossip reaches
 * them within a few hundred ms on a healthy network), then every REFUSAL_POLL_MS. Each ask is
 * one small exchange per peer (RESULT_LOOKUP_PEERS at most), so a refused task fails within
 * seconds instead of at its deadline.
 */
export const REFUSAL_FIRST_CHECK_MS = 500
export const REFUSAL_POLL_MS = 1_500
/**
 * The wait between asks doubles from REFUSAL_POLL_MS up to this. Full nodes decide a refusal
 * when the task reaches them, so the first asks find nearly every one; a flat 1.5 s poll cost
 * ~400 exchanges a second with 200 tasks pending (the chaos suite's burst), slowing the very
 * nodes that had to certify them.
 */
export const REFUSAL_POLL_MAX_MS = 12_000
/**
 * Refusal asks one light peer keeps in flight over all its pending tasks; a task whose turn
 * finds them all busy skips that round (a refusal is news, not a result: the certificate or the
 * deadline still ends the wait). Eight is RESULT_LOOKUP_PEERS for two or three tasks at once.
 */
export const REFUSAL_ASKS_IN_FLIGHT = 8

/**
 * Full nodes asked over /poi/network/1/ for their maximum task TTL before a task is announced,
 * all at once, and how long each may take. The answer is ~130 bytes; three connected nodes are
 * the bootstrap nodes a requester usually has, and the smallest limit among them is used.
 */
export const TASK_TTL_LOOKUP_PEERS = 3
export const TASK_TTL_LOOKUP_TIMEOUT_MS = 3_000
