/**
 * Model manifest: what an operator must pin to reproduce a result bit for bit (model hash,
 * runtime configuration, agreement rule, tensor specs), how the model is cut into chunks that
 * travel as content-addressed blocks, and the model id derived from it.
 *
 * Trust boundary: a manifest arrives from disk, the DHT or a peer, so `parseManifest` treats
 * it as untrusted JSON and checks every field. Unknown keys are rejected rather than dropped:
 * the model id is the hash of the manifest, so a field we silently ignored would let two
 * different documents claim one id.
 *
 * Owner: a manifest names the Ethereum address that owns the model, and only that account can
 * register the model id in the on-chain ModelRegistry (which checks the manifest block against
 * the id, then reads the owner from it). So that the contract can read it cheaply and without
 * ambiguity, the canonical encoding puts `owner` first and spells it in lowercase hex: every
 * manifest block starts with the 54 bytes `{"owner":"0x<40 lowercase hex>",`, then every other
 * key in sorted order. The contract reads those 54 bytes at a fixed offset and never scans the
 * rest, however large the manifest (up to about 256 KiB). A block in any other form (keys
 * reordered, a second `owner`, whitespace, a checksummed address) is refused by
 * `decodeManifestBlock`, so the node and the chain always read the same owner. The owner is
 * hashed into the id: two owners publishing the same weights get two model ids, on purpose (each
 * registers and is paid for its own). The zero address (`UNOWNED`) marks a manifest published
 * without an owner: valid off-chain (a genesis network), never registrable on a chain.
 */
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'
import { code as JSON_CODEC } from 'multiformats/codecs/json'
import { code as RAW_CODEC } from 'multiformats/codecs/raw'
import { BN254_SCALAR_FIELD, PoiError, bytesEqual } from '../../protocols/wire/index.js'
import { parseAgreementRule, AgreementRuleError, type AgreementRule } from './agreement.js'
import { TENSOR_DTYPES, isTensorDtype, MAX_TENSORS_PER_SIDE, MAX_TENSOR_RANK, type TensorSpec } from './tensor.js'

export const MANIFEST_VERSION = 1

export const GRAPH_OPTIMIZATION_LEVELS = ['disabled', 'basic', 'extended', 'layout', 'all'] as const
export type GraphOptimizationLevel = typeof GRAPH_OPTIMIZATION_LEVELS[number]

export const EXECUTION_MODES = ['sequential', 'parallel'] as const
export type ExecutionMode = typeof EXECUTION_MODES[number]

/** Bounds that keep a hostile manifest from making us allocate or loop without limit. */
export const MAX_MODEL_NAME_LENGTH = 128
export const MAX_TENSOR_NAME_LENGTH = 256
/** Thread counts are pinned; 0 would mean "ORT picks", which is not a pin. */
export const MAX_THREADS = 256

const KIB = 1024
const MIB = 1024 * KIB
/**
 * Models travel as chunks of this size (the last one shorter): large enough that a 50 MiB
 * model is 50 requests, small enough that one bad provider wastes little and a chunk fits
 * in memory many times over while it is verified.
 */
export const DEFAULT_CHUNK_BYTES = MIB
/** Largest chunk a manifest may declare; the shard protocol's block bound is derived from it. */
export const MAX_CHUNK_BYTES = MIB
/** Smallest chunk a manifest may declare, so a model cannot be split into millions of tiny requests. */
export const MIN_CHUNK_BYTES = 4 * KIB
/**
 * Most chunks one manifest may list. A single-file ONNX model is a protobuf, which cannot
 * exceed 2 GiB; 4096 chunks of 1 MiB is twice that, and keeps the manifest block (about
 * 62 bytes per chunk CID) near 256 KiB, well under the block bound.
 */
export const MAX_MODEL_CHUNKS = 4096

export interface RuntimeConfig {
  /** onnxruntime version the manifest was pinned with, e.g. '1.30.0'. */
  onnxruntime: string
  graphOptimizationLevel: GraphOptimizationLevel
  intraOpNumThreads: number
  interOpNumThreads: number
  executionMode: ExecutionMode
}

/** Owner of a manifest that no account may register on-chain (published without a chain or key). */
export const UNOWNED: `0x${string}` = '0x0000000000000000000000000000000000000000'

export interface ModelManifest {
  version: 1
  /**
   * '0x' + 40 lowercase hex digits: the account that may register the model id on-chain (and
   * receives its fee); UNOWNED if none may. Always first in the canonical encoding.
   */
  owner: `0x${string}`
  name: string
  format: 'onnx'
  /** Model size in bytes. */
  size: number
  /** '0x' + lowercase sha256 hex of the model bytes. */
  modelHash: string
  /** Bytes per chunk; every chunk but the last has exactly this size. */
  chunkSize: number
  /** Base32 CIDv1 (raw codec, sha2-256) of each chunk, in file order. */
  chunks: string[]
  runtime: RuntimeConfig
  agreement: AgreementRule
  inputs: TensorSpec[]
  outputs: TensorSpec[]
  /** The zero-knowledge tier's files (DESIGN §15): absent for a model without a circuit. */
  zk?: ZkManifestSection
}

/**
 * Largest files a `zk` section may name. The witness generator of the int8 models the compiler
 * takes is a few hundred KiB (the shipped MLP's: 0.3 MiB); its proving key grows with the
 * constraints, 2^20 of them (the largest local ceremony, MAX_LOCAL_PTAU_POWER) give a key near
 * 200 MiB; a verification key for four public signals is about 3 KiB.
 */
export const MAX_ZK_WASM_BYTES = 32 * MIB
export const MAX_ZK_ZKEY_BYTES = 256 * MIB
export const MAX_ZK_VKEY_BYTES = 64 * KIB

/** One file of the zk section, cut into raw blocks like the model (at the manifest's chunkSize). */
export interface ZkFileRef {
  size: number
  /** '0x' + 64 lowercase hex: sha256 of the whole file. */
  sha256: string
  /** Base32 CIDv1 (raw codec, sha2-256) of each chunk, in file order. */
  chunks: string[]
}

/**
 * What a prover and a verifier of the model's circuit need: the circuit id (the first public
 * signal of every proof), circom's witness generator, the ceremony's final proving key and its
 * verification key. The model id hashes this section, so the id names the circuit and keys too.
 */
export interface ZkManifestSection {
  /** '0x' + 64 lowercase hex of the circuit id, a field element (< BN254 r). */
  circuitId: string
  wasm: ZkFileRef
  zkey: ZkFileRef
  vkey: ZkFileRef
}

/** The files of a zk section and their bounds, in the order they are fetched and stored. */
export const ZK_FILES = [
  { key: 'wasm', maxBytes: MAX_ZK_WASM_BYTES },
  { key: 'zkey', maxBytes: MAX_ZK_ZKEY_BYTES },
  { key: 'vkey', maxBytes: MAX_ZK_VKEY_BYTES }
] as const
export type ZkFileKey = typeof ZK_FILES[number]['key']

/** A manifest field is missing or wrong; `field` is a dotted path such as `runtime.intraOpNumThreads`. */
export class ManifestError extends PoiError {
  static readonly code = 'ERR_MANIFEST'
  declare readonly code: typeof ManifestError.code
  constructor (readonly field: string, reason: string) {
    super(ManifestError.code, `invalid model manifest: ${field} ${reason}`)
  }
}

/** A model id is not a CIDv1 of a JSON manifest hashed with sha2-256. */
export class ModelIdError extends PoiError {
  static readonly code = 'ERR_MODEL_ID'
  declare readonly code: typeof ModelIdError.code
  constructor (message: string) {
    super(ModelIdError.code, message)
  }
}

type JsonObject = Record<string, unknown>

function isObject (v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function expectObject (v: unknown, field: string, allowed: readonly string[]): JsonObject {
  if (!isObject(v)) throw new ManifestError(field, `must be an object, got ${describe(v)}`)
  for (const key of Object.keys(v)) {
    if (!allowed.includes(key)) {
      throw new ManifestError(field === '' ? key : `${field}.${key}`, `is not a known field (allowed: ${allowed.join(', ')})`)
    }
  }
  return v
}

function describe (v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)
  if (typeof v === 'object') return 'an object'
  return `${typeof v} ${String(v)}`
}

function expectString (v: unknown, field: string, maxLength: number): string {
  if (typeof v !== 'string' || v.length === 0) throw new ManifestError(field, `must be a non-empty string, got ${describe(v)}`)
  if (v.length > maxLength) throw new ManifestError(field, `must be at most ${maxLength} characters, got ${v.length}`)
  return v
}

function expectInt (v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new ManifestError(field, `must be an integer in [${min}, ${max}], got ${describe(v)}`)
  }
  return v
}

function expectOneOf<T extends string> (v: unknown, field: string, options: readonly T[]): T {
  if (typeof v !== 'string' || !(options as readonly string[]).includes(v)) {
    throw new ManifestError(field, `must be one of ${options.map(o => `'${o}'`).join(', ')}, got ${describe(v)}`)
  }
  return v as T
}

const SEMVER = /^\d+\.\d+\.\d+$/
const SHA256_HEX = /^0x[0-9a-f]{64}$/
/** Lowercase only: one spelling per address, the form the ModelRegistry reads (no EIP-55 checksum on-chain). */
const OWNER_HEX = /^0x[0-9a-f]{40}$/

function parseTensorSpecs (v: unknown, field: string): TensorSpec[] {
  if (!Array.isArray(v) || v.length === 0) throw new ManifestError(field, `must be a non-empty array, got ${describe(v)}`)
  if (v.length > MAX_TENSORS_PER_SIDE) throw new ManifestError(field, `must list at most ${MAX_TENSORS_PER_SIDE} tensors, got ${v.length}`)
  const names = new Set<string>()
  return v.map((item, i) => {
    const at = `${field}[${i}]`
    const o = expectObject(item, at, ['name', 'dtype', 'shape'])
    const name = expectString(o.name, `${at}.name`, MAX_TENSOR_NAME_LENGTH)
    if (names.has(name)) throw new ManifestError(`${at}.name`, `repeats the tensor name "${name}"`)
    names.add(name)
    if (!isTensorDtype(o.dtype)) {
      throw new ManifestError(`${at}.dtype`, `must be one of ${TENSOR_DTYPES.join(', ')}, got ${describe(o.dtype)}`)
    }
    if (!Array.isArray(o.shape) || o.shape.length > MAX_TENSOR_RANK) {
      throw new ManifestError(`${at}.shape`, `must be an array of at most ${MAX_TENSOR_RANK} dimensions, got ${describe(o.shape)}`)
    }
    const shape = o.shape.map((d: unknown, j: number): number | null => {
      if (d === null) return null
      return expectInt(d, `${at}.shape[${j}]`, 1, 0xffffffff)
    })
    return { name, dtype: o.dtype, shape }
  })
}

/**
 * Chunk CIDs as the manifest writes them: CIDv1, raw codec, sha2-256, in their canonical
 * base32 text. Any other spelling of the same CID is refused so that one model has one manifest.
 * `field` names the list ('chunks', 'zk.wasm.chunks'); `budget` is how many chunks it may have.
 */
function parseChunkCids (v: unknown, size: number, chunkSize: number, field = 'chunks', budget = MAX_MODEL_CHUNKS): string[] {
  const expected = Math.ceil(size / chunkSize)
  if (!Array.isArray(v)) throw new ManifestError(field, `must be an array of chunk CIDs, got ${describe(v)}`)
  if (expected > budget) {
    throw new ManifestError(field, `would need ${expected} chunks of ${chunkSize} bytes for ${size} bytes, more than the ${budget} left of the ${MAX_MODEL_CHUNKS} a manifest may list`)
  }
  if (v.length !== expected) {
    throw new ManifestError(field, `must list ${expected} chunk CIDs (size ${size} / chunkSize ${chunkSize}, rounded up), got ${v.length}`)
  }
  return v.map((item, i) => {
    const at = `${field}[${i}]`
    if (typeof item !== 'string') throw new ManifestError(at, `must be a CID string, got ${describe(item)}`)
    let cid: CID
    try {
      cid = CID.parse(item)
    } catch (err) {
      throw new ManifestError(at, `is not a CID: ${(err as Error).message}`)
    }
    if (cid.version !== 1 || cid.code !== RAW_CODEC || cid.multihash.code !== sha256.code) {
      throw new ManifestError(at, 'must be a CIDv1 with the raw codec (0x55) and a sha2-256 multihash')
    }
    if (cid.toString() !== item) throw new ManifestError(at, `must be written in canonical base32 (${cid.toString()})`)
    return item
  })
}

/** CID of a raw block: what a manifest lists for each chunk. */
export function rawBlockCid (bytes: Uint8Array): CID {
  const hash = createHash('sha256').update(bytes).digest()
  return CID.createV1(RAW_CODEC, Digest.create(sha256.code, new Uint8Array(hash)))
}

export interface ChunkLayout {
  chunkSize: number
  chunks: string[]
}

/** The chunk fields of a manifest for these model bytes. */
export function chunkLayoutOf (modelBytes: Uint8Array, chunkSize: number = DEFAULT_CHUNK_BYTES): ChunkLayout {
  expectInt(chunkSize, 'chunkSize', MIN_CHUNK_BYTES, MAX_CHUNK_BYTES)
  const chunks: string[] = []
  for (let offset = 0; offset < modelBytes.length; offset += chunkSize) {
    chunks.push(rawBlockCid(modelBytes.subarray(offset, offset + chunkSize)).toString())
  }
  return { chunkSize, chunks }
}

const MANIFEST_KEYS = ['version', 'owner', 'name', 'format', 'size', 'modelHash', 'chunkSize', 'chunks', 'runtime', 'agreement', 'inputs', 'outputs'] as const
/** Keys a manifest may have besides MANIFEST_KEYS. */
const OPTIONAL_MANIFEST_KEYS = ['zk'] as const
const ZK_KEYS = ['circuitId', 'wasm', 'zkey', 'vkey'] as const
const ZK_FILE_KEYS = ['size', 'sha256', 'chunks'] as const
const RUNTIME_KEYS = ['onnxruntime', 'graphOptimizationLevel', 'intraOpNumThreads', 'interOpNumThreads', 'executionMode'] as const

/**
 * Validate an untrusted JSON value as a manifest. Throws ManifestError naming the first bad field.
 * Returns a fresh object (no aliasing of the input).
 */
export function parseManifest (json: unknown): ModelManifest {
  const o = expectObject(json, '', [...MANIFEST_KEYS, ...OPTIONAL_MANIFEST_KEYS])
  for (const key of MANIFEST_KEYS) {
    if (!(key in o)) throw new ManifestError(key, 'is missing')
  }
  if (o.version !== MANIFEST_VERSION) {
    throw new ManifestError('version', `must be ${MANIFEST_VERSION} (this node reads manifest version ${MANIFEST_VERSION} only), got ${describe(o.version)}`)
  }
  if (typeof o.owner !== 'string' || !OWNER_HEX.test(o.owner)) {
    throw new ManifestError('owner', `must be '0x' followed by 40 lowercase hex digits (an Ethereum address; ${UNOWNED} for none), got ${describe(o.owner)}`)
  }
  const owner = o.owner as `0x${string}`
  const name = expectString(o.name, 'name', MAX_MODEL_NAME_LENGTH)
  if (o.format !== 'onnx') throw new ManifestError('format', `must be 'onnx', got ${describe(o.format)}`)
  const size = expectInt(o.size, 'size', 1, Number.MAX_SAFE_INTEGER)
  if (typeof o.modelHash !== 'string' || !SHA256_HEX.test(o.modelHash)) {
    throw new ManifestError('modelHash', `must be '0x' followed by 64 lowercase hex digits (sha256 of the model), got ${describe(o.modelHash)}`)
  }
  const chunkSize = expectInt(o.chunkSize, 'chunkSize', MIN_CHUNK_BYTES, MAX_CHUNK_BYTES)
  const chunks = parseChunkCids(o.chunks, size, chunkSize)
  const r = expectObject(o.runtime, 'runtime', RUNTIME_KEYS)
  for (const key of RUNTIME_KEYS) {
    if (!(key in r)) throw new ManifestError(`runtime.${key}`, 'is missing')
  }
  if (typeof r.onnxruntime !== 'string' || !SEMVER.test(r.onnxruntime)) {
    throw new ManifestError('runtime.onnxruntime', `must be an exact version such as '1.30.0', got ${describe(r.onnxruntime)}`)
  }
  const runtime: RuntimeConfig = {
    onnxruntime: r.onnxruntime,
    graphOptimizationLevel: expectOneOf(r.graphOptimizationLevel, 'runtime.graphOptimizationLevel', GRAPH_OPTIMIZATION_LEVELS),
    intraOpNumThreads: expectInt(r.intraOpNumThreads, 'runtime.intraOpNumThreads', 1, MAX_THREADS),
    interOpNumThreads: expectInt(r.interOpNumThreads, 'runtime.interOpNumThreads', 1, MAX_THREADS),
    executionMode: expectOneOf(r.executionMode, 'runtime.executionMode', EXECUTION_MODES)
  }
  let agreement: AgreementRule
  try {
    agreement = parseAgreementRule(o.agreement)
  } catch (err) {
    if (err instanceof AgreementRuleError) throw new ManifestError('agreement', err.reason)
    throw err
  }
  const inputs = parseTensorSpecs(o.inputs, 'inputs')
  const outputs = parseTensorSpecs(o.outputs, 'outputs')
  checkRuleFitsOutputs(agreement, outputs)
  const manifest: ModelManifest = { version: MANIFEST_VERSION, owner, name, format: 'onnx', size, modelHash: o.modelHash, chunkSize, chunks, runtime, agreement, inputs, outputs }
  if (o.zk !== undefined) manifest.zk = parseZkSection(o.zk, chunkSize, MAX_MODEL_CHUNKS - chunks.length, inputs, outputs)
  return manifest
}

/**
 * The `zk` section. Its files are chunked like the model and count against the same
 * MAX_MODEL_CHUNKS, so the manifest block stays near its 256 KiB. Whether the circuit id is the
 * model's compiled circuit needs the model bytes; zk-artifacts.ts checks it when they are loaded.
 */
function parseZkSection (v: unknown, chunkSize: number, budget: number, inputs: TensorSpec[], outputs: TensorSpec[]): ZkManifestSection {
  const o = expectObject(v, 'zk', ZK_KEYS)
  for (const key of ZK_KEYS) {
    if (!(key in o)) throw new ManifestError(`zk.${key}`, 'is missing')
  }
  // the circuit compiler's subset: one int8 input, one int8 or int32 output
  if (inputs.length !== 1 || inputs[0].dtype !== 'int8') {
    throw new ManifestError('zk', `needs a model with one int8 input (the circuits take int8 tensors), got ${inputs.map(i => i.dtype).join(', ')}`)
  }
  if (outputs.length !== 1 || (outputs[0].dtype !== 'int8' && outputs[0].dtype !== 'int32')) {
    throw new ManifestError('zk', `needs a model with one int8 or int32 output, got ${outputs.map(i => i.dtype).join(', ')}`)
  }
  if (typeof o.circuitId !== 'string' || !SHA256_HEX.test(o.circuitId)) {
    throw new ManifestError('zk.circuitId', `must be '0x' followed by 64 lowercase hex digits, got ${describe(o.circuitId)}`)
  }
  if (BigInt(o.circuitId) >= BN254_SCALAR_FIELD) throw new ManifestError('zk.circuitId', 'must be a BN254 field element (below r)')
  const circuitId = o.circuitId
  let left = budget
  const file = (key: ZkFileKey, maxBytes: number): ZkFileRef => {
    const at = `zk.${key}`
    const f = expectObject(o[key], at, ZK_FILE_KEYS)
    for (const k of ZK_FILE_KEYS) {
      if (!(k in f)) throw new ManifestError(`${at}.${k}`, 'is missing')
    }
    const size = expectInt(f.size, `${at}.size`, 1, maxBytes)
    if (typeof f.sha256 !== 'string' || !SHA256_HEX.test(f.sha256)) {
      throw new ManifestError(`${at}.sha256`, `must be '0x' followed by 64 lowercase hex digits (sha256 of the file), got ${describe(f.sha256)}`)
    }
    const chunks = parseChunkCids(f.chunks, size, chunkSize, `${at}.chunks`, left)
    left -= chunks.length
    return { size, sha256: f.sha256, chunks }
  }
  return {
    circuitId,
    wasm: file('wasm', MAX_ZK_WASM_BYTES),
    zkey: file('zkey', MAX_ZK_ZKEY_BYTES),
    vkey: file('vkey', MAX_ZK_VKEY_BYTES)
  }
}

/** A circuit id in the manifest's spelling: '0x' + 64 lowercase hex digits. */
export function circuitIdHex (circuitId: bigint): string {
  if (circuitId < 0n || circuitId >= BN254_SCALAR_FIELD) throw new ManifestError('zk.circuitId', 'must be a BN254 field element (below r)')
  return `0x${circuitId.toString(16).padStart(64, '0')}`
}

/** Label rules need a last axis to pick from; catch an impossible rule when the manifest is read, not at the first task. */
function checkRuleFitsOutputs (rule: AgreementRule, outputs: TensorSpec[]): void {
  if (rule !== 'argmax' && !rule.startsWith('topk:')) return
  const n = rule === 'argmax' ? 1 : Number(rule.slice('topk:'.length))
  outputs.forEach((spec, i) => {
    if (spec.shape.length === 0) {
      throw new ManifestError(`outputs[${i}].shape`, `must have at least one axis for agreement '${rule}'`)
    }
    const last = spec.shape[spec.shape.length - 1]
    if (last !== null && last !== undefined && last < n) {
      throw new ManifestError('agreement', `'${rule}' needs at least ${n} classes but output "${spec.name}" has ${last} on its last axis`)
    }
  })
}

/** JSON with object keys sorted at every level and no whitespace: one byte string per manifest. */
export function canonicalJson (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (isObject(value)) {
    const keys = Object.keys(value).filter(k => value[k] !== undefined).sort()
    return `{${keys.map(k => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`
  }
  if (typeof value === 'number' && !Number.isFinite(value)) throw new ManifestError('', 'contains a non-finite number')
  return JSON.stringify(value)
}

/**
 * The first bytes of every manifest block up to the owner's hex digits; the ModelRegistry reads
 * the owner at this fixed offset (its OWNER_PREFIX).
 */
export const MANIFEST_OWNER_PREFIX = '{"owner":"0x'

/**
 * The bytes the model id commits to: `{"owner":"0x…",` then the other keys as canonicalJson
 * writes them (sorted at every level, no whitespace). Owner first so that the contract finds it
 * at a fixed offset (see the module comment).
 */
export function encodeManifest (manifest: ModelManifest): Uint8Array {
  const { owner, ...rest } = manifest
  // rest always has keys, so canonicalJson(rest) is '{' + at least one member + '}'
  return new TextEncoder().encode(`{${JSON.stringify('owner')}:${JSON.stringify(owner)},${canonicalJson(rest).slice(1)}`)
}

/** '0x' + sha256 hex, the form stored in `modelHash`. */
export function sha256Hex (bytes: Uint8Array): string {
  return `0x${createHash('sha256').update(bytes).digest('hex')}`
}

/** modelId = bytes of CIDv1(json codec, sha2-256(canonical manifest JSON)). */
export function modelIdOf (manifest: ModelManifest): Uint8Array {
  const hash = createHash('sha256').update(encodeManifest(manifest)).digest()
  return CID.createV1(JSON_CODEC, Digest.create(sha256.code, new Uint8Array(hash))).bytes
}

/** sha2-256 digests are 32 bytes; the ModelRegistry refuses a multihash declaring another length. */
const SHA256_DIGEST_BYTES = 32

function decodeModelCid (cid: CID): CID {
  if (cid.version !== 1) throw new ModelIdError(`model id must be a CIDv1, got CIDv${cid.version}`)
  if (cid.code !== JSON_CODEC) throw new ModelIdError(`model id must use the json codec (0x${JSON_CODEC.toString(16)}), got 0x${cid.code.toString(16)}`)
  if (cid.multihash.code !== sha256.code) throw new ModelIdError(`model id must hash with sha2-256 (0x12), got 0x${cid.multihash.code.toString(16)}`)
  if (cid.multihash.digest.length !== SHA256_DIGEST_BYTES) {
    throw new ModelIdError(`model id must carry a ${SHA256_DIGEST_BYTES}-byte sha2-256 digest, got ${cid.multihash.digest.length} bytes`)
  }
  return cid
}

/**
 * Base32 text form of a model id (what the CLI prints and accepts). The bytes must be the
 * canonical encoding of the CID (minimal varints), as the ModelRegistry requires: the registry
 * keys models by these bytes, so a second spelling of one CID would be a second, unregistered id.
 */
export function modelIdToString (id: Uint8Array): string {
  let cid: CID
  try {
    cid = CID.decode(id)
  } catch (err) {
    throw new ModelIdError(`model id bytes are not a CID: ${(err as Error).message}`)
  }
  decodeModelCid(cid)
  const canonical = CID.createV1(JSON_CODEC, Digest.create(sha256.code, cid.multihash.digest))
  if (!bytesEqual(canonical.bytes, id)) throw new ModelIdError(`model id bytes are not the canonical encoding of ${canonical.toString()} (a varint is not minimally encoded)`)
  return canonical.toString()
}

/** Parse the text form back into model id bytes; rejects CIDs that are not manifest ids. */
export function parseModelId (str: string): Uint8Array {
  let cid: CID
  try {
    cid = CID.parse(str.trim())
  } catch (err) {
    throw new ModelIdError(`"${str}" is not a model id (a base32 CID such as bagaaiera…): ${(err as Error).message}`)
  }
  return decodeModelCid(cid).bytes
}
