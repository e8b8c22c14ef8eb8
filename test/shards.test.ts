import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import { CID } from 'multiformats/cid'
import { code as JSON_CODEC } from 'multiformats/codecs/json'
import { createPoiLibp2p, type PoiLibp2p } from '../node/p2p.js'
import { InferenceRunner, loadModelDir, modelIdOf, modelIdToString, SHIPPED_MODEL_DIR, type ModelDir } from '../node/inference/index.js'
import {
  BAD_SHARD_TAG, ModelFetchError, ModelManifestError, ModelNotFoundError, fetchModel, hasModel,
  importModel, listModels, loadModel, provideModel, publishModel, type FetchProgress, type ModelFields,
  type PublishedModel
} from '../node/models/index.js'
import {
  SHARD_PROTOCOL, ShardBadBlockError, ShardNotFoundError, ShardServer, ShardStatus, ShardTooLargeError,
  fetchBlock, shardServer
} from '../protocols/shard/index.js'
import { BlockStore, NodeStore } from '../storage/index.js'
import { BadBlockError, BlockTooLargeError, MAX_BLOCK_BYTES, blockCid, bytesEqual } from '../protocols/wire/index.js'
import { until } from './helpers/network.js'

const MIB = 1024 * 1024

interface TestNode {
  name: string
  libp2p: PoiLibp2p
  store: NodeStore
  blocks: BlockStore
  server?: ShardServer
}

describe('models as shards through the DHT', function () {
  this.timeout(60_000)
  let root: string
  const nodes: TestNode[] = []
  let shipped: ModelDir
  let fields: ModelFields

  const startNode = async (name: string, bootstrap: string[], serve = true): Promise<TestNode> => {
    const libp2p = await createPoiLibp2p({
      privateKey: await generateKeyPair('Ed25519'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap,
      dhtClientMode: false
    })
    const store = await NodeStore.open(join(root, name))
    const blocks = BlockStore.of(store)
    const node: TestNode = { name, libp2p, store, blocks }
    if (serve) {
      node.server = shardServer(libp2p, blocks)
      await node.server.start()
    }
    nodes.push(node)
    return node
  }
  const byName = (name: string): TestNode => {
    const n = nodes.find(n => n.name === name)
    if (n === undefined) throw new Error(`no node ${name}`)
    return n
  }

  before(async function () {
    root = await mkdtemp(join(tmpdir(), 'poi-shards-'))
    shipped = await loadModelDir(SHIPPED_MODEL_DIR)
    const { name: _name, owner, runtime, agreement, inputs, outputs } = shipped.manifest
    fields = { owner, name: 'random-blob', runtime, agreement, inputs, outputs }
    const publisher = await startNode('publisher', [])
    const addr = publisher.libp2p.getMultiaddrs()[0].toString()
    for (const name of ['f1', 'f2', 'f3', 'f4', 'evil', 'fresh', 'huge']) {
      await startNode(name, [addr], name !== 'evil' && name !== 'huge')
    }
    // every DHT needs peers before provide/findProviders mean anything
    await until(() => nodes.every(n => n.libp2p.getPeers().length >= 3), 20_000, 'each node connected to a few DHT peers')
  })

  after(async function () {
    await Promise.all(nodes.map(async n => {
      await n.server?.stop()
      await n.libp2p.stop()
      await n.store.close()
    }))
    await rm(root, { recursive: true, force: true })
  })

  it('block store refuses bytes that do not hash to the CID, and oversized blocks', async function () {
    const { blocks } = byName('publisher')
    const bytes = randomBytes(1000)
    const cid = blockCid(bytes)
    const corrupt = Uint8Array.from(bytes)
    corrupt[0] ^= 0xff
    await assert.rejects(blocks.put(cid, corrupt), BadBlockError)
    assert.equal(await blocks.has(cid), false)
    const big = randomBytes(MAX_BLOCK_BYTES + 1)
    await assert.rejects(blocks.put(blockCid(big), big), BlockTooLargeError)
    await blocks.put(cid, bytes)
    const stored = await blocks.get(cid)
    assert.ok(stored !== undefined && bytesEqual(stored, bytes))
  })

  it('publishes a few-MiB model; four nodes that never saw it fetch it through the DHT', async function () {
    const publisher = byName('publisher')
    const modelBytes = randomBytes(3 * MIB + 12345)
    const published = await publishModel(publisher.blocks, modelBytes, fields)
    assert.equal(published.manifest.chunks.length, 4)
    assert.equal(published.cids.length, 5)
    assert.equal(modelIdToString(published.modelId), published.modelCid.toString())
    const report = await provideModel(publisher.libp2p, published.cids)
    assert.equal(report.provided, 5, JSON.stringify(report.failed))

    const fetchers = ['f1', 'f2', 'f3', 'f4'].map(byName)
    for (const f of fetchers) assert.equal(await hasModel(f.blocks, published.modelId), false)
    const progress: FetchProgress[] = []
    const fetched = await Promise.all(fetchers.map(async (f, i) => await fetchModel(f.libp2p, f.blocks, published.modelCid.toString(), {
      onProgress: i === 0 ? p => progress.push(p) : undefined
    })))
    for (const [i, f] of fetchers.entries()) {
      const got = fetched[i]
      assert.equal(got.fromStore, false)
      assert.ok(bytesEqual(got.modelBytes, modelBytes), `${f.name} got different bytes`)
      assert.equal(modelIdToString(modelIdOf(got.manifest)), published.modelCid.toString())
      assert.ok(got.servedBy.length >= 1)
      assert.equal(got.provided?.provided, 5)
      const stored = await loadModel(f.blocks, published.modelId)
      assert.ok(stored !== undefined && bytesEqual(stored.modelBytes, modelBytes), `${f.name} did not store the model`)
    }
    const last = progress[progress.length - 1]
    assert.equal(last.phase, 'done')
    assert.equal(last.bytesDone, modelBytes.length)
    assert.equal(last.bytesTotal, modelBytes.length)
    assert.ok(progress.some(p => p.phase === 'chunks' && p.chunksDone > 0 && p.chunksDone < 4), 'progress reported chunk by chunk')

    // a second fetch is served from the store, and the fetchers now provide it too
    assert.equal((await fetchModel(fetchers[0].libp2p, fetchers[0].blocks, published.modelId)).fromStore, true)
    const providers = new Set<string>()
    for await (const p of byName('fresh').libp2p.contentRouting.findProviders(published.modelCid, { signal: AbortSignal.timeout(10_000) })) providers.add(p.id.toString())
    assert.ok(providers.size >= 3, `expected the fetchers among the providers, got ${providers.size}`)
    assert.deepEqual((await listModels(fetchers[1].blocks)).map(m => m.modelId), [published.modelCid.toString()])
  })

  it('publishes the shipped model and a fresh node fetches, verifies and loads it', async function () {
    const publisher = byName('publisher')
    const published = await importModel(publisher.blocks, shipped.manifest, shipped.modelBytes)
    assert.deepEqual(published.modelId, shipped.modelId)
    await provideModel(publisher.libp2p, published.cids)
    const f = byName('f2')
    const got = await fetchModel(f.libp2p, f.blocks, shipped.modelId)
    assert.deepEqual(got.manifest, shipped.manifest)
    assert.ok(bytesEqual(got.modelBytes, shipped.modelBytes))
    const runner = await InferenceRunner.load(got.modelBytes, got.manifest)
    assert.deepEqual(runner.modelId, shipped.modelId)
    await runner.close()
  })

  it('a provider serving corrupt chunks is dropped and tagged; the fetch completes from honest ones and never stores a bad chunk', async function () {
    const publisher = byName('publisher')
    const evil = byName('evil')
    const fresh = byName('fresh')
    const modelBytes = randomBytes(2 * MIB)
    const published = await publishModel(publisher.blocks, modelBytes, { ...fields, name: 'corrupted-elsewhere' }, { chunkSize: 128 * 1024 })
    await provideModel(publisher.libp2p, published.cids)

    // the evil node holds the model too, but flips a byte of every chunk it serves
    let corruptServed = 0
    const evilServer = new ShardServer(evil.libp2p, {
      get: async (cid: CID) => {
        const block = await publisher.blocks.get(cid)
        if (block === undefined || cid.code === JSON_CODEC) return block
        corruptServed++
        const bad = Uint8Array.from(block)
        bad[bad.length >> 1] ^= 0x01
        return bad
      }
    })
    await evilServer.start()
    try {
      await provideModel(evil.libp2p, published.cids)
      // the protocol level: a corrupt block is a typed error naming the peer
      await assert.rejects(fetchBlock(fresh.libp2p, evil.libp2p.peerId, published.cids[1]), (err: unknown) => {
        assert.ok(err instanceof ShardBadBlockError, String(err))
        assert.equal(err.peer, evil.libp2p.peerId.toString())
        return true
      })
      corruptServed = 0

      const got = await fetchModel(fresh.libp2p, fresh.blocks, published.modelId, { perProvider: 2, providers: [evil.libp2p.peerId] })
      assert.ok(corruptServed > 0, 'the evil provider was asked for chunks')
      assert.ok(bytesEqual(got.modelBytes, modelBytes))
      assert.deepEqual(got.dropped.map(d => d.peer), [evil.libp2p.peerId.toString()])
      assert.match(got.dropped[0].reason, /corrupt block/)
      // it may have served the manifest (served faithfully), never a chunk
      assert.ok((got.servedBy.find(s => s.peer === evil.libp2p.peerId.toString())?.blocks ?? 0) <= 1)
      for (const [i, c] of published.manifest.chunks.entries()) {
        const stored = await fresh.blocks.get(CID.parse(c))
        assert.ok(stored !== undefined && bytesEqual(stored, modelBytes.subarray(i * 128 * 1024, (i + 1) * 128 * 1024)), `chunk ${i} stored intact`)
      }
      const peer = await fresh.libp2p.peerStore.get(evil.libp2p.peerId)
      assert.ok(peer.tags.has(BAD_SHARD_TAG), 'the corrupt provider is tagged in the peer store')
    } finally {
      await evilServer.stop()
    }
  })

  it('an unknown model id is a clear error once the DHT search ends', async function () {
    const f = byName('f3')
    const unknown = blockCid(randomBytes(64), JSON_CODEC)
    await assert.rejects(fetchModel(f.libp2p, f.blocks, unknown.bytes, { findProvidersTimeoutMs: 15_000 }), (err: unknown) => {
      assert.ok(err instanceof ModelNotFoundError, String(err))
      assert.match(err.message, new RegExp(`model ${unknown.toString()}: no provider found`))
      return true
    })
    // a block the peer lacks is a typed not-found
    await assert.rejects(fetchBlock(f.libp2p, byName('publisher').libp2p.peerId, blockCid(randomBytes(8))), ShardNotFoundError)
  })

  it('a manifest block that does not parse is refused with the reason', async function () {
    const publisher = byName('publisher')
    const notManifest = new TextEncoder().encode('{"hello":"world"}')
    const cid = blockCid(notManifest, JSON_CODEC)
    await publisher.blocks.put(cid, notManifest)
    await provideModel(publisher.libp2p, [cid])
    const f = byName('f4')
    await assert.rejects(fetchModel(f.libp2p, f.blocks, cid), (err: unknown) => {
      assert.ok(err instanceof ModelManifestError, String(err))
      assert.match(err.message, /does not parse: invalid model manifest: hello is not a known field/)
      return true
    })
    assert.equal(await hasModel(f.blocks, cid), false)
  })

  it('a chunk larger than its bound is refused before it is read, and the fetch fails naming it', async function () {
    const publisher = byName('publisher')
    const huge = byName('huge')
    const f = byName('f1')
    const modelBytes = randomBytes(300 * 1024)
    // stored only in the huge node's own store: nobody honest provides it
    const published: PublishedModel = await publishModel(huge.blocks, modelBytes, { ...fields, name: 'oversized' }, { chunkSize: 128 * 1024 })
    // serves the manifest faithfully, then answers every chunk with 2 MiB
    await huge.libp2p.handle(SHARD_PROTOCOL, ({ stream }) => {
      void pipe(stream, source => lp.decode(source), async function * (requests) {
        for await (const req of requests) {
          const cid = CID.decode(req.subarray())
          const block = cid.code === JSON_CODEC ? await huge.blocks.get(cid) : randomBytes(2 * MIB)
          yield Uint8Array.from([ShardStatus.OK, ...(block ?? [])])
          return
        }
      }, source => lp.encode(source), stream).catch(() => {})
    })
    await provideModel(huge.libp2p, published.cids)

    await assert.rejects(fetchBlock(f.libp2p, huge.libp2p.peerId, published.cids[1]), ShardTooLargeError)
    await assert.rejects(fetchModel(f.libp2p, f.blocks, published.modelId, { providers: [huge.libp2p.peerId] }), (err: unknown) => {
      assert.ok(err instanceof ModelFetchError, String(err))
      assert.match(err.message, /the peer sent more than the \d+-byte bound of this block/)
      return true
    })
    assert.equal(await hasModel(f.blocks, published.modelId), false)
    for (const c of published.manifest.chunks) assert.equal(await f.blocks.has(CID.parse(c)), false)
    assert.ok((await f.libp2p.peerStore.get(huge.libp2p.peerId)).tags.has(BAD_SHARD_TAG))
    void publisher
  })
})
