/**
 * Streams (DESIGN §8): signed, hash-linked channel messages, their store, and /poi/stream/1/
 * between real libp2p nodes on 127.0.0.1 with real LevelDB stores.
 */
import { strict as assert } from 'node:assert'
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import type { PoiLibp2p } from '../node/p2p.js'
import {
  fetchStreamMessage, fetchStreamMessageByPayload, MAX_STREAM_RESPONSE_BYTES, STREAM_PROTOCOL,
  STREAM_STATUS, StreamServer, encodeStreamResponse
} from '../protocols/stream/index.js'
import { openTempStore, rejectsExchange, startExchangePeers, type ExchangePeers, type RogueAnswer, type TempStore } from './helpers/exchange-peers.js'
import {
  channelAddressOf, createStreamMessage, decodeStreamMessage, encodeStreamMessage, GENESIS_PREV_ID,
  MAX_STREAM_PAYLOAD_BYTES, DecodeError, payloadRefOf, STREAM_VERSION, StreamMessageError,
  streamMessageId, verifyStreamMessage, msgIdFromCid, streamMessageCid, toHex, type StreamMessage
} from '../protocols/wire/index.js'
import { NodeStore, StreamStore, StreamStoreError } from '../storage/index.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const text = (s: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(s)
/** Messages are equal when their canonical encodings are (stores and streams hand back Buffer views). */
const sameMessage = (a: StreamMessage | undefined, b: StreamMessage): void => {
  assert.ok(a !== undefined, 'message missing')
  assert.equal(hex(encodeStreamMessage(a)), hex(encodeStreamMessage(b)))
}
const sha256 = (b: Uint8Array): Uint8Array => Uint8Array.from(createHash('sha256').update(b).digest())
/** Short limit for the tests that wait for a peer that never answers. */
const SHORT_TIMEOUT_MS = 400

/** A channel of `n` messages written by `key`, built by hand (not through a store). */
async function channelOf (key: Ed25519PrivateKey, name: string, n: number): Promise<StreamMessage[]> {
  const out: StreamMessage[] = []
  let prev = GENESIS_PREV_ID
  for (let seq = 0; seq < n; seq++) {
    const msg = await createStreamMessage(key, name, seq, prev, text(`${name} #${seq}`))
    out.push(msg)
    prev = streamMessageId(msg)
  }
  return out
}

async function rejects<E extends Error> (p: Promise<unknown>, type: new (...args: any[]) => E, code: string): Promise<E> {
  try {
    await p
  } catch (err) {
    assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`)
    assert.equal((err as E & { code: string }).code, code, (err as Error).message)
    return err as E
  }
  assert.fail(`expected ${type.name} [${code}], nothing was thrown`)
}

describe('streams: messages', () => {
  let alice: Ed25519PrivateKey
  let mallory: Ed25519PrivateKey
  before(async () => {
    alice = await generateKeyPair('Ed25519')
    mallory = await generateKeyPair('Ed25519')
  })

  it('signs, encodes canonically and verifies; msgId is the sha256 of the encoding', async () => {
    const msg = await createStreamMessage(alice, 'inputs', 0n, GENESIS_PREV_ID, text('hello'))
    await verifyStreamMessage(msg)
    const bytes = encodeStreamMessage(msg)
    assert.equal(hex(streamMessageId(msg)), hex(sha256(bytes)))
    const decoded = decodeStreamMessage(bytes)
    sameMessage(decoded, msg)
    assert.equal(hex(msg.channel), hex(channelAddressOf(alice.publicKey.raw, 'inputs')))
    // the msgId is a sha2-256 content id of the bytes, so the DHT can announce messages like shards
    const cid = streamMessageCid(streamMessageId(msg))
    assert.equal(hex(cid.multihash.digest), hex(sha256(bytes)))
    assert.equal(hex(msgIdFromCid(cid)), hex(streamMessageId(msg)))
    // one author per channel: the same name under another key is another channel
    assert.notEqual(hex(msg.channel), hex(channelAddressOf(mallory.publicKey.raw, 'inputs')))
  })

  it('rejects non-canonical, unknown-version and oversized bytes', async () => {
    const bytes = encodeStreamMessage(await createStreamMessage(alice, 'inputs', 0n, GENESIS_PREV_ID, text('x')))
    const trailing = new Uint8Array([...bytes, 0x08, 0x01])
    assert.throws(() => decodeStreamMessage(trailing), (err: unknown) => err instanceof DecodeError && err.code === 'NON_CANONICAL')
    const v2 = Uint8Array.from(bytes)
    assert.equal(v2[0], 0x08) // field 1, varint
    v2[1] = 2
    assert.throws(() => decodeStreamMessage(v2), (err: unknown) => err instanceof DecodeError && err.code === 'UNKNOWN_VERSION')
    assert.throws(() => decodeStreamMessage(new Uint8Array(MAX_STREAM_PAYLOAD_BYTES + 2048)), (err: unknown) => err instanceof DecodeError && err.code === 'OVERSIZED')
    assert.throws(() => decodeStreamMessage(Uint8Array.from([0x0b, 0x01])), (err: unknown) => err instanceof DecodeError && err.code === 'MALFORMED')
    await rejects(createStreamMessage(alice, 'inputs', 0n, GENESIS_PREV_ID, new Uint8Array(MAX_STREAM_PAYLOAD_BYTES + 1)), StreamMessageError, 'OVERSIZED')
    await rejects(createStreamMessage(alice, 'inputs', 1n, GENESIS_PREV_ID, text('x')), StreamMessageError, 'INVALID_FIELD')
    await rejects(createStreamMessage(await generateKeyPair('secp256k1'), 'inputs', 0n, GENESIS_PREV_ID, text('x')), StreamMessageError, 'UNSUPPORTED_KEY')
  })

  it('refuses a tampered payload (bad signature) and a message in another author\'s channel', async () => {
    const msg = await createStreamMessage(alice, 'inputs', 0n, GENESIS_PREV_ID, text('pay 1'))
    await rejects(verifyStreamMessage({ ...msg, payload: text('pay 9') }), StreamMessageError, 'BAD_SIGNATURE')
    // Mallory signs a message claiming Alice's channel: the address does not derive from her key
    const forged = await createStreamMessage(mallory, 'inputs', 0n, GENESIS_PREV_ID, text('pay 9'))
    await rejects(verifyStreamMessage({ ...forged, channel: msg.channel }), StreamMessageError, 'WRONG_AUTHOR')
  })
})

describe('streams: StreamStore', () => {
  let dir: string
  let store: NodeStore
  let streams: StreamStore
  let alice: Ed25519PrivateKey
  let mallory: Ed25519PrivateKey

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poi-streams-'))
    store = await NodeStore.open(dir)
    streams = new StreamStore(store)
    alice = await generateKeyPair('Ed25519')
    mallory = await generateKeyPair('Ed25519')
  })
  afterEach(async () => {
    await store.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('appends a linked channel and reads it back by id, head and list', async () => {
    const written = []
    for (let i = 0; i < 5; i++) written.push(await streams.append(alice, 'inputs', text(`input ${i}`)))
    const channel = written[0].message.channel
    assert.equal(written[0].message.seq, 0n)
    for (let i = 1; i < 5; i++) assert.equal(hex(written[i].message.prevId), hex(written[i - 1].msgId))
    const head = await streams.head(channel)
    assert.equal(head?.seq, 4n)
    assert.equal(hex(head?.msgId ?? new Uint8Array()), hex(written[4].msgId))
    const list = await streams.list(channel)
    assert.deepEqual(list.map(m => new TextDecoder().decode(m.payload)), ['input 0', 'input 1', 'input 2', 'input 3', 'input 4'])
    sameMessage(await streams.get(written[2].msgId), written[2].message)
    sameMessage(await streams.getByPayloadRef(payloadRefOf(text('input 3'))), written[3].message)
    assert.equal(await streams.get(new Uint8Array(32).fill(9)), undefined)
    // survives a reopen
    await store.close()
    store = await NodeStore.open(dir)
    streams = new StreamStore(store)
    assert.equal((await streams.head(channel))?.seq, 4n)
  })

  it('serialises concurrent appends into one chain', async () => {
    const written = await Promise.all([0, 1, 2, 3].map(async i => await streams.append(alice, 'outputs', text(`o${i}`))))
    assert.deepEqual(written.map(w => w.message.seq).sort(), [0n, 1n, 2n, 3n])
    assert.equal((await streams.list(written[0].message.channel)).length, 4)
  })

  it('is idempotent, keeps the first of two messages at one seq, refuses broken links', async () => {
    const [m0, m1, m2] = await channelOf(alice, 'inputs', 3)
    assert.equal((await streams.put(m0)).stored, true)
    assert.equal((await streams.put(m0)).stored, false)
    await streams.put(m1)

    const fork = await createStreamMessage(alice, 'inputs', 1n, streamMessageId(m0), text('other'))
    await rejects(streams.put(fork), StreamStoreError, 'EQUIVOCATION')
    sameMessage(await streams.get(streamMessageId(m1)), m1)

    const wrongLink = await createStreamMessage(alice, 'inputs', 2n, streamMessageId(fork), text('x'))
    await rejects(streams.put(wrongLink), StreamStoreError, 'BROKEN_LINK')
    await streams.put(m2)
    assert.equal((await streams.head(m0.channel))?.seq, 2n)
  })

  it('refuses a message whose predecessor is missing unless caching with allowGap, and still checks links later', async () => {
    const [m0, m1, m2] = await channelOf(alice, 'inputs', 3)
    await rejects(streams.put(m2), StreamStoreError, 'MISSING_PREDECESSOR')
    assert.equal((await streams.put(m2, { allowGap: true })).stored, true)
    // a seq-1 message that m2 does not link to cannot be slipped in under it
    const other1 = await createStreamMessage(alice, 'inputs', 1n, streamMessageId(m0), text('not m1'))
    await streams.put(m0)
    await rejects(streams.put(other1), StreamStoreError, 'BROKEN_LINK')
    await streams.put(m1)
    assert.equal((await streams.list(m0.channel)).length, 3)
  })

  it('forgets cached copies once they expire, keeping what has no expiry and moving the head back', async () => {
    const [m0, m1, m2] = await channelOf(alice, 'inputs', 3)
    const now = Date.now()
    await streams.put(m0)
    await streams.put(m1, { expiresAt: now + 60_000 })
    await streams.put(m2, { expiresAt: now - 1 })
    const own = await streams.append(mallory, 'outputs', text('kept for good'))
    assert.equal(await streams.forgetExpired(now), 1)
    assert.equal(await streams.get(streamMessageId(m2)), undefined)
    assert.equal(await streams.getByPayloadRef(payloadRefOf(m2.payload)), undefined)
    assert.equal((await streams.head(m0.channel))?.seq, 1n)
    assert.equal((await streams.list(m0.channel)).length, 2)
    assert.ok(await streams.get(own.msgId) != null)
    // later, the other copy goes too; the message without expiry stays
    assert.equal(await streams.forgetExpired(now + 60_000), 1)
    assert.deepEqual((await streams.list(m0.channel)).map(m => m.seq), [0n])
    assert.equal((await streams.head(m0.channel))?.seq, 0n)
    assert.equal(await streams.forgetExpired(now + 120_000), 0)
    // a forgotten message can be stored again (fetched anew)
    assert.equal((await streams.put(m2, { allowGap: true })).stored, true)
  })

  it('lists cached copies with their size and the peer they are held for, and forgets one on demand (the bound on what a node holds for others)', async () => {
    const [m0, m1] = await channelOf(alice, 'inputs', 2)
    const now = Date.now()
    await streams.put(m0)
    await streams.put(m1, { expiresAt: now + 60_000, heldFor: 'peer-a' })
    const own = await streams.append(mallory, 'outputs', text('kept for good'))
    const held = await streams.listHeldCopies()
    assert.equal(held.length, 1)
    assert.equal(toHex(held[0].msgId), toHex(streamMessageId(m1)))
    assert.deepEqual([held[0].expiresAt, held[0].size, held[0].heldFor], [now + 60_000, encodeStreamMessage(m1).length, 'peer-a'])
    assert.equal(await streams.forgetHeldCopy(held[0]), true)
    assert.equal(await streams.get(streamMessageId(m1)), undefined)
    assert.equal((await streams.head(m0.channel))?.seq, 0n)
    assert.equal(await streams.forgetHeldCopy(held[0]), false)
    assert.deepEqual(await streams.listHeldCopies(), [])
    assert.ok(await streams.get(own.msgId) != null)
  })

  it('refuses a bad signature and a wrong author', async () => {
    const [m0] = await channelOf(alice, 'inputs', 1)
    await rejects(streams.put({ ...m0, payload: text('tampered') }), StreamMessageError, 'BAD_SIGNATURE')
    const forged = await createStreamMessage(mallory, 'inputs', 0n, GENESIS_PREV_ID, text('mine now'))
    await rejects(streams.put({ ...forged, channel: m0.channel }), StreamMessageError, 'WRONG_AUTHOR')
    assert.equal(await streams.head(m0.channel), undefined)
  })
})

describe('streams: /poi/stream/1/ between libp2p nodes', function () {
  let streams: StreamStore
  let server: PoiLibp2p
  let client: PoiLibp2p
  let rogue: PoiLibp2p
  let peers: ExchangePeers | undefined
  let temp: TempStore | undefined
  let streamServer: StreamServer
  let author: Ed25519PrivateKey
  let channel: StreamMessage[]
  /** What the rogue node does with a request (see RogueAnswer). */
  let rogueAnswer: RogueAnswer = { silent: true }

  before(async () => {
    temp = await openTempStore('poi-streams-net-')
    streams = temp.streams
    peers = await startExchangePeers(STREAM_PROTOCOL, () => rogueAnswer)
    ;({ server, client, rogue } = peers)
    streamServer = new StreamServer({ libp2p: server, messages: streams })
    await streamServer.start()
    author = await generateKeyPair('Ed25519')
    channel = []
    for (let i = 0; i < 4; i++) channel.push((await streams.append(author, 'inputs', text(`served ${i}`))).message)
  })

  after(async () => {
    await streamServer?.stop()
    await peers?.stop()
    await temp?.close()
  })

  it('serves every message of a channel; fetched messages verify and link up', async () => {
    let prev = GENESIS_PREV_ID
    for (const msg of channel) {
      const msgId = streamMessageId(msg)
      const fetched = await fetchStreamMessage(client, server.peerId, msgId)
      sameMessage(fetched, msg)
      assert.equal(hex(fetched.prevId), hex(prev))
      prev = msgId
    }
    // a message larger than the inline limit of a task travels in one exchange
    const big = await streams.append(author, 'inputs', new Uint8Array(300 * 1024).fill(7))
    const fetched = await fetchStreamMessage(client, server.peerId, big.msgId)
    assert.equal(fetched.payload.length, 300 * 1024)
  })

  it('resolves a payload reference to a verified message', async () => {
    const { message, msgId } = await fetchStreamMessageByPayload(client, server.peerId, payloadRefOf(text('served 2')))
    sameMessage(message, channel[2])
    assert.equal(hex(msgId), hex(streamMessageId(channel[2])))
    await rejectsExchange(fetchStreamMessageByPayload(client, server.peerId, payloadRefOf(text('never written'))), STREAM_PROTOCOL, 'NOT_FOUND')
  })

  it('reports an unknown message as NOT_FOUND, naming the protocol, the peer and the message', async () => {
    const err = await rejectsExchange(fetchStreamMessage(client, server.peerId, new Uint8Array(32).fill(0xab)), STREAM_PROTOCOL, 'NOT_FOUND')
    assert.equal(err.protocol, STREAM_PROTOCOL)
    assert.equal(err.peer, server.peerId.toString())
    assert.equal(err.message, `fetching stream message 0x${'ab'.repeat(32)} over ${STREAM_PROTOCOL} from ${server.peerId.toString()}: ${err.reason} [NOT_FOUND]`)
  })

  it('refuses a server that answers with another message (WRONG_HASH)', async () => {
    rogueAnswer = { frame: encodeStreamResponse({ version: STREAM_VERSION, status: STREAM_STATUS.FOUND, message: encodeStreamMessage(channel[1]) as Uint8Array<ArrayBuffer> }) }
    await rejectsExchange(fetchStreamMessage(client, rogue.peerId, streamMessageId(channel[0])), STREAM_PROTOCOL, 'WRONG_HASH')
    await rejectsExchange(fetchStreamMessageByPayload(client, rogue.peerId, payloadRefOf(channel[0].payload)), STREAM_PROTOCOL, 'WRONG_HASH')
  })

  it('refuses a message with the requested hash but a bad signature or a wrong author (INVALID_MESSAGE)', async () => {
    const tampered = { ...channel[0], payload: text('tampered') }
    const mallory = await generateKeyPair('Ed25519')
    const forged = { ...(await createStreamMessage(mallory, 'inputs', 0n, GENESIS_PREV_ID, text('x'))), channel: channel[0].channel }
    for (const [bad, cause] of [[tampered, 'BAD_SIGNATURE'], [forged, 'WRONG_AUTHOR']] as const) {
      const bytes = encodeStreamMessage(bad)
      rogueAnswer = { frame: encodeStreamResponse({ version: STREAM_VERSION, status: STREAM_STATUS.FOUND, message: bytes as Uint8Array<ArrayBuffer> }) }
      const err = await rejectsExchange(fetchStreamMessage(client, rogue.peerId, sha256(bytes)), STREAM_PROTOCOL, 'INVALID_MESSAGE')
      assert.ok(err.cause instanceof StreamMessageError && err.cause.code === cause, String(err.cause))
    }
  })

  it('rejects garbage, oversized, empty and late responses', async () => {
    const msgId = streamMessageId(channel[0])
    rogueAnswer = { frame: Uint8Array.from([0xff, 0xff, 0x01, 0x02]) }
    await rejectsExchange(fetchStreamMessage(client, rogue.peerId, msgId), STREAM_PROTOCOL, 'INVALID_RESPONSE')
    // a length prefix announcing more than a response may hold is refused before any buffering
    rogueAnswer = { raw: Uint8Array.from([...encodeVarint(MAX_STREAM_RESPONSE_BYTES + 1), 1, 2, 3]) }
    await rejectsExchange(fetchStreamMessage(client, rogue.peerId, msgId), STREAM_PROTOCOL, 'OVERSIZED')
    rogueAnswer = { close: true }
    await rejectsExchange(fetchStreamMessage(client, rogue.peerId, msgId), STREAM_PROTOCOL, 'NO_RESPONSE')
    rogueAnswer = { silent: true }
    await rejectsExchange(fetchStreamMessage(client, rogue.peerId, msgId, { timeoutMs: SHORT_TIMEOUT_MS }), STREAM_PROTOCOL, 'TIMEOUT')
    const controller = new AbortController()
    const pending = fetchStreamMessage(client, rogue.peerId, msgId, { signal: controller.signal })
    controller.abort()
    await rejectsExchange(pending, STREAM_PROTOCOL, 'ABORTED')
  })

  it('stops serving after stop()', async () => {
    await streamServer.stop()
    try {
      await rejectsExchange(fetchStreamMessage(client, server.peerId, streamMessageId(channel[0])), STREAM_PROTOCOL, 'DIAL_FAILED')
    } finally {
      await streamServer.start()
    }
    sameMessage(await fetchStreamMessage(client, server.peerId, streamMessageId(channel[0])), channel[0])
  })
})

function encodeVarint (n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return out
}
