/**
 * A model directory on disk: `manifest.json` and `model.onnx` (paths.ts), as `poi model publish`
 * reads it and the shipped model is laid out.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PoiError } from '../../protocols/wire/index.js'
import { type ModelManifest, ManifestError, modelIdOf, parseManifest } from './manifest.js'
import { MANIFEST_FILE, MODEL_FILE } from './paths.js'
import type { ZkArtifacts } from './zk-artifacts.js'

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
  /** The model's circuit and keys, when it has a zk section (spec16n part A; PLACEHOLDER field of helper "wire": take man's). */
  zk?: ZkArtifacts
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
