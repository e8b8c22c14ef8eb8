import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { InferenceSession } from 'onnxruntime-node'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { bytesToHex, keccak256 } from 'viem'
import {
  AgreementRuleError, CanonicalOutputError, CanonicalizationError, InferenceError, InferenceRunner,
  InputError, ManifestError, ModelDirError, ModelHashMismatchError, ModelIdError, ModelSpecMismatchError,
  RuntimeVersionMismatchError, SHIPPED_MODEL_DIR, canonicalizeOutputs, decodeCanonicalOutput,
  formatCanonicalOutput, gridValue, installedOnnxruntimeVersion, loadModelDir, modelIdOf, modelIdToString,
  parseAgreementRule, parseManifest, parseModelId, type AgreementRule, type CreateSession,
  type ModelManifest, type OutputTensor
} from '../node/inference/index.js'
import {
  buildMlpClassifierManifest, buildMlpClassifierModel, buildMlpClassifierWeights, formatManifestFile
} from '../node/fixtures/index.js'

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/** A fixed 16-value input; any values work, these cover negatives, zero and the ReLU kink. */
const SAMPLE_X = Array.from({ length: 16 }, (_, i) => (i - 8) / 8)
const sampleInput = (x: number[] = SAMPLE_X): Uint8Array => utf8(JSON.stringify({ x: { dims: [1, 16], data: x } }))

/** Counts sessions so a test can prove onnxruntime never saw the bytes. */
function countingCreateSession (): { create: CreateSession, count: () => number } {
  let n = 0
  return {
    create: async (bytes, options) => { n++; return InferenceSession.create(bytes, options) },
    count: () => n
  }
}

describe('inference', function () {
  let modelBytes: Uint8Array
  let manifest: ModelManifest

  before(async function () {
    const dir = await loadModelDir(SHIPPED_MODEL_DIR)
    modelBytes = dir.modelBytes
    manifest = dir.manifest
  })

  describe('shipped model build', function () {
    it('rebuilds from the seed to the same bytes as the shipped file, every time', async function () {
      const shipped = new Uint8Array(await readFile(join(SHIPPED_MODEL_DIR, 'model.onnx')))
      const first = buildMlpClassifierModel()
      const second = buildMlpClassifierModel()
      assert.equal(hex(first), hex(second))
      assert.equal(hex(first), hex(shipped))
    })

    it('rebuilds the shipped manifest.json byte for byte', async function () {
      const shippedText = await readFile(join(SHIPPED_MODEL_DIR, 'manifest.json'), 'utf8')
      assert.equal(formatManifestFile(buildMlpClassifierManifest(buildMlpClassifierModel())), shippedText)
      assert.equal(manifest.agreement, 'grid:16')
      assert.equal(manifest.runtime.intraOpNumThreads, 1)
    })

    it('a different seed gives a different model', function () {
      assert.notEqual(hex(buildMlpClassifierModel(1)), hex(buildMlpClassifierModel()))
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
        const hashes = new Set<string>()
        for (let i = 0; i < 5; i++) {
          const result = await runner.run(sampleInput())
          assert.equal(result.resultHash.length, 32)
          assert.equal(bytesToHex(result.resultHash), keccak256(result.canonical))
          assert.ok(result.inferenceMs >= 0)
          const sum = Array.from(result.outputs.probs.data as Float32Array).reduce((a, b) => a + b, 0)
          assert.ok(Math.abs(sum - 1) < 1e-5)
          hashes.add(hex(result.resultHash))
        }
        assert.equal(hashes.size, 1)
      } finally {
        await runner.close()
      }
    })

    it('gives the same result hash with intraOpNumThreads 1 and 2 (separate sessions)', async function () {
      const twoThreads: ModelManifest = { ...manifest, runtime: { ...manifest.runtime, intraOpNumThreads: 2 } }
      assert.notEqual(hex(modelIdOf(twoThreads)), hex(modelIdOf(manifest)))
      const one = await InferenceRunner.load(modelBytes, manifest)
      const two = await InferenceRunner.load(modelBytes, twoThreads)
      try {
        for (const x of [SAMPLE_X, SAMPLE_X.map(v => -v * 3), SAMPLE_X.map((v, i) => i % 3 === 0 ? 0 : v + 0.1)]) {
          const a = await one.run(sampleInput(x))
          const b = await two.run(sampleInput(x))
          assert.equal(hex(a.resultHash), hex(b.resultHash))
        }
      } finally {
        await one.close()
        await two.close()
      }
    })

    it('different inputs give different result hashes', async function () {
      const runner = await InferenceRunner.load(modelBytes, manifest)
      try {
        const a = await runner.run(sampleInput())
        const b = await runner.run(sampleInput(SAMPLE_X.map(v => -v * 4)))
        assert.notEqual(hex(a.resultHash), hex(b.resultHash))
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

    it('refuses a runtime version other than the pinned one with onRuntimeMismatch "error", flags it with "warn"', async function () {
      const pinnedElsewhere: ModelManifest = { ...manifest, runtime: { ...manifest.runtime, onnxruntime: '0.0.1' } }
      const sessions = countingCreateSession()
      await assert.rejects(InferenceRunner.load(modelBytes, pinnedElsewhere, { onRuntimeMismatch: 'error', createSession: sessions.create }), RuntimeVersionMismatchError)
      assert.equal(sessions.count(), 0)
      const runner = await InferenceRunner.load(modelBytes, pinnedElsewhere)
      try {
        assert.deepEqual(runner.runtimeVersionMismatch, { pinned: '0.0.1', installed: installedOnnxruntimeVersion() })
      } finally {
        await runner.close()
      }
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
        assert.equal(hex(withDims.resultHash), hex(withoutDims.resultHash))
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
      assert.equal(hex(loaded.modelId), hex(modelIdOf(manifest)))
    })
  })

  describe('manifest', function () {
    const mutate = (patch: (m: Record<string, any>) => void): unknown => {
      const copy = structuredClone(manifest) as Record<string, any>
      patch(copy)
      return copy
    }
    const cases: Array<[string, (m: Record<string, any>) => void, string]> = [
      ['version 2', m => { m.version = 2 }, 'version'],
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

    it('model id is a CIDv1 (json, sha2-256) of the canonical JSON, independent of key order', async function () {
      const reordered = JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(manifest).reverse())))
      const id = modelIdOf(manifest)
      assert.equal(hex(modelIdOf(parseManifest(reordered))), hex(id))
      const cid = CID.decode(id)
      assert.equal(cid.version, 1)
      assert.equal(cid.code, 0x0200)
      const canonical = utf8(JSON.stringify(manifest, Object.keys(manifest).concat(Object.keys(manifest.runtime), 'name', 'dtype', 'shape').sort()))
      assert.equal(hex(cid.multihash.digest), hex((await sha256.digest(canonical)).digest))
      const text = modelIdToString(id)
      assert.match(text, /^bagaaiera/)
      assert.equal(hex(parseModelId(text)), hex(id))
    })

    it('parseModelId rejects text that is not a manifest id', async function () {
      assert.throws(() => parseModelId('hello'), ModelIdError)
      const rawCid = CID.createV1(raw.code, await sha256.digest(modelBytes))
      assert.throws(() => parseModelId(rawCid.toString()), /json codec/)
      assert.throws(() => modelIdToString(new Uint8Array([1, 2, 3])), ModelIdError)
    })
  })

  describe('agreement rules', function () {
    const spec = (name: string, dtype: OutputTensor['dtype'], shape: Array<number | null>): ModelManifest['outputs'][number] => ({ name, dtype, shape })
    const canon = (rule: AgreementRule, outputs: Record<string, OutputTensor>, specs = Object.entries(outputs).map(([n, t]) => spec(n, t.dtype, t.dims))): Uint8Array =>
      canonicalizeOutputs(outputs, { agreement: rule, outputs: specs })
    const f32 = (...v: number[]): OutputTensor => ({ dtype: 'float32', dims: [1, v.length], data: Float32Array.from(v) })
    /** float32 with arbitrary bit patterns (NaN payloads, -0) */
    const f32bits = (...bits: number[]): OutputTensor => ({ dtype: 'float32', dims: [bits.length], data: new Float32Array(Uint32Array.from(bits).buffer) })
    // header: "POIO", version 1, rule, u16 param, u16 count = 1, then name "t"
    const header = (rule: number, param: number): string => `504f494f01${rule.toString(16).padStart(2, '0')}${param.toString(16).padStart(4, '0')}0001` + '000174'

    it('parses only the canonical spelling of each rule', function () {
      for (const ok of ['exact', 'argmax', 'grid:0', 'grid:16', 'grid:52', 'topk:1', 'topk:5']) assert.equal(parseAgreementRule(ok), ok)
      for (const bad of ['Exact', 'grid:', 'grid:016', 'grid:-1', 'grid:53', 'grid:1.5', 'topk:0', 'topk:05', 'topk:2000', ' argmax', 'median', 16]) {
        assert.throws(() => parseAgreementRule(bad), AgreementRuleError, String(bad))
      }
    })

    describe('exact', function () {
      it('encodes dtype, dims and little-endian bytes, with -0 as +0 and every NaN as one quiet NaN', function () {
        const bytes = canon('exact', { t: f32bits(0x80000000, 0x7fc00001, 0xffc00000, 0x7f800001, 0x3f800000) })
        assert.equal(hex(bytes), header(0, 0) + '01' + '01' + '00000005' + '00000000' + '0000c07f'.repeat(3) + '0000803f')
        assert.equal(hex(canon('exact', { t: f32bits(0, 0x7fc00000, 0x7fc00000, 0x7fc00000, 0x3f800000) })), hex(bytes))
        const decoded = decodeCanonicalOutput(bytes)
        assert.equal(decoded.rule, 'exact')
        assert.equal(decoded.outputs[0].encoding, 'exact')
        assert.deepEqual(decoded.outputs[0].dims, [5])
      })

      it('normalises float64 the same way and keeps integer tensors raw', function () {
        const neg0 = canon('exact', { t: { dtype: 'float64', dims: [2], data: Float64Array.of(-0, Number.NaN) } })
        assert.equal(hex(neg0), header(0, 0) + '0b' + '01' + '00000002' + '0000000000000000' + '000000000000f87f')
        const ints = canon('exact', { t: { dtype: 'int64', dims: [2], data: BigInt64Array.of(-1n, 258n) } })
        assert.equal(hex(ints), header(0, 0) + '07' + '01' + '00000002' + 'ffffffffffffffff' + '0201000000000000')
      })

      it('distinguishes values one ulp apart', function () {
        assert.notEqual(hex(canon('exact', { t: f32bits(0x3f800000) })), hex(canon('exact', { t: f32bits(0x3f800001) })))
      })
    })

    describe('grid:k', function () {
      it('rounds half away from zero at the boundaries', function () {
        const cases: Array<[number, number, bigint]> = [
          [0.5, 0, 1n], [-0.5, 0, -1n], [1.5, 0, 2n], [2.5, 0, 3n], [-2.5, 0, -3n],
          [0.49999999999999994, 0, 0n], [-0, 0, 0n], [0.25, 1, 1n], [0.75, 1, 2n], [-0.25, 1, -1n],
          [0.2, 16, 13107n], // 0.2·65536 = 13107.2
          [2 ** 52 - 0.5, 0, 2n ** 52n], // would misround with floor(x + 0.5)
          [2 ** 62, 0, 2n ** 62n], [-(2 ** 63), 0, -(2n ** 63n)]
        ]
        for (const [x, k, want] of cases) assert.equal(gridValue(x, k), want, `round(${x}·2^${k})`)
      })

      it('rejects non-finite values and int64 overflow', function () {
        for (const x of [Number.NaN, Infinity, -Infinity]) assert.throws(() => gridValue(x, 16), CanonicalizationError)
        assert.throws(() => gridValue(2 ** 63, 0), /int64 range/)
        assert.throws(() => gridValue(3.4e38, 52), /int64 range/)
        assert.throws(() => canon('grid:16', { t: f32(0.1, Number.NaN) }), /output "t"\[1\]/)
      })

      it('encodes i64 grid steps with the k in the header and absorbs noise below 2^-k', function () {
        const bytes = canon('grid:2', { t: f32(0.25, -0.375, -0) })
        // 0.25·4 = 1, -0.375·4 = -1.5 → -2, -0 → 0
        assert.equal(hex(bytes), header(1, 2) + '01' + '02' + '00000001' + '00000003' + '0000000000000001' + 'fffffffffffffffe' + '0000000000000000')
        const a = canon('grid:16', { t: f32(0.3, 0.7) })
        const b = canon('grid:16', { t: { ...f32(0.3, 0.7), data: Float32Array.of(Math.fround(0.3) + 2 ** -25, Math.fround(0.7) - 2 ** -25) } })
        assert.equal(hex(a), hex(b))
        const decoded = decodeCanonicalOutput(bytes)
        const out = decoded.outputs[0]
        assert.ok(out.encoding === 'grid')
        assert.deepEqual(out.steps, [1n, -2n, 0n])
        assert.deepEqual(out.values, [0.25, -0.5, 0])
      })

      it('keeps integer outputs exact', function () {
        const t: OutputTensor = { dtype: 'int32', dims: [2], data: Int32Array.of(7, -1) }
        assert.equal(hex(canon('grid:8', { t })).slice(header(1, 8).length), '06' + '01' + '00000002' + '07000000' + 'ffffffff')
      })
    })

    describe('argmax', function () {
      it('picks the first index on ties, per row, as u32', function () {
        const t: OutputTensor = { dtype: 'float32', dims: [3, 4], data: Float32Array.of(0.1, 0.4, 0.4, 0.1, /**/ 0, -0, 0, 0, /**/ -3, -2, -1, -1) }
        assert.equal(hex(canon('argmax', { t })), header(2, 0) + '01' + '02' + '00000003' + '00000004' + '00000001' + '00000000' + '00000002')
      })

      it('ranks NaN above every number (as numpy.argmax)', function () {
        const bytes = canon('argmax', { t: f32(1, Infinity, Number.NaN, Number.NaN) })
        assert.deepEqual(decodeCanonicalOutput(bytes).outputs[0], { name: 't', dtype: 'float32', dims: [1, 4], encoding: 'argmax', labels: [2] })
      })

      it('works on int64 outputs and ignores noise that keeps the ranking', function () {
        const t: OutputTensor = { dtype: 'int64', dims: [3], data: BigInt64Array.of(-5n, 2n ** 60n, 2n ** 60n) }
        assert.deepEqual(decodeCanonicalOutput(canon('argmax', { t })).outputs[0], { name: 't', dtype: 'int64', dims: [3], encoding: 'argmax', labels: [1] })
        assert.equal(hex(canon('argmax', { t: f32(0.1, 0.6, 0.3) })), hex(canon('argmax', { t: f32(0.1000001, 0.5999, 0.30001) })))
      })

      it('refuses a scalar output', function () {
        assert.throws(() => canon('argmax', { t: { dtype: 'float32', dims: [], data: Float32Array.of(1) } }), CanonicalizationError)
      })
    })

    describe('topk:n', function () {
      it('orders by value desc then index asc, per row', function () {
        const t: OutputTensor = { dtype: 'float32', dims: [2, 5], data: Float32Array.of(0.1, 0.3, 0.1, 0.3, 0.2, /**/ 5, Number.NaN, -0, 0, 5) }
        const bytes = canon('topk:3', { t })
        assert.equal(hex(bytes), header(3, 3) + '01' + '02' + '00000002' + '00000005' +
          '00000001' + '00000003' + '00000004' + // 0.3 (1), 0.3 (3), 0.2 (4)
          '00000001' + '00000000' + '00000004') // NaN, then the tied 5s by index
        const out = decodeCanonicalOutput(bytes).outputs[0]
        assert.ok(out.encoding === 'topk')
        assert.deepEqual(out.labels, [[1, 3, 4], [1, 0, 4]])
      })

      it('refuses n larger than the last axis', function () {
        assert.throws(() => canon('topk:4', { t: f32(1, 2, 3) }), /at least 4 values/)
      })
    })

    describe('canonical output bytes', function () {
      it('checks outputs against the manifest: missing, dtype, dims', function () {
        const specs = [spec('probs', 'float32', [1, 3])]
        assert.throws(() => canon('exact', {}, specs), /output "probs" is missing/)
        assert.throws(() => canon('exact', { probs: { dtype: 'float64', dims: [1, 3], data: Float64Array.of(1, 2, 3) } }, specs), /dtype float64/)
        assert.throws(() => canon('exact', { probs: f32(1, 2) }, specs), /dims \[1,2\]/)
        assert.throws(() => canon('exact', { probs: { dtype: 'float32', dims: [1, 3], data: Float32Array.of(1) } }, specs), /1 values/)
      })

      it('encodes several outputs in manifest order', function () {
        const outputs = { b: f32(1), a: f32(2) }
        const ab = canon('exact', outputs, [spec('a', 'float32', [1, 1]), spec('b', 'float32', [1, 1])])
        const ba = canon('exact', outputs, [spec('b', 'float32', [1, 1]), spec('a', 'float32', [1, 1])])
        assert.notEqual(hex(ab), hex(ba))
        assert.deepEqual(decodeCanonicalOutput(ab).outputs.map(o => o.name), ['a', 'b'])
      })

      it('rejects malformed bytes', function () {
        const good = canon('exact', { t: f32(1, 2) })
        const flip = (i: number, v: number): Uint8Array => { const b = good.slice(); b[i] = v; return b }
        assert.throws(() => decodeCanonicalOutput(flip(0, 0x51)), /POIO/)
        assert.throws(() => decodeCanonicalOutput(flip(4, 2)), /version 2/)
        assert.throws(() => decodeCanonicalOutput(flip(5, 9)), /rule code 9/)
        assert.throws(() => decodeCanonicalOutput(good.subarray(0, good.length - 1)), /truncated/)
        assert.throws(() => decodeCanonicalOutput(Uint8Array.of(...good, 0)), /1 trailing bytes/)
        // non-canonical NaN in an exact tensor
        assert.throws(() => decodeCanonicalOutput(Uint8Array.of(...good.subarray(0, good.length - 4), 0x01, 0x00, 0xc0, 0x7f)), /non-canonical/)
        // a header claiming 2^32 × 2^32 elements must fail before allocating
        const huge = Uint8Array.from(Buffer.from(header(0, 0) + '01' + '02' + 'ffffffff' + 'ffffffff', 'hex'))
        assert.throws(() => decodeCanonicalOutput(huge), CanonicalOutputError)
        const argmax = canon('argmax', { t: f32(1, 2) })
        assert.throws(() => decodeCanonicalOutput(Uint8Array.of(...argmax.subarray(0, argmax.length - 1), 7)), /label 7 is out of range/)
      })

      it('formats outputs for people', async function () {
        assert.equal(formatCanonicalOutput(canon('exact', { probs: f32(0.0123, 0.9, 0.0877) })), 'probs = [0.0123, 0.9, 0.0877] (argmax 1)')
        assert.equal(formatCanonicalOutput(canon('grid:4', { probs: f32(0.0625, 0.7, 0.25) })), 'probs = [0.0625, 0.6875, 0.25] (argmax 1)')
        assert.equal(formatCanonicalOutput(canon('argmax', { probs: f32(0.0123, 0.9, 0.0877) })), 'probs: label = 1')
        assert.equal(formatCanonicalOutput(canon('topk:2', { probs: f32(0.0123, 0.9, 0.0877) })), 'probs: top-2 = [1, 2]')
        const long = formatCanonicalOutput(canon('exact', { v: { dtype: 'int32', dims: [20], data: Int32Array.from({ length: 20 }, (_, i) => i) } }))
        assert.match(long, /^v = \[0, 1, .*15, … 4 more\]$/)

        const runner = await InferenceRunner.load(modelBytes, manifest)
        try {
          const { canonical, outputs } = await runner.run(sampleInput())
          const probs = Array.from(outputs.probs.data as Float32Array)
          const line = formatCanonicalOutput(canonical)
          assert.match(line, new RegExp(`^probs = \\[.*\\] \\(argmax ${probs.indexOf(Math.max(...probs))}\\)$`))
        } finally {
          await runner.close()
        }
      })
    })
  })
})
