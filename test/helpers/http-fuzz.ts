/**
 * A seeded generator of malformed HTTP requests and the checks every answer must pass, for
 * any poi HTTP server (the node's API, the requester gateway): point it at a base URL and
 * describe the server's routes.
 *
 * What an answer may be, decided per request when it is generated:
 *   - `expect` set (e.g. [413], [431]): exactly one of those statuses;
 *   - otherwise a 4xx, or also a 2xx when the request is valid by chance: its method is the
 *     route's, its path is exactly a route's (parameters matching the route's `params`
 *     patterns) and it carries no body for a route that takes none. Such requests are still
 *     fuzzed in their query string and headers, which a route may ignore.
 * Every answer: no 5xx, an answer at all (no dropped socket, within the time bound), a JSON
 * body (all but HEAD and a 2xx of a `text` route) that is `{error:{code,message}}` on a 4xx with
 * a code `ERR_…`, and none of the `forbidden` strings (paths, key hex) unless the request
 * itself carried it (a 404 echoes the path it was asked for).
 *
 * Requests go through fetch where fetch can send them, and through raw TCP sockets where it
 * cannot (dot segments fetch would normalise, NUL bytes, odd methods, broken headers and
 * framing). No request stalls on purpose: slow clients are another test's.
 */
import { connect } from 'node:net'

/** One route of the server under test. */
export interface FuzzRoute {
  method: string
  /** fastify style: `/v1/tasks/:id`. */
  path: string
  /** Each `:param`'s pattern (a RegExp source) for the request to be valid by chance; a parameter without one never is. */
  params?: Record<string, string>
  /** The route reads a JSON body (e.g. the gateway's `POST /v1/tasks`): fuzzed bodies go to it, and are never valid. */
  jsonBody?: boolean
  /** A 2xx of this route is not JSON (e.g. /metrics). */
  text?: boolean
}

/** The node's own routes (node/api/http-server.ts, node/api/metrics.ts). */
export const NODE_ROUTES: FuzzRoute[] = [
  { method: 'GET', path: '/health' },
  { method: 'GET', path: '/metrics', text: true },
  { method: 'GET', path: '/v1/network' },
  { method: 'GET', path: '/v1/tasks' },
  { method: 'GET', path: '/v1/tasks/:id', params: { id: '^0x[0-9a-fA-F]{64}$' } },
  { method: 'GET', path: '/v1/models' },
  { method: 'GET', path: '/v1/models/:id', params: { id: '^[a-z2-7]{8,128}$' } }
]

export interface FuzzCase {
  /** What kind of malformation, for reports: `unknown-path`, `traversal`, `bad-json`, … */
  kind: string
  method: string
  /** The request target exactly as sent (raw) or as given to fetch. */
  target: string
  headers: Record<string, string>
  body?: Uint8Array
  /** Bytes sent as they are on a fresh socket, instead of fetch. */
  raw?: Buffer
  /** Exactly one of these statuses. */
  expect?: number[]
  /** A 2xx is right too (see the file comment). */
  mayBe2xx: boolean
}

export interface FuzzAnswer {
  status: number
  headers: Record<string, string>
  body: string
}

export interface FuzzOptions {
  /** The server, e.g. `http://127.0.0.1:8080`. */
  url: string
  routes: FuzzRoute[]
  /** Requests to send. */
  count: number
  seed?: number
  /** The server's body limit: oversize bodies are sent just above it and must answer 413. */
  bodyLimitBytes: number
  /** Strings no answer may contain (compared case-insensitively), unless the request did. */
  forbidden?: string[]
  /** Requests in flight at once. */
  concurrency?: number
  /** Longest wait for one answer. */
  answerTimeoutMs?: number
}

export interface FuzzReport {
  sent: number
  /** Answers by status (0: none came). */
  byStatus: Record<number, number>
  byKind: Record<string, number>
  /** Every broken rule, one line each, naming the request. */
  problems: string[]
}

const DEFAULT_CONCURRENCY = 16
/** A loopback answer comes in milliseconds; generous for a loaded machine running a network. */
const DEFAULT_ANSWER_TIMEOUT_MS = 10_000
/** Node's default limit on request headers (and so on the request line): longer ones must answer 431. */
const NODE_MAX_HEADER_BYTES = 16 * 1024

/** mulberry32: small, fast and good enough to pick malformations reproducibly from a seed. */
export function seededRandom (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

class Pick {
  constructor (readonly next: () => number) {}
  int (max: number): number { return Math.floor(this.next() * max) }
  one<T>(xs: readonly T[]): T { return xs[this.int(xs.length)] }
  chars (alphabet: string, n: number): string { let s = ''; for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)]; return s }
}

const URL_SAFE = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~'
const HEX = '0123456789abcdef'
const WRONG_METHODS = ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'GET']

/** A route's path with its parameters filled by `value`. */
function fill (route: FuzzRoute, value: (name: string) => string): string {
  return route.path.replace(/:([A-Za-z_]+)/g, (_m, name: string) => value(name))
}

/** Whether `method path` is exactly one of the routes, with every parameter valid: a 2xx is then allowed. */
export function validByChance (routes: FuzzRoute[], method: string, target: string, hasBody: boolean): boolean {
  const path = target.split('?')[0]
  return routes.some(route => {
    if (route.jsonBody === true) return false
    // A GET's body has no meaning (RFC 9110 §9.3.1): a server ignores it.
    if (hasBody && method !== 'GET' && method !== 'HEAD') return false
    if (!(method === route.method || (method === 'HEAD' && route.method === 'GET'))) return false
    const names: string[] = []
    const pattern = new RegExp('^' + route.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:([A-Za-z_]+)/g, (_m, name: string) => { names.push(name); return '([^/]*)' }) + '$')
    const m = pattern.exec(path)
    if (m == null) return false
    return names.every((name, i) => {
      const source = route.params?.[name]
      if (source == null) return false
      let decoded: string
      try { decoded = decodeURIComponent(m[i + 1]) } catch { return false }
      return new RegExp(source).test(decoded)
    })
  })
}

/** Bodies that are not a valid request for any route (truncated, malformed, wrong shape, hostile). */
function badJsonBodies (pick: Pick): string[] {
  const depth = 1000 + pick.int(3000)
  return [
    '{', '{"model":', '{"model": "x", "input": [1,2', '[', 'nul', 'tru', '{"a":1,}', "{'a':1}", '{"a":01}', '{"a":NaN}',
    '\u0000{}', '\ufeff{"a":1}', '{"a":"\\ud800"}', '{"a":"\\x41"}', '"just a string"', '42', '-0', '1e999', 'null', '[]', '{}',
    '{"__proto__":{"polluted":true}}', '{"constructor":{"prototype":{"polluted":true}}}', '{"a":1,"a":2}',
    '['.repeat(depth) + ']'.repeat(depth), '{"a":'.repeat(depth) + '1' + '}'.repeat(depth), '{"input":"' + pick.chars(URL_SAFE, 2000) + '"}',
    pick.chars('{}[]":,0123456789abc\\ ', 1 + pick.int(200))
  ]
}

const CONTENT_TYPES = [
  'text/xml', 'application/xml', 'multipart/form-data', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded',
  'application/octet-stream', 'image/png', 'application/json; charset=utf-16', 'application/jsonx', ';;;', 'application/', 'text/html; charset=latin1'
]

const BAD_QUERIES = [
  'limit=-1', 'limit=0', 'limit=1e99', 'limit=abc', 'limit=1.5', 'limit=%00', 'limit=', 'limit=1&limit=2', 'limit[]=1', 'limit[a]=1',
  'wait=abc', 'wait=-5', 'wait=1e99', 'wait=%00', '%00=%00', '=', '&&&', '?', 'a=%', 'a=%zz', '%E0%A4%A=1', 'x=' + '%00'.repeat(50)
]

/** Raw requests fetch cannot send, each with the statuses it must answer (undefined: 4xx, or 2xx if valid by chance). */
function rawTemplates (pick: Pick, routes: FuzzRoute[]): Array<{ kind: string, method: string, target: string, text: string, expect?: number[], may2xx?: boolean }> {
  const get = routes.filter(r => r.method === 'GET' && !r.path.includes(':'))
  const route = get.length > 0 ? pick.one(get) : { path: '/' }
  const p = route.path
  const line = (method: string, target: string, headers: string[] = ['Host: x'], body = '', version = 'HTTP/1.1'): string =>
    `${method} ${target} ${version}\r\n${[...headers, 'Connection: close'].join('\r\n')}\r\n\r\n${body}`
  const seg = pick.chars(URL_SAFE, 1 + pick.int(12))
  const traversals = [`/v1/../${p.slice(1)}`, `/../../etc/passwd`, `/v1/models/..%2F..%2F..%2Fetc%2Fpasswd`, `/%2e%2e/%2e%2e/etc/passwd`, `/v1/tasks/%2e%2e`,
    `/${p}`, `/.${p}`, `${p}/.`, `${p}/..`, `/v1//tasks`, `/v1/tasks/../../${seg}`, `/..;/..;${p}`, `/%2f%2f${seg}`, `/\\..\\..\\${seg}`, `${p}%2f..%2f..`]
  const t = pick.one(traversals)
  const huge = 'x'.repeat(NODE_MAX_HEADER_BYTES + pick.int(4096))
  const json = '{"a":1}'
  const templates = [
    { kind: 'traversal', method: 'GET', target: t, text: line('GET', t) },
    { kind: 'odd-method', method: 'TRACE', target: p, text: line('TRACE', p) },
    { kind: 'odd-method', method: 'CONNECT', target: 'x:1', text: line('CONNECT', 'x:1'), expect: [405] },
    { kind: 'odd-method', method: 'FOO', target: p, text: line('FOO', p), expect: [400] },
    { kind: 'odd-method', method: 'get', target: p, text: line('get', p), expect: [400] },
    { kind: 'odd-method', method: 'PROPFIND', target: p, text: line('PROPFIND', p) },
    { kind: 'nul', method: 'GET', target: `${p}\0`, text: line('GET', `${p}\0${seg}`), expect: [400] },
    { kind: 'nul', method: 'GET', target: p, text: line('GET', p, ['Host: x', `X-Nul: a\0b`]), expect: [400] },
    { kind: 'long-path', method: 'GET', target: `/${huge}`, text: line('GET', `/${huge}`), expect: [431] },
    { kind: 'long-query', method: 'GET', target: `${p}?${huge}`, text: line('GET', `${p}?${huge}`), expect: [431] },
    { kind: 'header', method: 'GET', target: p, text: line('GET', p, ['Host: x', `X-Big: ${huge}`]), expect: [431] },
    { kind: 'header', method: 'POST', target: p, text: line('POST', p, ['Host: x', 'Content-Type: application/json', 'Content-Length: 7', 'Content-Length: 8'], json), expect: [400] },
    { kind: 'header', method: 'POST', target: p, text: line('POST', p, ['Host: x', 'Content-Type: application/json', 'Content-Length: 7', 'Transfer-Encoding: chunked'], json), expect: [400] },
    { kind: 'header', method: 'POST', target: p, text: line('POST', p, ['Host: x', 'Content-Type: application/json', 'Transfer-Encoding: chunked'], 'zz\r\n{}\r\n0\r\n\r\n'), expect: [400] },
    { kind: 'header', method: 'POST', target: p, text: line('POST', p, ['Host: x', 'Content-Type: application/json', 'Transfer-Encoding: gzip, chunked'], '2\r\n{}\r\n0\r\n\r\n') },
    { kind: 'header', method: 'POST', target: p, text: line('POST', p, ['Host: x', 'Content-Type: application/json', 'Content-Length: -1'], json), expect: [400] },
    { kind: 'header', method: 'POST', target: p, text: line('POST', p, ['Host: x', 'Content-Type: application/json', 'Content-Length: 1x'], json), expect: [400] },
    { kind: 'header', method: 'GET', target: p, text: line('GET', p, ['Host: x', 'Bad Header']), expect: [400] },
    { kind: 'header', method: 'GET', target: p, text: line('GET', p, ['Host: x', 'X-Bad\u0001Name: 1']), expect: [400] },
    { kind: 'header', method: 'GET', target: p, text: line('GET', p, ['Host: x', 'X-Folded: a', ' continued']), expect: [400] },
    { kind: 'header', method: 'GET', target: p, text: line('GET', p, ['Host: x', 'Expect: the-impossible']), expect: [417] },
    { kind: 'header', method: 'GET', target: p, text: line('GET', p, ['Host: x', 'Host: y']), may2xx: true },
    { kind: 'header', method: 'GET', target: p, text: line('GET', p, []), may2xx: true },
    { kind: 'header', method: 'GET', target: p, text: line('GET', p, ['Host: x', 'Connection: Upgrade', 'Upgrade: websocket']), may2xx: true },
    { kind: 'version', method: 'GET', target: p, text: line('GET', p, ['Host: x'], '', 'HTTP/1.0'), may2xx: true },
    { kind: 'version', method: 'GET', target: p, text: line('GET', p, ['Host: x'], '', 'HTTP/9.9'), expect: [400] },
    { kind: 'version', method: 'GET', target: p, text: line('GET', p, ['Host: x'], '', 'HTCPCP/1.0'), expect: [400] },
    { kind: 'absolute-uri', method: 'GET', target: p, text: line('GET', `http://elsewhere.invalid${p}`), may2xx: true },
    { kind: 'oversize', method: 'POST', target: p, text: line('POST', p, ['Host: x', 'Content-Type: application/json', `Content-Length: ${2 ** 40}`], json), expect: [413] }
  ]
  return templates
}

/** `count` malformed requests against `routes`, the same for the same seed. */
export function fuzzCases (opts: { routes: FuzzRoute[], count: number, seed: number, bodyLimitBytes: number }): FuzzCase[] {
  const pick = new Pick(seededRandom(opts.seed))
  const { routes } = opts
  const out: FuzzCase[] = []
  const jsonRoutes = routes.filter(r => r.jsonBody === true)
  const paramRoutes = routes.filter(r => r.path.includes(':'))
  const concrete = (r: FuzzRoute): string => fill(r, () => pick.chars(URL_SAFE, 1 + pick.int(20)))
  const add = (c: Omit<FuzzCase, 'mayBe2xx'> & { mayBe2xx?: boolean }): void => {
    out.push({ ...c, mayBe2xx: c.mayBe2xx ?? (c.expect == null && validByChance(routes, c.method, c.target, c.body != null)) })
  }
  const generators: Array<() => void> = [
    // Unknown paths: random segments, some percent-encoded bytes.
    () => {
      const segs = Array.from({ length: 1 + pick.int(5) }, () => pick.int(4) === 0 ? encodeURIComponent(String.fromCharCode(...Array.from({ length: 1 + pick.int(6) }, () => pick.int(0x3000)))) : pick.chars(URL_SAFE, 1 + pick.int(16)))
      const prefix = pick.one(['', '/v1', '/v2', '/v1/tasks/x', '/health', '/metrics'])
      add({ kind: 'unknown-path', method: pick.one(['GET', 'HEAD', 'POST']), target: `${prefix}/${segs.join('/')}`, headers: {} })
    },
    // Long paths and ids (under the header limit: 404, 400 or 414).
    () => {
      const r = paramRoutes.length > 0 && pick.int(2) === 0 ? pick.one(paramRoutes) : undefined
      const long = pick.chars(pick.one([URL_SAFE, HEX, 'a']), 200 + pick.int(8000))
      add({ kind: 'long-path', method: 'GET', target: r != null ? fill(r, () => long) : `/${long}`, headers: {} })
    },
    // Bad ids for the routes with parameters.
    () => {
      if (paramRoutes.length === 0) return
      const r = pick.one(paramRoutes)
      const id = pick.one([
        '0x' + pick.chars(HEX, pick.int(130)), '0x' + pick.chars(HEX, 64), '0X' + pick.chars(HEX, 64), pick.chars(HEX, 64), '0x' + pick.chars('ghijklmnopqrstuvwxyz', 64),
        pick.chars('abcdefghijklmnopqrstuvwxyz234567', 1 + pick.int(140)), pick.chars('ABCDEFGHIJKLMNOPQRSTUVWXYZ', 20), 'bafk' + pick.chars('01890', 50),
        '%00', '%2e%2e', '..', '%2F..%2F..%2Fetc%2Fpasswd', encodeURIComponent('☃'.repeat(1 + pick.int(10))), '-1', 'null', 'undefined', '%20', '0x', 'x'.repeat(255)
      ])
      add({ kind: 'bad-id', method: 'GET', target: fill(r, () => id), headers: {} })
    },
    // Wrong methods on known paths.
    () => {
      const r = pick.one(routes)
      const method = pick.one(WRONG_METHODS.filter(m => m !== r.method))
      const withBody = method !== 'GET' && pick.int(2) === 0
      add({ kind: 'wrong-method', method, target: concrete(r), headers: withBody ? { 'content-type': 'application/json' } : {}, ...(withBody ? { body: Buffer.from('{}') } : {}) })
    },
    // Bad, huge and NUL-laden query strings on known routes (a route may ignore what it does not read).
    () => {
      const r = pick.one(routes.filter(x => x.method === 'GET'))
      const q = pick.int(5) === 0 ? Array.from({ length: 50 + pick.int(300) }, () => `${pick.chars(URL_SAFE, 4)}=${pick.chars(URL_SAFE, 8)}`).join('&') : pick.one(BAD_QUERIES)
      add({ kind: 'query', method: 'GET', target: `${fill(r, () => pick.chars(URL_SAFE, 8))}?${q}`, headers: {} })
    },
    // Bad and truncated JSON bodies, to the routes that take JSON and to those that take none.
    () => {
      const r = jsonRoutes.length > 0 && pick.int(3) !== 0 ? pick.one(jsonRoutes) : pick.one(routes)
      const body = pick.one(badJsonBodies(pick))
      add({ kind: 'bad-json', method: r.jsonBody === true ? r.method : pick.one(['POST', 'PUT', 'PATCH', 'GET']), target: concrete(r), headers: { 'content-type': 'application/json' }, body: Buffer.from(body) })
    },
    // Wrong content types.
    () => {
      const r = jsonRoutes.length > 0 && pick.int(2) === 0 ? pick.one(jsonRoutes) : pick.one(routes)
      const ct = pick.one(CONTENT_TYPES)
      add({ kind: 'content-type', method: r.jsonBody === true ? r.method : 'POST', target: concrete(r), headers: { 'content-type': ct }, body: Buffer.from(pick.one(['{"a":1}', '<x/>', 'a=1&b=2', '--x\r\n\r\n', '\u0000\u0001\u0002'])) })
    },
    // Bodies over the limit: 413 on every known path (sent with their length, so the server may refuse before reading).
    () => {
      const r = pick.one(routes)
      const size = opts.bodyLimitBytes + 1 + pick.int(opts.bodyLimitBytes)
      add({ kind: 'oversize', method: r.jsonBody === true ? r.method : 'POST', target: fill(r, () => pick.chars(HEX, 8)), headers: { 'content-type': 'application/json' }, body: Buffer.from(`{"input":"${'a'.repeat(size)}"}`), expect: [413] })
    },
    // Header oddities fetch can send.
    () => {
      const r = pick.one(routes)
      const headers = pick.one<Record<string, string>>([
        { accept: 'application/xml' }, { accept: '*/*;q=abc' }, { 'accept-encoding': 'br;q=2, zstd, x-unknown' }, { authorization: 'Bearer ' + pick.chars(URL_SAFE, 300) },
        { cookie: 'a='.repeat(100) }, { 'x-forwarded-for': '256.256.256.256, ::zz' }, { range: 'bytes=-1-99999999999' }, { 'if-none-match': '*' },
        { 'content-type': 'application/json' }, { 'accept-version': 'not-semver' }, { origin: 'null' }, { 'x-http-method-override': 'DELETE' }
      ])
      add({ kind: 'header', method: r.method, target: concrete(r), headers })
    },
    // Path traversal, sent raw (fetch would resolve the dot segments).
    () => {
      const tpl = rawTemplates(pick, routes)[0]
      add({ kind: tpl.kind, method: tpl.method, target: tpl.target, headers: {}, raw: Buffer.from(tpl.text, 'latin1'), mayBe2xx: false })
    },
    // What fetch cannot send.
    () => {
      const tpl = pick.one(rawTemplates(pick, routes))
      add({ kind: tpl.kind, method: tpl.method, target: tpl.target, headers: {}, raw: Buffer.from(tpl.text, 'latin1'), ...(tpl.expect != null ? { expect: tpl.expect } : {}), ...(tpl.may2xx === true ? { mayBe2xx: validByChance(routes, tpl.method, tpl.target, false) } : { mayBe2xx: false }) })
    }
  ]
  while (out.length < opts.count) pick.one(generators)()
  return out
}

/** Sends raw bytes on a fresh socket and reads one answer (the server closes after it: the request says `Connection: close`). */
async function sendRaw (url: URL, bytes: Buffer, timeoutMs: number): Promise<FuzzAnswer | string> {
  return await new Promise((resolve) => {
    const chunks: Buffer[] = []
    const socket = connect(Number(url.port), url.hostname)
    const timer = setTimeout(() => { socket.destroy(); resolve(`no answer within ${timeoutMs} ms`) }, timeoutMs)
    socket.on('connect', () => { socket.write(bytes) })
    socket.on('data', (d: Buffer) => chunks.push(d))
    // A server that answers and closes may reset a socket we are still writing to: what it answered counts.
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      const parsed = parseRawAnswer(Buffer.concat(chunks))
      resolve(parsed ?? `no HTTP answer before the socket closed (${Buffer.concat(chunks).length} bytes)`)
    })
  })
}

/** The last non-1xx answer in `bytes`: status, headers, body (Content-Length or chunked). */
export function parseRawAnswer (bytes: Buffer): FuzzAnswer | undefined {
  let rest = bytes
  for (;;) {
    const end = rest.indexOf('\r\n\r\n')
    if (end < 0) return undefined
    const head = rest.subarray(0, end).toString('latin1').split('\r\n')
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0])
    if (m == null) return undefined
    const status = Number(m[1])
    const headers: Record<string, string> = {}
    for (const h of head.slice(1)) {
      const i = h.indexOf(':')
      if (i > 0) headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim()
    }
    rest = rest.subarray(end + 4)
    if (status >= 100 && status < 200) continue
    let body: Buffer
    if (headers['transfer-encoding']?.includes('chunked') === true) {
      const parts: Buffer[] = []
      let at = 0
      for (;;) {
        const lineEnd = rest.indexOf('\r\n', at)
        if (lineEnd < 0) break
        const size = parseInt(rest.subarray(at, lineEnd).toString('latin1'), 16)
        if (!(size > 0)) break
        parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size))
        at = lineEnd + 2 + size + 2
      }
      body = Buffer.concat(parts)
    } else {
      body = headers['content-length'] != null ? rest.subarray(0, Number(headers['content-length'])) : rest
    }
    return { status, headers, body: body.toString('utf8') }
  }
}

async function sendFetch (url: URL, c: FuzzCase, timeoutMs: number): Promise<FuzzAnswer | string> {
  try {
    const res = await fetch(new URL(c.target, url), { method: c.method, headers: c.headers, body: c.body, signal: AbortSignal.timeout(timeoutMs) })
    const headers: Record<string, string> = {}
    res.headers.forEach((v, k) => { headers[k] = v })
    return { status: res.status, headers, body: await res.text() }
  } catch (err) {
    return `fetch failed: ${(err as Error).message}${(err as Error).cause != null ? ` (${String((err as { cause: unknown }).cause)})` : ''}`
  }
}

/** Sends one case. A string: no answer, and why. */
export async function sendCase (url: string, c: FuzzCase, timeoutMs = DEFAULT_ANSWER_TIMEOUT_MS): Promise<FuzzAnswer | string> {
  const base = new URL(url)
  if (c.raw != null) return await sendRaw(base, c.raw, timeoutMs)
  // fetch sends no body with GET or HEAD.
  if (c.body != null && (c.method === 'GET' || c.method === 'HEAD')) {
    const head = [`${c.method} ${c.target} HTTP/1.1`, `Host: ${base.host}`, ...Object.entries(c.headers).map(([k, v]) => `${k}: ${v}`), `Content-Length: ${c.body.length}`, 'Connection: close']
    return await sendRaw(base, Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), c.body]), timeoutMs)
  }
  return await sendFetch(base, c, timeoutMs)
}

/** What is wrong with `answer` to `c`, or undefined. */
export function checkAnswer (c: FuzzCase, answer: FuzzAnswer | string, forbidden: string[] = [], routes: FuzzRoute[] = []): string | undefined {
  const name = `${c.kind} ${c.method} ${JSON.stringify(c.target.length > 120 ? `${c.target.slice(0, 120)}…` : c.target)}`
  if (typeof answer === 'string') return `${name}: ${answer}`
  const { status, body } = answer
  if (status >= 500) return `${name}: ${status} ${body.slice(0, 200)}`
  if (c.expect != null) {
    if (!c.expect.includes(status)) return `${name}: ${status}, expected ${c.expect.join(' or ')}: ${body.slice(0, 200)}`
  } else if (!(status >= 400 && status < 500) && !(c.mayBe2xx && status >= 200 && status < 300)) {
    return `${name}: ${status}, expected a 4xx${c.mayBe2xx ? ' or 2xx' : ''}: ${body.slice(0, 200)}`
  }
  const textRoute = status < 300 && routes.some(r => r.text === true && c.target.split('?')[0] === r.path)
  if (c.method !== 'HEAD' && !textRoute) {
    if (!/^application\/json/.test(answer.headers['content-type'] ?? '')) return `${name}: ${status} with content-type ${answer.headers['content-type']}`
    let json: unknown
    try { json = JSON.parse(body) } catch { return `${name}: ${status} with a body that is not JSON: ${body.slice(0, 200)}` }
    if (status >= 400) {
      const err = (json as { error?: { code?: unknown, message?: unknown } } | null)?.error
      if (typeof err?.code !== 'string' || !err.code.startsWith('ERR_') || typeof err.message !== 'string') return `${name}: ${status} body is not {error:{code:"ERR_…",message}}: ${body.slice(0, 200)}`
    }
  }
  const asked = `${c.target}\n${JSON.stringify(c.headers)}\n${c.raw?.toString('latin1') ?? ''}\n${c.body != null ? Buffer.from(c.body).toString('latin1') : ''}`.toLowerCase()
  const answered = `${JSON.stringify(answer.headers)}\n${body}`.toLowerCase()
  for (const secret of forbidden) {
    const s = secret.toLowerCase()
    if (s.length > 0 && answered.includes(s) && !asked.includes(s)) return `${name}: the answer reveals ${JSON.stringify(secret.slice(0, 12))}…: ${body.slice(0, 200)}`
  }
  return undefined
}

/** Sends `count` generated requests, `concurrency` at a time, and checks every answer. */
export async function runHttpFuzz (opts: FuzzOptions): Promise<FuzzReport> {
  const cases = fuzzCases({ routes: opts.routes, count: opts.count, seed: opts.seed ?? 1, bodyLimitBytes: opts.bodyLimitBytes })
  const report: FuzzReport = { sent: 0, byStatus: {}, byKind: {}, problems: [] }
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < cases.length) {
      const c = cases[next++]
      const answer = await sendCase(opts.url, c, opts.answerTimeoutMs ?? DEFAULT_ANSWER_TIMEOUT_MS)
      report.sent++
      const status = typeof answer === 'string' ? 0 : answer.status
      report.byStatus[status] = (report.byStatus[status] ?? 0) + 1
      report.byKind[c.kind] = (report.byKind[c.kind] ?? 0) + 1
      const problem = checkAnswer(c, answer, opts.forbidden, opts.routes)
      if (problem != null) report.problems.push(problem)
    }
  }
  await Promise.all(Array.from({ length: opts.concurrency ?? DEFAULT_CONCURRENCY }, worker))
  return report
}
