/**
 * Stream data a node holds for the gossip it forwards (DESIGN §4, §8): a task's input by
 * reference, a result's output by reference. A full node accepts (and so forwards) a message
 * that refers to stream data only once it holds that data, fetched from the peer that
 * forwarded the message, so every hop can fetch from the previous one. Copies of other nodes'
 * messages are forgotten after STREAM_CACHE_RETENTION_MS, and bounded meanwhile: per forwarding
 * peer and in total (bytes and count), the oldest evicted first; fetches are bounded in number
 * too (protocols/wire/bounds.ts, "stream data held for other peers"). A forwarding peer that
 * says it does not hold what it forwarded, or serves something else, is at fault (the relay
 * rejects its message); one that is slow or unreachable is not (ignored).
 *
 * It also offers the inputs of this node's own tasks: a full node appends them to its
 * `inputs` channel, a light requester holds each in memory while its task is live.
 */
import { randomBytes } from 'node:crypto'
import type { Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import {
  MemoryMessageSource, STREAM_REQUEST_TIMEOUT_MS, fetchStreamMessage, fetchStreamMessageByPayload, type StreamLibp2p
} from '../../protocols/stream/index.js'
import { ExchangeError } from '../../protocols/exchange/index.js'
import {
  GENESIS_PREV_ID, MAX_CONCURRENT_STREAM_FETCHES, MAX_HELD_STREAM_BYTES, MAX_HELD_STREAM_BYTES_PER_PEER,
  MAX_HELD_STREAM_MESSAGES, MAX_HELD_STREAM_MESSAGES_PER_PEER, MAX_QUEUED_STREAM_FETCHES, MAX_STREAM_FETCHES_PER_PEER,
  MAX_STREAM_PAYLOAD_BYTES, PoiError, createStreamMessage, encodeStreamMessage, toHex, type TaskAnnouncement
} from '../../protocols/wire/index.js'
import type { HeldCopy, StreamStore } from '../../storage/index.js'
import type { Keystore } from '../keys.js'

const log = logger('poi:stream-data')

/**
 * How long a full node keeps the copies of other nodes' stream messages it fetched to relay a
 * task or a result (inputs, outputs by reference): long past any task's deadline, so late
 * requesters can still get an output from relays; the operators keep their own outputs for good.
 */
export const STREAM_CACHE_RETENTION_MS = 24 * 60 * 60_000
/** How often expired copies are forgotten. */
const STREAM_CACHE_SWEEP_MS = 10 * 60_000
/** The stream channel every operator writes its outputs to. */
export const OUTPUT_CHANNEL = 'outputs'
/** The stream channel a full node puts the inputs of its own tasks in. */
export const INPUT_CHANNEL = 'inputs'
/**
 * A light requester keeps a task's input in memory (it has no storage) and serves it this long
 * past the task's deadline, for operators that start late.
 */
const HELD_INPUT_SLACK_MS = 60_000

/** An input offered by reference is larger than one stream message can carry. */
export class InputTooLargeForStreamError extends PoiError {
  constructor (readonly size: number) {
    super('ERR_INPUT_TOO_LARGE', `an input by reference is at most ${MAX_STREAM_PAYLOAD_BYTES} bytes, this one is ${size}`)
  }
}

/** A task's input is not in this node's stream store (it should have been fetched when the task was accepted). */
export class InputNotHeldError extends PoiError {
  constructor (inputRef: Uint8Array) {
    super('ERR_INPUT_NOT_HELD', `input 0x${toHex(inputRef)} of the task is not in this node's stream store`)
  }
}

/**
 * Fetch failures that show the forwarding peer at fault: it forwarded a reference to data it
 * then says it does not hold, or answered with other or broken data. Every full node holds the
 * data before it forwards (see above), so an honest peer never does this; a timeout or a broken
 * connection may happen to anyone.
 */
const PEER_FAULTS: ReadonlySet<string> = new Set(['NOT_FOUND', 'WRONG_HASH', 'INVALID_MESSAGE', 'INVALID_RESPONSE', 'OVERSIZED'])

/**
 * What gossip refers to by reference: a task's input (by stream msgId), a result's output or a
 * zk proof's body (by payload reference, the keccak256 of the payload).
 */
export type StreamDataKind = 'input' | 'output' | 'proof'

/** Why stream data a message refers to cannot be had, and whether the forwarding peer is at fault (`reject`) or not (`ignore`). */
export interface Unavailable {
  reason: string
  verdict: 'reject' | 'ignore'
}

/** The bounds on what a node holds for others (defaults: protocols/wire/bounds.ts; tests shrink them). */
export interface StreamDataInit {
  maxHeldBytes?: number
  maxHeldBytesPerPeer?: number
  maxHeldMessages?: number
  maxHeldMessagesPerPeer?: number
  maxConcurrentFetches?: number
  maxQueuedFetches?: number
  maxFetchesPerPeer?: number
}

/** A held copy as the accounting keeps it: its store entry and the peer it is charged to. */
interface Held { copy: HeldCopy, key: string }

/** What one forwarding peer has this node hold: its copies, oldest first, and their totals. */
interface PeerHolding { copies: Map<string, Held>, bytes: number }

export interface StreamDataComponents {
  libp2p: StreamLibp2p
  keystore: Pick<Keystore, 'privateKey'>
  /** A full node's stream store; undefined on a light requester. */
  streams?: StreamStore
}

export class StreamData implements Startable {
  /** Inputs a light requester serves while its tasks are live (full nodes use their stream store). */
  readonly heldInputs: MemoryMessageSource | undefined
  /**
   * Fetches in flight, by `${kind}/${ref hex}`, with the peer asked: one per reference, however
   * many messages wait on it. Bounded by maxFetchesPerPeer and maxQueuedFetches.
   */
  private readonly fetches = new Map<string, { peer: string, done: Promise<void> }>()
  /** Fetches running or waiting, per peer asked. */
  private readonly fetchesPerPeer = new Map<string, number>()
  /** Fetches waiting for one of the maxConcurrentFetches slots. */
  private readonly queue: Array<() => void> = []
  private running = 0
  /** Every held copy, oldest first (msgId hex → copy). Bounded by maxHeldMessages. */
  private readonly held = new Map<string, Held>()
  /** The same copies by the peer they are held for. Bounded by the number of held copies. */
  private readonly holdings = new Map<string, PeerHolding>()
  private heldBytes = 0
  private readonly bounds: Required<StreamDataInit>
  private sweeper: NodeJS.Timeout | undefined
  private stopped = false

  constructor (private readonly components: StreamDataComponents, init: StreamDataInit = {}) {
    this.heldInputs = components.streams == null ? new MemoryMessageSource() : undefined
    this.bounds = {
      maxHeldBytes: init.maxHeldBytes ?? MAX_HELD_STREAM_BYTES,
      maxHeldBytesPerPeer: init.maxHeldBytesPerPeer ?? MAX_HELD_STREAM_BYTES_PER_PEER,
      maxHeldMessages: init.maxHeldMessages ?? MAX_HELD_STREAM_MESSAGES,
      maxHeldMessagesPerPeer: init.maxHeldMessagesPerPeer ?? MAX_HELD_STREAM_MESSAGES_PER_PEER,
      maxConcurrentFetches: init.maxConcurrentFetches ?? MAX_CONCURRENT_STREAM_FETCHES,
      maxQueuedFetches: init.maxQueuedFetches ?? MAX_QUEUED_STREAM_FETCHES,
      maxFetchesPerPeer: init.maxFetchesPerPeer ?? MAX_STREAM_FETCHES_PER_PEER
    }
  }

  /** Reads what earlier runs hold for others (so the bounds count it), then forgets what expired. */
  async start (): Promise<void> {
    this.stopped = false
    const streams = this.components.streams
    if (streams != null) {
      for (const copy of await streams.listHeldCopies()) this.account(copy)
      await this.evict()
    }
    this.sweep()
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.sweeper)
    for (const wake of this.queue.splice(0)) wake()
  }

  /** Copies of other nodes' messages held now: in total, and for `peer`. */
  heldFor (peer?: string): { messages: number, bytes: number } {
    if (peer === undefined) return { messages: this.held.size, bytes: this.heldBytes }
    const holding = this.holdings.get(peer)
    return { messages: holding?.copies.size ?? 0, bytes: holding?.bytes ?? 0 }
  }

  /**
   * Makes sure this node's stream store holds a message that gossip refers to (a task's input
   * by msgId, a result's output by payload reference), fetching it from `from`, the peer that
   * forwarded the reference, if not. The fetch checks the bytes against the signed reference,
   * so any peer may serve them. Returns why the data is unavailable, or undefined.
   */
  async hold (kind: StreamDataKind, ref: Uint8Array, from: string, deadline: number): Promise<Unavailable | undefined> {
    const streams = this.components.streams
    if (streams == null) return { reason: `a light node does not hold ${kind}s`, verdict: 'ignore' }
    const held = kind === 'input' ? await streams.getBytes(ref) : await streams.getBytesByPayloadRef(ref)
    if (held != null) return undefined
    const key = `${kind}/${toHex(ref)}`
    const shared = this.fetches.get(key)
    if (shared != null) {
      try {
        await shared.done
        return undefined
      } catch (err) {
        // Another peer's failure is not this peer's: ask this one too.
        if (shared.peer === from) return this.unavailable(kind, ref, from, err)
      }
    }
    const busy = this.fetchRefusal(from)
    if (busy !== undefined) return { reason: `${kind} 0x${toHex(ref)} not fetched from ${from}: ${busy}`, verdict: 'ignore' }
    const done = this.fetch(kind, ref, from, deadline, streams)
    const entry = { peer: from, done }
    this.fetches.set(key, entry)
    done.catch(() => {}).finally(() => { if (this.fetches.get(key) === entry) this.fetches.delete(key) })
    try {
      await done
      return undefined
    } catch (err) {
      return this.unavailable(kind, ref, from, err)
    }
  }

  private unavailable (kind: string, ref: Uint8Array, from: string, err: unknown): Unavailable {
    const atFault = err instanceof ExchangeError && PEER_FAULTS.has(err.code)
    return { reason: `${kind} 0x${toHex(ref)} is not available from ${from}: ${(err as Error).message}`, verdict: atFault ? 'reject' : 'ignore' }
  }

  /** Why no fetch from `from` may start now (too many asked of it, or waiting), or undefined. */
  private fetchRefusal (from: string): string | undefined {
    if ((this.fetchesPerPeer.get(from) ?? 0) >= this.bounds.maxFetchesPerPeer) return `${this.bounds.maxFetchesPerPeer} fetches from this peer are already under way`
    if (this.running >= this.bounds.maxConcurrentFetches && this.queue.length >= this.bounds.maxQueuedFetches) return `${this.bounds.maxQueuedFetches} fetches are already waiting`
    return undefined
  }

  /** Fetches one message from `from` in one of the bounded slots and keeps it, charged to `from`. */
  private async fetch (kind: StreamDataKind, ref: Uint8Array, from: string, deadline: number, streams: StreamStore): Promise<void> {
    this.fetchesPerPeer.set(from, (this.fetchesPerPeer.get(from) ?? 0) + 1)
    try {
      while (this.running >= this.bounds.maxConcurrentFetches && !this.stopped) await new Promise<void>(resolve => this.queue.push(resolve))
      this.running++
      try {
        const timeoutMs = Math.max(1, Math.min(STREAM_REQUEST_TIMEOUT_MS, deadline - Date.now()))
        const peer = peerIdFromString(from)
        const message = kind === 'input'
          ? await fetchStreamMessage(this.components.libp2p, peer, ref, { timeoutMs })
          : (await fetchStreamMessageByPayload(this.components.libp2p, peer, ref, { timeoutMs })).message
        // Another node's channel, of which this node keeps only this message, for a while.
        const expiresAt = Date.now() + STREAM_CACHE_RETENTION_MS
        const { msgId, stored } = await streams.put(message, { allowGap: true, expiresAt, heldFor: from })
        if (stored) {
          this.account({ msgId, expiresAt, size: encodeStreamMessage(message).length, heldFor: from })
          await this.evict()
        }
      } finally {
        this.running--
        this.queue.shift()?.()
      }
    } finally {
      const left = (this.fetchesPerPeer.get(from) ?? 1) - 1
      if (left <= 0) this.fetchesPerPeer.delete(from)
      else this.fetchesPerPeer.set(from, left)
    }
  }

  /** Counts a held copy against its peer and the totals. */
  private account (copy: HeldCopy): void {
    const key = toHex(copy.msgId)
    if (this.held.has(key)) return
    const entry = { copy, key }
    this.held.set(key, entry)
    this.heldBytes += copy.size
    let holding = this.holdings.get(copy.heldFor)
    if (holding == null) {
      holding = { copies: new Map(), bytes: 0 }
      this.holdings.set(copy.heldFor, holding)
    }
    holding.copies.set(key, entry)
    holding.bytes += copy.size
  }

  private unaccount (entry: Held): void {
    if (!this.held.delete(entry.key)) return
    this.heldBytes -= entry.copy.size
    const holding = this.holdings.get(entry.copy.heldFor)
    if (holding == null) return
    holding.copies.delete(entry.key)
    holding.bytes -= entry.copy.size
    if (holding.copies.size === 0) this.holdings.delete(entry.copy.heldFor)
  }

  /** Evicts the oldest copies until every peer and the totals are within their bounds. */
  private async evict (): Promise<void> {
    const { maxHeldBytes, maxHeldBytesPerPeer, maxHeldMessages, maxHeldMessagesPerPeer } = this.bounds
    const doomed: Held[] = []
    for (const holding of this.holdings.values()) {
      let bytes = holding.bytes
      let count = holding.copies.size
      for (const entry of holding.copies.values()) {
        if (bytes <= maxHeldBytesPerPeer && count <= maxHeldMessagesPerPeer) break
        doomed.push(entry)
        bytes -= entry.copy.size
        count--
      }
    }
    for (const entry of doomed) this.unaccount(entry)
    for (const entry of this.held.values()) {
      if (this.heldBytes <= maxHeldBytes && this.held.size <= maxHeldMessages) break
      doomed.push(entry)
      this.unaccount(entry)
    }
    if (doomed.length === 0) return
    for (const entry of doomed) await this.components.streams?.forgetHeldCopy(entry.copy)
    log('evicted %d held stream messages (now %d, %d bytes)', doomed.length, this.held.size, this.heldBytes)
  }

  /** The bytes a task's model runs on: inline, or the stream message its inputRef names (held since the task was accepted). */
  async taskInput (task: TaskAnnouncement): Promise<Uint8Array> {
    if (task.inputRef.length === 0) return task.input
    const message = await this.components.streams?.get(task.inputRef)
    if (message == null) throw new InputNotHeldError(task.inputRef)
    return message.payload
  }

  /**
   * Puts a task input too large to inline into a stream message this node serves over
   * /poi/stream/1/ and returns its msgId, the task's inputRef. A full node appends to its
   * `inputs` channel; a light node holds the message in memory until `serveUntil` (unix ms)
   * plus a slack, each input in a channel of its own (it keeps no channel heads across runs).
   */
  async offerInput (payload: Uint8Array, serveUntil: number): Promise<Uint8Array> {
    if (payload.length > MAX_STREAM_PAYLOAD_BYTES) throw new InputTooLargeForStreamError(payload.length)
    const { streams, keystore } = this.components
    if (streams != null) return (await streams.append(keystore.privateKey, INPUT_CHANNEL, payload)).msgId
    const channel = `${INPUT_CHANNEL}/${randomBytes(8).toString('hex')}`
    const message = await createStreamMessage(keystore.privateKey, channel, 0n, GENESIS_PREV_ID, payload)
    return this.heldInputs!.add(encodeStreamMessage(message), serveUntil + HELD_INPUT_SLACK_MS)
  }

  /** Appends `payload` to this node's own channel `channel` (an operator's outputs). */
  async appendOwn (channel: string, payload: Uint8Array): Promise<void> {
    await this.components.streams?.append(this.components.keystore.privateKey, channel, payload)
  }

  /** Forgets expired copies of other nodes' stream messages now and every STREAM_CACHE_SWEEP_MS. */
  private sweep (): void {
    const streams = this.components.streams
    if (streams == null || this.stopped) return
    const now = Date.now()
    streams.forgetExpired(now)
      .then((n) => {
        for (const entry of this.held.values()) {
          if (entry.copy.expiresAt > now) break
          this.unaccount(entry)
        }
        if (n > 0) log('forgot %d expired stream messages', n)
      })
      .catch((err: Error) => { if (!this.stopped) log.error('forgetting expired stream messages failed: %s', err.message) })
      .finally(() => {
        if (this.stopped) return
        this.sweeper = setTimeout(() => { this.sweep() }, STREAM_CACHE_SWEEP_MS)
        this.sweeper.unref()
      })
  }
}

export function createStreamData (components: StreamDataComponents, init: StreamDataInit = {}): StreamData {
  return new StreamData(components, init)
}
