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
// ── operator sets read on demand (node/roles/epochs.ts) ─────────────────────────────────────
/**
 * A certificate names its epoch, and a node that does not know that epoch's operator set may
 * read it from the chain. Only epochs near the newest one it knows are read, so a peer cannot
 * make it read (and keep) the set of any epoch it names: the next epoch (a relay that saw the
 * epoch change first is honest) ...
 */
export const MAX_EPOCHS_AHEAD_READ = 1n
/**
 * ... and the two before the newest known: the TaskManager refuses certificates older than
 * its maxEpochAge (2 by default), so an older one settles nothing.
 */
export const MAX_EPOCHS_BEHIND_READ = 2n
/**
 * After a read found no set for an epoch (not started yet, or the RPC failed), it is not read
 * again for this long: a peer repeating certificates for an epoch that has not started costs one
 * chain read per interval (the same as the epoch watcher's poll, EPOCH_POLL_MS).
 */
export const EPOCH_MISS_RETRY_MS = 1_000

export {}
