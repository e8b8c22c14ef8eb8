/**
 * Peer identity: a dial to an address that names a peer (`…/p2p/<id>`) succeeds only if the
 * remote proves that id, and a node learns when a second live process uses its peer id.
 *
 * What libp2p 2.10 does without this (measured, issue 9 finding 5): the dial queue passes the
 * expected peer id to the upgrader only as `options.peerId`; the upgrader hands its options to
 * the encrypter, and noise checks only `options.remotePeer`, which nobody sets. So a node at
 * the bootstrap's host and port with another key was accepted by `dial`, `dialProtocol` and
 * the bootstrap discovery path alike, and the connection even kept the wrong `/p2p/` id in its
 * remoteAddr. The guard's `encrypter` gives noise the expected key, so the handshake fails
 * before this node sends its own identity; `attach` also closes any outbound
 * connection whose proven peer differs from the address's id, should a future dial path skip
 * the encrypter's check.
 *
 * Duplicate identity (finding 7). A node cannot see its own twin directly: they never connect
 * to each other (libp2p refuses to dial itself), DHT peers never tell a peer about itself, and
 * a pure operator does not subscribe to attestations (and its twin's are byte-identical: BLS
 * signatures are deterministic). A third node can: it holds two open connections proving one
 * peer id whose identify answers differ (listen addresses), which
 * one process never gives. It reports that itself and opens a notice stream
 * (DUPLICATE_IDENTITY_PROTOCOL) on both connections, so both processes warn. Known limits: two
 * light peers (no listen addresses) are not told apart; an old connection of a restarted node
 * that the remote has not yet seen close looks like a twin until it does.
 *
 * Trust: a PeerIdentityMismatchError is proof (the remote signed its noise key with another
 * identity). A duplicate-identity report from a peer is a claim: it only ever warns.
 */
import type { Connection, ConnectionEncrypter, IdentifyResult, Libp2p, PeerId, SecureConnectionOptions, SecurableStream } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Multiaddr } from '@multiformats/multiaddr'
import { multiaddr } from '@multiformats/multiaddr'
import { MAX_DUPLICATE_REPORTERS_KEPT, MAX_IDENTITY_MISMATCHES_KEPT, PoiError } from '../protocols/wire/index.js'
import type { DuplicateIdentity } from './roles/events.js'

export type { DuplicateIdentity } from './roles/events.js'

const log = logger('poi:identity')

/**
 * Sent by a node that holds two live connections proving one peer id whose identify answers
 * differ (two processes with one keystore): the stream itself is the notice, it carries no bytes.
 */
export const DUPLICATE_IDENTITY_PROTOCOL = '/poi/duplicate-identity/1/'

/**
 * One report per (peer id, reporter) per this long: a live duplicate is re-detected on every
 * reconnect and identify push, and a peer could send notices in a loop; one warning a minute
 * is loud enough for an operator and cheap for the node.
 */
const DUPLICATE_REPORT_INTERVAL_MS = 60_000

/** A notice stream is opened and closed at once; a peer slower than this is not waited for. */
const NOTICE_TIMEOUT_MS = 5_000

/** The remote at an address proved another peer id than the one the address names. */
export class PeerIdentityMismatchError extends PoiError {
  declare readonly code: 'ERR_PEER_IDENTITY_MISMATCH'
  /** The peer id the dialed address names (`/p2p/<expected>`). */
  readonly expected: string
  /** The peer id the remote proved in the handshake (`unknown` if the encrypter did not say). */
  readonly proven: string
  /** The address dialed (without its /p2p/ part). */
  readonly address: string

  constructor (expected: string, proven: string, address: string, options?: { cause?: unknown }) {
    super('ERR_PEER_IDENTITY_MISMATCH',
      `the node at ${address} proved peer id ${proven}, not ${expected} that the address names: refused ` +
      '(another node is listening at that host and port, or the address carries a stale /p2p/ id; check the address) [ERR_PEER_IDENTITY_MISMATCH]',
      options)
    this.expected = expected
    this.proven = proven
    this.address = address
  }
}

export interface PeerIdentityGuard {
  /** Wraps a connection encrypter factory (noise) so outbound handshakes must prove the dialed peer id. */
  encrypter: <C>(factory: (components: C) => ConnectionEncrypter) => (components: C) => ConnectionEncrypter
  /** Installs the connection check, the duplicate detection and gossip stream repair on a created node. */
  attach: (node: Libp2p<{ pubsub: unknown }>, bootstrap: string[]) => void
}

/** The most recent identity refusals of a node, newest last, and whether every bootstrap address was refused. */
export interface IdentityState {
  mismatches: () => PeerIdentityMismatchError[]
  /** The refusal of every bootstrap address that names a peer id, if each was refused at least once; else undefined. */
  bootstrapRefusals: () => PeerIdentityMismatchError[] | undefined
  /** Duplicate identities seen so far (counted, including reports not re-dispatched inside the report interval). */
  duplicateReports: () => number
  /**
   * The listen addresses an open connection's identify answer gave (sorted), or undefined before
   * identify or for a light peer: which process is behind a connection when one peer id has
   * several (a duplicate, or a simultaneous dial that left one process with two connections).
   */
  listenAddressesOf: (connectionId: string) => string[] | undefined
  addEventListener: (type: 'duplicate-identity', listener: (evt: CustomEvent<DuplicateIdentity>) => void) => void
  removeEventListener: (type: 'duplicate-identity', listener: (evt: CustomEvent<DuplicateIdentity>) => void) => void
}

const states = new WeakMap<object, IdentityState>()

/** The identity state of a node built by createPoiLibp2p (undefined for any other libp2p node). */
export function peerIdentityOf (node: object): IdentityState | undefined {
  return states.get(node)
}

/** noise says `Payload identity key <proven> does not match expected remote identity key <expected>`. */
const NOISE_MISMATCH = /identity key (\S+) does not match expected remote identity key/

function stripPeerId (addr: Multiaddr): string {
  return addr.getPeerId() == null ? addr.toString() : addr.decapsulateCode(421).toString()
}

/** The expected remote peer of an outbound handshake: set by the caller, or named by the dialed address. */
function expectedPeer (connection: SecurableStream, options: SecureConnectionOptions | undefined): { peer?: PeerId, address: string } {
  const remoteAddr = (connection as { remoteAddr?: Multiaddr }).remoteAddr
  const address = remoteAddr == null ? '(unknown address)' : stripPeerId(remoteAddr)
  if (options?.remotePeer != null) return { peer: options.remotePeer, address }
  // libp2p 2.10's dial queue passes the peer it dials as `peerId` (never as `remotePeer`).
  const dialed = (options as { peerId?: PeerId } | undefined)?.peerId
  if (dialed != null) return { peer: dialed, address }
  const idStr = remoteAddr?.getPeerId()
  return { peer: idStr == null ? undefined : peerIdFromString(idStr), address }
}

export function peerIdentityGuard (): PeerIdentityGuard {
  const mismatches: PeerIdentityMismatchError[] = []
  const record = (err: PeerIdentityMismatchError): void => {
    log.error('%s', err.message)
    mismatches.push(err)
    if (mismatches.length > MAX_IDENTITY_MISMATCHES_KEPT) mismatches.shift()
  }
  const events = new EventTarget()
  let reports = 0
  const lastReport = new Map<string, number>()
  /** Counts a duplicate; true if it was dispatched (not within the report interval of the same one). */
  const report = (d: DuplicateIdentity): boolean => {
    reports++
    const key = `${d.peerId}/${d.reportedBy}/${d.how}`
    const now = Date.now()
    const last = lastReport.get(key)
    if (last !== undefined && now - last < DUPLICATE_REPORT_INTERVAL_MS) return false
    lastReport.set(key, now)
    if (lastReport.size > MAX_DUPLICATE_REPORTERS_KEPT) lastReport.delete(lastReport.keys().next().value as string)
    log.error('duplicate identity: peer id %s %s (%s, reported by %s)', d.peerId, d.self ? 'is this node\'s own and is used by another live process' : 'is used by two live processes', d.how, d.reportedBy)
    events.dispatchEvent(new CustomEvent('duplicate-identity', { detail: d }))
    return true
  }

  return {
    encrypter: (factory) => (components) => {
      const inner = factory(components)
      return {
        protocol: inner.protocol,
        secureInbound: async (connection, options) => await inner.secureInbound(connection, options),
        secureOutbound: async (connection, options) => {
          const { peer, address } = expectedPeer(connection, options)
          if (peer == null) return await inner.secureOutbound(connection, options)
          try {
            const secured = await inner.secureOutbound(connection, { ...options, remotePeer: peer })
            // noise checks the key itself; this holds for any other encrypter too.
            if (!secured.remotePeer.equals(peer)) throw new PeerIdentityMismatchError(peer.toString(), secured.remotePeer.toString(), address)
            return secured
          } catch (err) {
            if (err instanceof PeerIdentityMismatchError) { record(err); throw err }
            if ((err as Error).name === 'UnexpectedPeerError') {
              const proven = NOISE_MISMATCH.exec((err as Error).message)?.[1] ?? 'unknown'
              const mismatch = new PeerIdentityMismatchError(peer.toString(), proven, address, { cause: err })
              record(mismatch)
              throw mismatch
            }
            throw err
          }
        }
      }
    },

    attach: (node, bootstrap) => {
      const expectedBootstrap = new Set(bootstrap.map(a => multiaddr(a).getPeerId()).filter((id): id is string => id != null))
      const self = node.peerId.toString()
      const identified = new Map<string, { listen: string, addrs: string[] }>()

      // Any outbound connection whose proven peer differs from its address's /p2p/ id.
      const onOpen = (evt: CustomEvent<Connection>): void => {
        const conn = evt.detail
        const named = conn.remoteAddr.getPeerId()
        if (conn.direction !== 'outbound' || named == null || named === conn.remotePeer.toString()) return
        const err = new PeerIdentityMismatchError(named, conn.remotePeer.toString(), stripPeerId(conn.remoteAddr))
        record(err)
        conn.abort(err)
      }

      // Two live connections proving one peer id whose identify answers differ are two processes.
      const onIdentify = (evt: CustomEvent<IdentifyResult>): void => {
        const r = evt.detail
        const addrs = r.listenAddrs.map(a => a.toString()).sort()
        // A light peer listens nowhere: two of them cannot be told apart from one.
        if (addrs.length === 0) return
        // Listen addresses only: one process re-signs its peer record (a new seq) whenever its
        // addresses or protocols change, so two identify answers of one process a moment apart
        // differ in seq, and comparing it reported every node that had two connections to one
        // peer (a simultaneous dial) as a duplicate of itself (seen in every 6-operator devnet).
        const listen = addrs.join(',')
        identified.set(r.connection.id, { listen, addrs })
        const others = node.getConnections(r.peerId).filter(c => c.id !== r.connection.id && c.status === 'open')
        for (const other of others) {
          const seen = identified.get(other.id)
          if (seen === undefined || seen.listen === listen) continue
          const peerId = r.peerId.toString()
          // Tell both (once per report interval): each warns its operator that another process holds its key.
          if (report({ peerId, self: false, how: 'two-connections', reportedBy: self, addresses: [seen.addrs, addrs] })) {
            for (const conn of [other, r.connection]) void notify(conn)
          }
          break
        }
      }
      const onClose = (evt: CustomEvent<Connection>): void => { identified.delete(evt.detail.id) }

      const notify = async (conn: Connection): Promise<void> => {
        try {
          const stream = await conn.newStream(DUPLICATE_IDENTITY_PROTOCOL, { signal: AbortSignal.timeout(NOTICE_TIMEOUT_MS) })
          await stream.close({ signal: AbortSignal.timeout(NOTICE_TIMEOUT_MS) })
        } catch (err) {
          log('cannot tell %p on %s of its duplicate: %s', conn.remotePeer, conn.id, (err as Error).message)
        }
      }

      node.addEventListener('connection:open', onOpen)
      node.addEventListener('connection:close', onClose)
      node.addEventListener('peer:identify', onIdentify)
      node.handle(DUPLICATE_IDENTITY_PROTOCOL, ({ stream, connection }) => {
        stream.abort(new Error('a notice carries no bytes'))
        report({ peerId: self, self: true, how: 'peer-notice', reportedBy: connection.remotePeer.toString(), addresses: [] })
      }).catch((err: unknown) => { log.error('cannot handle %s: %s', DUPLICATE_IDENTITY_PROTOCOL, (err as Error).message) })

      states.set(node, {
        mismatches: () => [...mismatches],
        bootstrapRefusals: () => {
          if (expectedBootstrap.size === 0) return undefined
          const refused = [...expectedBootstrap].map(id => mismatches.findLast(m => m.expected === id))
          return refused.every(m => m !== undefined) ? refused as PeerIdentityMismatchError[] : undefined
        },
        duplicateReports: () => reports,
        listenAddressesOf: (connectionId) => identified.get(connectionId)?.addrs.slice(),
        addEventListener: (type, listener) => { events.addEventListener(type, listener as (evt: Event) => void) },
        removeEventListener: (type, listener) => { events.removeEventListener(type, listener as (evt: Event) => void) }
      })
    }
  }
}
