/**
 * Tensor element types the network agrees on, their ONNX codes and JS storage.
 * float16/bfloat16 and strings are left out on purpose: onnxruntime-node hands float16 back as
 * raw Uint16Array bits and strings have no fixed width, so neither has an agreed canonical form yet.
 */

export const TENSOR_DTYPES = ['float32', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool'] as const
export type TensorDtype = typeof TENSOR_DTYPES[number]

export function isTensorDtype (v: unknown): v is TensorDtype {
  return typeof v === 'string' && (TENSOR_DTYPES as readonly string[]).includes(v)
}

/** ONNX TensorProto.DataType numbers, reused as the dtype byte of the canonical output encoding. */
export const ONNX_DTYPE_CODES: Readonly<Record<TensorDtype, number>> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  bool: 9,
  float64: 11,
  uint32: 12,
  uint64: 13
}

export function dtypeFromOnnxCode (code: number): TensorDtype | undefined {
  return TENSOR_DTYPES.find(d => ONNX_DTYPE_CODES[d] === code)
}

/** Bytes per element, as stored little-endian in raw tensor data. */
export const DTYPE_BYTES: Readonly<Record<TensorDtype, number>> = {
  float32: 4,
  float64: 8,
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  uint64: 8,
  bool: 1
}

export function isFloatDtype (dtype: TensorDtype): dtype is 'float32' | 'float64' {
  return dtype === 'float32' || dtype === 'float64'
}

/** JS storage of tensor elements; bool is one byte per element (0 or 1), as onnxruntime returns it. */
export type TensorData =
  | Float32Array | Float64Array
  | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array
  | BigInt64Array | BigUint64Array

/** A model output (or any tensor handed to the agreement rules). */
export interface OutputTensor {
  dtype: TensorDtype
  dims: number[]
  data: TensorData
}

/** Element count of a shape; dims must already be validated non-negative integers. */
export function elementCount (dims: readonly number[]): number {
  let n = 1
  for (const d of dims) n *= d
  return n
}

/** Bounds that keep a hostile manifest or tensor file from making us allocate or loop without limit. */
export const MAX_TENSORS_PER_SIDE = 64
export const MAX_TENSOR_RANK = 8

/** One input or output of a model, as its manifest declares it. */
export interface TensorSpec {
  name: string
  dtype: TensorDtype
  /** null marks a dimension the input chooses (e.g. a batch axis). */
  shape: Array<number | null>
}
