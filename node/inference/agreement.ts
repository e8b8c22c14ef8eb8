/**
 * Agreement rules: how a model output becomes the byte string whose keccak256 operators sign.
 *
 * Two honest operators must produce the same bytes, so the encoding fixes everything a
 * runtime may leave loose: byte order, the sign of zero, NaN payloads, and (for `grid:k`,
 * `argmax`, `topk:n`) the low-order float noise that differs between CPUs or kernels.
 *
 * Canonical output, format version 1 (all integers big-endian unless noted):
 *   magic     4 bytes  "POIO"
 *   version   u8       1
 *   rule      u8       0 exact | 1 grid | 2 argmax | 3 topk
 *   param     u16      k for grid:k, n for topk:n, else 0
 *   count     u16      number of outputs, then per output in manifest order:
 *     name    u16 byte length + UTF-8
 *     dtype   u8       ONNX TensorProto.DataType code of the model's tensor
 *     rank    u8
 *     dims    rank × u32 (the tensor's dims as the model produced them)
 *     values
 *       exact   every element, fixed width, LITTLE-endian (ONNX raw_data layout);
 *               floats: -0 → +0, every NaN → the quiet NaN 0x7fc00000 / 0x7ff8000000000000
 *       grid:k  float tensors: every x → round(x·2^k) half away from zero, as i64;
 *               non-finite x is an error. Integer/bool tensors: as `exact`.
 *       argmax  per row (all axes but the last): index of the largest value, u32;
 *               first index on ties; NaN ranks above every number (as numpy.argmax)
 *       topk:n  per row: the n indices of the largest values, value desc then index asc, u32
 *
 * Canonical bytes also travel inline in attestations, so `decodeCanonicalOutput` treats them
 * as untrusted: bounds, trailing bytes and non-canonical floats are rejected.
 */
import {
  type OutputTensor, type TensorData, type TensorDtype, DTYPE_BYTES, ONNX_DTYPE_CODES, dtypeFromOnnxCode,
  elementCount, isFloatDtype, MAX_TENSORS_PER_SIDE, MAX_TENSOR_RANK, type TensorSpec
} from './tensor.js'

export type AgreementRule = 'exact' | `grid:${number}` | 'argmax' | `topk:${number}`

/** Largest grid exponent: 2^52 is where doubles stop having a fractional part to round. */
export const MAX_GRID_K = 52
/** Largest n for topk: labels only make sense for a short list; also bounds decoder work. */
export const MAX_TOPK = 1024

export const CANONICAL_MAGIC = new Uint8Array([0x50, 0x4f, 0x49, 0x4f]) // "POIO"
export const CANONICAL_FORMAT_VERSION = 1

const RULE_CODES = { exact: 0, grid: 1, argmax: 2, topk: 3 } as const
type RuleKind = keyof typeof RULE_CODES

const CANONICAL_NAN_F32 = 0x7fc00000
const CANONICAL_NAN_F64_HI = 0x7ff80000

const TWO_POW_63 = 2 ** 63

/** The agreement rule string is malformed; `reason` completes "agreement …". */
export class AgreementRuleError extends Error {
  static readonly code = 'ERR_AGREEMENT_RULE'
  readonly code = AgreementRuleError.code
  constructor (readonly reason: string) {
    super(`invalid agreement rule: ${reason}`)
    this.name = 'AgreementRuleError'
  }
}

/** Outputs cannot be canonicalised (missing output, wrong dtype/shape, non-finite value under grid:k). */
export class CanonicalizationError extends Error {
  static readonly code = 'ERR_CANONICALIZATION'
  readonly code = CanonicalizationError.code
  constructor (message: string) {
    super(message)
    this.name = 'CanonicalizationError'
  }
}

/** Canonical output bytes are malformed. */
export class CanonicalOutputError extends Error {
  static readonly code = 'ERR_CANONICAL_OUTPUT'
  readonly code = CanonicalOutputError.code
  constructor (message: string) {
    super(`malformed canonical output: ${message}`)
    this.name = 'CanonicalOutputError'
  }
}

interface ParsedRule { kind: RuleKind, param: number }

// Exactly one spelling per rule (no leading zeros, no spaces): the rule string is part of the
// hashed manifest, so "grid:016" and "grid:16" must not both be valid.
const GRID_RE = /^grid:(0|[1-9][0-9]*)$/
const TOPK_RE = /^topk:([1-9][0-9]*)$/

function parseRule (s: unknown): ParsedRule {
  if (typeof s !== 'string') throw new AgreementRuleError(`must be a string such as 'exact', 'grid:16', 'argmax' or 'topk:3', got ${typeof s}`)
  if (s === 'exact') return { kind: 'exact', param: 0 }
  if (s === 'argmax') return { kind: 'argmax', param: 0 }
  const grid = GRID_RE.exec(s)
  if (grid !== null) {
    const k = Number(grid[1])
    if (k > MAX_GRID_K) throw new AgreementRuleError(`grid:k needs 0 ≤ k ≤ ${MAX_GRID_K}, got ${k}`)
    return { kind: 'grid', param: k }
  }
  const topk = TOPK_RE.exec(s)
  if (topk !== null) {
    const n = Number(topk[1])
    if (n > MAX_TOPK) throw new AgreementRuleError(`topk:n needs 1 ≤ n ≤ ${MAX_TOPK}, got ${n}`)
    return { kind: 'topk', param: n }
  }
  throw new AgreementRuleError(`must be 'exact', 'grid:<k>' (0..${MAX_GRID_K}), 'argmax' or 'topk:<n>' (1..${MAX_TOPK}), got ${JSON.stringify(s.slice(0, 40))}`)
}

function ruleString ({ kind, param }: ParsedRule): AgreementRule {
  if (kind === 'grid') return `grid:${param}`
  if (kind === 'topk') return `topk:${param}`
  return kind
}

/** Validate an agreement rule string (throws AgreementRuleError). */
export function parseAgreementRule (s: unknown): AgreementRule {
  return ruleString(parseRule(s))
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

/** True when a ranks strictly above b; NaN ranks above everything so a NaN output cannot hide behind a finite label. */
function ranksAbove (a: number | bigint, b: number | bigint): boolean {
  const aNaN = typeof a === 'number' && Number.isNaN(a)
  const bNaN = typeof b === 'number' && Number.isNaN(b)
  if (aNaN) return !bNaN
  if (bNaN) return false
  return a > b
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
 * Encode outputs under the manifest's agreement rule (see the file comment for the format).
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

interface DecodedTensorBase { name: string, dtype: TensorDtype, dims: number[] }
export type DecodedCanonicalTensor =
  | DecodedTensorBase & { encoding: 'exact', values: Array<number | bigint> }
  | DecodedTensorBase & { encoding: 'grid', k: number, steps: bigint[], values: number[] }
  | DecodedTensorBase & { encoding: 'argmax', labels: number[] }
  | DecodedTensorBase & { encoding: 'topk', labels: number[][] }

export interface DecodedCanonicalOutput {
  version: number
  rule: AgreementRule
  outputs: DecodedCanonicalTensor[]
}

class ByteReader {
  private pos = 0
  private readonly view: DataView
  constructor (private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  }

  get remaining (): number { return this.buf.length - this.pos }
  private take (n: number, what: string): number {
    if (n > this.remaining) throw new CanonicalOutputError(`truncated: ${what} needs ${n} bytes, ${this.remaining} left`)
    const at = this.pos
    this.pos += n
    return at
  }

  bytes (n: number, what: string): Uint8Array { const at = this.take(n, what); return this.buf.subarray(at, at + n) }
  u8 (what: string): number { return this.view.getUint8(this.take(1, what)) }
  u16 (what: string): number { return this.view.getUint16(this.take(2, what)) }
  u32 (what: string): number { return this.view.getUint32(this.take(4, what)) }
  i64 (what: string): bigint { return this.view.getBigInt64(this.take(8, what)) }
  rawElement (dtype: TensorDtype, what: string): number | bigint {
    const at = this.take(DTYPE_BYTES[dtype], what)
    const dv = this.view
    switch (dtype) {
      case 'float32': {
        const bits = dv.getUint32(at, true)
        const v = dv.getFloat32(at, true)
        if ((Number.isNaN(v) && bits !== CANONICAL_NAN_F32) || bits === 0x80000000) throw new CanonicalOutputError(`${what} is a non-canonical float (NaN payload or -0)`)
        return v
      }
      case 'float64': {
        const v = dv.getFloat64(at, true)
        const lo = dv.getUint32(at, true)
        const hi = dv.getUint32(at + 4, true)
        if ((Number.isNaN(v) && (hi !== CANONICAL_NAN_F64_HI || lo !== 0)) || (hi === 0x80000000 && lo === 0)) throw new CanonicalOutputError(`${what} is a non-canonical float (NaN payload or -0)`)
        return v
      }
      case 'int8': return dv.getInt8(at)
      case 'uint8': return dv.getUint8(at)
      case 'bool': {
        const v = dv.getUint8(at)
        if (v > 1) throw new CanonicalOutputError(`${what} is a bool other than 0 or 1`)
        return v
      }
      case 'int16': return dv.getInt16(at, true)
      case 'uint16': return dv.getUint16(at, true)
      case 'int32': return dv.getInt32(at, true)
      case 'uint32': return dv.getUint32(at, true)
      case 'int64': return dv.getBigInt64(at, true)
      case 'uint64': return dv.getBigUint64(at, true)
    }
  }
}

/** Parse canonical output bytes (untrusted) into a printable structure. Throws CanonicalOutputError. */
export function decodeCanonicalOutput (bytes: Uint8Array): DecodedCanonicalOutput {
  const r = new ByteReader(bytes)
  const magic = r.bytes(CANONICAL_MAGIC.length, 'magic')
  if (!magic.every((b, i) => b === CANONICAL_MAGIC[i])) throw new CanonicalOutputError('does not start with "POIO"')
  const version = r.u8('version')
  if (version !== CANONICAL_FORMAT_VERSION) throw new CanonicalOutputError(`format version ${version} is not supported (this node reads ${CANONICAL_FORMAT_VERSION})`)
  const ruleCode = r.u8('rule')
  const kind = (Object.keys(RULE_CODES) as RuleKind[]).find(k => RULE_CODES[k] === ruleCode)
  if (kind === undefined) throw new CanonicalOutputError(`unknown rule code ${ruleCode}`)
  const param = r.u16('rule parameter')
  let rule: AgreementRule
  try {
    rule = ruleString({ kind, param })
    if (rule !== parseAgreementRule(rule) || ((kind === 'exact' || kind === 'argmax') && param !== 0)) throw new AgreementRuleError(`parameter ${param}`)
  } catch (err) {
    throw new CanonicalOutputError(`bad rule ${kind} with parameter ${param}: ${(err as Error).message}`)
  }
  const count = r.u16('output count')
  if (count > MAX_TENSORS_PER_SIDE) throw new CanonicalOutputError(`${count} outputs exceeds the limit of ${MAX_TENSORS_PER_SIDE}`)
  const utf8 = new TextDecoder('utf-8', { fatal: true })
  const outputs: DecodedCanonicalTensor[] = []
  const seen = new Set<string>()
  for (let o = 0; o < count; o++) {
    let name: string
    try {
      name = utf8.decode(r.bytes(r.u16(`output ${o} name length`), `output ${o} name`))
    } catch (err) {
      if (err instanceof CanonicalOutputError) throw err
      throw new CanonicalOutputError(`output ${o} name is not valid UTF-8`)
    }
    if (name.length === 0 || seen.has(name)) throw new CanonicalOutputError(`output ${o} name is empty or repeated`)
    seen.add(name)
    const code = r.u8(`"${name}" dtype`)
    const dtype = dtypeFromOnnxCode(code)
    if (dtype === undefined) throw new CanonicalOutputError(`"${name}" has unknown dtype code ${code}`)
    const rank = r.u8(`"${name}" rank`)
    if (rank > MAX_TENSOR_RANK) throw new CanonicalOutputError(`"${name}" rank ${rank} exceeds ${MAX_TENSOR_RANK}`)
    const dims: number[] = []
    for (let i = 0; i < rank; i++) dims.push(r.u32(`"${name}" dims`))
    const n = elementCount(dims)
    const base = { name, dtype, dims }
    const at = `"${name}" values`
    if (kind === 'exact' || (kind === 'grid' && !isFloatDtype(dtype))) {
      // check the size before allocating: a hostile header may claim 2^32 elements
      if (n * DTYPE_BYTES[dtype] > r.remaining) throw new CanonicalOutputError(`truncated: ${at} needs ${n * DTYPE_BYTES[dtype]} bytes, ${r.remaining} left`)
      const values: Array<number | bigint> = []
      for (let i = 0; i < n; i++) values.push(r.rawElement(dtype, at))
      outputs.push({ ...base, encoding: 'exact', values })
    } else if (kind === 'grid') {
      if (n * 8 > r.remaining) throw new CanonicalOutputError(`truncated: ${at} needs ${n * 8} bytes, ${r.remaining} left`)
      const steps: bigint[] = []
      for (let i = 0; i < n; i++) steps.push(r.i64(at))
      const scale = 2 ** param
      outputs.push({ ...base, encoding: 'grid', k: param, steps, values: steps.map(s => Number(s) / scale) })
    } else {
      const width = rank === 0 ? 0 : dims[rank - 1]
      const per = kind === 'argmax' ? 1 : param
      if (rank === 0 || width < per) throw new CanonicalOutputError(`"${name}" dims [${dims.join(',')}] have no last axis of at least ${per} for ${rule}`)
      const rows = n / width
      if (rows * per * 4 > r.remaining) throw new CanonicalOutputError(`truncated: ${at} needs ${rows * per * 4} bytes, ${r.remaining} left`)
      const labels: number[][] = []
      for (let row = 0; row < rows; row++) {
        const picked: number[] = []
        for (let j = 0; j < per; j++) {
          const label = r.u32(at)
          if (label >= width || picked.includes(label)) throw new CanonicalOutputError(`${at}: label ${label} is out of range or repeated`)
          picked.push(label)
        }
        labels.push(picked)
      }
      if (kind === 'argmax') outputs.push({ ...base, encoding: 'argmax', labels: labels.map(l => l[0]) })
      else outputs.push({ ...base, encoding: 'topk', labels })
    }
  }
  if (r.remaining !== 0) throw new CanonicalOutputError(`${r.remaining} trailing bytes`)
  return { version, rule, outputs }
}

/** How many values the CLI prints per output before eliding. */
export const MAX_PRINTED_VALUES = 16
const PRINT_SIGNIFICANT_DIGITS = 4

function formatNumber (v: number | bigint): string {
  if (typeof v === 'bigint' || Number.isInteger(v)) return String(v)
  return String(Number(v.toPrecision(PRINT_SIGNIFICANT_DIGITS)))
}

function formatList (values: ReadonlyArray<number | bigint>): string {
  const shown = values.slice(0, MAX_PRINTED_VALUES).map(formatNumber)
  if (values.length > MAX_PRINTED_VALUES) shown.push(`… ${values.length - MAX_PRINTED_VALUES} more`)
  return `[${shown.join(', ')}]`
}

/**
 * One line per output, for people: `probs = [0.0123, …] (argmax 7)`, `probs: label = 7`,
 * `probs: top-3 = [7, 2, 0]`. Throws CanonicalOutputError on malformed bytes.
 */
export function formatCanonicalOutput (bytes: Uint8Array): string {
  const decoded = decodeCanonicalOutput(bytes)
  return decoded.outputs.map(t => {
    switch (t.encoding) {
      case 'exact':
      case 'grid': {
        let line = `${t.name} = ${formatList(t.values)}`
        const width = t.dims.length === 0 ? 0 : t.dims[t.dims.length - 1]
        if (isFloatDtype(t.dtype) && width > 0 && t.values.length === width) {
          const values = t.values as number[]
          let best = 0
          for (let j = 1; j < width; j++) if (ranksAbove(values[j], values[best])) best = j
          line += ` (argmax ${best})`
        }
        return line
      }
      case 'argmax':
        return t.labels.length === 1 ? `${t.name}: label = ${t.labels[0]}` : `${t.name}: labels = ${formatList(t.labels)}`
      case 'topk': {
        const n = t.labels[0]?.length ?? Number(decoded.rule.slice('topk:'.length))
        const rows = t.labels.map(l => `[${l.join(', ')}]`)
        return `${t.name}: top-${n} = ${rows.length === 1 ? rows[0] : `[${rows.join(', ')}]`}`
      }
    }
    return ''
  }).join('\n')
}
