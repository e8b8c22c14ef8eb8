/**
 * Every bound on the memory, disk and work that other peers can drive on a node, in one place
 * with its reason (issue 9: input that costs the sender nothing must not grow a node without
 * limit). Wire message sizes are in constants.ts; these bound how many of them a node keeps,
 * for how long, and from whom. Each section names the code that enforces it.
 */

// ── gossipsub: what one RPC may carry (protocols/gossip/router.ts) ──────────────────────────

// ── peer scoring (protocols/gossip/scoring.ts) ──────────────────────────────────────────────

// ── tasks and attestations in memory (node/roles/) ──────────────────────────────────────────

// ── stream data held for other peers (node/roles/stream-data.ts) ────────────────────────────

// ── aggregation across restarts (node/roles/aggregator.ts) ──────────────────────────────────
/**
 * Open tasks an aggregator reloads from its store at start (newest deadlines first), with
 * their stored attestations: a restart inside a grace window must not lose a certificate, but
 * a store filled by a flood of tasks must not make start-up read (or hold) without limit. 512
 * is well above the 200 open tasks of issue 9's burst, so a normal restart reloads every open
 * task.
 */
export const MAX_RELOADED_TASKS = 512
/**
 * Tasks whose deadline passed while the aggregator was down, at most this long before the
 * restart, are ended NoQuorum at start (reported, never certified: their attestations are
 * late). A restart takes seconds to minutes; older tasks stay as stored, so start-up reads
 * only this window of the deadline index, not the node's whole history.
 */
export const RELOAD_EXPIRED_WINDOW_MS = 10 * 60_000
/**
 * Results reloaded per operator per task: the first proves what it signed, a second proves
 * equivocation (its signature then stops counting); more add nothing but memory.
 */
export const MAX_RELOADED_RESULTS_PER_OPERATOR = 2
/**
 * Signature-check timings kept for tasks not tracked yet (an attestation verified before its
 * task arrived), so the certificate event reports the real longest check. One number per task,
 * for as many tasks as an aggregator buffers early attestations for.
 */
export const MAX_UNTRACKED_VERIFY_TIMINGS = 256
export {}
