/**
 * A zk-capable model through the DHT (spec16n part A): one node publishes a model with its zk
 * files; another obtains it and holds the same circuit files; a third, which does not run the
 * model, gets the verification key having fetched only the manifest and the key's chunks (never
 * the wasm or the proving key); a provider serving a tampered proving-key chunk is refused.
 * Real parts: libp2p nodes over TCP on 127.0.0.1 with the DHT, the shard protocol, LevelDB.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { TypedEventEmitter } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import { createPoiLibp2p, type PoiLibp2p } from '../node/p2p.js'
import { ManifestError, attachZkArtifacts, modelIdOf, zkBlocks, type ModelManifest } from '../node/inference/index.js'
import { ModelFetchError, chunkModel, hasModel, manifestBlock, modelCids, provideModel, storeModel, zkCids } from '../node/models/index.js'
import { NotZkModelError, createModelService, type ModelService } from '../node/roles/index.js'
import type { PoiNodeEvents } from '../node/roles/events.js'
import { ShardServer } from '../protocols/shard/index.js'
import { bytesEqual } from '../protocols/wire/index.js'
import { BlockStore, NodeStore } from '../storage/index.js'
import { until } from './helpers/network.js'
import { zkTestModel, type ZkTestModel } from './helpers/zk-model-files.js'

/** A fetch on this loopback network takes well under a second; the deadline only bounds a failure. */
const FETCH_DEADLINE_MS = 20_000

interface TestNode {
  name: string
  libp2p: PoiLibp2p
  store: NodeStore
  blocks: BlockStore
  server: ShardServer
  models: ModelService
  /** CIDs this node's shard server was asked for and had. */
  served: string[]
}

describe('zk models through the DHT', function () {
  this.timeout(60_000)
  let root: string
  const nodes: TestNode[] = []
  let zk: ZkTestModel
  let manifest: ModelManifest

  const startNode = async (name: string, bootstrap: string[], tamper?: (cid: CID, bytes: Uint8Array) => Uint8Array): Promise<TestNode> => {
    const libp2p = await createPoiLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, dhtClientMode: false })
    const store = await NodeStore.open(join(root, name))
    const blocks = BlockStore.of(store)
    const served: string[] = []
    const server = new ShardServer(libp2p, {
      get: async (cid: CID) => {
        const block = await blocks.get(cid)
        if (block === undefined) return undefined
        served.push(cid.toString())
        return tamper === undefined ? block : tamper(cid, block)
      }
    })
    await server.start()
    const models = createModelService({ libp2p, blocks, events: new TypedEventEmitter<PoiNodeEvents>() }, { models: [] })
    await models.start()
    const node: TestNode = { name, libp2p, store, blocks, server, models, served }
    nodes.push(node)
    return node
  }
  const byName = (name: string): TestNode => {
    const n = nodes.find(n => n.name === name)
    if (n === undefined) throw new Error(`no node ${name}`)
    return n
  }
  const deadline = (): number => Date.now() + FETCH_DEADLINE_MS

  before(async function () {
    root = await mkdtemp(join(tmpdir(), 'poi-zk-fetch-'))
    zk = zkTestModel('zk-fetch-model')
    manifest = attachZkArtifacts(zk.manifest, { circuitId: zk.circuitId, ...zk.files }).manifest
    const publisher = await startNode('publisher', [])
    const addr = publisher.libp2p.getMultiaddrs()[0].toString()
    const evilManifest = attachZkArtifacts({ ...zk.manifest, name: 'zk-tampered' }, { circuitId: zk.circuitId, ...zk.files }).manifest
    const evilZkey = new Set(evilManifest.zk!.zkey.chunks)
    await startNode('runner', [addr])
    await startNode('verifier', [addr])
    await startNode('fresh', [addr])
    // holds a model of its own and flips a byte of each proving-key chunk it serves
    await startNode('evil', [addr], (cid, bytes) => {
      if (!evilZkey.has(cid.toString())) return bytes
      const bad = Uint8Array.from(bytes)
      bad[0] ^= 1
      return bad
    })
    await until(() => nodes.every(n => n.libp2p.getPeers().length >= 3), 20_000, 'each node connected to a few DHT peers')
    const evil = byName('evil')
    await storeModel(evil.blocks, evilManifest, zk.modelBytes, zk.files)
    await provideModel(evil.libp2p, [manifestBlock(evilManifest).cid, ...evilManifest.chunks.map(c => CID.parse(c)), ...zkCids(evilManifest)])
  })

  after(async function () {
    for (const n of nodes) {
      n.models.stop()
      await n.server.stop()
      await n.libp2p.stop()
      await n.store.close()
    }
    await rm(root, { recursive: true, force: true })
  })

  it('a node obtains a published zk model and holds the same circuit files and key', async function () {
    const publisher = byName('publisher')
    const runner = byName('runner')
    const lines: string[] = []
    const published = await publisher.models.publish(manifest, zk.modelBytes, line => lines.push(line), zk.files)
    const chunks = manifest.chunks.length + zkCids(manifest).length
    assert.equal(published.chunks, chunks)
    assert.equal(published.provided, chunks + 1, lines.join('\n'))
    assert.equal(publisher.models.held(modelIdOf(manifest))?.zk?.circuitId, zk.circuitId)

    const got = await runner.models.obtain(modelIdOf(manifest), deadline())
    assert.ok(got.zk !== undefined, 'the obtained model carries its zk artifacts')
    assert.equal(got.zk.circuitId, zk.circuitId)
    assert.ok(bytesEqual(got.zk.wasm, zk.files.wasm))
    assert.ok(bytesEqual(got.zk.zkey, zk.files.zkey))
    assert.ok(got.zk.vkey !== undefined && bytesEqual(got.zk.vkey, zk.files.vkey))
    assert.equal(got.zk.verificationKey.nPublic, 4)
    for (const cid of zkCids(manifest)) assert.ok(await runner.blocks.has(cid), `the runner stored ${cid.toString()}`)
    const verifier = await runner.models.zkVerifier(modelIdOf(manifest), deadline())
    assert.equal(verifier.circuitId, zk.circuitId)
  })

  it('a node that does not run the model gets the verification key from the manifest and the key\'s chunks only', async function () {
    const verifier = byName('verifier')
    for (const n of nodes) n.served.length = 0
    const got = await verifier.models.zkVerifier(modelIdOf(manifest), deadline())
    assert.equal(got.circuitId, zk.circuitId)
    assert.deepEqual(got.verificationKey, JSON.parse(new TextDecoder().decode(zk.files.vkey)))
    assert.deepEqual(got.manifest, manifest)
    const served = nodes.flatMap(n => n.served)
    const expected = [manifestBlock(manifest).cid.toString(), ...manifest.zk!.vkey.chunks]
    assert.deepEqual([...new Set(served)].sort(), expected.sort(), 'only the manifest block and the verification key were fetched')
    for (const c of [...manifest.zk!.wasm.chunks, ...manifest.zk!.zkey.chunks, ...manifest.chunks]) assert.ok(!served.includes(c), `${c} was not fetched`)
    assert.equal(await hasModel(verifier.blocks, modelIdOf(manifest)), false, 'nothing stored: the node does not hold the model')

    // cached: asked again, nobody is asked for anything
    for (const n of nodes) n.served.length = 0
    const again = await verifier.models.zkVerifier(modelIdOf(manifest), deadline())
    assert.equal(again.circuitId, zk.circuitId)
    assert.deepEqual(nodes.flatMap(n => n.served), [])
  })

  it('a node that restarts reads the verification key from its own store, asking no one', async function () {
    const runner = byName('runner')
    const restarted = createModelService({ libp2p: runner.libp2p, blocks: runner.blocks, events: new TypedEventEmitter<PoiNodeEvents>() }, { models: [] })
    assert.equal(restarted.held(modelIdOf(manifest)), undefined, 'not held: the fresh service was given no models')
    for (const n of nodes) n.served.length = 0
    const got = await restarted.zkVerifier(modelIdOf(manifest), deadline())
    assert.equal(got.circuitId, zk.circuitId)
    assert.equal(got.verificationKey.nPublic, 4)
    assert.deepEqual(nodes.flatMap(n => n.served), [])
    restarted.stop()
  })

  it('a model without zk is a NotZkModelError, held or fetched', async function () {
    const publisher = byName('publisher')
    const verifier = byName('verifier')
    const plain = { ...zk.manifest, name: 'zk-fetch-plain' }
    await publisher.models.publish(plain, zk.modelBytes)
    await assert.rejects(publisher.models.zkVerifier(modelIdOf(plain), deadline()), NotZkModelError)
    await assert.rejects(verifier.models.zkVerifier(modelIdOf(plain), deadline()), (err: unknown) => err instanceof NotZkModelError && /has no zk circuit/.test(err.message))
  })

  it('a tampered proving-key chunk is refused: nothing is stored, while the verification key (untouched) still arrives', async function () {
    const fresh = byName('fresh')
    const evilManifest = attachZkArtifacts({ ...zk.manifest, name: 'zk-tampered' }, { circuitId: zk.circuitId, ...zk.files }).manifest
    const id = modelIdOf(evilManifest)
    await assert.rejects(fresh.models.obtain(id, deadline()), (err: unknown) => {
      assert.ok(err instanceof ModelFetchError, String(err))
      assert.match(err.message, /corrupt block/)
      assert.ok(evilManifest.zk!.zkey.chunks.includes(err.block), `the refused block ${err.block} is a proving-key chunk`)
      return true
    })
    assert.equal(await hasModel(fresh.blocks, id), false)
    for (const cid of zkCids(evilManifest)) assert.equal(await fresh.blocks.has(cid), false, `${cid.toString()} not stored`)
    const verifier = await fresh.models.zkVerifier(id, deadline())
    assert.equal(verifier.circuitId, zk.circuitId)
  })

  it('a manifest naming another circuit is refused, naming zk.circuitId, before the proving key is fetched', async function () {
    const publisher = byName('publisher')
    const fresh = byName('fresh')
    const wrong = attachZkArtifacts({ ...zk.manifest, name: 'zk-wrong-circuit' }, { circuitId: zk.circuitId + 1n, ...zk.files }).manifest
    // storeModel refuses it too; a careless or hostile publisher can still put the blocks out
    await assert.rejects(storeModel(publisher.blocks, wrong, zk.modelBytes, zk.files), (err: unknown) => err instanceof ManifestError && err.field === 'zk.circuitId')
    await publisher.blocks.putMany([...chunkModel(zk.modelBytes, wrong.chunkSize), ...zkBlocks(wrong, zk.files), manifestBlock(wrong)])
    await provideModel(publisher.libp2p, modelCids(wrong))
    for (const n of nodes) n.served.length = 0
    await assert.rejects(fresh.models.obtain(modelIdOf(wrong), deadline()), (err: unknown) => {
      assert.ok(err instanceof ManifestError, String(err))
      assert.equal(err.field, 'zk.circuitId')
      assert.match(err.message, /compiles to circuit/)
      return true
    })
    assert.equal(await hasModel(fresh.blocks, modelIdOf(wrong)), false)
    const served = nodes.flatMap(n => n.served)
    for (const c of wrong.zk!.zkey.chunks) assert.ok(!served.includes(c), `proving-key chunk ${c} was not fetched`)
  })
})
