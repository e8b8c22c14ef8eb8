import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import {
  MANIFEST_OWNER_PREFIX, ManifestError, ModelIdError, SHIPPED_MODEL_DIR, UNOWNED, encodeManifest, loadModelDir, modelIdOf, modelIdToString,
  parseManifest, parseModelId, type ModelManifest
} from '../node/inference/index.js'
import { DEVNET_MODEL_OWNER } from '../node/fixtures/index.js'
import { toHex } from '../protocols/wire/index.js'
import { utf8 } from './helpers/shipped-model.js'

describe('inference', function () {
  let modelBytes: Uint8Array
  let manifest: ModelManifest

  before(async function () { ({ modelBytes, manifest } = await loadModelDir(SHIPPED_MODEL_DIR)) })

  describe('manifest', function () {
    const mutate = (patch: (m: Record<string, any>) => void): unknown => {
      const copy = structuredClone(manifest) as Record<string, any>
      patch(copy)
      return copy
    }
    const cases: Array<[string, (m: Record<string, any>) => void, string]> = [
      ['version 2', m => { m.version = 2 }, 'version'],
      ['missing owner', m => { delete m.owner }, 'owner'],
      ['checksummed (mixed-case) owner', m => { m.owner = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266' }, 'owner'],
      ['owner without 0x', m => { m.owner = m.owner.slice(2) }, 'owner'],
      ['short owner', m => { m.owner = m.owner.slice(0, 41) }, 'owner'],
      ['owner as a number', m => { m.owner = 0 }, 'owner'],
      ['missing name', m => { delete m.name }, 'name'],
      ['format tflite', m => { m.format = 'tflite' }, 'format'],
      ['negative size', m => { m.size = -1 }, 'size'],
      ['uppercase hash', m => { m.modelHash = m.modelHash.toUpperCase() }, 'modelHash'],
      ['short hash', m => { m.modelHash = '0x1234' }, 'modelHash'],
      ['runtime range', m => { m.runtime.onnxruntime = '^1.30.0' }, 'runtime.onnxruntime'],
      ['optimisation level', m => { m.runtime.graphOptimizationLevel = 'max' }, 'runtime.graphOptimizationLevel'],
      ['0 threads (unpinned)', m => { m.runtime.intraOpNumThreads = 0 }, 'runtime.intraOpNumThreads'],
      ['fractional threads', m => { m.runtime.interOpNumThreads = 1.5 }, 'runtime.interOpNumThreads'],
      ['execution mode', m => { m.runtime.executionMode = 'async' }, 'runtime.executionMode'],
      ['unknown runtime key', m => { m.runtime.provider = 'cuda' }, 'runtime.provider'],
      ['agreement grid:53', m => { m.agreement = 'grid:53' }, 'agreement'],
      ['topk larger than the class count', m => { m.agreement = 'topk:11' }, 'agreement'],
      ['no inputs', m => { m.inputs = [] }, 'inputs'],
      ['float16 dtype', m => { m.inputs[0].dtype = 'float16' }, 'inputs[0].dtype'],
      ['zero dim', m => { m.inputs[0].shape = [0, 16] }, 'inputs[0].shape[0]'],
      ['string dim', m => { m.outputs[0].shape = ['batch', 10] }, 'outputs[0].shape[0]'],
      ['repeated output name', m => { m.outputs = [m.outputs[0], m.outputs[0]] }, 'outputs[1].name'],
      ['chunk size below the minimum', m => { m.chunkSize = 1024 }, 'chunkSize'],
      ['chunk size above 1 MiB', m => { m.chunkSize = 2 * 1024 * 1024 }, 'chunkSize'],
      ['missing chunks', m => { delete m.chunks }, 'chunks'],
      ['wrong chunk count', m => { m.chunks = [m.chunks[0], m.chunks[0]] }, 'chunks'],
      ['chunk CID with the json codec', m => { m.chunks = [m.chunks[0].replace(/^bafkrei/, 'bagaaiera')] }, 'chunks[0]'],
      ['chunk that is not a CID', m => { m.chunks = ['not-a-cid'] }, 'chunks[0]'],
      ['unknown top-level key', m => { m.shards = [] }, 'shards']
    ]
    for (const [what, patch, field] of cases) {
      it(`rejects ${what}, naming ${field}`, function () {
        assert.throws(() => parseManifest(mutate(patch)), (err: unknown) => {
          assert.ok(err instanceof ManifestError, String(err))
          assert.equal(err.field, field)
          return true
        })
      })
    }

    it('rejects non-objects', function () {
      assert.throws(() => parseManifest(null), ManifestError)
      assert.throws(() => parseManifest([manifest]), ManifestError)
    })

    it('accepts a free (null) batch axis', function () {
      const m = parseManifest(mutate(m => { m.inputs[0].shape = [null, 16] }))
      assert.deepEqual(m.inputs[0].shape, [null, 16])
    })

    it('model id is a CIDv1 (json, sha2-256) of the canonical JSON (owner first, then sorted keys), independent of key order', async function () {
      const reordered = JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(manifest).reverse())))
      const id = modelIdOf(manifest)
      assert.equal(toHex(modelIdOf(parseManifest(reordered))), toHex(id))
      const cid = CID.decode(id)
      assert.equal(cid.version, 1)
      assert.equal(cid.code, 0x0200)
      const { owner, ...rest } = manifest
      const sorted = JSON.stringify(rest, Object.keys(rest).concat(Object.keys(manifest.runtime), 'name', 'dtype', 'shape').sort())
      const canonical = utf8(`{"owner":"${owner}",${sorted.slice(1)}`)
      assert.deepEqual(encodeManifest(manifest), canonical)
      assert.equal(toHex(cid.multihash.digest), toHex((await sha256.digest(canonical)).digest))
      const text = modelIdToString(id)
      assert.match(text, /^bagaaiera/)
      assert.equal(toHex(parseModelId(text)), toHex(id))
    })

    it('every manifest block starts with the fixed owner header the ModelRegistry reads', function () {
      assert.equal(manifest.owner, DEVNET_MODEL_OWNER)
      const header = `${MANIFEST_OWNER_PREFIX}${manifest.owner.slice(2)}",`
      assert.equal(header.length, 54)
      for (const owner of [manifest.owner, UNOWNED, '0xabcdef0123456789abcdef0123456789abcdef01']) {
        const text = new TextDecoder().decode(encodeManifest(parseManifest({ ...manifest, owner })))
        assert.ok(text.startsWith(`{"owner":"${owner}",`), text.slice(0, 60))
        assert.equal(text.indexOf('"owner"', 2), -1, 'owner appears once')
      }
    })

    it('the owner is part of the id: the same model under another owner has another id', function () {
      const other = parseManifest({ ...manifest, owner: UNOWNED })
      assert.notEqual(toHex(modelIdOf(other)), toHex(modelIdOf(manifest)))
    })

    it('parseModelId rejects text that is not a manifest id', async function () {
      assert.throws(() => parseModelId('hello'), ModelIdError)
      const rawCid = CID.createV1(raw.code, await sha256.digest(modelBytes))
      assert.throws(() => parseModelId(rawCid.toString()), /json codec/)
      assert.throws(() => modelIdToString(new Uint8Array([1, 2, 3])), ModelIdError)
      // the forms the ModelRegistry refuses, which multiformats alone would accept
      const id = modelIdOf(manifest)
      const nonMinimalVersion = Uint8Array.from([0x81, 0x00, ...id.subarray(1)])
      assert.throws(() => modelIdToString(nonMinimalVersion), /not the canonical encoding .*not minimally encoded/)
      const shortDigest = Uint8Array.from([0x01, 0x80, 0x04, 0x12, 0x1f, ...id.subarray(6)])
      assert.throws(() => modelIdToString(shortDigest), /32-byte sha2-256 digest, got 31 bytes/)
      assert.equal(modelIdToString(id), CID.decode(id).toString())
    })
  })
})
