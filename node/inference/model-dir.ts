/**
 * A model directory on disk: `manifest.json` and `model.onnx` (paths.ts), as `poi model publish`
 * reads it and the shipped model is laid out. A model with a `zk` section also holds its
 * circuit's files in `zk/`: `model.wasm`, `model.zkey` and `verification_key.json`.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PoiError } from '../../protocols/wire/index.js'
import { type ModelManifest, ManifestError, modelIdOf, parseManifest, ZK_FILES } from './manifest.js'
import { MANIFEST_FILE, MODEL_FILE } from './paths.js'
import { ZK_DIR, ZK_FILE_NAMES, checkZkCircuit, zkArtifactsOf, type ZkArtifacts, type ZkFiles } from './zk-artifacts.js'
import { VerificationKeyError } from './zk/errors.js'

/** A model directory is missing a file or holds a malformed one. */
export class ModelDirError extends PoiError {
  static readonly code = 'ERR_MODEL_DIR'
  declare readonly code: typeof ModelDirError.code
  constructor (readonly path: string, reason: string, options?: { cause?: unknown }) {
    super(ModelDirError.code, `${path}: ${reason}`, options)
  }
}

export interface ModelDir {
  manifest: ModelManifest
  modelBytes: Uint8Array
  modelId: Uint8Array
  /** The circuit's files, checked against the manifest's `zk` section; absent for a model without one. */
  zk?: ZkArtifacts
}

async function readDirFile (path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path))
  } catch (err) {
    throw new ModelDirError(path, `cannot read ${what} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err })
  }
}

/**
 * Read `manifest.json` and `model.onnx` from a directory, and `zk/`'s files when the manifest has
 * a `zk` section (checked against it, and its circuit id against the model). Does not check the
 * model's hash; `InferenceRunner.load` does.
 */
export async function loadModelDir (dir: string): Promise<ModelDir> {
  const manifestPath = join(dir, MANIFEST_FILE)
  const manifestText = new TextDecoder().decode(await readDirFile(manifestPath, 'the model manifest'))
  const modelBytes = await readDirFile(join(dir, MODEL_FILE), 'the model')
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
  const model: ModelDir = { manifest, modelBytes, modelId: modelIdOf(manifest) }
  if (manifest.zk === undefined) return model
  const files = await readZkFiles(dir)
  try {
    checkZkCircuit(manifest, modelBytes)
    model.zk = zkArtifactsOf(manifest.zk, files)
  } catch (err) {
    if (err instanceof ManifestError || err instanceof VerificationKeyError) throw new ModelDirError(join(dir, ZK_DIR), err.message, { cause: err })
    throw err
  }
  return model
}

/**
 * The raw bytes of a model directory's `zk/` files (model.wasm, model.zkey,
 * verification_key.json), unchecked; a ModelDirError names the file that cannot be read.
 */
export async function readZkFiles (dir: string): Promise<ZkFiles> {
  const files: Partial<ZkFiles> = {}
  for (const { key } of ZK_FILES) {
    files[key] = await readDirFile(join(dir, ZK_DIR, ZK_FILE_NAMES[key]), `the circuit file the manifest's zk.${key} names`)
  }
  return files as ZkFiles
}
