/**
 * Writes the canonical output (format in agreement.ts): model outputs encoded under the
 * manifest's agreement rule, the bytes whose keccak256 operators sign.
 */
import { PoiError } from '../../protocols/wire/index.js'
import {
  type AgreementRule, CANONICAL_FORMAT_VERSION, CANONICAL_MAGIC, CANONICAL_NAN_F32, CANONICAL_NAN_F64_HI, RULE_CODES,
  parseRule, ranksAbove, ruleString
} from './agreement.js'
import {
  type OutputTensor, type TensorData, type TensorDtype, type TensorSpec, DTYPE_BYTES, ONNX_DTYPE_CODES, elementCount, isFloatDtype
} from './tensor.js'

const TWO_POW_63 = 2 ** 63

/** Outputs cannot be canonicalised (missing output, wrong dtype/shape, non-finite value under grid:k). */
export class CanonicalizationError extends PoiError {
  static readonly code = 'ERR_CANONICALIZATION'
  declare readonly code: typeof CanonicalizationError.code
  constructor (message: string) {
    super(CanonicalizationError.code, message)
  }
}

/** Growable big-endian writer; small outputs are the norm, so simplicity beats preallocation. */
class ByteWriter {
  private buf = new Uint8Array(256)
  private view = new DataView(this.buf.buffer)
  private len = 0

  private reserve (n: number): number {
    const need = this.len + n
    if (need > this.buf.length) {
      let cap = this.buf.length * 2
      while (cap < need) cap *= 2
      const next = new Uint8Array(cap)
      next.set(this.buf.subarray(0, this.len))
      this.buf = next
      this.view = new DataView(next.buffer)
    }
    const at = this.len
    this.len = need
    return at
  }

  // reserve() first, in its own statement: in `this.view.setX(this.reserve(n), v)` the old view
  // is read before reserve() grows the buffer, and the write lands out of bounds
  bytes (b: Uint8Array): void { const at = this.reserve(b.length); this.buf.set(b, at) }
  u8 (v: number): void { const at = this.reserve(1); this.view.setUint8(at, v) }
  u16 (v: number): void { const at = this.reserve(2); this.view.setUint16(at, v) }
  u32 (v: number): void { const at = this.reserve(4); this.view.setUint32(at, v) }
  i64 (v: bigint): void { const at = this.reserve(8); this.view.setBigInt64(at, v) }
  /** Little-endian element writers for `exact` raw tensor bytes. */
  rawElement (dtype: TensorDtype, v: number | bigint): void {
    const at = this.reserve(DTYPE_BYTES[dtype])
    const dv = this.view
    switch (dtype) {
      case 'float32':
        if (Number.isNaN(v)) dv.setUint32(at, CANONICAL_NAN_F32, true)
        else dv.setFloat32(at, v === 0 ? 0 : Number(v), true)
        return
      case 'float64':
        if (Number.isNaN(v)) { dv.setUint32(at, 0, true); dv.setUint32(at + 4, CANONICAL_NAN_F64_HI, true) } else dv.setFloat64(at, v === 0 ? 0 : Number(v), true)
        return
      case 'int8': dv.setInt8(at, Number(v)); return
      case 'uint8': dv.setUint8(at, Number(v)); return
      case 'bool': dv.setUint8(at, v === 0 ? 0 : 1); return
      case 'int16': dv.setInt16(at, Number(v), true); return
      case 'uint16': dv.setUint16(at, Number(v), true); return
      case 'int32': dv.setInt32(at, Number(v), true); return
      case 'uint32': dv.setUint32(at, Number(v), true); return
      case 'int64': dv.setBigInt64(at, BigInt(v), true); return
      case 'uint64': dv.setBigUint64(at, BigInt(v), true)
    }
  }

  finish (): Uint8Array { return this.buf.slice(0, this.len) }
}

/** round(x·2^k), half away from zero, as an int64. Multiplying by a power of two is exact, so the only rounding is ours. */
export function gridValue (x: number, k: number): bigint {
  if (!Number.isFinite(x)) throw new CanonicalizationError(`grid:${k} cannot encode ${x}; the model produced a non-finite value`)
  const y = x * 2 ** k
  let t = Math.trunc(y)
  // y - t is exact for doubles, unlike Math.round(y) or floor(y + 0.5) which misround near 2^52
  if (Math.abs(y - t) >= 0.5) t += Math.sign(y)
  if (t >= TWO_POW_63 || t < -TWO_POW_63) {
    throw new CanonicalizationError(`grid:${k} cannot encode ${x}: ${x}·2^${k} is outside the int64 range; use a smaller k`)
  }
  return BigInt(t)
}

function argmaxOfRow (data: TensorData, start: number, width: number): number {
  let best = 0
  for (let j = 1; j < width; j++) {
    if (ranksAbove(data[start + j], data[start + best])) best = j
  }
  return best
}

function topkOfRow (data: TensorData, start: number, width: number, n: number): number[] {
  const idx = Array.from({ length: width }, (_, j) => j)
  idx.sort((i, j) => {
    const a = data[start + i]
    const b = data[start + j]
    if (ranksAbove(a, b)) return -1
    if (ranksAbove(b, a)) return 1
    return i - j
  })
  return idx.slice(0, n)
}

function checkTensor (name: string, t: OutputTensor | undefined, spec: TensorSpec): OutputTensor {
  if (t === undefined) throw new CanonicalizationError(`output "${name}" is missing; the manifest lists it`)
  if (t.dtype !== spec.dtype) throw new CanonicalizationError(`output "${name}" has dtype ${t.dtype}, the manifest says ${spec.dtype}`)
  if (t.dims.length !== spec.shape.length || t.dims.some((d, i) => !Number.isInteger(d) || d < 0 || d > 0xffffffff || (spec.shape[i] !== null && spec.shape[i] !== d))) {
    throw new CanonicalizationError(`output "${name}" has dims [${t.dims.join(',')}], the manifest says [${spec.shape.map(d => d ?? '?').join(',')}]`)
  }
  if (elementCount(t.dims) !== t.data.length) {
    throw new CanonicalizationError(`output "${name}" has ${t.data.length} values but dims [${t.dims.join(',')}] need ${elementCount(t.dims)}`)
  }
  return t
}

/**
 * Encode outputs under the manifest's agreement rule (format in agreement.ts's file comment).
 * Throws CanonicalizationError when an output is missing or does not match its spec.
 */
export function canonicalizeOutputs (outputs: Readonly<Record<string, OutputTensor>>, manifest: { agreement: AgreementRule, outputs: readonly TensorSpec[] }): Uint8Array {
  const rule = parseRule(manifest.agreement)
  const w = new ByteWriter()
  w.bytes(CANONICAL_MAGIC)
  w.u8(CANONICAL_FORMAT_VERSION)
  w.u8(RULE_CODES[rule.kind])
  w.u16(rule.param)
  w.u16(manifest.outputs.length)
  const encoder = new TextEncoder()
  for (const spec of manifest.outputs) {
    const t = checkTensor(spec.name, Object.hasOwn(outputs, spec.name) ? outputs[spec.name] : undefined, spec)
    const name = encoder.encode(spec.name)
    w.u16(name.length)
    w.bytes(name)
    w.u8(ONNX_DTYPE_CODES[t.dtype])
    w.u8(t.dims.length)
    for (const d of t.dims) w.u32(d)
    const { data } = t
    if (rule.kind === 'exact' || (rule.kind === 'grid' && !isFloatDtype(t.dtype))) {
      for (let i = 0; i < data.length; i++) w.rawElement(t.dtype, data[i])
    } else if (rule.kind === 'grid') {
      for (let i = 0; i < data.length; i++) {
        try {
          w.i64(gridValue(data[i] as number, rule.param))
        } catch (err) {
          if (err instanceof CanonicalizationError) throw new CanonicalizationError(`output "${spec.name}"[${i}]: ${err.message}`)
          throw err
        }
      }
    } else {
      const width = t.dims.length === 0 ? 0 : t.dims[t.dims.length - 1]
      const need = rule.kind === 'argmax' ? 1 : rule.param
      if (t.dims.length === 0 || width < need) {
        throw new CanonicalizationError(`output "${spec.name}" with dims [${t.dims.join(',')}] has no last axis of at least ${need} values for '${ruleString(rule)}'`)
      }
      for (let start = 0; start < data.length; start += width) {
        if (rule.kind === 'argmax') w.u32(argmaxOfRow(data, start, width))
        else for (const j of topkOfRow(data, start, width, rule.param)) w.u32(j)
      }
    }
  }
  return w.finish()
}
