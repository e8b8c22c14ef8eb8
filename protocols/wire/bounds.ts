/**
 * Every bound on the memory, disk and work that other peers can drive on a node, in one place
 * with its reason (issue 9: input that costs the sender nothing must not grow a node without
 * limit). Wire message sizes are in constants.ts; these bound how many of them a node keeps,
 * for how long, and from whom. Each section names the code that enforces it.
 */

// ── gossipsub: what one RPC may carry (protocols/gossip/router.ts) ──────────────────────────

// ── peer scoring (protocols/gossip/scoring.ts) ──────────────────────────────────────────────

// ── tasks and attestations in memory (node/roles/) ──────────────────────────────────────────

/**
 * How long an attestation for a task this node does not know yet waits for its task (its gossip
 * verdict held back, nothing stored, relayed or signature-checked meanwhile) before it is
 * ignored. gossipsub forwards an accepted message only while it is in its message cache (5
 * heartbeats of 1 s), so a verdict held longer could no longer be relayed; on a loaded devnet a
 * task reaches a node well within a second of the first attestations for it.
 * Enforced in node/roles/early-attestations.ts.
 */
export const EARLY_ATTESTATION_TTL_MS = 4_000
/** Attestations waiting for their tasks at once, from all peers: unverified bytes, so few and short-lived. */
export const MAX_EARLY_ATTESTATIONS = 1_024
/**
 * Waiting attestations forwarded by one peer: one peer (even without a key: nothing is verified
 * before the task is known) cannot fill the whole buffer. An honest operator publishes one
 * attestation per task, and tasks reach nodes before their attestations almost always.
 */
export const MAX_EARLY_ATTESTATIONS_PER_PEER = 128
/** Waiting attestations per task and operator of the set: its result, and a second one as evidence. */
export const EARLY_ATTESTATIONS_PER_OPERATOR = 2
/** Bytes of waiting attestations (inline outputs reach 64 KiB each), from all peers. */
export const MAX_EARLY_ATTESTATION_BYTES = 16 * 1024 * 1024
/**
 * How long a node remembers the ids of tasks its TaskBook forgot (TASK_MEMORY_TTL_MS after their
 * deadline), so replays of their tasks, attestations and certificates are ignored before any
 * signature work. An hour outlives any task's life (DEFAULT_MAX_TASK_TTL_MS is 10 min) many
 * times; a replay after that is an unknown task's attestation (bounded above, never stored).
 * Enforced in node/roles/forgotten-tasks.ts.
 */
export const FORGOTTEN_TASK_MEMORY_MS = 60 * 60_000
/** Forgotten task ids remembered at once, oldest dropped first: ~150 bytes each, 2.5 MB at most. */
export const MAX_FORGOTTEN_TASK_IDS = 16_384
/**
 * First results remembered for duplicate and equivocation checks (node/roles/attestation-ledger.ts),
 * kept without their inline outputs (about 300 bytes each, 20 MB at most); the oldest task's are
 * dropped first. Entries go with their task (TaskBook) or, at the latest, at the next sweep.
 */
export const MAX_LEDGER_FIRST_RESULTS = 65_536
/** How often the ledger drops first results of tasks the TaskBook no longer tracks. */
export const LEDGER_SWEEP_MS = 15_000

// ── stream data held for other peers (node/roles/stream-data.ts) ────────────────────────────

/**
 * Copies of other nodes' stream messages (task inputs and outputs by reference, up to 1 MiB each)
 * that a full node fetched to relay a task or a result and keeps STREAM_CACHE_RETENTION_MS (24 h)
 * to serve them: at most this many bytes from all forwarding peers together, the oldest evicted
 * first. Its own channels are not counted and never evicted.
 */
export const MAX_HELD_STREAM_BYTES = 512 * 1024 * 1024
/**
 * The same, per forwarding peer (the peer whose gossip made this node fetch the copy): one peer,
 * such as an anonymous requester behind a relay, cannot push the other peers' copies out. Large
 * enough for a relay that forwards a burst of 128 tasks with 1 MiB inputs.
 */
export const MAX_HELD_STREAM_BYTES_PER_PEER = 128 * 1024 * 1024
/** Copies held at once (each has an index entry in memory), whatever their size. */
export const MAX_HELD_STREAM_MESSAGES = 16_384
/** Copies held for one forwarding peer, whatever their size. */
export const MAX_HELD_STREAM_MESSAGES_PER_PEER = 4_096
/** Stream fetches running at once: each holds up to 1 MiB in flight and a stream to a peer. */
export const MAX_CONCURRENT_STREAM_FETCHES = 16
/** Stream fetches waiting for a slot; past this, gossip that needs one is ignored until the queue drains. */
export const MAX_QUEUED_STREAM_FETCHES = 256
/** Fetches (running or waiting) asked of one forwarding peer at once: a slow or silent peer ties up no more. */
export const MAX_STREAM_FETCHES_PER_PEER = 8

// ── aggregation across restarts (node/roles/aggregator.ts) ──────────────────────────────────
export {}
