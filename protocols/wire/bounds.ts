/**
 * Every bound on the memory, disk and work that other peers can drive on a node, in one place
 * with its reason (issue 9: input that costs the sender nothing must not grow a node without
 * limit). Wire message sizes are in constants.ts; these bound how many of them a node keeps,
 * for how long, and from whom. Each section names the code that enforces it.
 */

// ── gossipsub: what one RPC may carry (protocols/gossip/router.ts) ──────────────────────────
/**
 * Largest gossipsub RPC a node reads (gossipsub's `maxInboundDataLength`). The largest poi gossip
 * message is a task with a 64 KiB inline input (MAX_TASK_ANNOUNCEMENT_BYTES, about 69 KiB), and a
 * published or forwarded message travels alone in its RPC; but gossipsub answers an IWANT with
 * every wanted message in one RPC and piggybacks IHAVE and GRAFT/PRUNE on it, so one RPC may hold
 * many messages. 1 MiB holds 14 of the largest messages or thousands of typical ones (attestations
 * are a few hundred bytes), and is go-libp2p's default limit too. The length prefix is checked
 * before the body is buffered, so a larger RPC costs its sender the bytes and costs us nothing;
 * gossipsub then drops the sender's gossip streams (it can send no more gossip on that
 * connection). Before: it-length-prefixed's default of 4 MiB, which the 4 MiB flood used.
 * Since issue 15 a batch proposal may be larger than any task (MAX_BATCH_PROPOSAL_BYTES, about
 * 480 KiB at MAX_BATCH_LEAVES): it still fits one RPC alone, which is all a publish needs.
 */
export const GOSSIP_MAX_RPC_BYTES = 1024 * 1024

/**
 * Subscription changes in one RPC (`decodeRpcLimits.maxSubscriptions`). A poi node has 6 topics
 * and announces them all in its first RPC, then one per change; 16 leaves room for a next
 * version's topics beside these during an upgrade. An RPC with more is dropped whole, undecoded
 * past the limit. Which topics a peer may subscribe to at all is bounded by `allowedTopics` (only
 * poi's 6): gossipsub then keeps at most 6 topics and 6 subscriptions per peer, however many
 * junk subscriptions arrive (182,000 in 90 s cost 150-175 MB of RSS before, and stayed).
 */
export const GOSSIP_MAX_RPC_SUBSCRIPTIONS = 16

/**
 * Messages in one RPC (`decodeRpcLimits.maxMessages`). Published and forwarded messages travel
 * one per RPC; only an IWANT answer carries several: the wanted messages of gossipsub's 3 s
 * gossip window. A 200-task burst in 20 s makes about 60 messages a second on all topics, 180 in
 * the window; 512 leaves room above that and bounds the message-id hashing one RPC can cause.
 */
export const GOSSIP_MAX_RPC_MESSAGES = 512

/**
 * Control entries of each kind in one RPC (`decodeRpcLimits.maxIhaveMessageIDs`,
 * `maxIwantMessageIDs` and `maxControlMessages`). Despite their names, gossipsub 14 applies the
 * first two to the number of IHAVE and IWANT entries, not to the ids inside them (those are
 * bounded by GOSSIP_MAX_RPC_BYTES, and gossipsub asks for at most 5,000 per peer per
 * heartbeat), and the third to the GRAFT, PRUNE and IDONTWANT entries. An honest peer sends at
 * most one of each per topic per heartbeat, so 4 normally; 64 leaves room for entries queued
 * while its stream was busy.
 */
export const GOSSIP_MAX_RPC_CONTROL_ENTRIES = 64

/**
 * Message ids in one IDONTWANT entry (`decodeRpcLimits.maxIdontwantMessageIDs`): gossipsub
 * handles at most its `idontwantMaxMessages` (512) per peer per heartbeat and drops the rest, so
 * decoding more is wasted work.
 */
export const GOSSIP_MAX_RPC_IDONTWANT_IDS = 512

/**
 * Peers offered in one PRUNE for peer exchange (`decodeRpcLimits.maxPeerInfos`): gossipsub
 * offers at most `prunePeers` (16); in poi only bootstrap nodes offer any (`doPX`).
 */
export const GOSSIP_MAX_RPC_PEER_INFOS = 16

/**
 * Bytes queued for one peer before gossipsub stops queueing RPCs for it
 * (`maxOutboundBufferSize`; unbounded by default). A peer that stops reading its stream could
 * otherwise make us buffer every message we gossip; 4 MiB is four of the largest RPCs, and an
 * honest peer that falls this far behind gets the dropped messages from its other mesh peers.
 */
export const GOSSIP_MAX_OUTBOUND_BUFFER_BYTES = 4 * 1024 * 1024

/**
 * Distinct topics that are not poi's a peer may subscribe to or send on before the node hangs
 * up on it and bans it (node/gossip-guard.ts). allowedTopics drops them anyway; this makes a
 * flood cost the sender its connection. 8 leaves room for a later poi version's topics during
 * an upgrade (poi has 6).
 */
export const MAX_FOREIGN_TOPICS_PER_PEER = 8

// ── peer scoring (protocols/gossip/scoring.ts) ──────────────────────────────────────────────
/**
 * Score lost for invalid messages on one topic: gossipsub subtracts weight × count², so 1 recent
 * invalid message costs 10, 3 cost 90, 7 cost 490 (beyond GOSSIP_GRAYLIST_SCORE). Any negative
 * score takes a peer out of our meshes at the next heartbeat (gossipsub prunes below 0).
 */
export const GOSSIP_INVALID_MESSAGE_WEIGHT = -10

/**
 * What remains of the invalid-message count after each second (gossipsub's decay interval).
 * At 0.9 the count halves in about 6.6 s and one invalid message is forgotten after 22 s (it
 * decays to gossipsub's zero, 0.1). Before it was 0.5: the penalty halved every second and a
 * flooding peer was graylisted for only 1-2 s and never disconnected. With this decay a peer that
 * sends 5 invalid messages a second passes GOSSIP_GRAYLIST_SCORE within 2 s, one that sends 1 a
 * second within 10 s; one a peer sends every 10 s or so keeps it above GOSSIP_GOSSIP_SCORE.
 */
export const GOSSIP_INVALID_MESSAGE_DECAY = 0.9

/**
 * Below this we neither gossip (IHAVE/IWANT) with a peer nor answer its IWANTs: 4 recent invalid
 * messages (160; 3 cost 90) (gossipsub's `gossipThreshold`).
 */
export const GOSSIP_GOSSIP_SCORE = -100

/** Below this we do not send a peer the messages we publish ourselves: 5 recent invalid messages (250) (`publishThreshold`). */
export const GOSSIP_PUBLISH_SCORE = -200

/**
 * Below this gossipsub ignores every RPC of a peer (`graylistThreshold`): 7 recent invalid
 * messages (490). A graylisted peer's penalty no longer grows (its messages are not even read) and
 * starts to decay, so graylisting alone lets a flooder back in seconds later; the node therefore
 * disconnects and bans it at PEER_DISCONNECT_SCORE.
 */
export const GOSSIP_GRAYLIST_SCORE = -400

/**
 * At or below this the node hangs up on a peer and refuses it for PEER_BAN_MS (node/p2p.ts checks
 * every connected peer's score after each gossipsub heartbeat; gossipsub itself never
 * disconnects). Equal to the graylist: a peer we no longer listen to is a peer we no longer keep a
 * connection to.
 */
export const PEER_DISCONNECT_SCORE = GOSSIP_GRAYLIST_SCORE

/**
 * How long a disconnected peer is refused, by peer id (libp2p's connection gater: no inbound
 * connection from it, no dial to it). Five minutes turns a sustained flood into one burst of a
 * few invalid messages every five minutes per identity; an honest node that was wrong for a
 * while (say, a misconfigured chain id) is back without anyone's help.
 */
export const PEER_BAN_MS = 5 * 60_000

/**
 * Banned peer ids kept at once; past this the oldest ban is dropped. Each ban costs an attacker a
 * new identity, a connection and a handful of invalid messages; 1,024 entries take about 100 KB.
 */
export const MAX_BANNED_PEERS = 1024

/**
 * How long gossipsub keeps the stats of a disconnected peer whose score was not positive
 * (`retainScore`, an hour by default): as long as the ban. Note that gossipsub 14 starts a
 * reconnecting peer from a fresh score (PeerScore.addPeer overwrites the retained stats), so the
 * ban, not the retained score, is what keeps an evicted peer out; retained stats still count in
 * the IP colocation factor, and a shorter retention bounds the memory they take.
 */
export const GOSSIP_SCORE_RETAIN_MS = PEER_BAN_MS

/**
 * Peers from one IP address before the colocation penalty starts: a small operator runs a few
 * nodes on one host, and a few operators may share one NAT address.
 */
export const IP_COLOCATION_THRESHOLD = 8

/**
 * Colocation penalty: weight × surplus², counted per address beyond IP_COLOCATION_THRESHOLD.
 * 9 peers on one address lose 10 each (out of the meshes unless they earn it back), 12 lose 160
 * (no gossip), 15 lose 490 and are all disconnected: a crowd of identities on one machine cannot
 * take over a mesh. Loopback (127.0.0.1, ::1) is exempt: devnets and tests run every node there.
 */
export const IP_COLOCATION_WEIGHT = -10

/**
 * Cap on the positive part of a peer's topic scores (time in mesh, first deliveries), as
 * gossipsub's default: a peer cannot bank credit that pays for a stream of invalid messages.
 */
export const GOSSIP_TOPIC_SCORE_CAP = 10

// ── tasks and attestations in memory (node/roles/) ──────────────────────────────────────────

/**
 * Tasks a node tracks in memory at once (node/roles/task-book.ts; each is forgotten
 * TASK_MEMORY_TTL_MS after its deadline). A task costs its requester only a signature until
 * deposits exist, so the count is capped: at most ~70 KiB each (inline input), 10,000 stay
 * under 700 MiB in the worst case and a few MiB with small inputs. It admits a sustained 110
 * tasks a second with the requester's default 30 s deadline (10 times issue 9's burst rate); past
 * it new tasks are ignored (no penalty: the sender may be an honest relay) until old ones go.
 */
export const MAX_TRACKED_TASKS = 10_000

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
 * How long a full node remembers why it refused a task, so its requester can ask over
 * /poi/result/1/ instead of waiting for its deadline: a requester asks while its task is
 * open, at most the network's maximum task TTL (DEFAULT_MAX_TASK_TTL_MS, 10 min); 15 min
 * covers that with room for clocks and a late look-up. Enforced in node/roles/refused-tasks.ts.
 */
export const REFUSED_TASK_MEMORY_MS = 15 * 60_000
/**
 * Refusals remembered at once, oldest dropped first: a task id and a reason of at most
 * MAX_REFUSAL_REASON_BYTES, under 1 KB each, 4 MB at most. Anyone can sign tasks a node
 * refuses, so this bound, not the sender, decides the memory.
 */
export const MAX_REFUSED_TASKS = 4_096
/** A refusal's reason as /poi/result/1/ carries it: one log line, cut to this many UTF-8 bytes. */
export const MAX_REFUSAL_REASON_BYTES = 512
/**
 * First results remembered for duplicate and equivocation checks (node/roles/attestation-ledger.ts),
 * kept without their inline outputs (about 300 bytes each, 20 MB at most); the oldest task's are
 * dropped first. Entries go with their task (TaskBook) or, at the latest, at the next sweep.
 */
export const MAX_LEDGER_FIRST_RESULTS = 65_536
/** How often the ledger drops first results of tasks the TaskBook no longer tracks. */
export const LEDGER_SWEEP_MS = 15_000

// ── paid admission (node/roles/payment-gate.ts) ─────────────────────────────────────────────
/**
 * Requesters whose vault reading (available deposit, shortfall) a node caches at once; past
 * this the oldest reading is dropped and read again when needed. A reading is a few dozen bytes;
 * any signature key can name a new requester, so the count is capped, and a dropped reading only
 * costs one more chain read. Pending tasks are kept apart (below) and are never dropped with it.
 */
export const MAX_CACHED_PAYMENT_ACCOUNTS = 4_096
/**
 * Tasks a node counts against their requesters' deposits at once: admitted here, not yet seen
 * settled on-chain nor ended NoQuorum, and whose deadline plus the TaskManager's settlement
 * window has not passed (until then a certificate can still charge them). About 150 bytes each,
 * 10 MB at most. Settled tasks leave within a cache period of their certificate, so this holds
 * an hour (the default settlement window) of tasks that got no certificate here at 18 a second;
 * past it new paid tasks are ignored (no penalty: the sender may be an honest relay) until
 * pending ones leave, rather than grow memory.
 */
export const MAX_PENDING_PAID_TASKS = 65_536

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

// ── conflicting certificates: slashing evidence (node/roles/relay.ts, storage/node-store.ts) ──
/**
 * Conflicting certificate pairs a node keeps (and verifies, and relays) per task. One pair with
 * different results already proves that every operator named as a signer in both signed both
 * results, and slashes them all at once (SlashingManager.submitConflictingCertificates); a
 * third certificate could only name further colluders, who had to sign one of the two results
 * the pair holds, which certificate-attestation evidence catches from their attestations. So once a pair is held, every other certificate of the task is a duplicate,
 * ignored before any signature work: a peer cannot make a node verify or store certificates for
 * a settled task without end. The pair is one disk entry (two certificates, about 1 KiB).
 * Certificate-attestation evidence needs no bound of its own: one entry per attester (keyed by
 * epoch and operator index, a repeat replaces it), only for signatures this node verified.
 */
export const MAX_CONFLICTING_CERTIFICATE_PAIRS_PER_TASK = 1

// ── batch leaves against attestations: slashing evidence (node/roles/conflicts.ts) ──────────
/**
 * Batch proposals (their leaves) a full node keeps in memory to hold gossiped batch signatures
 * against (issue 15, point 4). A signature arrives within seconds of its proposal (operators sign
 * what they just received) and an aggregator closes a batch every few seconds at most, so the
 * last 32 proposals cover every batch still collecting signatures, with room for several
 * aggregators. Each holds at most MAX_BATCH_LEAVES leaves of 96 bytes: 32 proposals are at most
 * about 3 MiB of hashes, typically a few KiB. Oldest proposal dropped first.
 */
export const MAX_WATCHED_BATCH_PROPOSALS = 32
/**
 * Verified batch signatures kept while their proposal has not arrived here yet (gossip may bring
 * a signature over a shorter path than the proposal). 256 is a quorum's worth of signatures for
 * two batches at once with 128 operators (the benchmarks' largest set); each is about 200 bytes.
 * Oldest dropped first: a signature whose proposal never comes costs nothing more.
 * Batch-attestation evidence needs no bound of its own, as certificate-attestation evidence: one
 * entry per task and attester (keyed by epoch and operator index), only for signatures verified here.
 */
export const MAX_PENDING_BATCH_SIGNATURES = 256

// ── batches a backup aggregator holds for others (node/roles/batch-backup.ts) ───────────────
/**
 * Received batch certificates a funded aggregator keeps in its store while it waits to post
 * them for the aggregator that formed them (in memory only the root and a timer each). Only
 * certificates that verified against the quorum of their epoch, for a proposal this node saw,
 * get here, so a peer cannot make them up. The forming aggregator posts within seconds and a
 * backup holds a batch for BATCH_BACKUP_DELAY_MS plus a chain read, so even a batch closed
 * every second (far above issue 15's rates) keeps about 30 here; 128 leaves room for an RPC
 * outage of minutes, and bounds the disk to 128 summaries (tens of KiB at the default 64
 * leaves, MAX_BATCH_PROPOSAL_BYTES at worst). Past it the oldest is dropped (logged): it has
 * waited longest, so it is the likeliest to be settled already.
 */
export const MAX_BACKUP_BATCHES = 128
/**
 * Batch proposals (root, epoch, seq, leaf ids, summary hash) a backup remembers in memory so a
 * batch certificate that follows can be matched to its leaves: a certificate follows its
 * proposal within seconds (BATCH_SIGNATURE_TIMEOUT_MS at most), and a proposal that never
 * certifies is pushed out by newer ones. 64 task ids each by default (about 4 KiB), up to
 * MAX_BATCH_LEAVES (about 70 KiB): 64 proposals are at most about 4.5 MiB.
 */
export const MAX_HELD_BATCH_PROPOSALS = 64

export {}
