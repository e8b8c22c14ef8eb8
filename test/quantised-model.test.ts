import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  InferenceRunner, SHIPPED_INT8_MODEL_DIR, SHIPPED_MODEL_DIR, loadModelDir, type TensorData
} from '../node/inference/index.js'
import {
  buildMlpClassifierInt8Manifest, buildMlpClassifierInt8Model, buildSeededQuantisedMlp, buildSeededQuantisedModel, encodeQuantisedMlp,
  formatManifestFile, quantiseMlpClassifier, quantiseMlpInput, requantiser
} from '../node/fixtures/index.js'
import { toHex } from '../protocols/wire/index.js'
import { SAMPLE_X, sampleInput, utf8 } from './helpers/shipped-model.js'
import { quantisedMlpReference } from './helpers/quantised-reference.js'

const int8Input = (x: readonly number[]): Uint8Array => utf8(JSON.stringify({ x: { dims: [1, x.length], data: x } }))
const argmax = (data: TensorData): number => {
  const values = Array.from(data as ArrayLike<number>)
  return values.indexOf(Math.max(...values))
}

describe('quantised models', function () {
  describe('shipped int8 MLP build', function () {
    it('rebuilds to the same bytes as the shipped model.onnx, every time', async function () {
      const shipped = new Uint8Array(await readFile(join(SHIPPED_INT8_MODEL_DIR, 'model.onnx')))
      const first = buildMlpClassifierInt8Model()
      assert.equal(toHex(first), toHex(buildMlpClassifierInt8Model()))
      assert.equal(toHex(first), toHex(shipped))
    })

    it('rebuilds the shipped manifest.json byte for byte: int8 in, int32 logits out, exact agreement', async function () {
      const shippedText = await readFile(join(SHIPPED_INT8_MODEL_DIR, 'manifest.json'), 'utf8')
      assert.equal(formatManifestFile(buildMlpClassifierInt8Manifest(buildMlpClassifierInt8Model())), shippedText)
      const { manifest } = await loadModelDir(SHIPPED_INT8_MODEL_DIR)
      assert.equal(manifest.agreement, 'exact')
      assert.deepEqual(manifest.inputs, [{ name: 'x', dtype: 'int8', shape: [1, 16] }])
      assert.deepEqual(manifest.outputs, [{ name: 'logits', dtype: 'int32', shape: [1, 10] }])
    })

    it('onnxruntime computes exactly the integer reference (matmul, bias, relu, requantise half up, clip)', async function () {
      const q = quantiseMlpClassifier()
      const { modelBytes, manifest } = await loadModelDir(SHIPPED_INT8_MODEL_DIR)
      const runner = await InferenceRunner.load(modelBytes, manifest)
      try {
        const saturating = Array.from({ length: 16 }, (_, i) => (q.w1[i * q.hiddenSize] >= 0 ? 127 : -128))
        for (const x of [quantiseMlpInput(SAMPLE_X), Array(16).fill(127), Array(16).fill(-128), saturating]) {
          const { outputs } = await runner.run(int8Input(x))
          assert.deepEqual(Array.from(outputs.logits.data as Int32Array), quantisedMlpReference(q, x).logits)
        }
        assert.ok(quantisedMlpReference(q, saturating).hidden.includes(127), 'the saturating input reaches the clip')
      } finally {
        await runner.close()
      }
    })

    it('ranks classes like the float model on the sample input', async function () {
      const float = await loadModelDir(SHIPPED_MODEL_DIR)
      const int8 = await loadModelDir(SHIPPED_INT8_MODEL_DIR)
      const floatRunner = await InferenceRunner.load(float.modelBytes, float.manifest)
      const int8Runner = await InferenceRunner.load(int8.modelBytes, int8.manifest)
      try {
        const probs = (await floatRunner.run(sampleInput())).outputs.probs.data
        const logits = (await int8Runner.run(int8Input(quantiseMlpInput(SAMPLE_X)))).outputs.logits.data
        assert.equal(argmax(logits), argmax(probs))
      } finally {
        await floatRunner.close()
        await int8Runner.close()
      }
    })
  })

  describe('seeded quantised models (benchmarks)', function () {
    it('builds 784→128→10 from a seed, reproducibly, and onnxruntime agrees with the reference', async function () {
      const { model: q, modelBytes: bytes, manifest } = buildSeededQuantisedModel({ inputSize: 784, hiddenSize: 128, classes: 10 })
      assert.equal(manifest.name, 'fc-int8-784x128x10')
      assert.equal(toHex(bytes), toHex(encodeQuantisedMlp(buildSeededQuantisedMlp({ inputSize: 784, hiddenSize: 128, classes: 10 }))))
      assert.notEqual(toHex(bytes), toHex(encodeQuantisedMlp(buildSeededQuantisedMlp({ inputSize: 784, hiddenSize: 128, classes: 10, seed: 7 }))))
      const runner = await InferenceRunner.load(bytes, manifest)
      try {
        const x = Array.from({ length: 784 }, (_, i) => ((i * 37) % 256) - 128)
        const { outputs } = await runner.run(int8Input(x))
        const reference = quantisedMlpReference(q, x)
        assert.deepEqual(Array.from(outputs.logits.data as Int32Array), reference.logits)
        // the requantiser keeps a typical input inside the int8 range without flattening it
        assert.ok(new Set(reference.hidden).size > 10, `hidden layer too coarse: ${reference.hidden.join(',')}`)
      } finally {
        await runner.close()
      }
    })

    it('refuses sizes that are not positive integers', function () {
      assert.throws(() => buildSeededQuantisedMlp({ inputSize: 0, hiddenSize: 4, classes: 2 }), /inputSize must be a positive integer/)
    })

    it('requantiser keeps multiplier·bound + 2^(shift-1) inside int32', function () {
      const { multiplier, shift } = requantiser(0.001, 10_000_000)
      assert.ok(multiplier * 10_000_000 + 2 ** (shift - 1) <= 2 ** 31 - 1)
      assert.ok(Math.abs(multiplier / 2 ** shift - 0.001) / 0.001 < 0.01)
      assert.throws(() => requantiser(1, 2 ** 31), RangeError)
    })
  })
})
