/**
 * Inference: pinned ONNX models, their manifests and ids, task inputs, and the agreement rules
 * that turn an output into the bytes operators sign.
 */
export type { AgreementRule } from './agreement.js'
export { AgreementRuleError, CANONICAL_FORMAT_VERSION, MAX_GRID_K, MAX_TOPK, parseAgreementRule } from './agreement.js'
export { CanonicalizationError, canonicalizeOutputs, gridValue } from './canonicalize.js'
export type { DecodedCanonicalOutput, DecodedCanonicalTensor } from './canonical-decode.js'
export { CanonicalOutputError, decodeCanonicalOutput } from './canonical-decode.js'
export { formatCanonicalOutput } from './canonical-text.js'
export type { ChunkLayout, ExecutionMode, GraphOptimizationLevel, ModelManifest, RuntimeConfig, ZkFileKey, ZkFileRef, ZkManifestSection } from './manifest.js'
export {
  DEFAULT_CHUNK_BYTES,
  MANIFEST_OWNER_PREFIX,
  MANIFEST_VERSION,
  MAX_CHUNK_BYTES,
  MAX_MODEL_CHUNKS,
  MAX_ZK_VKEY_BYTES,
  MAX_ZK_WASM_BYTES,
  MAX_ZK_ZKEY_BYTES,
  MIN_CHUNK_BYTES,
  ZK_FILES,
  circuitIdHex,
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
  sha256Hex,
  UNOWNED
} from './manifest.js'
export type { InferenceResult, LoadOptions, CreateSession, SessionOptions } from './runner.js'
export {
  InferenceError,
  InferenceRunner,
  ModelHashMismatchError,
  ModelSpecMismatchError,
  sessionOptionsOf
} from './runner.js'
export type { RuntimePin, RuntimeVersionMismatch } from './runtime-version.js'
export {
  RuntimeVersionMismatchError,
  installedOnnxruntimeVersion,
  runtimeRefusal,
  runtimeVersionAllowed
} from './runtime-version.js'
export type { ZkArtifacts, ZkFiles } from './zk-artifacts.js'
export {
  ZK_DIR, ZK_FILE_NAMES, ZK_VKEY_FILE, ZK_WASM_FILE, ZK_ZKEY_FILE, ZkFileError,
  attachZkArtifacts, checkZkCircuit, checkZkFile, verificationKeyOf, zkArtifactsOf, zkBlocks, zkFilesOf
} from './zk-artifacts.js'
export type { ModelDir } from './model-dir.js'
export { ModelDirError, loadModelDir, readZkFiles } from './model-dir.js'
export { InputError, MAX_INPUT_BYTES } from './input-error.js'
export { tensorsToTaskInput } from './json-input.js'
export { parseTaskInput, readTaskInput, tensorFileToTaskInput } from './task-input.js'
export type { OutputTensor, TensorData, TensorDtype, TensorSpec } from './tensor.js'
export { ONNX_DTYPE_CODES, TENSOR_DTYPES, isTensorDtype } from './tensor.js'
export { MANIFEST_FILE, MODEL_FILE, SHIPPED_INT8_MODEL_DIR, SHIPPED_MODEL_DIR } from './paths.js'
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
  parseTensorFileTaskInput
} from './tensor-file.js'
/** The ONNX protobuf schema (generated), for code that builds or inspects model graphs. */
export { AttributeProto, ModelProto } from './onnx.pb.js'
export type { GraphProto, NodeProto, TensorProto, TypeProto, ValueInfoProto } from './onnx.pb.js'
