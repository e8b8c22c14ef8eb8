/**
 * The JSON form of a task input: `{ "<input>": { "dims": [...], "data": [...] } }`, read into
 * onnxruntime feeds and written from tensors.
 *
 * Trust boundary: the bytes come from a requester. Every name, dim and element is checked
 * against the manifest's input specs before a tensor is built; JSON numbers that do not fit
 * the input's dtype are refused, never rounded or wrapped.
 */
import { Tensor } from 'onnxruntime-node'
import { InputError, MAX_INPUT_BYTES } from './input-error.js'
import { type TensorData, type TensorDtype, type TensorSpec, elementCount } from './tensor.js'
import type { NamedTensor } from './tensor-file.js'

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
    throw new InputError(`${at} must be true, false, 0 or 1 for a bool tensor`, { input: name })
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new InputError(`${at} must be a finite number, got ${v === null ? 'null (NaN/Infinity are not JSON)' : JSON.stringify(v)}`, { input: name })
  if (spec.dtype === 'float32' && !Number.isFinite(Math.fround(v))) throw new InputError(`${at} = ${v} overflows float32`, { input: name })
  const range = INT_RANGES[spec.dtype]
  if (range !== undefined && (!Number.isInteger(v) || v < range[0] || v > range[1])) {
    throw new InputError(`${at} = ${v} is not an integer in the ${spec.dtype} range [${range[0]}, ${range[1]}]`, { input: name })
  }
  return v
}

/**
 * Decode and validate a JSON task input against the manifest's input specs; returns
 * onnxruntime feeds. Throws InputError. The caller bounds the size (MAX_INPUT_BYTES).
 */
export function parseJsonTaskInput (input: Uint8Array, specs: readonly TensorSpec[]): Record<string, Tensor> {
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
    if (!expected.includes(key)) throw new InputError(`unknown input "${key}"; the model takes ${expected.map(n => `"${n}"`).join(', ')}`, { input: key })
  }
  const feeds: Record<string, Tensor> = {}
  for (const spec of specs) {
    if (!Object.hasOwn(obj, spec.name)) throw new InputError(`input "${spec.name}" is missing`, { input: spec.name })
    const entry = obj[spec.name]
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new InputError(`input "${spec.name}" must be an object {"dims": [...], "data": [...]}`, { input: spec.name })
    }
    const { dims: rawDims, data, ...rest } = entry as Record<string, unknown>
    const extra = Object.keys(rest)
    if (extra.length > 0) throw new InputError(`input "${spec.name}" has unknown field "${extra[0]}" (allowed: dims, data)`, { input: spec.name })

    let dims: number[]
    const shapeText = `[${spec.shape.map(d => d ?? '?').join(',')}]`
    if (rawDims === undefined) {
      if (spec.shape.some(d => d === null)) throw new InputError(`input "${spec.name}" needs "dims": its shape ${shapeText} has a free axis`, { input: spec.name })
      dims = spec.shape as number[]
    } else {
      if (!Array.isArray(rawDims) || rawDims.some(d => typeof d !== 'number' || !Number.isSafeInteger(d) || d < 1)) {
        throw new InputError(`input "${spec.name}" dims must be an array of positive integers`, { input: spec.name })
      }
      dims = rawDims as number[]
      if (dims.length !== spec.shape.length || dims.some((d, i) => spec.shape[i] !== null && spec.shape[i] !== d)) {
        throw new InputError(`input "${spec.name}" dims [${dims.join(',')}] do not fit the model's shape ${shapeText}`, { input: spec.name })
      }
    }
    if (!Array.isArray(data)) throw new InputError(`input "${spec.name}" data must be an array of numbers`, { input: spec.name })
    const count = elementCount(dims)
    if (data.length !== count) throw new InputError(`input "${spec.name}" has ${data.length} values but dims [${dims.join(',')}] need ${count}`, { input: spec.name })
    const values = data.map((v, i) => checkElement(spec.name, spec, v, i))
    feeds[spec.name] = new Tensor(spec.dtype, toTypedArray(spec.dtype, values), dims)
  }
  return feeds
}

/** A JSON number that parses back to exactly this value (String() round-trips doubles; -0 needs spelling out). */
function jsonNumber (v: number | bigint, at: string): string {
  if (typeof v === 'bigint') {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new InputError(`${at} = ${v} is beyond ±2^53 and cannot travel as JSON; send the tensor file itself`)
    }
    return v.toString()
  }
  return Object.is(v, -0) ? '-0' : String(v)
}

/**
 * Tensors as the runner's JSON task input `{"<name>": {"dims": [...], "data": [...]}}`, in the
 * order given. Float32 values are written as their exact double, so parsing restores the same
 * bits. Throws InputError when an int64 value has no exact JSON form or the JSON would exceed
 * MAX_INPUT_BYTES.
 */
export function tensorsToTaskInput (tensors: readonly NamedTensor[]): Uint8Array {
  const parts = tensors.map(t => {
    const values: string[] = new Array<string>(t.data.length)
    for (let i = 0; i < t.data.length; i++) values[i] = jsonNumber(t.data[i], `input "${t.name}" data[${i}]`)
    return `${JSON.stringify(t.name)}:{"dims":[${t.dims.join(',')}],"data":[${values.join(',')}]}`
  })
  const json = new TextEncoder().encode(`{${parts.join(',')}}`)
  if (json.length > MAX_INPUT_BYTES) {
    throw new InputError(`as JSON this input is ${json.length} bytes, over the ${MAX_INPUT_BYTES}-byte limit; send the tensor file itself`)
  }
  return json
}
