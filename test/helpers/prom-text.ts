/**
 * A small strict parser of the Prometheus text exposition format (version 0.0.4), for tests:
 * every line is a `# HELP`, a `# TYPE`, another comment or a sample; metric and label names
 * must match the format's grammar, label values use only its escapes (\\, \", \n), values are
 * floats (or NaN, +Inf, -Inf), each family's TYPE precedes its samples and is declared once,
 * and every sample belongs to a declared family (a histogram's _bucket/_sum/_count, a
 * summary's _sum/_count). Anything else throws, naming the line.
 */
export interface Sample { name: string, labels: Record<string, string>, value: number }
export interface Family { name: string, type: string, help?: string, samples: Sample[] }

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])

export class PromParseError extends Error {}

function parseValue (text: string, line: number): number {
  // As Prometheus reads them (Go's strconv.ParseFloat): NaN and Inf in any case; prom-client writes "Nan".
  if (/^nan$/i.test(text)) return NaN
  if (/^\+?inf(inity)?$/i.test(text)) return Infinity
  if (/^-inf(inity)?$/i.test(text)) return -Infinity
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new PromParseError(`line ${line}: bad value ${JSON.stringify(text)}`)
  return Number(text)
}

/** `{a="x",b="y"}` from position `i` (at the `{`): the labels and the position after the `}`. */
function parseLabels (s: string, i: number, line: number): { labels: Record<string, string>, end: number } {
  const labels: Record<string, string> = {}
  i++ // '{'
  while (true) {
    if (s[i] === '}') return { labels, end: i + 1 }
    const eq = s.indexOf('=', i)
    if (eq < 0) throw new PromParseError(`line ${line}: label without '='`)
    const name = s.slice(i, eq)
    if (!LABEL_NAME.test(name)) throw new PromParseError(`line ${line}: bad label name ${JSON.stringify(name)}`)
    if (name in labels) throw new PromParseError(`line ${line}: label ${name} twice`)
    if (s[eq + 1] !== '"') throw new PromParseError(`line ${line}: label ${name}'s value is not quoted`)
    let value = ''
    let j = eq + 2
    for (; j < s.length && s[j] !== '"'; j++) {
      if (s[j] === '\\') {
        const next = s[++j]
        if (next === '\\') value += '\\'
        else if (next === '"') value += '"'
        else if (next === 'n') value += '\n'
        else throw new PromParseError(`line ${line}: bad escape \\${next ?? ''} in label ${name}`)
      } else {
        value += s[j]
      }
    }
    if (j >= s.length) throw new PromParseError(`line ${line}: unterminated value of label ${name}`)
    labels[name] = value
    i = j + 1
    if (s[i] === ',') i++
    else if (s[i] !== '}') throw new PromParseError(`line ${line}: expected ',' or '}' after label ${name}`)
  }
}

/** The family a sample name belongs to, among those declared. */
function familyOf (families: Map<string, Family>, name: string): Family | undefined {
  const exact = families.get(name)
  if (exact !== undefined) return exact
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue
    const f = families.get(name.slice(0, -suffix.length))
    if (f !== undefined && (f.type === 'histogram' || (f.type === 'summary' && suffix !== '_bucket'))) return f
  }
  return undefined
}

export function parsePromText (text: string): Map<string, Family> {
  const families = new Map<string, Family>()
  const lines = text.split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  lines.forEach((raw, index) => {
    const line = index + 1
    if (raw.trim() === '') return
    if (raw.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(raw)
      if (m === null) return // another comment
      const [, kind, name, rest] = m
      if (!METRIC_NAME.test(name)) throw new PromParseError(`line ${line}: bad metric name ${JSON.stringify(name)}`)
      const family = families.get(name) ?? { name, type: 'untyped', samples: [] }
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new PromParseError(`line ${line}: unknown type ${JSON.stringify(rest)}`)
        if (families.has(name) && family.type !== 'untyped') throw new PromParseError(`line ${line}: ${name} typed twice`)
        if (family.samples.length > 0) throw new PromParseError(`line ${line}: TYPE of ${name} after its samples`)
        family.type = rest
      } else {
        if (family.help !== undefined) throw new PromParseError(`line ${line}: HELP of ${name} twice`)
        family.help = rest
      }
      families.set(name, family)
      return
    }
    const nameEnd = raw.search(/[{ ]/)
    if (nameEnd <= 0) throw new PromParseError(`line ${line}: not a sample: ${JSON.stringify(raw)}`)
    const name = raw.slice(0, nameEnd)
    if (!METRIC_NAME.test(name)) throw new PromParseError(`line ${line}: bad metric name ${JSON.stringify(name)}`)
    let labels: Record<string, string> = {}
    let i = nameEnd
    if (raw[i] === '{') ({ labels, end: i } = parseLabels(raw, i, line))
    if (raw[i] !== ' ') throw new PromParseError(`line ${line}: no space before the value`)
    const parts = raw.slice(i + 1).split(' ')
    if (parts.length > 2 || (parts.length === 2 && !/^-?\d+$/.test(parts[1]))) throw new PromParseError(`line ${line}: bad value or timestamp ${JSON.stringify(raw.slice(i + 1))}`)
    const family = familyOf(families, name)
    if (family === undefined) throw new PromParseError(`line ${line}: sample ${name} of no declared family`)
    family.samples.push({ name, labels, value: parseValue(parts[0], line) })
  })
  return families
}

/** The samples named `name` (a family's, or its _count etc.) whose labels include `labels`. */
export function samples (families: Map<string, Family>, name: string, labels: Record<string, string> = {}): Sample[] {
  const family = familyOf(families, name)
  if (family === undefined) return []
  return family.samples.filter(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
}

/** The sum of those samples' values (0 when none). */
export function total (families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  return samples(families, name, labels).reduce((a, s) => a + s.value, 0)
}
