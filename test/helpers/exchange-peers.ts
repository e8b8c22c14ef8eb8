/**
 * The peers of the request/response protocol tests (/poi/stream/1/, /poi/result/1/,
 * /poi/network/1/): real libp2p nodes on 127.0.0.1, a rogue peer that answers with whatever a
 * test wants it to lie with, and the check that a fetch failed with the right ExchangeError.
 */
import { strict as assert } from 'node:assert'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { IncomingStreamData } from '@libp2p/interface'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import { createPoiLibp2p, type PoiLibp2p } from '../../node/p2p.js'
import { ExchangeError } from '../../protocols/exchange/index.js'
import { NodeStore, StreamStore } from '../../storage/index.js'

/** A node with a fresh identity, listening on a free port of 127.0.0.1, bootstrapping nowhere. */
export async function localNode (): Promise<PoiLibp2p> {
  return await createPoiLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], dhtClientMode: false })
}

/**
 * What a rogue peer does with a request: write raw bytes (no length prefix), write one frame
 * (empty when unset), close the stream without answering, or say nothing at all (the client's
 * timeout has to end the exchange).
 */
export interface RogueAnswer {
  raw?: Uint8Array
  frame?: Uint8Array
  close?: true
  silent?: true
}

/** Makes `libp2p` answer every `protocol` request with what `answer()` says at that moment. */
export async function serveRogue (libp2p: PoiLibp2p, protocol: string, answer: () => RogueAnswer): Promise<void> {
  await libp2p.handle(protocol, ({ stream }: IncomingStreamData) => {
    const { raw, frame, close, silent } = answer()
    if (silent === true) return
    if (close === true) { void stream.close().catch(() => {}); return }
    if (raw !== undefined) { void stream.sink([raw]).catch(() => {}); return }
    void pipe([frame ?? new Uint8Array(0)], (s) => lp.encode(s), stream).catch(() => {})
  })
}

/**
 * Three connected nodes: `server` for the protocol's real server, `client` dialled to it and to
 * `rogue`, which answers `protocol` with what `rogueAnswer()` says. `stop` stops all three.
 */
export interface ExchangePeers {
  server: PoiLibp2p
  client: PoiLibp2p
  rogue: PoiLibp2p
  stop: () => Promise<void>
}

export async function startExchangePeers (protocol: string, rogueAnswer: () => RogueAnswer): Promise<ExchangePeers> {
  const [server, client, rogue] = await Promise.all([localNode(), localNode(), localNode()])
  const stop = async (): Promise<void> => { await Promise.all([server, client, rogue].map(async n => { await n.stop() })) }
  try {
    await serveRogue(rogue, protocol, rogueAnswer)
    await client.dial(server.getMultiaddrs())
    await client.dial(rogue.getMultiaddrs())
  } catch (err) {
    await stop()
    throw err
  }
  return { server, client, rogue, stop }
}

/** A real LevelDB node store in a fresh temporary directory, with its stream store; `close` removes it. */
export interface TempStore {
  store: NodeStore
  streams: StreamStore
  close: () => Promise<void>
}

export async function openTempStore (prefix: string): Promise<TempStore> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  const store = await NodeStore.open(dir)
  return {
    store,
    streams: new StreamStore(store),
    close: async () => {
      await store.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
}

/** Asserts that `p` rejects with an ExchangeError of `protocol` and `code`, and returns it. */
export async function rejectsExchange (p: Promise<unknown>, protocol: string, code: string): Promise<ExchangeError> {
  try {
    await p
  } catch (err) {
    assert.ok(err instanceof ExchangeError, `expected ExchangeError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    assert.equal(err.protocol, protocol)
    return err
  }
  assert.fail(`expected ExchangeError [${code}], nothing was thrown`)
}
