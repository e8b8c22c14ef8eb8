/**
 * Malformed HTTP against a real running node (test/helpers/http-fuzz.ts): a few thousand
 * seeded requests (unknown paths, traversal, wrong methods, bad queries, bad and truncated
 * JSON, wrong content types, oversize bodies, bad ids, broken headers and framing) after a
 * real certified task. No 5xx, no dropped socket, a 4xx with `{error:{code,message}}` unless
 * valid by chance, no answer reveals a path of the node's or a byte of its keys, the node
 * still answers /health, and the process's heap and sockets come back down. Then fastify's
 * own refusals one by one with their exact status and code, and the read endpoints checked
 * for paths and keys.
 */
import { strict as assert } from 'node:assert'
import { readFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { HTTP_BODY_LIMIT_BYTES } from '../node/api/index.js'
import { exampleInput } from '../node/cli/devnet.js'
import { SHIPPED_MODEL_DIR, loadModelDir } from '../node/inference/index.js'
import { KEY_FILES } from '../node/keys.js'
import type { PoiNode } from '../node/poi-node.js'
import { requestInference } from '../node/requester/index.js'
import { NODE_ROUTES, checkAnswer, runHttpFuzz, sendCase, type FuzzCase } from './helpers/http-fuzz.js'
import { startTestNetwork, until, type TestNetwork } from './helpers/network.js'

/** Enough to hit every generator many times; about 10 s on a loaded 2-core machine. */
const FUZZ_REQUESTS = 3000
const FUZZ_SEED = 12
/** The shipped model runs in milliseconds; the rest is gossip on a loaded machine. */
const TASK_TIMEOUT_MS = 20_000
/**
 * Heap growth allowed across the fuzz run, after a GC: a few thousand requests leave some
 * caches warm (fastify's, undici's pool), a leak per request would leave far more.
 */
const MAX_HEAP_GROWTH_BYTES = 48 * 2 ** 20
/** Sockets the run may leave open beyond those before it: undici's keep-alive pool, closed by the server within its keep-alive timeout. */
const SOCKET_SLACK = 4
/** The server closes idle keep-alive sockets after HTTP_KEEP_ALIVE_TIMEOUT_MS (5 s); generous for a loaded machine. */
const SOCKETS_SETTLE_MS = 20_000

function openSockets (): number {
  return process.getActiveResourcesInfo().filter(r => r === 'TCPSocketWrap').length
}

/** A full GC, so heap figures compare live objects, not garbage. */
function collectGarbage (): void {
  setFlagsFromString('--expose-gc')
  ;(runInNewContext('gc') as () => void)()
}

/** The hex of every key file of a keystore: no answer may carry any of it. */
async function keyHexes (keystoreDir: string): Promise<string[]> {
  return await Promise.all(Object.values(KEY_FILES).map(async f => (await readFile(join(keystoreDir, f), 'utf8')).trim().replace(/^0x/, '')))
}

describe('HTTP fuzz: malformed requests against a running node', function () {
  this.timeout(120_000)
  let net: TestNetwork
  let node: PoiNode
  let url: string
  let forbidden: string[]

  before(async () => {
    net = await startTestNetwork({ operators: 3, http: true })
    node = net.operators[0]!
    url = node.http!.url!
    const model = await loadModelDir(SHIPPED_MODEL_DIR)
    // A certified task, so /v1/tasks and /metrics have something to show.
    await requestInference(net.requester, net.requesterKeys.account, { modelId: model.modelId, input: exampleInput(), timeoutMs: TASK_TIMEOUT_MS })
    forbidden = [
      net.root, join(net.root, 'op0', 'data'), SHIPPED_MODEL_DIR, homedir(), `${tmpdir()}/`, '/tmp/', process.cwd(),
      ...await keyHexes(join(net.root, 'op0', 'keys')),
      Buffer.from(net.keys[0].blsSecretKey).toString('hex'),
      Buffer.from(net.keys[0].privateKey.raw).toString('hex'),
      Buffer.from(net.keys[0].blsSecretKey).toString('base64'),
      Buffer.from(net.keys[0].privateKey.raw).toString('base64')
    ]
  })
  after(async () => { await net?.stop() })

  it(`${FUZZ_REQUESTS} seeded malformed requests: every answer a 4xx (or a 2xx when valid by chance) with JSON, no 5xx, no path or key revealed; the node still serves`, async () => {
    collectGarbage()
    const heapBefore = process.memoryUsage().heapUsed
    const socketsBefore = openSockets()
    const started = performance.now()
    const report = await runHttpFuzz({ url, routes: NODE_ROUTES, count: FUZZ_REQUESTS, seed: FUZZ_SEED, bodyLimitBytes: HTTP_BODY_LIMIT_BYTES, forbidden })
    const seconds = (performance.now() - started) / 1000
    console.log(`      ${report.sent} requests in ${seconds.toFixed(1)} s; by status ${JSON.stringify(report.byStatus)}; by kind ${JSON.stringify(report.byKind)}`)
    assert.equal(report.sent, FUZZ_REQUESTS)
    assert.deepEqual(report.problems.slice(0, 20), [], `${report.problems.length} answers broke the rules`)
    // The generator covered what it is for: most answers are refusals, of several kinds.
    const refused = Object.entries(report.byStatus).filter(([s]) => Number(s) >= 400).reduce((n, [, c]) => n + c, 0)
    assert.ok(refused > FUZZ_REQUESTS * 0.8, `refusals: ${refused}`)
    for (const status of [400, 404, 405, 413, 415, 431]) assert.ok((report.byStatus[status] ?? 0) > 0, `some requests answered ${status}: ${JSON.stringify(report.byStatus)}`)
    const health = await fetch(`${url}/health`)
    assert.equal(health.status, 200, await health.text())
    assert.equal(node.libp2p.status, 'started')
    // Nothing piles up: sockets close (keep-alive ones within the server's timeout), the heap comes back.
    await until(() => openSockets() <= socketsBefore + SOCKET_SLACK, SOCKETS_SETTLE_MS, () => `sockets back near ${socketsBefore}, now ${openSockets()}`)
    collectGarbage()
    const growth = process.memoryUsage().heapUsed - heapBefore
    assert.ok(growth < MAX_HEAP_GROWTH_BYTES, `the heap grew ${(growth / 2 ** 20).toFixed(1)} MiB`)
  })

  it('the same seed makes the same requests, and another seed others', async () => {
    const { fuzzCases } = await import('./helpers/http-fuzz.js')
    const a = fuzzCases({ routes: NODE_ROUTES, count: 200, seed: 7, bodyLimitBytes: 100 })
    const b = fuzzCases({ routes: NODE_ROUTES, count: 200, seed: 7, bodyLimitBytes: 100 })
    const c = fuzzCases({ routes: NODE_ROUTES, count: 200, seed: 8, bodyLimitBytes: 100 })
    assert.deepEqual(a, b)
    assert.notDeepEqual(a, c)
  })

  it("fastify's own refusals answer this API's status and code, as JSON", async () => {
    const c = (kind: string, method: string, target: string, extra: Partial<FuzzCase> = {}): FuzzCase => ({ kind, method, target, headers: {}, mayBe2xx: false, ...extra })
    const raw = (text: string): Buffer => Buffer.from(text, 'latin1')
    const table: Array<[FuzzCase, number, string]> = [
      [c('oversize', 'POST', '/health', { headers: { 'content-type': 'application/json' }, body: Buffer.from(`"${'a'.repeat(HTTP_BODY_LIMIT_BYTES)}"`) }), 413, 'ERR_BODY_TOO_LARGE'],
      [c('content-type', 'POST', '/health', { headers: { 'content-type': 'text/xml' }, body: Buffer.from('<a/>') }), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE'],
      [c('bad-json', 'POST', '/health', { headers: { 'content-type': 'application/json' }, body: Buffer.from('{"a":') }), 400, 'ERR_BAD_JSON'],
      [c('bad-json', 'POST', '/health', { headers: { 'content-type': 'application/json' }, body: Buffer.from('') }), 400, 'ERR_BAD_JSON'],
      [c('bad-url', 'GET', '/v1/models/%E0%A4%A'), 400, 'ERR_BAD_URL'],
      [c('long-id', 'GET', `/v1/tasks/0x${'a'.repeat(400)}`), 414, 'ERR_URI_TOO_LONG'],
      // Raw: fetch would resolve the dot segments before sending.
      [c('bad-id', 'GET', '/v1/tasks/%2e%2e', { raw: raw('GET /v1/tasks/%2e%2e HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n') }), 400, 'ERR_BAD_REQUEST'],
      [c('query', 'GET', '/v1/tasks?limit=1e99'), 400, 'ERR_BAD_REQUEST'],
      [c('query', 'GET', '/v1/tasks?limit=%00'), 400, 'ERR_BAD_REQUEST'],
      [c('traversal', 'GET', '/v1/../health', { raw: raw('GET /v1/../health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n') }), 404, 'ERR_NOT_FOUND'],
      [c('header', 'GET', '/health', { raw: raw(`GET /health HTTP/1.1\r\nHost: x\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`) }), 431, 'ERR_HEADERS_TOO_LARGE'],
      [c('header', 'GET', '/health', { raw: raw('GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n') }), 400, 'ERR_BAD_REQUEST'],
      [c('odd-method', 'CONNECT', 'x:1', { raw: raw('CONNECT x:1 HTTP/1.1\r\nHost: x\r\n\r\n') }), 405, 'ERR_METHOD_NOT_ALLOWED'],
      [c('header', 'GET', '/health', { raw: raw('GET /health HTTP/1.1\r\nHost: x\r\nExpect: nothing\r\nConnection: close\r\n\r\n') }), 417, 'ERR_EXPECTATION_FAILED']
    ]
    for (const [req, status, code] of table) {
      const answer = await sendCase(url, req)
      assert.equal(checkAnswer({ ...req, expect: [status] }, answer, forbidden), undefined)
      assert.ok(typeof answer !== 'string')
      assert.equal(JSON.parse(answer.body).error.code, code, `${req.method} ${req.target.slice(0, 60)}: ${answer.body.slice(0, 200)}`)
      assert.ok(answer.body.length < 1024, `a bounded answer: ${answer.body.length} bytes`)
    }
  })

  it('the read endpoints reveal no path of the node (data dir, model dir, home, temp) and no key', async () => {
    const model = await loadModelDir(SHIPPED_MODEL_DIR)
    const reads = ['/health', '/v1/network', '/v1/models', `/v1/models/${(await import('../node/inference/index.js')).modelIdToString(model.modelId)}`, '/v1/tasks?limit=100', '/metrics']
    for (const path of reads) {
      const res = await fetch(`${url}${path}`)
      assert.equal(res.status, 200, path)
      const text = (await res.text()).toLowerCase()
      for (const secret of forbidden) assert.ok(!text.includes(secret.toLowerCase()), `${path} reveals ${secret.slice(0, 12)}…`)
      if (path.startsWith('/v1/models')) assert.ok(!/"(?:dir|path|file|directory)"\s*:/.test(text), `${path} names no directory: ${text.slice(0, 300)}`)
    }
    // The certified task is listed: the scan above read a real task's view.
    const tasks = await (await fetch(`${url}/v1/tasks`)).json() as { tasks: Array<{ status: string }> }
    assert.ok(tasks.tasks.some(t => t.status === 'certified'))
  })
})
