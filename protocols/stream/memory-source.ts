import { payloadRefOf, streamMessageIdOfBytes, decodeStreamMessage, toHex } from '../wire/index.js'
import type { StreamMessageSource } from './stream-protocol.js'

interface Held {
  bytes: Uint8Array
  payloadRef: string
  expiresAt: number
}

/**
 * Stream messages held in memory until a given time: what a light requester (no storage)
 * serves over /poi/stream/1/ while the task that references them is live. Only messages this
 * node built itself go in, so nothing here is verified again.
 */
export class MemoryMessageSource implements StreamMessageSource {
  private readonly byId = new Map<string, Held>()

  /** Holds canonical message `bytes` until `expiresAt` (unix ms) and returns its msgId. */
  add (bytes: Uint8Array, expiresAt: number): Uint8Array {
    this.sweep()
    const msgId = streamMessageIdOfBytes(bytes)
    const payloadRef = toHex(payloadRefOf(decodeStreamMessage(bytes).payload))
    this.byId.set(toHex(msgId), { bytes, payloadRef, expiresAt })
    return msgId
  }

  get size (): number {
    this.sweep()
    return this.byId.size
  }

  async getBytes (msgId: Uint8Array): Promise<Uint8Array | undefined> {
    this.sweep()
    return this.byId.get(toHex(msgId))?.bytes
  }

  async getBytesByPayloadRef (payloadRef: Uint8Array): Promise<Uint8Array | undefined> {
    this.sweep()
    const ref = toHex(payloadRef)
    for (const held of this.byId.values()) if (held.payloadRef === ref) return held.bytes
    return undefined
  }

  /** Forgets expired messages; called on every access, so no timer keeps the process alive. */
  private sweep (): void {
    const now = Date.now()
    for (const [id, held] of this.byId) if (held.expiresAt <= now) this.byId.delete(id)
  }
}
