import { gossipsub, type GossipSub } from '@chainsafe/libp2p-gossipsub'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { bootstrap } from '@libp2p/bootstrap'
import { identify, type Identify } from '@libp2p/identify'
import type { ConnectionGater, Libp2p, PeerId, PeerInfo, PrivateKey } from '@libp2p/interface'
import { kadDHT, passthroughMapper, type KadDHT } from '@libp2p/kad-dht'
import { logger } from '@libp2p/logger'
import { ping, type Ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { Counter, Gauge, type Registry } from 'prom-client'
import { TOPICS, gossipsubOptions, mustDisconnect } from '../protocols/gossip/index.js'
import { guardForeignTopics, type GuardedGossip } from './gossip-guard.js'
import { MAX_BANNED_PEERS, PEER_BAN_MS, PoiError } from '../protocols/wire/index.js'
import { repairGossipStreams, type GossipInternals } from './gossip-streams.js'
import { peerIdentityGuard } from './peer-identity.js'

const log = logger('poi:p2p')

/** Our own DHT, apart from the public IPFS one, so poi nodes only find poi nodes. */
export const DHT_PROTOCOL = '/poi/kad/1.0.0'

/**
 * A small network wants every node connected to most others (gossip meshes of
 * D=6..12 need that many topic peers); past this many connections we stop
 * dialing peers that discovery turns up.
 */
export const DEFAULT_TARGET_CONNECTIONS = 24
const DIAL_TIMEOUT_MS = 5_000
/**
 * A bootstrap node is every node's first peer until the DHT gives it others. At the 64 of any
 * other node it saturated once 64 nodes had joined (bench:scale, 64 operators: every operator
 * started after that held 0 or 1 connections and never reached a gossip mesh). Its connections
 * are short-lived work (a DHT query, gossip until the newcomer's own meshes form), so it takes
 * many; beyond this libp2p prunes its least useful ones.
 */
export const BOOTSTRAP_MAX_CONNECTIONS = 1_024
/**
 * Many processes dial a fresh node at once on a devnet; libp2p's default of 5
 * inbound connections per second per host would turn most of them away.
 */
const INBOUND_CONNECTION_THRESHOLD = 1_000
const RECONNECT_RETRY_INTERVAL_MS = 1_000
const RECONNECT_BACKOFF_FACTOR = 2
/**
 * A node with fewer connections than this keeps looking for peers: the bootstrap nodes again
 * when it has none, the DHT otherwise. gossipsub's mesh degree D: below it no topic can have a
 * full mesh. Without this a node whose single dial of the bootstrap node timed out (tens of
 * processes starting at once on a loaded machine) stayed alone for good.
 */
const EXPLORE_UNTIL_CONNECTIONS = 6
/** The first retry; each further one waits twice as long, up to EXPLORE_RETRY_MAX_MS. */
const EXPLORE_RETRY_FIRST_MS = 2_000
/** The longest wait between two looks for peers (a small network never reaches EXPLORE_UNTIL_CONNECTIONS: it costs one DHT query a minute). */
export const EXPLORE_RETRY_MAX_MS = 60_000

export type PoiServices = {
  identify: Identify
  ping: Ping
  pubsub: GossipSub
  dht: KadDHT
  /** Peers disconnected for their gossip score, refused until their ban ends. */
  bans: PeerBans
}

export type PoiLibp2p = Libp2p<PoiServices>

export interface P2pOptions {
  privateKey: PrivateKey
  listen: string[]
  bootstrap: string[]
  /** Requesters are light peers: they query the DHT but do not serve it. */
  dhtClientMode: boolean
  targetConnections?: number
  /** A bootstrap node: every newcomer's first peer, so it accepts up to BOOTSTRAP_MAX_CONNECTIONS and offers peers when it prunes one from a full gossip mesh (peer exchange). */
  bootstrapNode?: boolean
  /** libp2p's own metrics (@libp2p/prometheus-metrics) go into this registry (the node's, node/api/metrics.ts); none without it. */
  metricsRegistry?: Registry
}

let prometheusInstances = 0

/**
 * libp2p's Prometheus metrics registered into `registry` only. @libp2p/prometheus-metrics keeps
 * one module-level map from metric name to metric for the whole process and hands a node the
 * metric another node registered under the same name (in that node's registry), or, by default,
 * clears the map and prom-client's global registry whenever a node is created: either way several
 * nodes in one process (tests, benchmarks) would share or lose series. Each node therefore loads
 * its own instance of the module (a distinct URL is a distinct ES module; its helpers are
 * stateless and shared), keeps existing metrics, and leaves process metrics to the node registry.
 */
async function libp2pMetrics (registry: Registry): Promise<ReturnType<typeof import('@libp2p/prometheus-metrics').prometheusMetrics>> {
  prometheusInstances++
  const url = `${import.meta.resolve('@libp2p/prometheus-metrics')}?node=${prometheusInstances}`
  const mod = await import(url) as typeof import('@libp2p/prometheus-metrics')
  return mod.prometheusMetrics({ registry, collectDefaultMetrics: false, preserveExistingMetrics: true })
}

/** The node cannot listen on an address it was given (in use, not this machine's, no permission). */
export class ListenError extends PoiError {
  constructor (readonly addresses: string[], reason: string, cause: unknown) {
    super('ERR_LISTEN', `cannot listen on ${addresses.join(', ')}: ${reason}`, { cause })
  }
}

/** Why a listen failed, in words, from the OS error code libp2p quotes for each address. */
const LISTEN_FAILURES: Record<string, string> = {
  EADDRINUSE: 'the port is in use by another process; stop it, or pass another --listen port (tcp/0 picks a free one)',
  EADDRNOTAVAIL: 'the address is not one of this machine\'s; pass --listen with one of its addresses (or /ip4/0.0.0.0/tcp/<port>)',
  EACCES: 'no permission to use that port (below 1024 needs privileges); pass --listen with a port above 1023'
}

/**
 * libp2p reports a failed listen as UnsupportedListenAddressesError whose message lists each
 * address with the OS error and its stack; the CLI says which address failed and what to do.
 */
export function explainListenFailure (err: unknown, listen: string[]): unknown {
  if (!(err instanceof Error) || err.name !== 'UnsupportedListenAddressesError') return err
  const failed = [...err.message.matchAll(/^\s*(\/\S+): Error: [^\n]*?\b(E[A-Z]+)\b/gm)]
  const addresses = failed.length > 0 ? [...new Set(failed.map(m => m[1]))] : listen
  const code = failed[0]?.[2]
  const reason = code !== undefined && Object.hasOwn(LISTEN_FAILURES, code) ? `${code}: ${LISTEN_FAILURES[code]}` : `${code ?? 'the transport refused it'}; check the --listen addresses`
  return new ListenError(addresses, reason, err)
}

export async function createPoiLibp2p (opts: P2pOptions): Promise<PoiLibp2p> {
  for (const addr of [...opts.listen, ...opts.bootstrap]) {
    try { multiaddr(addr) } catch (err) {
      throw new PoiError('ERR_INVALID_MULTIADDR', `invalid multiaddr ${JSON.stringify(addr)}: ${(err as Error).message}; write it as /ip4/<host>/tcp/<port>[/p2p/<peer id>]`, { cause: err })
    }
  }
  const bans = new PeerBans()
  // A dial of …/p2p/<id> must meet that id; a duplicated identity is detected and survived (node/peer-identity.ts).
  const identity = peerIdentityGuard()
  const node: PoiLibp2p = await createLibp2p<PoiServices>({
    privateKey: opts.privateKey,
    ...(opts.metricsRegistry != null ? { metrics: await libp2pMetrics(opts.metricsRegistry) } : {}),
    connectionGater: bans.gater(),
    addresses: { listen: opts.listen },
    transports: [tcp()],
    connectionEncrypters: [identity.encrypter(noise())],
    streamMuxers: [yamux()],
    peerDiscovery: opts.bootstrap.length > 0 ? [bootstrap({ list: opts.bootstrap, timeout: 0 })] : [],
    connectionManager: {
      inboundConnectionThreshold: INBOUND_CONNECTION_THRESHOLD,
      maxConnections: opts.bootstrapNode === true ? BOOTSTRAP_MAX_CONNECTIONS : Math.max(64, (opts.targetConnections ?? DEFAULT_TARGET_CONNECTIONS) * 2),
      // libp2p 2.10 leaves these undefined for p-retry, which then retries
      // a lost peer every millisecond (and warns TimeoutNaNWarning).
      reconnectRetryInterval: RECONNECT_RETRY_INTERVAL_MS,
      reconnectBackoffFactor: RECONNECT_BACKOFF_FACTOR
    },
    // libp2p's connection monitor pings every connection every 10 s, each ping a new stream,
    // and every stream, in or out, rewrites the peer's peer-store record (protocols merged in).
    // With dropping on a failed ping off (a node busy running a model answers late, and cutting it
    // off then would lose its attestation) the pings only measured round trips nobody reads, and
    // at 24-30 connections per node they were most of an idle node's CPU (profile of an idle
    // operator in a 64-operator network: peer-store merges 38 % of its samples). Dead connections
    // still end on a TCP error or reset; yamux still sends its keepalive pings (frames, not streams).
    connectionMonitor: { enabled: false },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub(gossipsubOptions({
        peerExchange: opts.bootstrapNode === true,
        bootstrapPeers: opts.bootstrap.map(a => multiaddr(a).getPeerId()).filter((id): id is string => id != null)
      })) as (components: any) => GossipSub,
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        clientMode: opts.dhtClientMode,
        // The default mapper drops private and loopback addresses, so on a
        // LAN or a one-machine devnet the DHT would find nobody.
        peerInfoMapper: passthroughMapper,
        initialQuerySelfInterval: 200
      }),
      bans: () => bans
    }
  }).catch((err: unknown) => { throw explainListenFailure(err, opts.listen) })
  identity.attach(node, opts.bootstrap)
  // Every gossip misbehaviour that costs a peer its connection goes through here: banned
  // (refused by the connection gater above), then hung up on.
  const banMetrics = opts.metricsRegistry != null ? peerBanMetrics(opts.metricsRegistry) : undefined
  const cutOff = (peer: PeerId, reason: BanReason, why: string): void => {
    // A peer still listed until its hang-up completes is cut off again at the next heartbeat: counted once.
    if (!bans.isBanned(peer)) banMetrics?.bans.inc({ reason })
    bans.ban(peer)
    log('disconnecting %p: %s; refused for %d s', peer, why, PEER_BAN_MS / 1000)
    node.hangUp(peer).catch((err: Error) => { log('hang-up on %p failed: %s', peer, err.message) })
  }
  // gossipsub's streams survive a duplicated peer id (node/gossip-streams.ts); a peer that breaks
  // gossip framing is cut off.
  repairGossipStreams(node as unknown as Libp2p<{ pubsub: GossipInternals }>, {
    onFramingViolation: (peer) => { cutOff(peer, 'gossip-framing', 'it sent a gossip frame over the RPC bound') }
  })
  // allowedTopics drops other topics silently; a peer that keeps using them loses its connection.
  const foreignTopics = guardForeignTopics(node.services.pubsub as unknown as GuardedGossip, Object.values(TOPICS),
    (peer, topics) => { cutOff(peer, 'foreign-topics', `it used ${topics} gossip topics that are not poi's`) })
  node.addEventListener('peer:disconnect', (evt) => { foreignTopics.forget(evt.detail) })
  const connector = new PeerConnector(node, opts.targetConnections ?? DEFAULT_TARGET_CONNECTIONS, opts.bootstrap)
  connector.start()
  node.addEventListener('stop', () => connector.stop(), { once: true })
  // gossipsub scores peers but never disconnects one: it only stops reading a peer below the
  // graylist, where the peer's penalty stops growing and decays, so a flooder was back within
  // seconds (issue 9). After every heartbeat (meshes pruned, scores decayed) every peer at or
  // below PEER_DISCONNECT_SCORE is cut off like the framing and foreign-topic violators above.
  const pubsub = node.services.pubsub
  const enforceScores = (): void => {
    for (const peer of pubsub.getPeers()) {
      const score = pubsub.getScore(peer.toString())
      if (!mustDisconnect(score)) continue
      banMetrics?.lowestScore(score)
      cutOff(peer, 'gossip-score', `gossip score ${score} is at or below the disconnect score`)
    }
  }
  pubsub.addEventListener('gossipsub:heartbeat', enforceScores)
  node.addEventListener('stop', () => { pubsub.removeEventListener('gossipsub:heartbeat', enforceScores) }, { once: true })
  return node
}

/** Why a peer was cut off and banned: the `reason` label of poi_peer_bans_total. */
export type BanReason = 'gossip-score' | 'gossip-framing' | 'foreign-topics'

/**
 * What an operator (or the chaos suite's flood) sees of the bans from outside the process:
 * how many peers were banned and why, and how low the lowest gossip score that cost a peer its
 * connection went (0 until one did). gossipsub's own score metrics need its metrics registry,
 * which poi does not wire; these two series answer "was the flooder scored down and cut off".
 */
function peerBanMetrics (registry: Registry): { bans: Counter<'reason'>, lowestScore: (score: number) => void } {
  const bans = new Counter({ name: 'poi_peer_bans_total', help: 'Peers disconnected and banned for PEER_BAN_MS, by reason (gossip-score, gossip-framing, foreign-topics)', labelNames: ['reason'], registers: [registry] })
  const lowest = new Gauge({ name: 'poi_peer_ban_lowest_score', help: 'Lowest gossip score of a peer banned for its score (0 until one was)', registers: [registry] })
  let min = 0
  return { bans, lowestScore: (score) => { if (score < min) { min = score; lowest.set(score) } } }
}

/**
 * Peers refused by id until their ban ends (PEER_BAN_MS), at most MAX_BANNED_PEERS of them, the
 * oldest ban dropped first. Enforced by the connection gater: no dial to a banned peer, and a
 * connection to or from one is closed as soon as the handshake names it.
 */
export class PeerBans {
  /** Peer id → end of its ban (ms); in order of banning, since every ban lasts as long. */
  private readonly bannedUntil = new Map<string, number>()
  private readonly durationMs: number
  private readonly max: number
  private bansMade = 0

  constructor (durationMs: number = PEER_BAN_MS, max: number = MAX_BANNED_PEERS) {
    this.durationMs = durationMs
    this.max = max
  }

  ban (peer: PeerId, now: number = Date.now()): void {
    const key = peer.toString()
    this.bannedUntil.delete(key)
    this.bannedUntil.set(key, now + this.durationMs)
    this.bansMade++
    this.sweep(now)
  }

  isBanned (peer: PeerId, now: number = Date.now()): boolean {
    const until = this.bannedUntil.get(peer.toString())
    if (until === undefined) return false
    if (until > now) return true
    this.bannedUntil.delete(peer.toString())
    return false
  }

  /** Bans made since start, for logs and metrics. */
  get total (): number {
    return this.bansMade
  }

  /** Bans in force (an expired one may count until the next ban or lookup sweeps it). */
  get size (): number {
    return this.bannedUntil.size
  }

  gater (): ConnectionGater {
    return {
      denyDialPeer: (peer) => this.isBanned(peer),
      denyInboundEncryptedConnection: (peer) => this.isBanned(peer),
      denyOutboundEncryptedConnection: (peer) => this.isBanned(peer)
    }
  }

  /** Drops expired bans (they are first in the map), then the oldest beyond the bound. */
  private sweep (now: number): void {
    for (const [key, until] of this.bannedUntil) {
      if (until > now && this.bannedUntil.size <= this.max) break
      this.bannedUntil.delete(key)
    }
  }
}


/**
 * libp2p 2 no longer dials the peers that discovery finds. This does, up to a
 * target, so gossip has topic peers beyond the bootstrap node; and while the node
 * has fewer than EXPLORE_UNTIL_CONNECTIONS it looks again, with backoff.
 */
class PeerConnector {
  private readonly node: PoiLibp2p
  private readonly target: number
  private readonly bootstrap: string[]
  private readonly dialing = new Set<string>()
  private readonly onDiscovery = (evt: CustomEvent<PeerInfo>): void => { void this.maybeDial(evt.detail.id) }
  private readonly onConnect = (): void => { if (!this.explored) void this.explore() }
  private explored = false
  private exploring = false
  private retryMs = EXPLORE_RETRY_FIRST_MS
  private retryTimer: NodeJS.Timeout | undefined

  constructor (node: PoiLibp2p, target: number, bootstrap: string[]) {
    this.node = node
    this.target = target
    this.bootstrap = bootstrap
  }

  start (): void {
    this.node.addEventListener('peer:discovery', this.onDiscovery)
    this.node.addEventListener('peer:connect', this.onConnect)
    this.scheduleRetry()
  }

  stop (): void {
    this.node.removeEventListener('peer:discovery', this.onDiscovery)
    this.node.removeEventListener('peer:connect', this.onConnect)
    clearTimeout(this.retryTimer)
  }

  private scheduleRetry (): void {
    this.retryTimer = setTimeout(() => { void this.retry() }, this.retryMs)
    this.retryTimer.unref()
  }

  /** Too few connections: dial the bootstrap nodes again (none at all) or ask the DHT (some). */
  private async retry (): Promise<void> {
    if (this.node.status !== 'started') return
    const connections = this.node.getConnections().length
    if (connections < EXPLORE_UNTIL_CONNECTIONS) {
      if (connections === 0) {
        log('no connections: dialing the bootstrap nodes again')
        await Promise.all(this.bootstrap.map(async addr => {
          await this.node.dial(multiaddr(addr), { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
            .catch((err: Error) => { log('dial %s failed: %s', addr, err.message) })
        }))
      } else {
        await this.explore()
      }
      this.retryMs = Math.min(this.retryMs * 2, EXPLORE_RETRY_MAX_MS)
    } else {
      // Enough peers: look again only if they go (checked at the longest interval).
      this.retryMs = EXPLORE_RETRY_MAX_MS
    }
    if (this.node.status === 'started') this.scheduleRetry()
  }

  /** Ask the DHT for peers near us to learn the network (after the first connection, and on retries). */
  private async explore (): Promise<void> {
    if (this.exploring) return
    this.explored = true
    this.exploring = true
    try {
      for await (const _ of this.node.services.dht.getClosestPeers(this.node.peerId.toMultihash().bytes, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS * 2) })) {
        // events are consumed for their side effect: discovered peers are dialed
      }
    } catch (err) {
      log('peer exploration ended: %s', (err as Error).message)
    } finally {
      this.exploring = false
    }
    for (const peer of await this.node.peerStore.all()) void this.maybeDial(peer.id)
  }

  private async maybeDial (peer: PeerId): Promise<void> {
    if (this.node.status !== 'started') return
    if (peer.equals(this.node.peerId)) return
    const key = peer.toString()
    if (this.dialing.has(key)) return
    if (this.node.getConnections(peer).length > 0) return
    if (this.node.getConnections().length >= this.target) return
    this.dialing.add(key)
    try {
      await this.node.dial(peer, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
    } catch (err) {
      log('dial %p failed: %s', peer, (err as Error).message)
    } finally {
      this.dialing.delete(key)
    }
  }
}

export { multiaddr }
