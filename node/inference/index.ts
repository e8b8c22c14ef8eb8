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
export type { ChunkLayout, ExecutionMode, GraphOptimizationLevel, ModelManifest, RuntimeConfig, TensorSpec } from './manifest.js'
export {
  DEFAULT_CHUNK_BYTES,
  MANIFEST_VERSION,
  MAX_CHUNK_BYTES,
  MAX_MODEL_CHUNKS,
  MIN_CHUNK_BYTES,
  ManifestError,
  ModelIdError,
  canonicalJson,
  chunkLayoutOf,
  encodeManifest,
  modelIdOf,
  modelIdToString,
  parseManifest,
  parseModelId,
  rawBlockCid,
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
export { TENSOR_DTYPES, isTensorDtype } from './tensor.js'
export { MANIFEST_FILE, MODEL_FILE, SHIPPED_MODEL_DIR } from './paths.js'
export type { NamedTensor } from './tensor-file.js'
export {
  MAX_TENSOR_NAME_BYTES,
  TENSOR_FILE_EXTENSION,
  TENSOR_FILE_MAGIC,
  TENSOR_FILE_VERSION,
  TensorFileError,
  checkTensorsAgainstSpecs,
  decodeTensorFile,
  encodeTensorFile,
  isTensorFile,
  parseTensorFileTaskInput,
  readTaskInput,
  tensorFileToTaskInput,
  tensorsToTaskInput
} from './tensor-file.js'
export { ONNX_DTYPE_CODES } from './tensor.js'
/** The ONNX protobuf schema (generated), for code that builds or inspects model graphs. */
export { AttributeProto, ModelProto } from './onnx.pb.js'
export type { GraphProto, NodeProto, TensorProto, TypeProto, ValueInfoProto } from './onnx.pb.js'
