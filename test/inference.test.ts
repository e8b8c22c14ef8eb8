import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bytesToHex, keccak256 } from 'viem'
import {
  InferenceError, InferenceRunner, InputError, ModelDirError, ModelHashMismatchError, ModelSpecMismatchError,
  SHIPPED_MODEL_DIR, decodeCanonicalOutput, installedOnnxruntimeVersion, loadModelDir, modelIdOf,
  type ModelManifest, type TensorData
} from '../node/inference/index.js'
import {
  buildMlpClassifierManifest, buildMlpClassifierModel, buildMlpClassifierWeights, formatManifestFile
} from '../node/fixtures/index.js'
import { bytesEqual, toHex } from '../protocols/wire/index.js'
import { SAMPLE_X, countingCreateSession, sampleInput, utf8 } from './helpers/shipped-model.js'

const bytesOf = (data: TensorData): Uint8Array => new Uint8Array(data.buffer, data.byteOffset, data.byteLength)

describe('inference', function () {
  let modelBytes: Uint8Array
  let manifest: ModelManifest

  before(async function () { ({ modelBytes, manifest } = await loadModelDir(SHIPPED_MODEL_DIR)) })

  describe('shipped model build', function () {
    it('rebuilds from the seed to the same bytes as the shipped file, every time', async function () {
      const shipped = new Uint8Array(await readFile(join(SHIPPED_MODEL_DIR, 'model.onnx')))
      const first = buildMlpClassifierModel()
      const second = buildMlpClassifierModel()
      assert.equal(toHex(first), toHex(second))
      assert.equal(toHex(first), toHex(shipped))
    })

    it('rebuilds the shipped manifest.json byte for byte', async function () {
      const shippedText = await readFile(join(SHIPPED_MODEL_DIR, 'manifest.json'), 'utf8')
      assert.equal(formatManifestFile(buildMlpClassifierManifest(buildMlpClassifierModel())), shippedText)
      assert.equal(manifest.agreement, 'grid:16')
      assert.equal(manifest.runtime.intraOpNumThreads, 1)
    })

    it('a different seed gives a different model', function () {
      assert.notEqual(toHex(buildMlpClassifierModel(1)), toHex(buildMlpClassifierModel()))
    })

    it('computes softmax(W2·relu(W1·x + b1) + b2), checked against a float64 reference', async function () {
      const { w1, b1, w2, b2 } = buildMlpClassifierWeights()
      const hidden = Array.from(b1, (b, j) => Math.max(0, SAMPLE_X.reduce((acc, x, i) => acc + w1[j * 16 + i] * x, b)))
      const logits = Array.from(b2, (b, c) => hidden.reduce((acc, h, j) => acc + w2[c * 32 + j] * h, b))
      const max = Math.max(...logits)
      const exps = logits.map(l => Math.exp(l - max))
      const sum = exps.reduce((a, b) => a + b, 0)
      const expected = exps.map(e => e / sum)

      const runner = await InferenceRunner.load(modelBytes, manifest)
      try {
        const { outputs } = await runner.run(sampleInput())
        assert.deepEqual(outputs.probs.dims, [1, 10])
        outputs.probs.data.forEach((p, i) => { assert.ok(Math.abs(Number(p) - expected[i]) < 1e-5, `probs[${i}] = ${p}, reference ${expected[i]}`) })
      } finally {
        await runner.close()
      }
    })
  })

  describe('InferenceRunner', function () {
    it('loads the shipped model, runs it, and gives the same result hash over 5 runs', async function () {
      const sessions = countingCreateSession()
      const runner = await InferenceRunner.load(modelBytes, manifest, { createSession: sessions.create })
      try {
        assert.equal(sessions.count(), 1)
        assert.equal(runner.runtimeVersionMismatch, null, `installed onnxruntime ${installedOnnxruntimeVersion()} should match the pin`)
        assert.equal(runner.attestRefusal(), undefined)
        const hashes = new Set<string>()
        for (let i = 0; i < 5; i++) {
          const result = await runner.run(sampleInput())
          assert.equal(result.resultHash.length, 32)
          assert.equal(bytesToHex(result.resultHash), keccak256(result.canonical))
          assert.ok(result.inferenceMs >= 0)
          const sum = Array.from(result.outputs.probs.data as Float32Array).reduce((a, b) => a + b, 0)
          assert.ok(Math.abs(sum - 1) < 1e-5)
          hashes.add(toHex(result.resultHash))
        }
        assert.equal(hashes.size, 1)
      } finally {
        await runner.close()
      }
    })

    it('gives bit-identical outputs with intraOpNumThreads 1, 2 and 4 (separate sessions, exact rule)', async function () {
      // `exact` hashes the raw output bits, so equal hashes mean equal bits; the shipped
      // manifest's grid:16 would hide a difference below 2^-16
      const withThreads = (n: number): ModelManifest => ({ ...manifest, agreement: 'exact', runtime: { ...manifest.runtime, intraOpNumThreads: n } })
      const manifests = [1, 2, 4].map(withThreads)
      assert.equal(new Set(manifests.map(m => toHex(modelIdOf(m)))).size, 3)
      const runners: InferenceRunner[] = []
      try {
        for (const m of manifests) runners.push(await InferenceRunner.load(modelBytes, m))
        for (const x of [SAMPLE_X, SAMPLE_X.map(v => -v * 3), SAMPLE_X.map((v, i) => i % 3 === 0 ? 0 : v + 0.1)]) {
          const [one, ...others] = await Promise.all(runners.map(async r => await r.run(sampleInput(x))))
          assert.equal(decodeCanonicalOutput(one.canonical).rule, 'exact')
          for (const [i, other] of others.entries()) {
            assert.ok(bytesEqual(bytesOf(other.outputs.probs.data), bytesOf(one.outputs.probs.data)), `output bits differ with ${manifests[i + 1].runtime.intraOpNumThreads} threads`)
            assert.equal(toHex(other.resultHash), toHex(one.resultHash))
          }
        }
      } finally {
        await Promise.all(runners.map(async r => { await r.close() }))
      }
    })

    it('different inputs give different result hashes', async function () {
      const runner = await InferenceRunner.load(modelBytes, manifest)
      try {
        const a = await runner.run(sampleInput())
        const b = await runner.run(sampleInput(SAMPLE_X.map(v => -v * 4)))
        assert.notEqual(toHex(a.resultHash), toHex(b.resultHash))
      } finally {
        await runner.close()
      }
    })

    it('refuses a tampered model (one byte flipped) without creating a session', async function () {
      const tampered = modelBytes.slice()
      tampered[tampered.length - 20] ^= 0x01 // inside the last initializer: still parseable ONNX
      const sessions = countingCreateSession()
      await assert.rejects(InferenceRunner.load(tampered, manifest, { createSession: sessions.create }), (err: unknown) => {
        assert.ok(err instanceof ModelHashMismatchError)
        assert.equal(err.expected, manifest.modelHash)
        assert.match(err.message, new RegExp(manifest.modelHash))
        assert.match(err.message, new RegExp(err.actual))
        assert.notEqual(err.actual, manifest.modelHash)
        return true
      })
      assert.equal(sessions.count(), 0)
    })

    it('refuses a manifest whose tensor names do not match the model', async function () {
      const renamed: ModelManifest = { ...manifest, inputs: [{ ...manifest.inputs[0], name: 'image' }] }
      await assert.rejects(InferenceRunner.load(modelBytes, renamed), ModelSpecMismatchError)
      const wrongShape: ModelManifest = { ...manifest, outputs: [{ ...manifest.outputs[0], shape: [1, 12] }] }
      await assert.rejects(InferenceRunner.load(modelBytes, wrongShape), ModelSpecMismatchError)
    })

    it('throws after close()', async function () {
      const runner = await InferenceRunner.load(modelBytes, manifest)
      await runner.close()
      await runner.close()
      await assert.rejects(runner.run(sampleInput()), InferenceError)
    })

    describe('task input validation', function () {
      let runner: InferenceRunner
      before(async function () { runner = await InferenceRunner.load(modelBytes, manifest) })
      after(async function () { await runner.close() })

      it('accepts an input without dims when the shape is fixed', async function () {
        const withDims = await runner.run(sampleInput())
        const withoutDims = await runner.run(utf8(JSON.stringify({ x: { data: SAMPLE_X } })))
        assert.equal(toHex(withDims.resultHash), toHex(withoutDims.resultHash))
      })

      const bad: Array<[string, Uint8Array, RegExp]> = [
        ['not JSON', utf8('{"x": [1, 2'), /not UTF-8 JSON/],
        ['NaN literal (not JSON)', utf8(`{"x":{"data":[NaN${',0'.repeat(15)}]}}`), /not UTF-8 JSON/],
        ['invalid UTF-8', new Uint8Array([0x7b, 0xff, 0x7d]), /not UTF-8 JSON/],
        ['a JSON array', utf8('[1,2,3]'), /JSON object/],
        ['wrong input name', utf8(JSON.stringify({ image: { data: SAMPLE_X } })), /unknown input "image".*"x"/],
        ['missing input', utf8('{}'), /input "x" is missing/],
        ['wrong length', utf8(JSON.stringify({ x: { data: SAMPLE_X.slice(1) } })), /15 values but dims \[1,16\] need 16/],
        ['wrong dims', utf8(JSON.stringify({ x: { dims: [2, 8], data: SAMPLE_X } })), /dims \[2,8\] do not fit/],
        ['null element (NaN serialised by JSON.stringify)', utf8(JSON.stringify({ x: { data: [Number.NaN, ...SAMPLE_X.slice(1)] } })), /data\[0\] must be a finite number/],
        ['string element', utf8(JSON.stringify({ x: { data: ['1', ...SAMPLE_X.slice(1)] } })), /data\[0\] must be a finite number/],
        ['float32 overflow', utf8(JSON.stringify({ x: { data: [1e39, ...SAMPLE_X.slice(1)] } })), /overflows float32/],
        ['unknown field', utf8(JSON.stringify({ x: { data: SAMPLE_X, dtype: 'float32' } })), /unknown field "dtype"/],
        ['data not an array', utf8(JSON.stringify({ x: { data: 3 } })), /data must be an array/]
      ]
      for (const [what, input, message] of bad) {
        it(`rejects ${what} with InputError`, async function () {
          await assert.rejects(runner.run(input), (err: unknown) => {
            assert.ok(err instanceof InputError, `expected InputError, got ${String(err)}`)
            assert.match(err.message, message)
            return true
          })
        })
      }
    })
  })

  describe('loadModelDir', function () {
    let dir: string
    beforeEach(async function () { dir = await mkdtemp(join(tmpdir(), 'poi-model-')) })
    afterEach(async function () { await rm(dir, { recursive: true, force: true }) })

    it('names the missing file', async function () {
      await assert.rejects(loadModelDir(join(dir, 'absent')), (err: unknown) => {
        assert.ok(err instanceof ModelDirError)
        assert.match(err.message, /absent\/manifest\.json.*ENOENT/)
        return true
      })
      await writeFile(join(dir, 'manifest.json'), formatManifestFile(manifest))
      await assert.rejects(loadModelDir(dir), /model\.onnx: cannot read the model \(ENOENT\)/)
    })

    it('names the malformed manifest and its bad field', async function () {
      await writeFile(join(dir, 'model.onnx'), modelBytes)
      await writeFile(join(dir, 'manifest.json'), '{ not json')
      await assert.rejects(loadModelDir(dir), (err: unknown) => err instanceof ModelDirError && /manifest\.json: is not valid JSON/.test(err.message))
      await writeFile(join(dir, 'manifest.json'), JSON.stringify({ ...manifest, agreement: 'median' }))
      await assert.rejects(loadModelDir(dir), (err: unknown) => err instanceof ModelDirError && /manifest\.json: invalid model manifest: agreement/.test(err.message))
    })

    it('reads a directory written elsewhere and returns the model id', async function () {
      await mkdir(join(dir, 'm'))
      await writeFile(join(dir, 'm', 'model.onnx'), modelBytes)
      await writeFile(join(dir, 'm', 'manifest.json'), JSON.stringify(manifest))
      const loaded = await loadModelDir(join(dir, 'm'))
      assert.equal(toHex(loaded.modelId), toHex(modelIdOf(manifest)))
    })
  })
})
