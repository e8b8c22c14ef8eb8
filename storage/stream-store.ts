import type { PrivateKey } from '@libp2p/interface'
import {
  channelAddressOf, createStreamMessage, decodeStreamMessage, encodeStreamMessage, GENESIS_PREV_ID,
  payloadRefOf, PoiError, StreamMessageError, streamMessageIdOfBytes, verifyStreamMessage, bytesEqual, to0xHex, toHex,
  type StreamMessage
} from '../protocols/wire/index.js'
import type { NodeStore, StoreArea } from './node-store.js'

/**
 * Stream messages of every channel this node writes or keeps (DESIGN §8), in the `streams`
 * area of a NodeStore.
 *
 * Key layout (inside the area):
 *   msg/<msgId>                       canonical message bytes (sha256 of them = msgId)
 *   seq/<channel>/<seq, 20 digits>    msgId of the message at that position
 *   head/<channel>                    seq (8 bytes big-endian) ‖ msgId of the highest stored message
 *   payload/<payloadRef>/<msgId>      empty: index by keccak256(payload), to resolve output references
 *   expiry/<unix ms, 15 digits>/<msgId>  channel ‖ seq ‖ size (4 bytes) ‖ peer id (utf-8) of a cached
 *                                     copy that may be forgotten then; size and peer (the one it is held
 *                                     for) are absent in entries written before they were recorded
 *
 * Invariants, checked by put: every stored message is authentic (its author's key signed it
 * for its own channel); one message per (channel, seq), the first one kept; and any two stored
 * neighbours (seq-1, seq) of a channel are linked (prevId of the later = msgId of the earlier).
 * Reads decode strictly anyway (cheap next to the disk read), so a corrupted file shows up as
 * an error instead of a wrong message.
 */

export type StreamStoreErrorCode =
  /** prevId is not the stored message at seq-1, or the stored message at seq+1 does not link to this one. */
  | 'BROKEN_LINK'
  /** The message at seq-1 is not stored, so the link cannot be checked (put with allowGap to keep it anyway). */
  | 'MISSING_PREDECESSOR'
  /** The channel already holds a different message at this seq: its author forked the channel. */
  | 'EQUIVOCATION'

/** A put refused for a reason of the channel, not of the message alone (that is StreamMessageError). */
export class StreamStoreError extends PoiError {
  declare readonly code: StreamStoreErrorCode
  /** The channel address, hex without a prefix. */
  readonly channel: string
  readonly seq: bigint

  constructor (code: StreamStoreErrorCode, channel: Uint8Array, seq: bigint, reason: string) {
    super(code, `stream ${to0xHex(channel)} message ${seq}: ${reason} [${code}]`)
    this.channel = toHex(channel)
    this.seq = seq
  }
}

export interface StreamPutOptions {
  /**
   * Keep a message whose predecessor is not stored (default false). For caching a message
   * fetched by reference (a task's input) without its whole channel; links are still checked
   * against any neighbour that is stored, now or later.
   */
  allowGap?: boolean
  /**
   * Unix ms after which the message may be forgotten (forgetExpired): for copies of other
   * nodes' messages kept to serve them for a while (task inputs, outputs by reference).
   * Default: kept for good. A message already stored keeps what it was stored with.
   */
  expiresAt?: number
  /**
   * With expiresAt: the peer whose gossip made this node keep the copy, recorded so the node can
   * bound what it holds for each peer (listHeldCopies).
   */
  heldFor?: string
}

/** A cached copy of another node's message (stored with expiresAt), as listHeldCopies returns it. */
export interface HeldCopy {
  msgId: Uint8Array
  expiresAt: number
  /** Bytes of the message (0 for copies stored before sizes were recorded). */
  size: number
  /** The peer it is held for ('' for copies stored before peers were recorded). */
  heldFor: string
}

export interface StreamPutResult {
  msgId: Uint8Array
  /** false: the same message was already stored (a put is idempotent). */
  stored: boolean
}

export interface StreamHead {
  seq: bigint
  msgId: Uint8Array
}

/** Name of the NodeStore area holding the streams. */
export const STREAM_STORE_AREA = 'streams'
/** Decimal digits of 2^64 - 1, so seq keys sort numerically. */
const SEQ_KEY_DIGITS = 20
const HEAD_SEQ_BYTES = 8
/** Decimal digits of unix ms up to the year 33658, so expiry keys sort by time. */
const EXPIRY_KEY_DIGITS = 15
const CHANNEL_BYTES = 32
const PLACE_BYTES = CHANNEL_BYTES + HEAD_SEQ_BYTES
const SIZE_BYTES = 4

const seqKey = (channel: Uint8Array, seq: bigint): string => `seq/${toHex(channel)}/${seq.toString().padStart(SEQ_KEY_DIGITS, '0')}`
const expiryKey = (at: number, msgId: Uint8Array): string => `expiry/${String(Math.max(0, Math.floor(at))).padStart(EXPIRY_KEY_DIGITS, '0')}/${toHex(msgId)}`

function encodeHead (head: StreamHead): Uint8Array {
  const out = new Uint8Array(HEAD_SEQ_BYTES + head.msgId.length)
  new DataView(out.buffer).setBigUint64(0, head.seq)
  out.set(head.msgId, HEAD_SEQ_BYTES)
  return out
}

function decodeHead (bytes: Uint8Array): StreamHead {
  return { seq: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0), msgId: bytes.slice(HEAD_SEQ_BYTES) }
}

/** Where a cached copy sits and whom it is held for: channel address ‖ seq (8 bytes big-endian) ‖ size (4 bytes) ‖ peer id. */
function encodePlace (channel: Uint8Array, seq: bigint, size: number, heldFor: string): Uint8Array {
  const peer = new TextEncoder().encode(heldFor)
  const out = new Uint8Array(PLACE_BYTES + SIZE_BYTES + peer.length)
  out.set(channel, 0)
  const view = new DataView(out.buffer)
  view.setBigUint64(CHANNEL_BYTES, seq)
  view.setUint32(PLACE_BYTES, size)
  out.set(peer, PLACE_BYTES + SIZE_BYTES)
  return out
}

function decodePlace (bytes: Uint8Array): { channel: Uint8Array, seq: bigint, size: number, heldFor: string } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const recorded = bytes.length >= PLACE_BYTES + SIZE_BYTES
  return {
    channel: bytes.slice(0, CHANNEL_BYTES),
    seq: view.getBigUint64(CHANNEL_BYTES),
    size: recorded ? view.getUint32(PLACE_BYTES) : 0,
    heldFor: recorded ? new TextDecoder().decode(bytes.subarray(PLACE_BYTES + SIZE_BYTES)) : ''
  }
}

function expiryOfKey (key: string): number {
  return Number(key.slice('expiry/'.length, 'expiry/'.length + EXPIRY_KEY_DIGITS))
}

export class StreamStore {
  private readonly area: StoreArea
  /** Per channel, the tail of the queue of puts: check-then-write must not interleave. */
  private readonly locks = new Map<string, Promise<unknown>>()

  constructor (store: NodeStore) {
    this.area = store.area(STREAM_STORE_AREA)
  }

  /**
   * Verifies and stores `msg`. Throws StreamMessageError (BAD_SIGNATURE, WRONG_AUTHOR, a bad
   * field) or StreamStoreError (BROKEN_LINK, MISSING_PREDECESSOR, EQUIVOCATION); storing the
   * same message twice is not an error (`stored: false`).
   */
  async put (msg: StreamMessage, options: StreamPutOptions = {}): Promise<StreamPutResult> {
    const bytes = encodeStreamMessage(msg)
    await verifyStreamMessage(msg)
    return await this.locked(msg.channel, async () => await this.putVerified(msg, bytes, options))
  }

  /**
   * Writes `payload` as the next message of this node's channel `channelName` (seq 0 if the
   * channel is empty) and returns it with its id: the reference to put in a task (inputRef).
   */
  async append (privateKey: PrivateKey, channelName: string, payload: Uint8Array): Promise<{ message: StreamMessage, msgId: Uint8Array }> {
    if (privateKey.type !== 'Ed25519') {
      throw new StreamMessageError('UNSUPPORTED_KEY', `stream messages are signed with an Ed25519 key (the libp2p peer key), got a ${privateKey.type} key`)
    }
    // The address is derived before signing so the lock covers reading the head and writing.
    const channel = channelAddressOf(privateKey.publicKey.raw, channelName)
    return await this.locked(channel, async () => {
      const head = await this.head(channel)
      const message = head === undefined
        ? await createStreamMessage(privateKey, channelName, 0n, GENESIS_PREV_ID, payload)
        : await createStreamMessage(privateKey, channelName, head.seq + 1n, head.msgId, payload)
      const { msgId } = await this.putVerified(message, encodeStreamMessage(message), {})
      return { message, msgId }
    })
  }

  async get (msgId: Uint8Array): Promise<StreamMessage | undefined> {
    const bytes = await this.getBytes(msgId)
    return bytes === undefined ? undefined : decodeStreamMessage(bytes)
  }

  /** Canonical bytes of message `msgId`, as served over /poi/stream/1/. */
  async getBytes (msgId: Uint8Array): Promise<Uint8Array | undefined> {
    return await this.area.get(`msg/${toHex(msgId)}`)
  }

  /** Some stored message whose payload has keccak256 `payloadRef` (the first by msgId). */
  async getByPayloadRef (payloadRef: Uint8Array): Promise<StreamMessage | undefined> {
    const bytes = await this.getBytesByPayloadRef(payloadRef)
    return bytes === undefined ? undefined : decodeStreamMessage(bytes)
  }

  async getBytesByPayloadRef (payloadRef: Uint8Array): Promise<Uint8Array | undefined> {
    const prefix = `payload/${toHex(payloadRef)}/`
    for (const [key] of await this.area.entries(prefix)) {
      const bytes = await this.area.get(`msg/${key.slice(prefix.length)}`)
      if (bytes !== undefined) return bytes
    }
    return undefined
  }

  /** How many messages this store holds and their bytes (their canonical encodings): what GET /metrics reports. */
  async holdings (): Promise<{ messages: number, bytes: number }> {
    const { entries, bytes } = await this.area.size('msg/')
    return { messages: entries, bytes }
  }

  /** The highest stored message of `channel`, if any. */
  async head (channel: Uint8Array): Promise<StreamHead | undefined> {
    const bytes = await this.area.get(`head/${toHex(channel)}`)
    return bytes === undefined ? undefined : decodeHead(bytes)
  }

  /** Stored messages of `channel` in seq order (gaps possible only where allowGap was used). */
  async list (channel: Uint8Array): Promise<StreamMessage[]> {
    const out: StreamMessage[] = []
    for (const [, msgId] of await this.area.entries(`seq/${toHex(channel)}/`)) {
      const message = await this.get(msgId)
      if (message !== undefined) out.push(message)
    }
    return out
  }

  private async putVerified (msg: StreamMessage, bytes: Uint8Array, options: StreamPutOptions): Promise<StreamPutResult> {
    const msgId = streamMessageIdOfBytes(bytes)
    const { channel, seq } = msg
    const existing = await this.area.get(seqKey(channel, seq))
    if (existing !== undefined) {
      if (bytesEqual(existing, msgId)) return { msgId, stored: false }
      throw new StreamStoreError('EQUIVOCATION', channel, seq,
        `the channel already holds message ${to0xHex(existing)} at this position, refusing ${to0xHex(msgId)}: its author signed two different messages for one seq`)
    }
    if (seq > 0n) {
      const prev = await this.area.get(seqKey(channel, seq - 1n))
      if (prev === undefined && options.allowGap !== true) {
        throw new StreamStoreError('MISSING_PREDECESSOR', channel, seq,
          `message ${seq - 1n} of the channel is not stored, so the link to ${to0xHex(msg.prevId)} cannot be checked; store the channel in order (or pass allowGap to cache a lone message)`)
      }
      if (prev !== undefined && !bytesEqual(prev, msg.prevId)) {
        throw new StreamStoreError('BROKEN_LINK', channel, seq, `prevId ${to0xHex(msg.prevId)} is not the stored message ${seq - 1n} (${to0xHex(prev)})`)
      }
    }
    const nextId = await this.area.get(seqKey(channel, seq + 1n))
    if (nextId !== undefined) {
      const next = await this.get(nextId)
      if (next !== undefined && !bytesEqual(next.prevId, msgId)) {
        throw new StreamStoreError('BROKEN_LINK', channel, seq, `the stored message ${seq + 1n} links to ${to0xHex(next.prevId)}, not to this message ${to0xHex(msgId)}`)
      }
    }
    const entries: Array<[string, Uint8Array]> = [
      [`msg/${toHex(msgId)}`, bytes],
      [seqKey(channel, seq), msgId],
      [`payload/${toHex(payloadRefOf(msg.payload))}/${toHex(msgId)}`, new Uint8Array(0)]
    ]
    const head = await this.head(channel)
    if (head === undefined || seq > head.seq) entries.push([`head/${toHex(channel)}`, encodeHead({ seq, msgId })])
    if (options.expiresAt !== undefined) entries.push([expiryKey(options.expiresAt, msgId), encodePlace(channel, seq, bytes.length, options.heldFor ?? '')])
    await this.area.put(entries)
    return { msgId, stored: true }
  }

  /**
   * Forgets every message stored with an `expiresAt` at or before `now`: its bytes, its
   * place in its channel and its payload index; the channel's head falls back to the highest
   * message still stored. Returns how many were forgotten.
   */
  async forgetExpired (now: number = Date.now()): Promise<number> {
    const due: Array<{ key: string, msgId: Uint8Array, channel: Uint8Array, seq: bigint }> = []
    const upTo = expiryKey(now, new Uint8Array(0))
    for (const [key, value] of await this.area.entries('expiry/')) {
      if (key.slice(0, upTo.length) > upTo) break
      const { channel, seq } = decodePlace(value)
      due.push({ key, msgId: Buffer.from(key.slice(key.lastIndexOf('/') + 1), 'hex'), channel, seq })
    }
    for (const d of due) await this.locked(d.channel, async () => { await this.forget(d) })
    return due.length
  }

  /** Every cached copy (stored with expiresAt), soonest to expire first. */
  async listHeldCopies (): Promise<HeldCopy[]> {
    const out: HeldCopy[] = []
    for (const [key, value] of await this.area.entries('expiry/')) {
      const { size, heldFor } = decodePlace(value)
      out.push({ msgId: Buffer.from(key.slice(key.lastIndexOf('/') + 1), 'hex'), expiresAt: expiryOfKey(key), size, heldFor })
    }
    return out
  }

  /**
   * Forgets one cached copy before it expires (a bound on what a node holds for others was
   * reached), exactly as forgetExpired would. Returns false if it was not held (any more).
   */
  async forgetHeldCopy (copy: Pick<HeldCopy, 'msgId' | 'expiresAt'>): Promise<boolean> {
    const key = expiryKey(copy.expiresAt, copy.msgId)
    const value = await this.area.get(key)
    if (value === undefined) return false
    const { channel, seq } = decodePlace(value)
    await this.locked(channel, async () => { await this.forget({ key, msgId: copy.msgId, channel, seq }) })
    return true
  }

  private async forget ({ key, msgId, channel, seq }: { key: string, msgId: Uint8Array, channel: Uint8Array, seq: bigint }): Promise<void> {
    const bytes = await this.getBytes(msgId)
    const doomed = [key]
    if (bytes !== undefined) {
      doomed.push(`msg/${toHex(msgId)}`, `payload/${toHex(payloadRefOf(decodeStreamMessage(bytes).payload))}/${toHex(msgId)}`)
    }
    const atSeq = await this.area.get(seqKey(channel, seq))
    if (atSeq !== undefined && bytesEqual(atSeq, msgId)) doomed.push(seqKey(channel, seq))
    await this.area.del(doomed)
    // Not in the same batch as the delete (the area has no mixed batches): a crash here leaves
    // the head naming a forgotten message, which only orders later puts of this channel.
    const head = await this.head(channel)
    if (head === undefined || !bytesEqual(head.msgId, msgId)) return
    const rest = await this.area.entries(`seq/${toHex(channel)}/`)
    const last = rest.at(-1)
    if (last === undefined) {
      await this.area.del([`head/${toHex(channel)}`])
    } else {
      await this.area.put([[`head/${toHex(channel)}`, encodeHead({ seq: BigInt(last[0].slice(last[0].lastIndexOf('/') + 1)), msgId: last[1] })]])
    }
  }

  private async locked<T> (channel: Uint8Array, fn: () => Promise<T>): Promise<T> {
    const key = toHex(channel)
    const before = this.locks.get(key) ?? Promise.resolve()
    const run = before.then(fn, fn)
    const tail = run.catch(() => undefined)
    this.locks.set(key, tail)
    try {
      return await run
    } finally {
      // Forget the queue once nothing is waiting behind this put, so the map stays small.
      if (this.locks.get(key) === tail) this.locks.delete(key)
    }
  }
}
