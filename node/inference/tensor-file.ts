/**
 * Tensor file: named tensors in a small binary container, so a task input need not be JSON.
 * A 3×48×320 float image is 184 KB raw but ~0.5–0.9 MB as JSON numbers, and JSON cannot carry
 * -0, NaN or int64 beyond 2^53 at all.
 *
 * Format version 1. Header integers are big-endian (as in the canonical output, agreement.ts);
 * tensor data is little-endian, the ONNX raw_data layout, so it can be copied as is.
 *
 *   magic     4 bytes  "POIT"
 *   version   u8       1
 *   count     u16      number of tensors, 1..MAX_TENSORS_PER_SIDE; then per tensor:
 *     name    u16 byte length (1..MAX_TENSOR_NAME_BYTES) + UTF-8, unique in the file
 *     dtype   u8       ONNX TensorProto.DataType code (tensor.ts ONNX_DTYPE_CODES)
 *     rank    u8       0..MAX_TENSOR_RANK (0 is a scalar with one element)
 *     dims    rank × u32, each ≥ 1
 *     data    elementCount(dims) × element width bytes; bool elements are 0 or 1
 *   nothing after the last tensor.
 *
 * Every accepted file has exactly one encoding: encodeTensorFile(decodeTensorFile(b)) equals b.
 *
 * Trust boundary: a tensor file is a task input from a requester, so `decodeTensorFile` checks
 * every length against the bytes left before allocating. Value rules of a task (finite floats,
 * names and shapes of the model's inputs) are applied by `parseTensorFileTaskInput`, not by the
 * container decoder. Converting to and from the JSON form is task-input.ts's and json-input.ts's.
 */
import { Tensor } from 'onnxruntime-node'
import { PoiError } from '../../protocols/wire/index.js'
import { InputError, MAX_INPUT_BYTES } from './input-error.js'
import {
  type TensorData, type TensorDtype, type TensorSpec, DTYPE_BYTES, MAX_TENSORS_PER_SIDE, MAX_TENSOR_RANK,
  ONNX_DTYPE_CODES, dtypeFromOnnxCode, isFloatDtype
} from './tensor.js'

export const TENSOR_FILE_MAGIC = new Uint8Array([0x50, 0x4f, 0x49, 0x54]) // "POIT"
export const TENSOR_FILE_VERSION = 1
/** Conventional file extension, e.g. `poi request --input @chunk.poit`. */
export const TENSOR_FILE_EXTENSION = '.poit'
/** A tensor name is at most MAX_TENSOR_NAME_LENGTH (256) characters, so at most 4 UTF-8 bytes each. */
export const MAX_TENSOR_NAME_BYTES = 1024

/** Bytes before the first tensor: magic, version, count. */
const HEADER_BYTES = TENSOR_FILE_MAGIC.length + 1 + 2
const U32_MAX = 0xffffffff

/** Node may run on big-endian hosts (s390x); tensor data is little-endian on the wire. */
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** One tensor as stored in a tensor file. */
export interface NamedTensor {
  name: string
  dtype: TensorDtype
  dims: number[]
  data: TensorData
}

/** The bytes are not a valid tensor file; `offset` is where decoding stopped. */
export class TensorFileError extends PoiError {
  static readonly code = 'ERR_TENSOR_FILE'
  declare readonly code: typeof TensorFileError.code
  constructor (reason: string, readonly offset?: number) {
    super(TensorFileError.code, `malformed tensor file${offset === undefined ? '' : ` at byte ${offset}`}: ${reason}`)
  }
}

/** True when the bytes start with the tensor-file magic. JSON never starts with 'P', so this tells the two task-input forms apart. */
export function isTensorFile (bytes: Uint8Array): boolean {
  return bytes.length >= TENSOR_FILE_MAGIC.length && TENSOR_FILE_MAGIC.every((b, i) => bytes[i] === b)
}

type TypedArrayConstructor = Float32ArrayConstructor | Float64ArrayConstructor | Int8ArrayConstructor | Uint8ArrayConstructor |
  Int16ArrayConstructor | Uint16ArrayConstructor | Int32ArrayConstructor | Uint32ArrayConstructor |
  BigInt64ArrayConstructor | BigUint64ArrayConstructor

/** The array type a dtype's data must have, so `encodeTensorFile` refuses e.g. a Float64Array labelled float32. */
const DTYPE_ARRAYS: Readonly<Record<TensorDtype, TypedArrayConstructor>> = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array
}

/** Reverse each element's bytes in place (only on big-endian hosts). */
function swapBytes (bytes: Uint8Array, width: number): void {
  if (width === 1) return
  for (let at = 0; at < bytes.length; at += width) bytes.subarray(at, at + width).reverse()
}

function checkDims (dims: readonly number[], at: string): number {
  if (dims.length > MAX_TENSOR_RANK) throw new TensorFileError(`${at} has rank ${dims.length}, more than ${MAX_TENSOR_RANK}`)
  let n = 1
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 1 || d > U32_MAX) throw new TensorFileError(`${at} dim ${d} is not an integer in [1, ${U32_MAX}]`)
    n *= d
  }
  return n
}

/**
 * Encode tensors into a tensor file. Throws TensorFileError when a tensor cannot be stored
 * (bad name, rank, dims, data length or array type, repeated name, too many tensors).
 */
export function encodeTensorFile (tensors: readonly NamedTensor[]): Uint8Array {
  if (tensors.length === 0 || tensors.length > MAX_TENSORS_PER_SIDE) {
    throw new TensorFileError(`must hold 1..${MAX_TENSORS_PER_SIDE} tensors, got ${tensors.length}`)
  }
  const utf8 = new TextEncoder()
  const names = new Set<string>()
  const parts = tensors.map(t => {
    const at = `tensor "${t.name}"`
    const name = utf8.encode(t.name)
    if (name.length === 0 || name.length > MAX_TENSOR_NAME_BYTES) throw new TensorFileError(`${at} name must be 1..${MAX_TENSOR_NAME_BYTES} UTF-8 bytes`)
    if (names.has(t.name)) throw new TensorFileError(`${at} appears twice`)
    names.add(t.name)
    const count = checkDims(t.dims, at)
    const expected = DTYPE_ARRAYS[t.dtype]
    // Int8Array data labelled uint8 has the right width but other values: insist on the exact type
    if (!(t.data instanceof expected) || (t.dtype !== 'uint8' && t.dtype !== 'bool' && t.data.constructor !== expected)) {
      throw new TensorFileError(`${at} is ${t.dtype} but its data is a ${t.data.constructor.name} (expected ${expected.name})`)
    }
    if (t.data.length !== count) throw new TensorFileError(`${at} has ${t.data.length} values but dims [${t.dims.join(',')}] need ${count}`)
    if (t.dtype === 'bool' && (t.data as Uint8Array).some(v => v > 1)) throw new TensorFileError(`${at} is bool but holds a value other than 0 or 1`)
    return { name, t }
  })
  const total = parts.reduce((sum, { name, t }) => sum + 2 + name.length + 2 + 4 * t.dims.length + t.data.byteLength, HEADER_BYTES)
  const out = new Uint8Array(total)
  const view = new DataView(out.buffer)
  out.set(TENSOR_FILE_MAGIC, 0)
  let at = TENSOR_FILE_MAGIC.length
  view.setUint8(at, TENSOR_FILE_VERSION); at += 1
  view.setUint16(at, tensors.length); at += 2
  for (const { name, t } of parts) {
    view.setUint16(at, name.length); at += 2
    out.set(name, at); at += name.length
    view.setUint8(at, ONNX_DTYPE_CODES[t.dtype]); at += 1
    view.setUint8(at, t.dims.length); at += 1
    for (const d of t.dims) { view.setUint32(at, d); at += 4 }
    const data = out.subarray(at, at + t.data.byteLength)
    data.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength))
    if (!HOST_IS_LITTLE_ENDIAN) swapBytes(data, DTYPE_BYTES[t.dtype])
    at += t.data.byteLength
  }
  return out
}

/** Bounds-checked big-endian reader over untrusted bytes. */
class Reader {
  private readonly view: DataView
  at = 0
  constructor (private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  get remaining (): number { return this.bytes.length - this.at }

  private need (n: number, what: string): number {
    if (n > this.remaining) throw new TensorFileError(`truncated: ${what} needs ${n} bytes, ${this.remaining} left`, this.at)
    const start = this.at
    this.at += n
    return start
  }

  u8 (what: string): number { return this.view.getUint8(this.need(1, what)) }
  u16 (what: string): number { return this.view.getUint16(this.need(2, what)) }
  u32 (what: string): number { return this.view.getUint32(this.need(4, what)) }
  take (n: number, what: string): Uint8Array {
    const start = this.need(n, what)
    return this.bytes.subarray(start, start + n)
  }
}

/**
 * Decode a tensor file. Strict: wrong magic or version, a truncated or oversized file, an
 * unknown dtype code, a zero or oversized dim, a repeated or non-UTF-8 name, a bool byte other
 * than 0/1 and trailing bytes each throw TensorFileError. The returned data is copied (aligned,
 * host byte order), never a view of `bytes`.
 */
export function decodeTensorFile (bytes: Uint8Array): NamedTensor[] {
  if (bytes.length > MAX_INPUT_BYTES) throw new TensorFileError(`${bytes.length} bytes exceeds the ${MAX_INPUT_BYTES}-byte task input limit`)
  if (!isTensorFile(bytes)) throw new TensorFileError('does not start with the magic "POIT"', 0)
  const r = new Reader(bytes)
  r.take(TENSOR_FILE_MAGIC.length, 'magic')
  const version = r.u8('version')
  if (version !== TENSOR_FILE_VERSION) throw new TensorFileError(`version ${version} is not supported (this node reads version ${TENSOR_FILE_VERSION})`, r.at - 1)
  const count = r.u16('tensor count')
  if (count === 0 || count > MAX_TENSORS_PER_SIDE) throw new TensorFileError(`tensor count ${count} is not in 1..${MAX_TENSORS_PER_SIDE}`, r.at - 2)
  const utf8 = new TextDecoder('utf-8', { fatal: true })
  const tensors: NamedTensor[] = []
  const names = new Set<string>()
  for (let i = 0; i < count; i++) {
    const nameStart = r.at
    const nameLength = r.u16(`tensor ${i} name length`)
    if (nameLength === 0 || nameLength > MAX_TENSOR_NAME_BYTES) throw new TensorFileError(`tensor ${i} name length ${nameLength} is not in 1..${MAX_TENSOR_NAME_BYTES}`, nameStart)
    let name: string
    try {
      name = utf8.decode(r.take(nameLength, `tensor ${i} name`))
    } catch (err) {
      if (err instanceof TensorFileError) throw err
      throw new TensorFileError(`tensor ${i} name is not valid UTF-8`, nameStart + 2)
    }
    if (names.has(name)) throw new TensorFileError(`tensor name "${name}" appears twice`, nameStart)
    names.add(name)
    const at = `tensor "${name}"`
    const dtypeCode = r.u8(`${at} dtype`)
    const dtype = dtypeFromOnnxCode(dtypeCode)
    if (dtype === undefined) throw new TensorFileError(`${at} has unknown dtype code ${dtypeCode} (known: ${Object.entries(ONNX_DTYPE_CODES).map(([d, c]) => `${c}=${d}`).join(', ')})`, r.at - 1)
    const rank = r.u8(`${at} rank`)
    if (rank > MAX_TENSOR_RANK) throw new TensorFileError(`${at} has rank ${rank}, more than ${MAX_TENSOR_RANK}`, r.at - 1)
    const dims: number[] = []
    // multiply as we go and stop once the data could not fit: a header may claim 2^256 elements
    let byteLength = DTYPE_BYTES[dtype]
    for (let j = 0; j < rank; j++) {
      const d = r.u32(`${at} dims`)
      if (d === 0) throw new TensorFileError(`${at} dim ${j} is 0 (empty tensors are not task inputs)`, r.at - 4)
      dims.push(d)
      byteLength *= d
      if (byteLength > r.remaining) break
    }
    if (dims.length < rank || byteLength > r.remaining) {
      throw new TensorFileError(`truncated: ${at} data needs ${dims.length < rank ? 'more than ' : ''}${byteLength} bytes, ${r.remaining} left`, r.at)
    }
    const dataStart = r.at
    // A real copy into its own aligned buffer: input bytes decoded from the wire are often a
    // Node Buffer view at an odd offset, whose .slice() would not copy.
    const copy = Uint8Array.from(r.take(byteLength, `${at} data`))
    if (!HOST_IS_LITTLE_ENDIAN) swapBytes(copy, DTYPE_BYTES[dtype])
    if (dtype === 'bool') {
      const bad = copy.findIndex(v => v > 1)
      if (bad !== -1) throw new TensorFileError(`${at} is bool but element ${bad} is ${copy[bad]} (must be 0 or 1)`, dataStart + bad)
    }
    tensors.push({ name, dtype, dims, data: new DTYPE_ARRAYS[dtype](copy.buffer) })
  }
  if (r.remaining !== 0) throw new TensorFileError(`${r.remaining} trailing bytes after the last tensor`, r.at)
  return tensors
}

/** Same value rules as the JSON path (json-input.ts checkElement): finite floats that fit their type. */
function checkValues (t: NamedTensor): void {
  if (!isFloatDtype(t.dtype)) return
  const data = t.data as Float32Array | Float64Array
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new InputError(`input "${t.name}" data[${i}] must be a finite number, got ${data[i]}`)
  }
}

/**
 * Check decoded tensors against the model's input specs: every input present once, no extra
 * tensor, the spec's dtype (no implicit conversion: a float64 tensor for a float32 input is an
 * error, not a silent rounding), dims that fit the shape, finite floats. Throws InputError.
 */
export function checkTensorsAgainstSpecs (tensors: readonly NamedTensor[], specs: readonly TensorSpec[]): void {
  const expected = specs.map(s => s.name)
  for (const t of tensors) {
    if (!expected.includes(t.name)) throw new InputError(`unknown input "${t.name}"; the model takes ${expected.map(n => `"${n}"`).join(', ')}`)
  }
  for (const spec of specs) {
    const t = tensors.find(x => x.name === spec.name)
    if (t === undefined) throw new InputError(`input "${spec.name}" is missing`)
    if (t.dtype !== spec.dtype) throw new InputError(`input "${spec.name}" is ${t.dtype} in the tensor file but the model takes ${spec.dtype}`)
    const shapeText = `[${spec.shape.map(d => d ?? '?').join(',')}]`
    if (t.dims.length !== spec.shape.length || t.dims.some((d, i) => spec.shape[i] !== null && spec.shape[i] !== d)) {
      throw new InputError(`input "${spec.name}" dims [${t.dims.join(',')}] do not fit the model's shape ${shapeText}`)
    }
    checkValues(t)
  }
}

/** decodeTensorFile for a task input: a malformed file is the requester's InputError. */
export function decodeTensorFileInput (bytes: Uint8Array): NamedTensor[] {
  try {
    return decodeTensorFile(bytes)
  } catch (err) {
    if (err instanceof TensorFileError) throw new InputError(err.message, { cause: err })
    throw err
  }
}

/**
 * Decode and validate a binary task input against the model's input specs; returns onnxruntime
 * feeds. The tensor-file counterpart of json-input.ts `parseJsonTaskInput` (same errors: InputError).
 */
export function parseTensorFileTaskInput (bytes: Uint8Array, specs: readonly TensorSpec[]): Record<string, Tensor> {
  const tensors = decodeTensorFileInput(bytes)
  checkTensorsAgainstSpecs(tensors, specs)
  const feeds: Record<string, Tensor> = {}
  for (const t of tensors) feeds[t.name] = new Tensor(t.dtype, t.data, t.dims)
  return feeds
}
