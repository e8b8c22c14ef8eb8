/**
 * Builds the shipped demo model reproducibly: a 16→32→10 MLP classifier with weights drawn
 * from a fixed-seed PRNG, encoded as an ONNX ModelProto with our own protons codec.
 *
 *   node dist/node/inference/build-model.js [--out <dir>]
 *
 * writes <dir>/model.onnx and <dir>/manifest.json (default: the shipped model directory).
 * Every run produces the same bytes: no Math.random, no clock, no host-dependent float math
 * (only multiplications by exact constants, stored through Float32Array).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ModelManifest } from './manifest.js'
import { chunkLayoutOf, modelIdOf, modelIdToString, parseManifest, sha256Hex } from './manifest.js'
import { AttributeProto, ModelProto } from './onnx.js'
import type { GraphProto, NodeProto, TensorProto, TypeProto, ValueInfoProto } from './onnx.js'
import { ONNX_DTYPE_CODES } from './tensor.js'
import { MANIFEST_FILE, MODEL_FILE, SHIPPED_MODEL_DIR } from './paths.js'

export const MLP_MODEL_NAME = 'mlp-classifier'
export const MLP_SEED = 0x504f4931 // "POI1"
export const MLP_INPUT_SIZE = 16
export const MLP_HIDDEN_SIZE = 32
export const MLP_CLASSES = 10

/** IR version 8 and opset 13 are read by every onnxruntime since 1.10, and opset 13 has Softmax over the last axis by default. */
export const ONNX_IR_VERSION = 8n
export const ONNX_OPSET = 13n

/** The onnxruntime version the shipped manifest is pinned to (constant, so rebuilding is reproducible). */
export const PINNED_ONNXRUNTIME_VERSION = '1.30.0'

// Uniform init bounds; powers of two so scaling is exact on every host.
const HIDDEN_WEIGHT_BOUND = 0.5
const OUTPUT_WEIGHT_BOUND = 0.5
const BIAS_BOUND = 0.125

const ONNX_FLOAT = ONNX_DTYPE_CODES.float32

/** mulberry32: 32-bit state, integer ops only, so identical on every JS engine. */
export function mulberry32 (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
}

/** n float32 values uniform in [-bound, bound). u/2^32 and the scaling are exact in float64. */
function uniform (next: () => number, n: number, bound: number): Float32Array {
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) out[i] = (next() / 2 ** 32 * 2 - 1) * bound
  return out
}

function littleEndianBytes (values: Float32Array): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(values.length * 4)
  const view = new DataView(bytes.buffer)
  values.forEach((v, i) => { view.setFloat32(i * 4, v, true) })
  return bytes
}

function floatInitializer (name: string, dims: number[], values: Float32Array): TensorProto {
  return {
    name,
    dims: dims.map(BigInt),
    dataType: ONNX_FLOAT,
    rawData: littleEndianBytes(values)
  }
}

function floatTensorType (dims: number[]): TypeProto {
  return {
    tensorType: {
      elemType: ONNX_FLOAT,
      shape: { dim: dims.map(d => ({ dimValue: BigInt(d) })) }
    }
  }
}

function valueInfo (name: string, dims: number[]): ValueInfoProto {
  return { name, type: floatTensorType(dims) }
}

function gemm (name: string, inputs: string[], output: string): NodeProto {
  // weights are stored [out, in] (the PyTorch Linear layout), hence transB = 1
  return {
    name,
    opType: 'Gemm',
    input: inputs,
    output: [output],
    attribute: [{ name: 'transB', type: AttributeProto.AttributeType.INT, i: 1n, floats: [], ints: [], strings: [] }]
  }
}

function node (name: string, opType: string, inputs: string[], output: string): NodeProto {
  return { name, opType, input: inputs, output: [output], attribute: [] }
}

export interface MlpWeights {
  /** [hidden, input], row-major */
  w1: Float32Array
  b1: Float32Array
  /** [classes, hidden], row-major */
  w2: Float32Array
  b2: Float32Array
}

/** The seeded weights, in the order they are drawn (so a reference implementation can recompute the model). */
export function buildMlpClassifierWeights (seed: number = MLP_SEED): MlpWeights {
  const next = mulberry32(seed)
  const w1 = uniform(next, MLP_HIDDEN_SIZE * MLP_INPUT_SIZE, HIDDEN_WEIGHT_BOUND)
  const b1 = uniform(next, MLP_HIDDEN_SIZE, BIAS_BOUND)
  const w2 = uniform(next, MLP_CLASSES * MLP_HIDDEN_SIZE, OUTPUT_WEIGHT_BOUND)
  const b2 = uniform(next, MLP_CLASSES, BIAS_BOUND)
  return { w1, b1, w2, b2 }
}

/** The ONNX bytes of the seeded MLP classifier: x[1,16] → Gemm → Relu → Gemm → Softmax → probs[1,10]. */
export function buildMlpClassifierModel (seed: number = MLP_SEED): Uint8Array {
  const { w1, b1, w2, b2 } = buildMlpClassifierWeights(seed)

  const graph: GraphProto = {
    name: MLP_MODEL_NAME,
    node: [
      gemm('fc1', ['x', 'fc1.weight', 'fc1.bias'], 'hidden'),
      node('relu1', 'Relu', ['hidden'], 'hidden_relu'),
      gemm('fc2', ['hidden_relu', 'fc2.weight', 'fc2.bias'], 'logits'),
      node('softmax', 'Softmax', ['logits'], 'probs')
    ],
    initializer: [
      floatInitializer('fc1.weight', [MLP_HIDDEN_SIZE, MLP_INPUT_SIZE], w1),
      floatInitializer('fc1.bias', [MLP_HIDDEN_SIZE], b1),
      floatInitializer('fc2.weight', [MLP_CLASSES, MLP_HIDDEN_SIZE], w2),
      floatInitializer('fc2.bias', [MLP_CLASSES], b2)
    ],
    input: [valueInfo('x', [1, MLP_INPUT_SIZE])],
    output: [valueInfo('probs', [1, MLP_CLASSES])],
    valueInfo: []
  }
  return ModelProto.encode({
    irVersion: ONNX_IR_VERSION,
    producerName: 'poi build-model',
    producerVersion: '1',
    modelVersion: 1n,
    docString: `seeded MLP classifier (mulberry32 seed 0x${seed.toString(16)}), demo model of the poi network`,
    graph,
    opsetImport: [{ domain: '', version: ONNX_OPSET }]
  })
}

/** The manifest that pins how the shipped model runs and how operators agree on its output. */
export function buildMlpClassifierManifest (modelBytes: Uint8Array): ModelManifest {
  return parseManifest({
    version: 1,
    name: MLP_MODEL_NAME,
    format: 'onnx',
    size: modelBytes.length,
    modelHash: sha256Hex(modelBytes),
    ...chunkLayoutOf(modelBytes),
    runtime: {
      onnxruntime: PINNED_ONNXRUNTIME_VERSION,
      graphOptimizationLevel: 'all',
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential'
    },
    // probabilities in [0,1] to 2^-16: far coarser than float32 kernel noise, fine enough to keep the ranking
    agreement: 'grid:16',
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, MLP_INPUT_SIZE] }],
    outputs: [{ name: 'probs', dtype: 'float32', shape: [1, MLP_CLASSES] }]
  })
}

/** Human-readable manifest file; the model id hashes the canonical form, not this layout. */
export function formatManifestFile (manifest: ModelManifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`
}

/** Write model.onnx and manifest.json into dir (created if missing). */
export async function writeModelDir (dir: string, modelBytes: Uint8Array, manifest: ModelManifest): Promise<void> {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, MODEL_FILE), modelBytes)
  await writeFile(join(dir, MANIFEST_FILE), formatManifestFile(manifest))
}

function parseArgs (argv: string[]): { out: string } {
  let out = SHIPPED_MODEL_DIR
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--out') {
      const value = argv[++i]
      if (value === undefined || value.startsWith('--')) throw new Error('--out needs a directory')
      out = resolve(value)
    } else if (arg === '--help' || arg === '-h') {
      process.stdout.write('usage: node dist/node/inference/build-model.js [--out <dir>]\n')
      process.exit(0)
    } else {
      throw new Error(`unknown argument ${arg}; usage: build-model [--out <dir>]`)
    }
  }
  return { out }
}

async function main (): Promise<void> {
  const { out } = parseArgs(process.argv.slice(2))
  const modelBytes = buildMlpClassifierModel()
  const manifest = buildMlpClassifierManifest(modelBytes)
  await writeModelDir(out, modelBytes, manifest)
  process.stdout.write(`wrote ${join(out, MODEL_FILE)} (${modelBytes.length} bytes, ${manifest.modelHash})\n`)
  process.stdout.write(`wrote ${join(out, MANIFEST_FILE)} (model id ${modelIdToString(modelIdOf(manifest))})\n`)
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`build-model: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  })
}
