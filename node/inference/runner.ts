/**
 * Runs a pinned ONNX model on a task input and produces the canonical output and its hash.
 *
 * Trust boundary: model bytes, manifest and task input are untrusted. The model's sha256 is
 * checked against the manifest before onnxruntime sees a single byte (a parser bug in the
 * runtime must not be reachable with an unvetted model), and the input JSON is checked
 * against the manifest's input spec before a tensor is built.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { logger } from '@libp2p/logger'
import { InferenceSession, Tensor, env as ortEnv } from 'onnxruntime-node'
import { keccak256 } from 'viem'
import { canonicalizeOutputs } from './agreement.js'
import { type ModelManifest, type TensorSpec, ManifestError, modelIdOf, parseManifest, sha256Hex } from './manifest.js'
import { type OutputTensor, type TensorData, type TensorDtype, elementCount } from './tensor.js'
import { MANIFEST_FILE, MODEL_FILE } from './paths.js'
import { isTensorFile, parseTensorFileTaskInput } from './tensor-file.js'

const log = logger('poi:inference')

/** Largest task input we parse: the gossip inline limit is 64 KiB, stream-referenced inputs may be larger. */
export const MAX_INPUT_BYTES = 16 * 1024 * 1024

/** ORT log level 3 = errors only; its warnings would otherwise go to stderr on every session. */
const ORT_LOG_SEVERITY_ERROR = 3

/** The model bytes do not hash to the manifest's modelHash; the model is never loaded. */
export class ModelHashMismatchError extends Error {
  static readonly code = 'ERR_MODEL_HASH_MISMATCH'
  readonly code = ModelHashMismatchError.code
  constructor (readonly expected: string, readonly actual: string) {
    super(`model bytes hash to ${actual} but the manifest pins ${expected}; refusing to load (re-fetch the model or use its own manifest)`)
    this.name = 'ModelHashMismatchError'
  }
}

/** The installed onnxruntime differs from the one the manifest pins (thrown only with `onRuntimeMismatch: 'error'`). */
export class RuntimeVersionMismatchError extends Error {
  static readonly code = 'ERR_RUNTIME_VERSION_MISMATCH'
  readonly code = RuntimeVersionMismatchError.code
  constructor (readonly pinned: string, readonly installed: string) {
    super(`manifest pins onnxruntime ${pinned} but ${installed} is installed; install onnxruntime-node@${pinned} so outputs match other operators`)
    this.name = 'RuntimeVersionMismatchError'
  }
}

/** The model's own inputs/outputs do not match what the manifest declares. */
export class ModelSpecMismatchError extends Error {
  static readonly code = 'ERR_MODEL_SPEC_MISMATCH'
  readonly code = ModelSpecMismatchError.code
  constructor (message: string) {
    super(`model does not match its manifest: ${message}`)
    this.name = 'ModelSpecMismatchError'
  }
}

/** The task input is not valid for this model; the message says what is wrong. */
export class InputError extends Error {
  static readonly code = 'ERR_INFERENCE_INPUT'
  readonly code = InputError.code
  constructor (message: string) {
    super(`invalid task input: ${message}`)
    this.name = 'InputError'
  }
}

/** onnxruntime failed while running, or produced an output the manifest does not describe. */
export class InferenceError extends Error {
  static readonly code = 'ERR_INFERENCE'
  readonly code = InferenceError.code
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'InferenceError'
  }
}

/** A model directory is missing a file or holds a malformed one. */
export class ModelDirError extends Error {
  static readonly code = 'ERR_MODEL_DIR'
  readonly code = ModelDirError.code
  constructor (readonly path: string, reason: string, options?: { cause?: unknown }) {
    super(`${path}: ${reason}`, options)
    this.name = 'ModelDirError'
  }
}

export interface InferenceResult {
  outputs: Record<string, OutputTensor>
  /** Outputs encoded under the manifest's agreement rule (see agreement.ts). */
  canonical: Uint8Array
  /** keccak256(canonical), 32 bytes: what operators sign. */
  resultHash: Uint8Array
  /** Wall time of session.run only. */
  inferenceMs: number
}

export interface RuntimeVersionMismatch { pinned: string, installed: string }

export type SessionOptions = InferenceSession.SessionOptions
export type CreateSession = (modelBytes: Uint8Array, options: SessionOptions) => Promise<InferenceSession>

export interface LoadOptions {
  /**
   * What to do when the installed onnxruntime is not the pinned version.
   * 'warn' (default): load, log, and expose the difference as `runner.runtimeVersionMismatch`
   * (the caller decides, e.g. refuse to attest). 'error': throw RuntimeVersionMismatchError.
   */
  onRuntimeMismatch?: 'warn' | 'error'
  /** Replaces InferenceSession.create (instrumentation and tests); called only after the hash check. */
  createSession?: CreateSession
}

/** Version of the onnxruntime-node package actually loaded. */
export function installedOnnxruntimeVersion (): string {
  return ortEnv.versions.node ?? ortEnv.versions.common
}

/** The onnxruntime session options a manifest pins. */
export function sessionOptionsOf (manifest: ModelManifest): SessionOptions {
  return {
    graphOptimizationLevel: manifest.runtime.graphOptimizationLevel,
    intraOpNumThreads: manifest.runtime.intraOpNumThreads,
    interOpNumThreads: manifest.runtime.interOpNumThreads,
    executionMode: manifest.runtime.executionMode,
    logSeverityLevel: ORT_LOG_SEVERITY_ERROR
  }
}

const defaultCreateSession: CreateSession = async (bytes, options) => InferenceSession.create(bytes, options)

export class InferenceRunner {
  /** Set when the installed onnxruntime is not the pinned one (only possible with onRuntimeMismatch 'warn'). */
  readonly runtimeVersionMismatch: RuntimeVersionMismatch | null
  private session: InferenceSession | null

  private constructor (readonly manifest: ModelManifest, readonly modelId: Uint8Array, session: InferenceSession, mismatch: RuntimeVersionMismatch | null) {
    this.session = session
    this.runtimeVersionMismatch = mismatch
  }

  /**
   * Verify the model bytes against the manifest, then create an onnxruntime session with the
   * manifest's pinned options. Throws ModelHashMismatchError (no session is created),
   * RuntimeVersionMismatchError (policy 'error'), ModelSpecMismatchError, or InferenceError
   * when onnxruntime rejects the model.
   */
  static async load (modelBytes: Uint8Array, manifest: ModelManifest, options: LoadOptions = {}): Promise<InferenceRunner> {
    const actual = sha256Hex(modelBytes)
    if (actual !== manifest.modelHash) throw new ModelHashMismatchError(manifest.modelHash, actual)
    if (modelBytes.length !== manifest.size) {
      throw new ManifestError('size', `is ${manifest.size} but the model (whose hash matches) has ${modelBytes.length} bytes; fix the manifest`)
    }

    const installed = installedOnnxruntimeVersion()
    let mismatch: RuntimeVersionMismatch | null = null
    if (installed !== manifest.runtime.onnxruntime) {
      if (options.onRuntimeMismatch === 'error') throw new RuntimeVersionMismatchError(manifest.runtime.onnxruntime, installed)
      mismatch = { pinned: manifest.runtime.onnxruntime, installed }
      log.error('model %s pins onnxruntime %s but %s is installed; results may disagree with other operators', manifest.name, mismatch.pinned, installed)
    }

    const create = options.createSession ?? defaultCreateSession
    let session: InferenceSession
    try {
      session = await create(modelBytes, sessionOptionsOf(manifest))
    } catch (err) {
      throw new InferenceError(`onnxruntime could not load model "${manifest.name}": ${(err as Error).message}`, { cause: err })
    }
    try {
      checkSessionMatchesManifest(session, manifest)
    } catch (err) {
      await session.release()
      throw err
    }
    log('loaded model %s (%d bytes) with %o', manifest.name, modelBytes.length, manifest.runtime)
    return new InferenceRunner(manifest, modelIdOf(manifest), session, mismatch)
  }

  /**
   * Run the model on a task input: UTF-8 JSON `{ "<input>": { "dims": [...], "data": [...] } }`
   * (dims may be left out when the input's shape is fully fixed), or a binary tensor file
   * (tensor-file.ts). Throws InputError for a bad input, InferenceError when the runtime fails.
   */
  async run (input: Uint8Array): Promise<InferenceResult> {
    const session = this.session
    if (session === null) throw new InferenceError(`runner for model "${this.manifest.name}" is closed`)
    const feeds = parseTaskInput(input, this.manifest.inputs)
    const fetches = this.manifest.outputs.map(o => o.name)

    const started = performance.now()
    let raw: InferenceSession.ReturnType
    try {
      raw = await session.run(feeds, fetches)
    } catch (err) {
      throw new InferenceError(`onnxruntime failed running model "${this.manifest.name}": ${(err as Error).message}`, { cause: err })
    }
    const inferenceMs = performance.now() - started

    const outputs: Record<string, OutputTensor> = {}
    for (const spec of this.manifest.outputs) {
      const value = raw[spec.name]
      if (!(value instanceof Tensor)) throw new InferenceError(`model "${this.manifest.name}" did not return a tensor for output "${spec.name}"`)
      if (value.type !== spec.dtype) throw new InferenceError(`output "${spec.name}" is ${value.type}, the manifest says ${spec.dtype}`)
      // copy: the session may reuse its output buffers on the next run
      outputs[spec.name] = { dtype: spec.dtype, dims: [...value.dims], data: (value.data as TensorData).slice() }
    }
    for (const value of Object.values(raw)) value.dispose()

    const canonical = canonicalizeOutputs(outputs, this.manifest)
    return { outputs, canonical, resultHash: keccak256(canonical, 'bytes'), inferenceMs }
  }

  /** Release the onnxruntime session; further run() calls throw. Safe to call twice. */
  async close (): Promise<void> {
    const session = this.session
    this.session = null
    if (session !== null) await session.release()
  }
}

function checkSessionMatchesManifest (session: InferenceSession, manifest: ModelManifest): void {
  const check = (side: 'input' | 'output', specs: TensorSpec[], metadata: readonly InferenceSession.ValueMetadata[]): void => {
    const declared = specs.map(s => s.name).sort()
    const actual = metadata.map(m => m.name).sort()
    if (declared.join('\0') !== actual.join('\0')) {
      throw new ModelSpecMismatchError(`manifest ${side}s [${declared.join(', ')}] but the model has [${actual.join(', ')}]`)
    }
    for (const spec of specs) {
      const meta = metadata.find(m => m.name === spec.name)
      if (meta === undefined || !meta.isTensor) throw new ModelSpecMismatchError(`${side} "${spec.name}" is not a tensor in the model`)
      if (meta.type !== spec.dtype) throw new ModelSpecMismatchError(`${side} "${spec.name}" is ${meta.type} in the model, ${spec.dtype} in the manifest`)
      // the model may leave dims symbolic; only a fixed dim on both sides can contradict
      if (meta.shape.length !== 0) {
        const clash = meta.shape.length !== spec.shape.length ||
          meta.shape.some((d, i) => typeof d === 'number' && d > 0 && spec.shape[i] !== null && spec.shape[i] !== d)
        if (clash) throw new ModelSpecMismatchError(`${side} "${spec.name}" has shape [${meta.shape.join(',')}] in the model, [${spec.shape.map(d => d ?? '?').join(',')}] in the manifest`)
      }
    }
  }
  check('input', manifest.inputs, session.inputMetadata)
  check('output', manifest.outputs, session.outputMetadata)
}

const INT_RANGES: Partial<Record<TensorDtype, [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  // 64-bit inputs travel as JSON numbers, so only the exactly representable range is accepted
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64: [0, Number.MAX_SAFE_INTEGER]
}

function toTypedArray (dtype: TensorDtype, values: number[]): TensorData {
  switch (dtype) {
    case 'float32': return Float32Array.from(values)
    case 'float64': return Float64Array.from(values)
    case 'int8': return Int8Array.from(values)
    case 'uint8': case 'bool': return Uint8Array.from(values)
    case 'int16': return Int16Array.from(values)
    case 'uint16': return Uint16Array.from(values)
    case 'int32': return Int32Array.from(values)
    case 'uint32': return Uint32Array.from(values)
    case 'int64': return BigInt64Array.from(values, v => BigInt(v))
    case 'uint64': return BigUint64Array.from(values, v => BigInt(v))
  }
}

function checkElement (name: string, spec: TensorSpec, v: unknown, i: number): number {
  const at = `input "${name}" data[${i}]`
  if (spec.dtype === 'bool') {
    if (v === true || v === 1) return 1
    if (v === false || v === 0) return 0
    throw new InputError(`${at} must be true, false, 0 or 1 for a bool tensor`)
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new InputError(`${at} must be a finite number, got ${v === null ? 'null (NaN/Infinity are not JSON)' : JSON.stringify(v)}`)
  if (spec.dtype === 'float32' && !Number.isFinite(Math.fround(v))) throw new InputError(`${at} = ${v} overflows float32`)
  const range = INT_RANGES[spec.dtype]
  if (range !== undefined && (!Number.isInteger(v) || v < range[0] || v > range[1])) {
    throw new InputError(`${at} = ${v} is not an integer in the ${spec.dtype} range [${range[0]}, ${range[1]}]`)
  }
  return v
}

/**
 * Decode and validate a task input against the manifest's input specs; returns onnxruntime feeds.
 * Exported so a node can reject a bad task before queuing it.
 */
export function parseTaskInput (input: Uint8Array, specs: TensorSpec[]): Record<string, Tensor> {
  if (input.length > MAX_INPUT_BYTES) throw new InputError(`${input.length} bytes exceeds the ${MAX_INPUT_BYTES}-byte limit`)
  // a binary tensor file (tensor-file.ts) starts with "POIT", which no JSON text can
  if (isTensorFile(input)) return parseTensorFileTaskInput(input, specs)
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(input))
  } catch (err) {
    throw new InputError(`not UTF-8 JSON (${(err as Error).message}); expected {"<input name>": {"dims": [...], "data": [...]}}`)
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new InputError('must be a JSON object mapping each input name to {"dims": [...], "data": [...]}')
  }
  const obj = json as Record<string, unknown>
  const expected = specs.map(s => s.name)
  for (const key of Object.keys(obj)) {
    if (!expected.includes(key)) throw new InputError(`unknown input "${key}"; the model takes ${expected.map(n => `"${n}"`).join(', ')}`)
  }
  const feeds: Record<string, Tensor> = {}
  for (const spec of specs) {
    if (!Object.hasOwn(obj, spec.name)) throw new InputError(`input "${spec.name}" is missing`)
    const entry = obj[spec.name]
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new InputError(`input "${spec.name}" must be an object {"dims": [...], "data": [...]}`)
    }
    const { dims: rawDims, data, ...rest } = entry as Record<string, unknown>
    const extra = Object.keys(rest)
    if (extra.length > 0) throw new InputError(`input "${spec.name}" has unknown field "${extra[0]}" (allowed: dims, data)`)

    let dims: number[]
    const shapeText = `[${spec.shape.map(d => d ?? '?').join(',')}]`
    if (rawDims === undefined) {
      if (spec.shape.some(d => d === null)) throw new InputError(`input "${spec.name}" needs "dims": its shape ${shapeText} has a free axis`)
      dims = spec.shape as number[]
    } else {
      if (!Array.isArray(rawDims) || rawDims.some(d => typeof d !== 'number' || !Number.isSafeInteger(d) || d < 1)) {
        throw new InputError(`input "${spec.name}" dims must be an array of positive integers`)
      }
      dims = rawDims as number[]
      if (dims.length !== spec.shape.length || dims.some((d, i) => spec.shape[i] !== null && spec.shape[i] !== d)) {
        throw new InputError(`input "${spec.name}" dims [${dims.join(',')}] do not fit the model's shape ${shapeText}`)
      }
    }
    if (!Array.isArray(data)) throw new InputError(`input "${spec.name}" data must be an array of numbers`)
    const count = elementCount(dims)
    if (data.length !== count) throw new InputError(`input "${spec.name}" has ${data.length} values but dims [${dims.join(',')}] need ${count}`)
    const values = data.map((v, i) => checkElement(spec.name, spec, v, i))
    feeds[spec.name] = new Tensor(spec.dtype, toTypedArray(spec.dtype, values), dims)
  }
  return feeds
}

export interface ModelDir {
  manifest: ModelManifest
  modelBytes: Uint8Array
  modelId: Uint8Array
}

/** Read `manifest.json` and `model.onnx` from a directory. Does not check the hash; `InferenceRunner.load` does. */
export async function loadModelDir (dir: string): Promise<ModelDir> {
  const manifestPath = join(dir, MANIFEST_FILE)
  const modelPath = join(dir, MODEL_FILE)
  let manifestText: string
  let modelBytes: Uint8Array
  try {
    manifestText = await readFile(manifestPath, 'utf8')
  } catch (err) {
    throw new ModelDirError(manifestPath, `cannot read the model manifest (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err })
  }
  try {
    modelBytes = new Uint8Array(await readFile(modelPath))
  } catch (err) {
    throw new ModelDirError(modelPath, `cannot read the model (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err })
  }
  let json: unknown
  try {
    json = JSON.parse(manifestText)
  } catch (err) {
    throw new ModelDirError(manifestPath, `is not valid JSON: ${(err as Error).message}`, { cause: err })
  }
  let manifest: ModelManifest
  try {
    manifest = parseManifest(json)
  } catch (err) {
    if (err instanceof ManifestError) throw new ModelDirError(manifestPath, err.message, { cause: err })
    throw err
  }
  return { manifest, modelBytes, modelId: modelIdOf(manifest) }
}
