import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** File names inside a model directory. */
export const MANIFEST_FILE = 'manifest.json'
export const MODEL_FILE = 'model.onnx'

/**
 * Absolute path of the model shipped in the repo. Compiled code runs from dist/node/inference/,
 * source (ts runners) from node/inference/; both resolve to <repo>/node/inference/models/mlp-classifier,
 * so the model is versioned once, next to the script that builds it.
 */
const SHIPPED_MODELS_DIR: string = (() => {
  const here = dirname(fileURLToPath(import.meta.url))
  const fromDist = basename(resolve(here, '../..')) === 'dist'
  const inferenceDir = fromDist ? resolve(here, '../../../node/inference') : here
  return join(inferenceDir, 'models')
})()

export const SHIPPED_MODEL_DIR: string = join(SHIPPED_MODELS_DIR, 'mlp-classifier')

/** The int8 quantisation of the shipped model (node/fixtures/quantised-model.ts), the zk tier's demo model. */
export const SHIPPED_INT8_MODEL_DIR: string = join(SHIPPED_MODELS_DIR, 'mlp-classifier-int8')
