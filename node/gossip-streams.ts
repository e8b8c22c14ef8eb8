/**
 * Keeps gossipsub's per-peer streams alive when one peer id has several connections (issue 9
 * finding 7: a second process with the same keystore silently cut the first one off).
 *
 * The cause, in @chainsafe/libp2p-gossipsub 14: streams are keyed by peer id, one inbound and
 * one outbound each. A new inbound stream from a peer id "is the new canonical one": the prior
 * one is closed. When a duplicate connected, every node it reached closed the original's
 * inbound stream; the original never noticed (its OutboundStream only writes, so a stream the
 * remote closed stays in its map and swallows every later message: its attestations never
 * reached the aggregator), and after the duplicate left the remote kept the duplicate's dead
 * stream. Nothing reopened either side while the original's connection lived.
 *
 * The fix, in two parts, installed on every poi node:
 * - receiving side: a new inbound stream on another live connection of the same peer id no
 *   longer closes the prior one; both are read (at most MAX_EXTRA_GOSSIP_STREAMS_PER_PEER
 *   beside gossipsub's own), and a kept one takes the map's place when the map's one ends;
 * - sending side, at each heartbeat: an outbound stream the remote closed (or reset) while a
 *   connection to that peer is still open is dropped and reopened, and a peer gossipsub
 *   removed (a read error) while still connected is added back.
 *
 * This reaches into gossipsub's private members (GossipInternals below), checked once at
 * install: if a gossipsub version lacks them, the repair is off and says so in the log.
 */
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { MAX_EXTRA_GOSSIP_STREAMS_PER_PEER } from '../protocols/wire/index.js'

const log = logger('poi:gossip-streams')

/**
 * A peer's streams are repaired at most this often: a repair opens a stream, and against a
 * remote that still closes replaced streams (an older node) two processes with one identity
 * would otherwise take turns every heartbeat.
 */
const REPAIR_INTERVAL_MS = 3_000

interface RawStreamHolder { rawStream: Stream, close: () => Promise<void> }

/** The members of @chainsafe/libp2p-gossipsub 14's GossipSub this repair uses (private ones included). */
export interface GossipInternals {
  readonly peers: Map<string, PeerId>
  readonly streamsInbound: Map<string, RawStreamHolder>
  readonly streamsOutbound: Map<string, RawStreamHolder>
  readonly multicodecs: string[]
  createInboundStream: (peerId: PeerId, stream: Stream) => void
  onPeerConnected: (peerId: PeerId, connection: Connection) => void
  handlePeerReadStreamError: (err: unknown, peerId: PeerId) => void
  addEventListener: (type: 'gossipsub:heartbeat', listener: () => void) => void
  removeEventListener: (type: 'gossipsub:heartbeat', listener: () => void) => void
}

function hasInternals (gs: unknown): gs is GossipInternals {
  const g = gs as Partial<Record<keyof GossipInternals, unknown>>
  return g.peers instanceof Map && g.streamsInbound instanceof Map && g.streamsOutbound instanceof Map && Array.isArray(g.multicodecs) &&
    typeof g.createInboundStream === 'function' && typeof g.onPeerConnected === 'function' && typeof g.handlePeerReadStreamError === 'function'
}

/**
 * it-length-prefixed's errors for a frame over gossipsub's maxInboundDataLength (or a malformed
 * length): the peer broke the protocol, and gossipsub dropping it is the bound working
 * (GOSSIP_MAX_RPC_BYTES), not a stream to repair.
 */
const FRAMING_ERRORS = new Set(['InvalidDataLengthError', 'InvalidDataLengthLengthError', 'InvalidMessageLengthError'])

const isOpen = (s: Stream): boolean => s.status === 'open' && s.readStatus === 'ready'
/** Written to and not closed by the remote (an outbound gossip stream is never read, so a closed read side means the remote closed it). */
const isWritable = (s: Stream): boolean => s.status === 'open' && s.readStatus !== 'closed' && (s.writeStatus === 'ready' || s.writeStatus === 'writing')

/** Counts what the repair did (tests and diagnostics). */
export interface GossipRepairStats { keptInbound: number, reopenedOutbound: number, readdedPeers: number }

const statsOf = new WeakMap<object, GossipRepairStats>()

export function gossipRepairStats (node: object): GossipRepairStats | undefined {
  return statsOf.get(node)
}

export interface GossipRepairOptions {
  /**
   * Called for a peer that sent a gossip frame gossipsub refuses (over GOSSIP_MAX_RPC_BYTES, or
   * a malformed length): a protocol violation no honest poi node commits. gossipsub only drops
   * that peer's streams, which the peer can open again at once; the caller hangs up and bans.
   */
  onFramingViolation?: (peer: PeerId) => void
}

export function repairGossipStreams (node: Libp2p<{ pubsub: GossipInternals }>, options: GossipRepairOptions = {}): void {
  const gs: unknown = node.services.pubsub
  if (!hasInternals(gs)) {
    log.error('this gossipsub version lacks the members the stream repair uses: streams of a duplicated peer id are not repaired')
    return
  }
  const stats: GossipRepairStats = { keptInbound: 0, reopenedOutbound: 0, readdedPeers: 0 }
  statsOf.set(node, stats)
  /** Inbound streams kept reading beside gossipsub's own, by peer id. */
  const kept = new Map<string, RawStreamHolder[]>()
  const lastRepair = new Map<string, number>()
  /** Connected peers gossipsub has known: one missing from gs.peers was removed while still connected. */
  const known = new Set<string>()
  /** Peers gossipsub dropped for an oversized or malformed frame: never re-added while their connections last. */
  const cutOff = new Set<string>()

  const readError = gs.handlePeerReadStreamError.bind(gs)
  gs.handlePeerReadStreamError = (err: unknown, peerId: PeerId): void => {
    if (err instanceof Error && FRAMING_ERRORS.has(err.name)) {
      cutOff.add(peerId.toString())
      log('%p sent a gossip frame gossipsub refuses (%s): its gossip stays cut off while it is connected', peerId, err.message)
      options.onFramingViolation?.(peerId)
    }
    readError(err, peerId)
  }

  const connectionOf = (peer: PeerId, stream: Stream): Connection | undefined =>
    node.getConnections(peer).find(c => c.streams.includes(stream))

  const createInbound = gs.createInboundStream.bind(gs)
  gs.createInboundStream = (peerId: PeerId, stream: Stream): void => {
    const id = peerId.toString()
    const prior = gs.streamsInbound.get(id)
    if (prior != null && isOpen(prior.rawStream)) {
      const priorConn = connectionOf(peerId, prior.rawStream)
      const newConn = connectionOf(peerId, stream)
      if (priorConn != null && newConn != null && priorConn.id !== newConn.id && priorConn.status === 'open') {
        // Another live connection with this peer id: keep reading the prior stream instead of
        // letting gossipsub close it (that closure is what cut the original process off).
        const list = (kept.get(id) ?? []).filter(s => isOpen(s.rawStream))
        list.push(prior)
        while (list.length > MAX_EXTRA_GOSSIP_STREAMS_PER_PEER) void list.shift()?.close()
        kept.set(id, list)
        gs.streamsInbound.delete(id)
        stats.keptInbound++
        log('%p: a second inbound gossip stream on connection %s; the one on %s keeps being read', peerId, newConn.id, priorConn.id)
      }
    }
    createInbound(peerId, stream)
  }

  const repair = (): void => {
    const now = Date.now()
    const byPeer = new Map<string, Connection[]>()
    for (const conn of node.getConnections()) {
      if (conn.status !== 'open') continue
      const id = conn.remotePeer.toString()
      byPeer.set(id, [...(byPeer.get(id) ?? []), conn])
    }
    for (const [id, list] of kept) {
      const open = list.filter(s => isOpen(s.rawStream))
      if (open.length === 0 || !byPeer.has(id)) { kept.delete(id); for (const s of open) void s.close(); continue }
      kept.set(id, open)
      const current = gs.streamsInbound.get(id)
      // The map's stream ended (the duplicate left): a kept one takes its place, so gossipsub closes it when the peer goes.
      if ((current == null || !isOpen(current.rawStream)) && gs.peers.has(id)) {
        gs.streamsInbound.set(id, open.pop()!)
        kept.set(id, open)
      }
    }
    for (const [id, conns] of byPeer) {
      const peer = conns[0].remotePeer
      // Only peers that speak gossipsub: gossipsub knows them, or knew them on a connection that is still open.
      if (gs.peers.has(id)) known.add(id)
      else if (!known.has(id) || cutOff.has(id)) continue
      const out = gs.streamsOutbound.get(id)
      const broken = !gs.peers.has(id) ? 'removed while connected' : out != null && !isWritable(out.rawStream) ? 'outbound stream closed by the remote' : undefined
      if (broken === undefined) continue
      if (now - (lastRepair.get(id) ?? 0) < REPAIR_INTERVAL_MS) continue
      lastRepair.set(id, now)
      log('%p: %s while %d connection(s) stay open: reopening its gossip streams', peer, broken, conns.length)
      if (out != null && !isWritable(out.rawStream)) {
        gs.streamsOutbound.delete(id)
        void out.close().catch(() => {})
        stats.reopenedOutbound++
      } else {
        stats.readdedPeers++
      }
      gs.onPeerConnected(peer, conns[0])
    }
    for (const id of lastRepair.keys()) if (!byPeer.has(id)) lastRepair.delete(id)
    for (const id of known) if (!byPeer.has(id)) known.delete(id)
    // Bounded by the open connections: an entry goes with the peer's last connection.
    for (const id of cutOff) if (!byPeer.has(id)) cutOff.delete(id)
  }

  gs.addEventListener('gossipsub:heartbeat', repair)
  node.addEventListener('stop', () => {
    gs.removeEventListener('gossipsub:heartbeat', repair)
    for (const list of kept.values()) for (const s of list) void s.close()
    kept.clear()
  }, { once: true })
}
