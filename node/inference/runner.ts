/**
 * Runs a pinned ONNX model on a task input and produces the canonical output and its hash.
 *
 * Trust boundary: model bytes, manifest and task input are untrusted. The model's sha256 is
 * checked against the manifest before onnxruntime sees a single byte (a parser bug in the
 * runtime must not be reachable with an unvetted model), and the task input (JSON or tensor
 * file, task-input.ts) is checked against the manifest's input spec before a tensor is built.
 *
 * A runner on another onnxruntime than the manifest pins still runs; whether its results may
 * be attested is `attestRefusal()` (runtime-version.ts holds the rule).
 */
import { performance } from 'node:perf_hooks'
import { logger } from '@libp2p/logger'
import { InferenceSession, Tensor } from 'onnxruntime-node'
import { keccak256 } from 'viem'
import { PoiError } from '../../protocols/wire/index.js'
import { canonicalizeOutputs } from './canonicalize.js'
import { type ModelManifest, ManifestError, modelIdOf, sha256Hex } from './manifest.js'
import {
  type RuntimeVersionMismatch, RuntimeVersionMismatchError, installedOnnxruntimeVersion, runtimeRefusal
} from './runtime-version.js'
import { parseTaskInput } from './task-input.js'
import type { OutputTensor, TensorData, TensorSpec } from './tensor.js'

const log = logger('poi:inference')

/** ORT log level 3 = errors only; its warnings would otherwise go to stderr on every session. */
const ORT_LOG_SEVERITY_ERROR = 3

/** The model bytes do not hash to the manifest's modelHash; the model is never loaded. */
export class ModelHashMismatchError extends PoiError {
  static readonly code = 'ERR_MODEL_HASH_MISMATCH'
  declare readonly code: typeof ModelHashMismatchError.code
  constructor (readonly expected: string, readonly actual: string) {
    super(ModelHashMismatchError.code, `model bytes hash to ${actual} but the manifest pins ${expected}; refusing to load (re-fetch the model or use its own manifest)`)
  }
}

/** The model's own inputs/outputs do not match what the manifest declares. */
export class ModelSpecMismatchError extends PoiError {
  static readonly code = 'ERR_MODEL_SPEC_MISMATCH'
  declare readonly code: typeof ModelSpecMismatchError.code
  constructor (message: string) {
    super(ModelSpecMismatchError.code, `model does not match its manifest: ${message}`)
  }
}

/** onnxruntime failed while running, or produced an output the manifest does not describe. */
export class InferenceError extends PoiError {
  static readonly code = 'ERR_INFERENCE'
  declare readonly code: typeof InferenceError.code
  constructor (message: string, options?: { cause?: unknown }) {
    super(InferenceError.code, message, options)
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

export type SessionOptions = InferenceSession.SessionOptions
export type CreateSession = (modelBytes: Uint8Array, options: SessionOptions) => Promise<InferenceSession>

export interface LoadOptions {
  /**
   * What to do when the installed onnxruntime is not the pinned version.
   * 'warn' (default): load, log, and expose the difference as `runner.runtimeVersionMismatch`;
   * `runner.attestRefusal()` says whether the manifest's agreement rule allows it.
   * 'error': throw RuntimeVersionMismatchError on any difference, allowed or not.
   */
  onRuntimeMismatch?: 'warn' | 'error'
  /** Replaces InferenceSession.create (instrumentation and tests); called only after the hash check. */
  createSession?: CreateSession
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
  /** The onnxruntime version this runner's session was created with. */
  readonly installedRuntime: string
  /** Set when the installed onnxruntime is not the pinned one (only possible with onRuntimeMismatch 'warn'). */
  readonly runtimeVersionMismatch: RuntimeVersionMismatch | null
  private session: InferenceSession | null
  private readonly refusal: string | undefined

  private constructor (readonly manifest: ModelManifest, readonly modelId: Uint8Array, session: InferenceSession, installed: string) {
    this.session = session
    this.installedRuntime = installed
    const pinned = manifest.runtime.onnxruntime
    this.runtimeVersionMismatch = installed === pinned ? null : { pinned, installed }
    this.refusal = runtimeRefusal(manifest, installed)
  }

  /**
   * Why this node must not attest this model's results, as a sentence naming the fix (e.g.
   * `model "m" pins onnxruntime 1.30.0 under agreement rule exact, which allows no other
   * version; this node runs 1.29.1: install onnxruntime-node@1.30.0 to attest`); undefined
   * when it may attest: it runs the pinned onnxruntime, or a version the manifest's agreement
   * rule allows (runtime-version.ts). Fixed for the runner's lifetime. The runner still runs.
   */
  attestRefusal (): string | undefined {
    return this.refusal
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
    if (installed !== manifest.runtime.onnxruntime) {
      if (options.onRuntimeMismatch === 'error') throw new RuntimeVersionMismatchError(manifest.runtime.onnxruntime, installed)
      const refusal = runtimeRefusal(manifest, installed)
      if (refusal !== undefined) log.error('%s (results of this runner must not be attested)', refusal)
      else log('model %s pins onnxruntime %s, this node runs %s: allowed by agreement rule %s', manifest.name, manifest.runtime.onnxruntime, installed, manifest.agreement)
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
    return new InferenceRunner(manifest, modelIdOf(manifest), session, installed)
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
