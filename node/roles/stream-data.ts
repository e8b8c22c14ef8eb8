/**
 * Stream data a node holds for the gossip it forwards (DESIGN §4, §8): a task's input by
 * reference, a result's output by reference. A full node accepts (and so forwards) a message
 * that refers to stream data only once it holds that data, fetched from the peer that
 * forwarded the message, so every hop can fetch from the previous one. Copies of other nodes'
 * messages are forgotten after STREAM_CACHE_RETENTION_MS.
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
import {
  GENESIS_PREV_ID, MAX_STREAM_PAYLOAD_BYTES, PoiError, createStreamMessage, encodeStreamMessage, toHex,
  type TaskAnnouncement
} from '../../protocols/wire/index.js'
import type { StreamStore } from '../../storage/index.js'
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

export interface StreamDataComponents {
  libp2p: StreamLibp2p
  keystore: Pick<Keystore, 'privateKey'>
  /** A full node's stream store; undefined on a light requester. */
  streams?: StreamStore
}

export class StreamData implements Startable {
  /** Inputs a light requester serves while its tasks are live (full nodes use their stream store). */
  readonly heldInputs: MemoryMessageSource | undefined
  /** Fetches in flight, by `${kind}/${ref hex}`: one per reference, however many messages wait on it. */
  private readonly fetches = new Map<string, Promise<void>>()
  private sweeper: NodeJS.Timeout | undefined
  private stopped = false

  constructor (private readonly components: StreamDataComponents) {
    this.heldInputs = components.streams == null ? new MemoryMessageSource() : undefined
  }

  start (): void {
    this.stopped = false
    this.sweep()
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.sweeper)
  }

  /**
   * Makes sure this node's stream store holds a message that gossip refers to (a task's input
   * by msgId, a result's output by payload reference), fetching it from `from`, the peer that
   * forwarded the reference, if not. The fetch checks the bytes against the signed reference,
   * so any peer may serve them. Returns why the data is unavailable, or undefined.
   */
  async hold (kind: 'input' | 'output', ref: Uint8Array, from: string, deadline: number): Promise<string | undefined> {
    const streams = this.components.streams
    if (streams == null) return `a light node does not hold ${kind}s`
    const held = kind === 'input' ? await streams.getBytes(ref) : await streams.getBytesByPayloadRef(ref)
    if (held != null) return undefined
    const key = `${kind}/${toHex(ref)}`
    let pending = this.fetches.get(key)
    if (pending == null) {
      pending = (async () => {
        const timeoutMs = Math.max(1, Math.min(STREAM_REQUEST_TIMEOUT_MS, deadline - Date.now()))
        const peer = peerIdFromString(from)
        const message = kind === 'input'
          ? await fetchStreamMessage(this.components.libp2p, peer, ref, { timeoutMs })
          : (await fetchStreamMessageByPayload(this.components.libp2p, peer, ref, { timeoutMs })).message
        // Another node's channel, of which this node keeps only this message, for a while.
        await streams.put(message, { allowGap: true, expiresAt: Date.now() + STREAM_CACHE_RETENTION_MS })
      })()
      this.fetches.set(key, pending)
      pending.catch(() => {}).finally(() => this.fetches.delete(key))
    }
    try {
      await pending
      return undefined
    } catch (err) {
      return `${kind} 0x${toHex(ref)} is not available from ${from}: ${(err as Error).message}`
    }
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
    streams.forgetExpired()
      .then((n) => { if (n > 0) log('forgot %d expired stream messages', n) })
      .catch((err: Error) => { if (!this.stopped) log.error('forgetting expired stream messages failed: %s', err.message) })
      .finally(() => {
        if (this.stopped) return
        this.sweeper = setTimeout(() => { this.sweep() }, STREAM_CACHE_SWEEP_MS)
        this.sweeper.unref()
      })
  }
}

export function createStreamData (components: StreamDataComponents): StreamData {
  return new StreamData(components)
}
