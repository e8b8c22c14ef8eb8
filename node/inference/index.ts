/**
 * Inference: pinned ONNX models, their manifests and ids, and the agreement rules that turn an
 * output into the bytes operators sign.
 */
export type { AgreementRule, DecodedCanonicalOutput, DecodedCanonicalTensor } from './agreement.js'
export {
  AgreementRuleError,
  CanonicalizationError,
  CanonicalOutputError,
  CANONICAL_FORMAT_VERSION,
  MAX_GRID_K,
  MAX_TOPK,
  canonicalizeOutputs,
  decodeCanonicalOutput,
  formatCanonicalOutput,
  gridValue,
  parseAgreementRule
} from './agreement.js'
export type { ExecutionMode, GraphOptimizationLevel, ModelManifest, RuntimeConfig, TensorSpec } from './manifest.js'
export {
  ManifestError,
  ModelIdError,
  canonicalJson,
  encodeManifest,
  modelIdOf,
  modelIdToString,
  parseManifest,
  parseModelId,
  sha256Hex
} from './manifest.js'
export type { InferenceResult, LoadOptions, ModelDir, RuntimeVersionMismatch, CreateSession, SessionOptions } from './runner.js'
export {
  InferenceError,
  InferenceRunner,
  InputError,
  MAX_INPUT_BYTES,
  ModelDirError,
  ModelHashMismatchError,
  ModelSpecMismatchError,
  RuntimeVersionMismatchError,
  installedOnnxruntimeVersion,
  loadModelDir,
  parseTaskInput,
  sessionOptionsOf
} from './runner.js'
export type { OutputTensor, TensorData, TensorDtype } from './tensor.js'
export { TENSOR_DTYPES } from './tensor.js'
export { MANIFEST_FILE, MODEL_FILE, SHIPPED_MODEL_DIR } from './paths.js'
export type { MlpWeights } from './build-model.js'
export {
  MLP_SEED,
  PINNED_ONNXRUNTIME_VERSION,
  buildMlpClassifierManifest,
  buildMlpClassifierModel,
  buildMlpClassifierWeights,
  formatManifestFile,
  mulberry32,
  writeModelDir
} from './build-model.js'
