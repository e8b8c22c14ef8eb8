/**
 * A result's canonical output decoded into tensors a program reads without the canonical
 * format's decoder: what PoiResult.outputTensors holds, and what the `result` --json event
 * prints as outputTensors.
 */
import { CanonicalOutputError, decodeCanonicalOutput } from '../inference/index.js'

/**
 * One output tensor of a result, decoded from the canonical output. `shape` is the tensor's
 * dims; `encoding` is how the agreement rule kept it: `exact` and `grid` keep every value
 * (floats as JSON numbers, NaN and ±Infinity as the strings "NaN", "Infinity", "-Infinity",
 * 64-bit integers as decimal strings), `argmax` keeps one label per row of the last axis and
 * `topk` k labels per row, row after row.
 */
export interface OutputTensorLine { name: string, dtype: string, shape: number[], encoding: 'exact' | 'grid' | 'argmax' | 'topk', values: Array<number | string> }

/**
 * The canonical output as tensors (see OutputTensorLine); null when there is no output, or when
 * it does not decode (a certified output that a newer format wrote: the raw bytes still stand).
 */
export function outputTensorLines (output: Uint8Array | undefined | null): OutputTensorLine[] | null {
  if (output == null) return null
  let decoded
  try {
    decoded = decodeCanonicalOutput(output)
  } catch (err) {
    if (err instanceof CanonicalOutputError) return null
    throw err
  }
  return decoded.outputs.map((t): OutputTensorLine => {
    const base = { name: t.name, dtype: t.dtype, shape: [...t.dims] }
    switch (t.encoding) {
      case 'exact':
      case 'grid': return { ...base, encoding: t.encoding, values: t.values.map(jsonNumber) }
      case 'argmax': return { ...base, encoding: 'argmax', values: [...t.labels] }
      case 'topk': return { ...base, encoding: 'topk', values: t.labels.flat() }
    }
    throw new CanonicalOutputError(`unknown encoding of output ${base.name}`)
  })
}

/** A value JSON can hold exactly: finite floats as numbers, the rest as strings. */
function jsonNumber (v: number | bigint): number | string {
  if (typeof v === 'bigint') return v.toString()
  return Number.isFinite(v) ? v : String(v)
}
