import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { poseidon16, poseidon2, poseidon3 } from 'poseidon-lite'
import {
  InferenceRunner, ModelProto, SHIPPED_INT8_MODEL_DIR, SHIPPED_MODEL_DIR, loadModelDir, type ModelManifest
} from '../node/inference/index.js'
import { circuitInputOf, circuitPublicSignals, compileOnnxToCircom, type CompiledCircuit } from '../node/inference/zk/circuit.js'
import {
  BN254_SCALAR_FIELD, commitTensor, packCommitmentElements, tensorCommitmentBytes, toFieldElement
} from '../node/inference/zk/commitments.js'
import { CircomError, SignalOutOfField, UnsupportedOnnxError, WitnessError } from '../node/inference/zk/errors.js'
import {
  type CompiledCircuitFiles, compileCircuit, compileModelCircuit, computeWitness, readCircuitOutputs, readSignalIndex
} from '../node/inference/zk/toolchain.js'
import {
  buildSeededQuantisedMlp, encodeQuantisedMlp, quantiseMlpClassifier, quantiseMlpInput
} from '../node/fixtures/index.js'
import { mulberry32 } from '../node/fixtures/build-model.js'
import { SAMPLE_X, utf8 } from './helpers/shipped-model.js'
import { quantisedMlpReference } from './helpers/quantised-reference.js'

/** circom2 on this 2-core machine compiles the shipped int8 circuit in about 10 s. */
const COMPILE_TIMEOUT_MS = 120_000
/** The payee the tests' witnesses name (any 20-byte address). */
const PROVER = 0xa11ce00000000000000000000000000000000b0bn

const int8Input = (x: readonly number[]): Uint8Array => utf8(JSON.stringify({ x: { dims: [1, x.length], data: x } }))

/** The shipped int8 model's graph, edited by `edit` and re-encoded. */
function editedInt8Model (bytes: Uint8Array, edit: (model: ModelProto) => void): Uint8Array {
  const model = ModelProto.decode(bytes)
  edit(model)
  return ModelProto.encode(model)
}

function refusal (fn: () => unknown): UnsupportedOnnxError {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof UnsupportedOnnxError, `expected UnsupportedOnnxError, got ${String(err)}`)
    assert.equal(err.code, 'ERR_ZK_UNSUPPORTED_ONNX')
    return err
  }
  assert.fail('the model was compiled, expected UnsupportedOnnxError')
}

describe('zk circuit: int8 ONNX → Circom', function () {
  let modelBytes: Uint8Array
  let manifest: ModelManifest

  before(async function () { ({ modelBytes, manifest } = await loadModelDir(SHIPPED_INT8_MODEL_DIR)) })

  describe('commitments', function () {
    it('writes int8 as v + 128 and int32 as four big-endian bytes of v + 2^31, 31 bytes per element', function () {
      assert.deepEqual(Array.from(tensorCommitmentBytes(Int8Array.from([-128, 0, 127]), 'int8')), [0, 128, 255])
      assert.deepEqual(Array.from(tensorCommitmentBytes(Int32Array.from([-(2 ** 31), -1, 258]), 'int32')),
        [0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0x80, 0, 1, 2])
      const elements = packCommitmentElements(tensorCommitmentBytes(new Int32Array(10), 'int32'))
      assert.equal(elements.length, 2) // 40 bytes: 31 + 9, the last not padded
      // bytes 31..39: the last byte of value 7, then values 8 and 9
      assert.equal(elements[1], 0x00_80000000_80000000n)
    })

    it('chains Poseidon from 0 over runs of up to 15 elements', function () {
      assert.equal(commitTensor(Int8Array.from([0]), 'int8'), poseidon2([0n, 128n]))
      const big = new Int8Array(31 * 16) // 16 elements: two runs, 15 then 1
      const e = BigInt(`0x${'80'.repeat(31)}`)
      const firstRun = poseidon16([0n, ...(Array(15).fill(e) as bigint[])])
      assert.equal(commitTensor(big, 'int8'), poseidon2([firstRun, e]))
      assert.notEqual(commitTensor(Int32Array.from([1]), 'int32'), commitTensor(Int32Array.from([2]), 'int32'))
      assert.equal(commitTensor(Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), 'int32'),
        poseidon3([0n, ...packCommitmentElements(tensorCommitmentBytes(Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), 'int32'))]))
    })

    it('refuses public signals outside the field', function () {
      assert.equal(toFieldElement('circuitId', '12'), 12n)
      assert.equal(toFieldElement('circuitId', BN254_SCALAR_FIELD - 1n), BN254_SCALAR_FIELD - 1n)
      for (const bad of [BN254_SCALAR_FIELD, -1n, BN254_SCALAR_FIELD.toString(), '-1', '0x10', '012', '']) {
        assert.throws(() => toFieldElement('outputCommitment', bad), (err: unknown) => err instanceof SignalOutOfField && err.signal === 'outputCommitment')
      }
    })
  })

  describe('compiler', function () {
    it('gives a deterministic circuit id: sha256 of the source with the id written as 0, first 31 bytes', function () {
      const a = compileOnnxToCircom(modelBytes)
      const b = compileOnnxToCircom(modelBytes)
      assert.equal(a.source, b.source)
      assert.equal(a.circuitId, b.circuitId)
      const statement = `circuitId === ${a.circuitId};`
      assert.ok(a.source.includes(statement))
      const digest = createHash('sha256').update(a.source.replace(statement, 'circuitId === 0;')).digest()
      assert.equal(a.circuitId, BigInt(`0x${digest.subarray(0, 31).toString('hex')}`))
      const other = compileOnnxToCircom(encodeQuantisedMlp(buildSeededQuantisedMlp({ inputSize: 16, hiddenSize: 32, classes: 10 })))
      assert.notEqual(other.circuitId, a.circuitId)
      assert.match(a.source, /component main \{public \[circuitId, inputCommitment, outputCommitment, prover\]\} = Model\(\);/)
    })

    it('proves every value stays in int32 and the Div dividend is ≥ 0', function () {
      const { bounds, inputShape, outputShape, outputDtype } = compileOnnxToCircom(modelBytes)
      assert.deepEqual([inputShape, outputShape, outputDtype], [[1, 16], [1, 10], 'int32'])
      const of = (tensor: string): { min: bigint, max: bigint } => {
        const b = bounds.find(x => x.tensor === tensor)
        assert.ok(b !== undefined, tensor)
        return b
      }
      assert.deepEqual(of('x'), { ...of('x'), min: -128n, max: 127n })
      assert.equal(of('hidden_relu').min, 0n)
      assert.equal(of('requant.rounded').min > 0n, true)
      assert.deepEqual([of('hidden_int8').min, of('hidden_int8').max], [0n, 127n])
      for (const b of bounds) assert.ok(b.min >= -(2n ** 31n) && b.max < 2n ** 31n, `${b.tensor} [${b.min}, ${b.max}]`)
    })

    it('refuses a float model (Gemm), naming the node and op', async function () {
      const { modelBytes: floatBytes } = await loadModelDir(SHIPPED_MODEL_DIR)
      const err = refusal(() => compileOnnxToCircom(floatBytes))
      assert.deepEqual([err.node, err.op], ['fc1', 'Gemm'])
      assert.match(err.message, /node "fc1" \(Gemm\) is not supported .*quantise the model and use MatMulInteger/)
    })

    it('refuses an op outside the subset (Sigmoid), naming the node and op', function () {
      const bytes = editedInt8Model(modelBytes, model => { model.graph!.node[2].opType = 'Sigmoid' })
      const err = refusal(() => compileOnnxToCircom(bytes))
      assert.equal(err.node, 'relu1')
      assert.equal(err.op, 'Sigmoid')
      assert.match(err.message, /node "relu1" \(Sigmoid\) is not supported/)
    })

    it('refuses an int32 weight where MatMulInteger needs int8, naming the initializer', function () {
      const bytes = editedInt8Model(modelBytes, model => {
        const w = model.graph!.initializer.find(t => t.name === 'fc1.weight')!
        w.dataType = 6 // int32: 4 bytes per value, so the raw data no longer fits the shape either
      })
      const err = refusal(() => compileOnnxToCircom(bytes))
      assert.match(err.message, /initializer "fc1.weight"/)
    })

    it('refuses a float MatMul', function () {
      const bytes = editedInt8Model(modelBytes, model => { model.graph!.node[0].opType = 'MatMul' })
      const err = refusal(() => compileOnnxToCircom(bytes))
      assert.equal(err.op, 'MatMul')
      assert.match(err.message, /use MatMulInteger/)
    })

    it('refuses a Div whose dividend may be negative (no Relu before the requantisation)', function () {
      const bytes = editedInt8Model(modelBytes, model => {
        const graph = model.graph!
        graph.node.splice(2, 1) // drop relu1
        graph.node[2].input[0] = 'hidden'
      })
      const err = refusal(() => compileOnnxToCircom(bytes))
      assert.equal(err.op, 'Div')
      assert.match(err.message, /may be negative/)
    })

    it('refuses a Cast to int8 that could wrap (no Clip before it)', function () {
      const bytes = editedInt8Model(modelBytes, model => {
        const graph = model.graph!
        const clip = graph.node.findIndex(n => n.opType === 'Clip')
        graph.node[clip + 1].input[0] = graph.node[clip].input[0]
        graph.node.splice(clip, 1)
      })
      const err = refusal(() => compileOnnxToCircom(bytes))
      assert.equal(err.op, 'Cast')
      assert.match(err.message, /wraps/)
    })

    it('refuses a requantisation multiplier that would overflow int32 in onnxruntime', function () {
      const q = quantiseMlpClassifier()
      const err = refusal(() => compileOnnxToCircom(encodeQuantisedMlp({ ...q, multiplier: q.multiplier * 64 })))
      assert.equal(err.op, 'Mul')
      assert.match(err.message, /overflow int32/)
    })
  })

  describe('circuit against onnxruntime', function () {
    let dir: string
    let compiled: CompiledCircuit
    let files: CompiledCircuitFiles
    let runner: InferenceRunner

    before(async function () {
      this.timeout(COMPILE_TIMEOUT_MS)
      dir = await mkdtemp(join(tmpdir(), 'poi-zk-circuit-'))
      const lines: string[] = []
      ;({ circuit: compiled, files } = await compileModelCircuit(modelBytes, dir, { onProgress: e => lines.push(e.message) }))
      assert.ok(lines.some(l => /non-linear constraints/.test(l)), 'circom reported its progress')
      runner = await InferenceRunner.load(modelBytes, manifest)
    })

    after(async function () {
      await runner?.close()
      if (dir !== undefined) await rm(dir, { recursive: true, force: true })
    })

    const q = quantiseMlpClassifier()
    const next = mulberry32(0x7a6b)
    const inputs: Record<string, number[]> = {
      sample: quantiseMlpInput(SAMPLE_X),
      'all 127': Array(16).fill(127),
      'all -128': Array(16).fill(-128),
      zeros: Array(16).fill(0),
      'saturates the clip': Array.from({ length: 16 }, (_, i) => (q.w1[i * q.hiddenSize] >= 0 ? 127 : -128)),
      'alternating extremes': Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? -128 : 127)),
      random: Array.from({ length: 16 }, () => (next() % 256) - 128)
    }

    it(`compiles the shipped int8 model to a small circuit with four public inputs`, function () {
      assert.equal(files.publicInputs, 4)
      assert.ok(files.constraints > 0 && files.constraints < 2 ** 15, `${files.constraints} constraints`)
      this.test!.title += ` (${files.constraints} constraints)`
    })

    for (const [label, x] of Object.entries(inputs)) {
      it(`computes onnxruntime's logits exactly: ${label}`, async function () {
        const { outputs } = await runner.run(int8Input(x))
        const logits = outputs.logits.data as Int32Array
        const input = circuitInputOf(compiled, Int8Array.from(x), logits, PROVER)
        assert.deepEqual(circuitPublicSignals(input), [compiled.circuitId, commitTensor(Int8Array.from(x), 'int8'), commitTensor(logits, 'int32'), PROVER].map(String))
        const witness = await computeWitness(files.wasmPath, input)
        assert.deepEqual(await readCircuitOutputs(files.symPath, witness, 10), Array.from(logits, BigInt))
        assert.deepEqual(Array.from(logits), quantisedMlpReference(q, x).logits)
        // public signals sit at wires 1..4 in spec16's order
        const index = await readSignalIndex(files.symPath)
        assert.deepEqual([index.get('main.circuitId'), index.get('main.inputCommitment'), index.get('main.outputCommitment'), index.get('main.prover')], [1, 2, 3, 4])
        assert.deepEqual(witness.slice(1, 5), [compiled.circuitId, commitTensor(Int8Array.from(x), 'int8'), commitTensor(logits, 'int32'), PROVER])
      })
    }

    describe('refuses a witness whose public signals do not match the model run', function () {
      const x = inputs.sample
      const good = (): { circuitId: bigint, inputCommitment: bigint, outputCommitment: bigint, prover: bigint, logits: Int32Array } => {
        const logits = Int32Array.from(quantisedMlpReference(q, x).logits)
        return { circuitId: compiled.circuitId, inputCommitment: commitTensor(Int8Array.from(x), 'int8'), outputCommitment: commitTensor(logits, 'int32'), prover: PROVER, logits }
      }

      it('accepts the right signals (so the refusals below are about the one wrong value)', async function () {
        const { logits, ...signals } = good()
        const witness = await computeWitness(files.wasmPath, { ...signals, x })
        assert.deepEqual(await readCircuitOutputs(files.symPath, witness, 10), Array.from(logits, BigInt))
      })

      it('a wrong output commitment (one logit off by one)', async function () {
        const { logits, ...signals } = good()
        logits[3] += 1
        await assert.rejects(computeWitness(files.wasmPath, { ...signals, outputCommitment: commitTensor(logits, 'int32'), x }),
          (err: unknown) => err instanceof WitnessError && err.code === 'ERR_ZK_WITNESS' && /constraint failed/.test(err.message))
      })

      it('a wrong input commitment', async function () {
        const { logits: _, ...signals } = good()
        const other = Int8Array.from(x, (v, i) => (i === 0 ? v + 1 : v))
        await assert.rejects(computeWitness(files.wasmPath, { ...signals, inputCommitment: commitTensor(other, 'int8'), x }), WitnessError)
      })

      it('another circuit id', async function () {
        const { logits: _, ...signals } = good()
        await assert.rejects(computeWitness(files.wasmPath, { ...signals, circuitId: compiled.circuitId + 1n, x }), WitnessError)
      })

      it('a public signal outside the field (r + the right commitment would pass modulo r)', async function () {
        const { logits: _, ...signals } = good()
        await assert.rejects(computeWitness(files.wasmPath, { ...signals, outputCommitment: signals.outputCommitment + BN254_SCALAR_FIELD, x }),
          (err: unknown) => err instanceof SignalOutOfField && err.signal === 'outputCommitment')
      })

      it('an input outside int8', async function () {
        const { logits: _, ...signals } = good()
        const wide = [...x]
        wide[0] = 128
        await assert.rejects(computeWitness(files.wasmPath, { ...signals, x: wide }), WitnessError)
      })
    })
  })

  describe('toolchain errors', function () {
    it('reports circom\'s message for a source it refuses', async function () {
      this.timeout(COMPILE_TIMEOUT_MS)
      const dir = await mkdtemp(join(tmpdir(), 'poi-zk-circom-error-'))
      try {
        await assert.rejects(compileCircuit('pragma circom 2.1.0;\ntemplate T() { signal input a; b <== a; }\ncomponent main = T();\n', dir),
          (err: unknown) => err instanceof CircomError && err.code === 'ERR_ZK_CIRCOM' && /Undeclared symbol/.test(err.output) && err.message.includes(err.output))
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    })
  })
})
