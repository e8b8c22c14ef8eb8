/**
 * Stream messages (DESIGN §8): channels of signed, hash-linked messages with no fee per
 * message. The chain and tasks hold only a 32-byte reference: `msgId = sha256(canonical
 * encoding of the whole message)`.
 *
 * Author key: the author's libp2p Ed25519 key, not its Ethereum account. Every node and every
 * requester already holds one (it is their peer id) and proves it in each noise handshake;
 * Ed25519 signatures are deterministic, 64 bytes, and verify in tens of microseconds through
 * node:crypto, against about a millisecond for secp256k1 recovery in JS. The signature only
 * guards a channel's integrity (one author, one chain of messages); what a task or a result
 * trusts is the content hash it references, which needs no key at all.
 *
 * A channel has exactly one author: its address is sha256(domain ‖ author key ‖ name), and
 * every message carries the author key and the name, so anyone re-derives the address and a
 * message signed by another key cannot claim the channel.
 *
 * Trust boundary: `decodeStreamMessage` checks structure only; `verifyStreamMessage` checks
 * the author (channel derivation and signature). Links between messages are the store's job.
 */
import { createHash } from 'node:crypto'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import { code as RAW_CODEC } from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 as SHA2_256 } from 'multiformats/hashes/sha2'
import { keccak256 } from 'viem'
import {
  CHANNEL_ADDRESS_BYTES, ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES, MAX_CHANNEL_NAME_BYTES,
  MAX_STREAM_MESSAGE_BYTES, MAX_STREAM_PAYLOAD_BYTES, MSG_ID_BYTES, STREAM_CHANNEL_DOMAIN,
  STREAM_SIGNATURE_DOMAIN, STREAM_VERSION
} from './stream-constants.js'
import { bytesEqual, to0xHex } from './bytes.js'
import {
  defineCodec, isAllZero, ruleBoundedBytes, ruleExactBytes, ruleUint64, ruleVersion, violation,
  WIRE_LENGTH_DELIMITED as L, WIRE_VARINT as V, type FieldViolation
} from './codec.js'
import { PoiError } from './errors.js'
import { StreamMessage } from './stream.pb.js'

export type StreamMessageErrorCode =
  /** A field breaks its rule (length, range, seq 0 without a zero prevId ...). */
  | 'INVALID_FIELD'
  | 'OVERSIZED'
  /** The signature does not verify for the message and its author key. */
  | 'BAD_SIGNATURE'
  /** The channel address is not derived from the author key and name: another author's channel. */
  | 'WRONG_AUTHOR'
  /** Stream messages are signed with Ed25519 keys only. */
  | 'UNSUPPORTED_KEY'

/** A stream message that must not be trusted or sent. */
export class StreamMessageError extends PoiError {
  declare readonly code: StreamMessageErrorCode
  readonly field: string | undefined

  constructor (code: StreamMessageErrorCode, reason: string, field?: string) {
    super(code, `invalid stream message${field === undefined ? '' : ` (${field})`}: ${reason} [${code}]`)
    this.field = field
  }

  /** The error for a broken field rule: OVERSIZED stays OVERSIZED, every other rule is INVALID_FIELD. */
  static of (bad: FieldViolation): StreamMessageError {
    return new StreamMessageError(bad.code === 'OVERSIZED' ? 'OVERSIZED' : 'INVALID_FIELD', bad.reason, bad.field)
  }
}

const utf8 = new TextEncoder()
const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

interface CheckOptions {
  /** false while building the message to sign. */
  signed: boolean
}

function checkFields (msg: StreamMessage, options: CheckOptions): FieldViolation | undefined {
  const bad = ruleVersion(msg.version, STREAM_VERSION) ??
    ruleExactBytes('channel', msg.channel, CHANNEL_ADDRESS_BYTES) ??
    ruleBoundedBytes('channelName', msg.channelName, 1, MAX_CHANNEL_NAME_BYTES) ??
    ruleExactBytes('prevId', msg.prevId, MSG_ID_BYTES) ??
    ruleBoundedBytes('payload', msg.payload, 0, MAX_STREAM_PAYLOAD_BYTES) ??
    ruleExactBytes('author', msg.author, ED25519_PUBLIC_KEY_BYTES) ??
    (options.signed ? ruleExactBytes('authorSig', msg.authorSig, ED25519_SIGNATURE_BYTES) : undefined) ??
    ruleUint64('seq', msg.seq)
  if (bad !== undefined) return bad
  // seq 0 starts the chain at the all-zero id; any later message links to a real sha256, and
  // an all-zero one would let a second "first" message hide in the middle of a channel.
  if (msg.seq === 0n && !isAllZero(msg.prevId)) return violation('INVALID_FIELD', 'prevId', 'the first message (seq 0) must have an all-zero prevId')
  if (msg.seq > 0n && isAllZero(msg.prevId)) return violation('INVALID_FIELD', 'prevId', `message seq ${msg.seq} must link to the id of message ${msg.seq - 1n}, not to zero`)
  try {
    strictUtf8.decode(msg.channelName)
  } catch {
    return violation('INVALID_FIELD', 'channelName', 'is not valid UTF-8')
  }
  return undefined
}

const STREAM_MESSAGE_CODEC = defineCodec<StreamMessage>({
  name: 'StreamMessage',
  maxBytes: MAX_STREAM_MESSAGE_BYTES,
  fields: { version: [1, V], channel: [2, L], channelName: [3, L], seq: [4, V], prevId: [5, L], payload: [6, L], author: [7, L], authorSig: [8, L] },
  proto: StreamMessage,
  check: (msg) => checkFields(msg, { signed: true })
})

/** Decodes a stream message from untrusted bytes; throws DecodeError. Does not verify the author. */
export const decodeStreamMessage: (bytes: Uint8Array) => StreamMessage = STREAM_MESSAGE_CODEC.decode

/** Canonical encoding of a signed message; throws StreamMessageError if peers would reject it. */
export function encodeStreamMessage (msg: StreamMessage): Uint8Array<ArrayBuffer> {
  const bad = checkFields(msg, { signed: true })
  if (bad !== undefined) throw StreamMessageError.of(bad)
  return StreamMessage.encode(msg)
}

/** sha256 of canonical message bytes: the id of the message they encode. */
export function streamMessageIdOfBytes (bytes: Uint8Array): Uint8Array {
  return Uint8Array.from(createHash('sha256').update(bytes).digest())
}

/** The message's 32-byte reference (inputRef of a task, key in every store). */
export function streamMessageId (msg: StreamMessage): Uint8Array {
  return streamMessageIdOfBytes(encodeStreamMessage(msg))
}

/**
 * The msgId as a content id: CIDv1, raw codec, sha2-256 multihash. It names exactly the
 * canonical message bytes (msgId is their sha256), so holders can announce a message with
 * `contentRouting.provide` and fetchers find them with `findProviders`, as for model shards.
 */
export function streamMessageCid (msgId: Uint8Array): CID {
  if (!(msgId instanceof Uint8Array) || msgId.length !== MSG_ID_BYTES) throw new TypeError(`msgId must be ${MSG_ID_BYTES} bytes`)
  return CID.createV1(RAW_CODEC, Digest.create(SHA2_256.code, Uint8Array.from(msgId)))
}

/** The msgId a stream message CID names; throws TypeError for any other kind of CID. */
export function msgIdFromCid (cid: CID): Uint8Array {
  if (cid.version !== 1 || cid.code !== RAW_CODEC || cid.multihash.code !== SHA2_256.code || cid.multihash.digest.length !== MSG_ID_BYTES) {
    throw new TypeError(`${cid.toString()} is not a stream message id (expected CIDv1, raw, sha2-256)`)
  }
  return Uint8Array.from(cid.multihash.digest)
}

/**
 * keccak256 of a payload: the content reference of what a message carries, whoever wrote it.
 * keccak256 because it is the hash of results: the payload reference of a canonical output is
 * its resultHash, so every operator that signs a result names the same output reference.
 * Cost: keccak256 runs in JS (OpenSSL has no Keccak-256), about 50 ms per MiB on the dev box,
 * against about 1 ms for sha256; paid once per stored message.
 */
export function payloadRefOf (payload: Uint8Array): Uint8Array {
  return keccak256(payload, 'bytes')
}

/** Address of `author`'s channel `channelName`; `author` is a raw 32-byte Ed25519 public key. */
export function channelAddressOf (author: Uint8Array, channelName: string | Uint8Array): Uint8Array {
  if (!(author instanceof Uint8Array) || author.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new StreamMessageError('INVALID_FIELD', `author must be a ${ED25519_PUBLIC_KEY_BYTES}-byte raw Ed25519 public key`, 'author')
  }
  const name = typeof channelName === 'string' ? utf8.encode(channelName) : channelName
  // The key has a fixed length, so author ‖ name has one split and needs no length prefix.
  return Uint8Array.from(createHash('sha256').update(STREAM_CHANNEL_DOMAIN).update(author).update(name).digest())
}

/** What the author signs: the domain tag, then the canonical encoding without authorSig. */
function signingBytes (msg: StreamMessage): Uint8Array {
  const unsigned = StreamMessage.encode({ ...msg, authorSig: new Uint8Array(0) })
  const domain = utf8.encode(STREAM_SIGNATURE_DOMAIN)
  const out = new Uint8Array(domain.length + unsigned.length)
  out.set(domain, 0)
  out.set(unsigned, domain.length)
  return out
}

/**
 * Builds and signs message `seq` of the author's channel `channelName`. `prevId` is the id of
 * message seq-1 (GENESIS_PREV_ID for seq 0). Throws StreamMessageError for a non-Ed25519 key
 * or a field peers would reject (payload over MAX_STREAM_PAYLOAD_BYTES, name too long).
 */
export async function createStreamMessage (privateKey: PrivateKey, channelName: string, seq: bigint | number, prevId: Uint8Array, payload: Uint8Array): Promise<StreamMessage> {
  if (privateKey.type !== 'Ed25519') {
    throw new StreamMessageError('UNSUPPORTED_KEY', `stream messages are signed with an Ed25519 key (the libp2p peer key), got a ${privateKey.type} key`)
  }
  const author = privateKey.publicKey.raw
  const nameBytes = utf8.encode(channelName)
  const unsigned: StreamMessage = {
    version: STREAM_VERSION,
    channel: Uint8Array.from(channelAddressOf(author, nameBytes)),
    channelName: nameBytes,
    seq: BigInt(seq),
    prevId: Uint8Array.from(prevId),
    payload: Uint8Array.from(payload),
    author: Uint8Array.from(author),
    authorSig: new Uint8Array(0)
  }
  const bad = checkFields(unsigned, { signed: false })
  if (bad !== undefined) throw StreamMessageError.of(bad)
  const authorSig = await privateKey.sign(signingBytes(unsigned))
  return { ...unsigned, authorSig: Uint8Array.from(authorSig) }
}

/**
 * Checks that `msg` was written by the owner of its channel: field lengths, channel address
 * derived from the author key and name, and the Ed25519 signature. Throws StreamMessageError
 * (WRONG_AUTHOR, BAD_SIGNATURE, INVALID_FIELD, OVERSIZED); resolves when the message is authentic.
 */
export async function verifyStreamMessage (msg: StreamMessage): Promise<void> {
  const bad = checkFields(msg, { signed: true })
  if (bad !== undefined) throw StreamMessageError.of(bad)
  const expected = channelAddressOf(msg.author, msg.channelName)
  if (!bytesEqual(expected, msg.channel)) {
    throw new StreamMessageError('WRONG_AUTHOR',
      `channel ${to0xHex(msg.channel)} is not the channel "${strictUtf8.decode(msg.channelName)}" of author ${to0xHex(msg.author)} (that one is ${to0xHex(expected)}): a channel accepts messages from its own author only`)
  }
  let valid: boolean
  try {
    valid = await publicKeyFromRaw(msg.author).verify(signingBytes(msg), msg.authorSig)
  } catch (err) {
    throw new StreamMessageError('BAD_SIGNATURE', `author key ${to0xHex(msg.author)} or signature is unusable: ${(err as Error).message}`)
  }
  if (!valid) {
    throw new StreamMessageError('BAD_SIGNATURE', `signature of message ${msg.seq} in channel ${to0xHex(msg.channel)} does not verify for author ${to0xHex(msg.author)}`)
  }
}

/** Channel name of a verified or decoded message, as text. */
export function channelNameOf (msg: StreamMessage): string {
  return strictUtf8.decode(msg.channelName)
}
