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
 *
 * This module holds the rules and the format's constants; canonicalize.ts writes the format,
 * canonical-decode.ts reads it back and canonical-text.ts prints it for people.
 */
import { PoiError } from '../../protocols/wire/index.js'

export type AgreementRule = 'exact' | `grid:${number}` | 'argmax' | `topk:${number}`

/** Largest grid exponent: 2^52 is where doubles stop having a fractional part to round. */
export const MAX_GRID_K = 52
/** Largest n for topk: labels only make sense for a short list; also bounds decoder work. */
export const MAX_TOPK = 1024

export const CANONICAL_MAGIC = new Uint8Array([0x50, 0x4f, 0x49, 0x4f]) // "POIO"
export const CANONICAL_FORMAT_VERSION = 1

export const RULE_CODES = { exact: 0, grid: 1, argmax: 2, topk: 3 } as const
export type RuleKind = keyof typeof RULE_CODES

/** The one NaN each float width is written as. */
export const CANONICAL_NAN_F32 = 0x7fc00000
export const CANONICAL_NAN_F64_HI = 0x7ff80000

/** The agreement rule string is malformed; `reason` completes "agreement …". */
export class AgreementRuleError extends PoiError {
  static readonly code = 'ERR_AGREEMENT_RULE'
  declare readonly code: typeof AgreementRuleError.code
  constructor (readonly reason: string) {
    super(AgreementRuleError.code, `invalid agreement rule: ${reason}`)
  }
}

export interface ParsedRule { kind: RuleKind, param: number }

// Exactly one spelling per rule (no leading zeros, no spaces): the rule string is part of the
// hashed manifest, so "grid:016" and "grid:16" must not both be valid.
const GRID_RE = /^grid:(0|[1-9][0-9]*)$/
const TOPK_RE = /^topk:([1-9][0-9]*)$/

export function parseRule (s: unknown): ParsedRule {
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

export function ruleString ({ kind, param }: ParsedRule): AgreementRule {
  if (kind === 'grid') return `grid:${param}`
  if (kind === 'topk') return `topk:${param}`
  return kind
}

/** Validate an agreement rule string (throws AgreementRuleError). */
export function parseAgreementRule (s: unknown): AgreementRule {
  return ruleString(parseRule(s))
}

/** True when a ranks strictly above b; NaN ranks above everything so a NaN output cannot hide behind a finite label. */
export function ranksAbove (a: number | bigint, b: number | bigint): boolean {
  const aNaN = typeof a === 'number' && Number.isNaN(a)
  const bNaN = typeof b === 'number' && Number.isNaN(b)
  if (aNaN) return !bNaN
  if (bNaN) return false
  return a > b
}
