/** Canonical output as people read it: what `poi request` and `poi result` print. */
import { ranksAbove } from './agreement.js'
import { decodeCanonicalOutput } from './canonical-decode.js'
import { isFloatDtype } from './tensor.js'

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
 * One line per output, for people: `probs = [0.0123, …] (argmax 7)`, `score = 0.731` (one value), `probs: label = 7`,
 * `probs: top-3 = [7, 2, 0]`. Throws CanonicalOutputError on malformed bytes.
 */
export function formatCanonicalOutput (bytes: Uint8Array): string {
  const decoded = decodeCanonicalOutput(bytes)
  return decoded.outputs.map(t => {
    switch (t.encoding) {
      case 'exact':
      case 'grid': {
        // One value (a sigmoid score, a regression): the value itself; an argmax of one is always 0.
        if (t.values.length === 1) return `${t.name} = ${formatNumber(t.values[0])}`
        let line = `${t.name} = ${formatList(t.values)}`
        const width = t.dims.length === 0 ? 0 : t.dims[t.dims.length - 1]
        if (isFloatDtype(t.dtype) && width > 1 && t.values.length === width) {
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
