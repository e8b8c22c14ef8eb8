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
// ── peer identity (node/peer-identity.ts, node/gossip-streams.ts) ───────────────────────────
/**
 * Identity refusals a node keeps to explain a failed connect (newest kept): far more than the
 * bootstrap addresses a node is given, and a dial is this node's own choice.
 */
export const MAX_IDENTITY_MISMATCHES_KEPT = 32
/**
 * (peer id, reporter) pairs whose last duplicate-identity warning time a node keeps, to warn
 * once a minute per pair: any peer can send a notice, so the map is capped (oldest dropped).
 */
export const MAX_DUPLICATE_REPORTERS_KEPT = 256
/**
 * Inbound gossip streams of one peer id kept reading beside gossipsub's own (one per live
 * connection of a duplicated identity): capped, so a peer cannot keep many idle streams open.
 */
export const MAX_EXTRA_GOSSIP_STREAMS_PER_PEER = 4

export {}
