import assert from 'node:assert/strict'
import {
  AgreementRuleError, CanonicalOutputError, CanonicalizationError, InferenceRunner, SHIPPED_MODEL_DIR, canonicalizeOutputs,
  decodeCanonicalOutput, formatCanonicalOutput, gridValue, loadModelDir, parseAgreementRule, type AgreementRule,
  type ModelManifest, type OutputTensor
} from '../node/inference/index.js'
import { toHex } from '../protocols/wire/index.js'
import { sampleInput } from './helpers/shipped-model.js'

describe('inference', function () {
  let modelBytes: Uint8Array
  let manifest: ModelManifest

  before(async function () { ({ modelBytes, manifest } = await loadModelDir(SHIPPED_MODEL_DIR)) })

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
        assert.equal(toHex(bytes), header(0, 0) + '01' + '01' + '00000005' + '00000000' + '0000c07f'.repeat(3) + '0000803f')
        assert.equal(toHex(canon('exact', { t: f32bits(0, 0x7fc00000, 0x7fc00000, 0x7fc00000, 0x3f800000) })), toHex(bytes))
        const decoded = decodeCanonicalOutput(bytes)
        assert.equal(decoded.rule, 'exact')
        assert.equal(decoded.outputs[0].encoding, 'exact')
        assert.deepEqual(decoded.outputs[0].dims, [5])
      })

      it('normalises float64 the same way and keeps integer tensors raw', function () {
        const neg0 = canon('exact', { t: { dtype: 'float64', dims: [2], data: Float64Array.of(-0, Number.NaN) } })
        assert.equal(toHex(neg0), header(0, 0) + '0b' + '01' + '00000002' + '0000000000000000' + '000000000000f87f')
        const ints = canon('exact', { t: { dtype: 'int64', dims: [2], data: BigInt64Array.of(-1n, 258n) } })
        assert.equal(toHex(ints), header(0, 0) + '07' + '01' + '00000002' + 'ffffffffffffffff' + '0201000000000000')
      })

      it('distinguishes values one ulp apart', function () {
        assert.notEqual(toHex(canon('exact', { t: f32bits(0x3f800000) })), toHex(canon('exact', { t: f32bits(0x3f800001) })))
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
        assert.equal(toHex(bytes), header(1, 2) + '01' + '02' + '00000001' + '00000003' + '0000000000000001' + 'fffffffffffffffe' + '0000000000000000')
        const a = canon('grid:16', { t: f32(0.3, 0.7) })
        const b = canon('grid:16', { t: { ...f32(0.3, 0.7), data: Float32Array.of(Math.fround(0.3) + 2 ** -25, Math.fround(0.7) - 2 ** -25) } })
        assert.equal(toHex(a), toHex(b))
        const decoded = decodeCanonicalOutput(bytes)
        const out = decoded.outputs[0]
        assert.ok(out.encoding === 'grid')
        assert.deepEqual(out.steps, [1n, -2n, 0n])
        assert.deepEqual(out.values, [0.25, -0.5, 0])
      })

      it('keeps integer outputs exact', function () {
        const t: OutputTensor = { dtype: 'int32', dims: [2], data: Int32Array.of(7, -1) }
        assert.equal(toHex(canon('grid:8', { t })).slice(header(1, 8).length), '06' + '01' + '00000002' + '07000000' + 'ffffffff')
      })
    })

    describe('argmax', function () {
      it('picks the first index on ties, per row, as u32', function () {
        const t: OutputTensor = { dtype: 'float32', dims: [3, 4], data: Float32Array.of(0.1, 0.4, 0.4, 0.1, /**/ 0, -0, 0, 0, /**/ -3, -2, -1, -1) }
        assert.equal(toHex(canon('argmax', { t })), header(2, 0) + '01' + '02' + '00000003' + '00000004' + '00000001' + '00000000' + '00000002')
      })

      it('ranks NaN above every number (as numpy.argmax)', function () {
        const bytes = canon('argmax', { t: f32(1, Infinity, Number.NaN, Number.NaN) })
        assert.deepEqual(decodeCanonicalOutput(bytes).outputs[0], { name: 't', dtype: 'float32', dims: [1, 4], encoding: 'argmax', labels: [2] })
      })

      it('works on int64 outputs and ignores noise that keeps the ranking', function () {
        const t: OutputTensor = { dtype: 'int64', dims: [3], data: BigInt64Array.of(-5n, 2n ** 60n, 2n ** 60n) }
        assert.deepEqual(decodeCanonicalOutput(canon('argmax', { t })).outputs[0], { name: 't', dtype: 'int64', dims: [3], encoding: 'argmax', labels: [1] })
        assert.equal(toHex(canon('argmax', { t: f32(0.1, 0.6, 0.3) })), toHex(canon('argmax', { t: f32(0.1000001, 0.5999, 0.30001) })))
      })

      it('refuses a scalar output', function () {
        assert.throws(() => canon('argmax', { t: { dtype: 'float32', dims: [], data: Float32Array.of(1) } }), CanonicalizationError)
      })
    })

    describe('topk:n', function () {
      it('orders by value desc then index asc, per row', function () {
        const t: OutputTensor = { dtype: 'float32', dims: [2, 5], data: Float32Array.of(0.1, 0.3, 0.1, 0.3, 0.2, /**/ 5, Number.NaN, -0, 0, 5) }
        const bytes = canon('topk:3', { t })
        assert.equal(toHex(bytes), header(3, 3) + '01' + '02' + '00000002' + '00000005' +
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
        assert.notEqual(toHex(ab), toHex(ba))
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
        // A single sigmoid score is printed as its value: an "argmax 0" of one value says nothing.
        assert.equal(formatCanonicalOutput(canon('exact', { score: f32(0.7311) })), 'score = 0.7311')
        assert.equal(formatCanonicalOutput(canon('grid:4', { score: f32(0.7) })), 'score = 0.6875')
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
