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
export {}
