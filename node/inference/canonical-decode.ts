/**
 * Reads canonical output bytes (format in agreement.ts) back into a structure. The bytes travel
 * inline in attestations, so they are untrusted: every length is checked before allocating,
 * and trailing bytes, non-canonical floats and out-of-range labels are rejected.
 */
import { PoiError } from '../../protocols/wire/index.js'
import {
  type AgreementRule, type RuleKind, AgreementRuleError, CANONICAL_FORMAT_VERSION, CANONICAL_MAGIC, CANONICAL_NAN_F32,
  CANONICAL_NAN_F64_HI, RULE_CODES, parseAgreementRule, ruleString
} from './agreement.js'
import {
  type TensorDtype, DTYPE_BYTES, MAX_TENSORS_PER_SIDE, MAX_TENSOR_RANK, dtypeFromOnnxCode, elementCount, isFloatDtype
} from './tensor.js'

/** Canonical output bytes are malformed. */
export class CanonicalOutputError extends PoiError {
  static readonly code = 'ERR_CANONICAL_OUTPUT'
  declare readonly code: typeof CanonicalOutputError.code
  constructor (message: string) {
    super(CanonicalOutputError.code, `malformed canonical output: ${message}`)
  }
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
