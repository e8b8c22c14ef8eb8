/**
 * The requester gateway (node/api/gateway.ts, `poi gateway`) over real HTTP, in front of a real
 * requester client on a real network: a task posted as JSON tensors and one as a base64 tensor
 * file are certified and their certificates verify here against the operator set; writes need
 * the bearer token beyond loopback; oversized bodies get 413, bad requests 400 naming the field
 * (from the schema and from the client's checks against the model's manifest and the nodes'
 * limits), a client over its rate 429 with Retry-After; unknown routes 404, wrong methods 405;
 * the token file; and the `poi gateway` command itself (gateway-ready, health, clean stop).
 */
import { strict as assert } from 'node:assert'
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { hexToBytes as viemHexToBytes } from 'viem'
import { signProofOfPossession, verifyCertificate, writeGenesis } from '../consensus/index.js'
import {
  GATEWAY_BODY_LIMIT_BYTES, GATEWAY_TOKEN_FILE, GatewayTokenError, MAX_WAIT_MS, bearerMatches, createGateway, loadOrCreateGatewayToken, type Gateway
} from '../node/api/index.js'
import { exampleInput } from '../node/cli/devnet.js'
import { clientHealth } from '../node/cli/gateway-command.js'
import { PoiClient } from '../node/client/index.js'
import { ChildNode } from '../node/cli/launcher.js'
import { encodeTensorFile, loadModelDir, modelIdToString, SHIPPED_MODEL_DIR } from '../node/inference/index.js'
import { KEY_FILES, generateKeystore } from '../node/keys.js'
import { to0xHex, type QuorumCertificate } from '../protocols/wire/index.js'
import { runHttpFuzz, type FuzzRoute } from './helpers/http-fuzz.js'
import { startTestNetwork, type TestNetwork } from './helpers/network.js'
import { parsePromText, samples as samplesOf, total } from './helpers/prom-text.js'

/** One task on loopback certifies in well under a second; generous for a loaded machine. */
const TASK_TIMEOUT_MS = 30_000
/** `poi gateway` connects and prints gateway-ready within seconds; generous for a loaded machine. */
const READY_TIMEOUT_MS = 40_000
/** Malformed requests the fuzz test sends the gateway: every generator many times; oversize bodies are 1.4 MB each (the gateway takes a whole task input), so this takes ~10 s on a loaded machine. */
const FUZZ_REQUESTS = 800
const FUZZ_SEED = 21
/** The gateway's routes, for the fuzz helper (test/helpers/http-fuzz.ts). */
const GATEWAY_ROUTES: FuzzRoute[] = [
  { method: 'GET', path: '/health' },
  { method: 'GET', path: '/metrics', text: true },
  { method: 'POST', path: '/v1/tasks', jsonBody: true },
  { method: 'GET', path: '/v1/tasks/:id', params: { id: '^0x[0-9a-fA-F]{64}$' } }
]

interface Json { [key: string]: any }

async function call (url: string, init?: RequestInit): Promise<{ status: number, headers: Headers, body: Json }> {
  const res = await fetch(url, init)
  const text = await res.text()
  let body: Json
  try {
    body = JSON.parse(text)
  } catch {
    assert.fail(`${init?.method ?? 'GET'} ${url} answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`)
  }
  return { status: res.status, headers: res.headers, body }
}

const post = async (base: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number, headers: Headers, body: Json }> =>
  await call(`${base}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) })

/** Asks with ?wait= until the task is no longer pending (each ask holds at most MAX_WAIT_MS). */
async function waitSettled (base: string, self: string, timeoutMs: number): Promise<Json> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const left = end - Date.now()
    assert.ok(left > 0, `${self} still pending after ${timeoutMs} ms`)
    const { status, body } = await call(`${base}${self}?wait=${Math.min(MAX_WAIT_MS, left)}`)
    assert.equal(status, 200)
    if (body.status !== 'pending') return body
  }
}

/** The certificate back from the answer's hex fields, as a client that does not trust the gateway reads it. */
function certificateOf (c: Json): QuorumCertificate {
  const hexToBytes = (h: `0x${string}`): Uint8Array<ArrayBuffer> => new Uint8Array(viemHexToBytes(h))
  return {
    version: c.version,
    taskId: hexToBytes(c.taskId),
    resultHash: hexToBytes(c.resultHash),
    outputRef: hexToBytes(c.outputRef),
    epoch: BigInt(c.epoch),
    signerBitmap: hexToBytes(c.signerBitmap),
    aggregateSig: hexToBytes(c.aggregateSig),
    signedStake: hexToBytes(c.signedStake),
    totalStake: hexToBytes(c.totalStake),
    output: hexToBytes(c.output)
  }
}

describe('requester gateway (poi gateway)', function () {
  this.timeout(120_000)
  let net: TestNetwork
  let client: PoiClient
  let genesisPath: string
  let keystore: string
  let token: string
  let modelId: string
  /** Bound to 127.0.0.1: writes need no token. */
  let open: Gateway
  /** Bound to 0.0.0.0: writes need the token. */
  let guarded: Gateway
  let openUrl: string
  /** The guarded gateway, called over loopback (bound to every interface, so it answers there too). */
  let guardedUrl: string

  before(async function () {
    this.timeout(180_000)
    net = await startTestNetwork({ operators: 3 })
    genesisPath = join(net.root, 'genesis.json')
    await writeGenesis(genesisPath, net.operatorSet, net.keys.map(k => signProofOfPossession(k.blsSecretKey, k.account.address)))
    keystore = join(net.root, 'gateway', 'keys')
    await generateKeystore(keystore)
    token = (await loadOrCreateGatewayToken(keystore)).token
    modelId = modelIdToString((await loadModelDir(SHIPPED_MODEL_DIR)).modelId)
    client = await PoiClient.connect({ keystore, bootstrap: [net.bootstrapAddr], genesis: genesisPath })
    const health = async (): Promise<ReturnType<typeof clientHealth>> => clientHealth(client)
    open = createGateway(client, { host: '127.0.0.1', port: 0, token, health })
    guarded = createGateway(client, { host: '0.0.0.0', port: 0, token, health })
    await open.start()
    await guarded.start()
    openUrl = open.url!
    guardedUrl = `http://127.0.0.1:${guarded.address!.port}`
  })

  after(async () => {
    await open?.stop()
    await guarded?.stop()
    await client?.close()
    await net?.stop()
  })

  it('POST /v1/tasks answers 202 with the task id at once; GET ?wait= gives the certificate, which verifies against the operator set', async () => {
    const input = JSON.parse(new TextDecoder().decode(exampleInput(7)))
    const x = input.x as { dims: number[], data: number[] }
    const tensorFile = encodeTensorFile([{ name: 'x', dtype: 'float32', dims: x.dims, data: Float32Array.from(x.data) }])
    const [asJson, asFile] = await Promise.all([
      post(openUrl, { model: modelId, input, timeoutMs: 20_000 }),
      post(openUrl, { model: modelId, input: { base64: Buffer.from(tensorFile).toString('base64') } })
    ])
    for (const accepted of [asJson, asFile]) {
      assert.equal(accepted.status, 202, JSON.stringify(accepted.body))
      assert.match(accepted.body.taskId, /^0x[0-9a-f]{64}$/)
      assert.equal(accepted.body.links.self, `/v1/tasks/${accepted.body.taskId}`)
      assert.equal(accepted.headers.get('location'), accepted.body.links.self)
      assert.ok(accepted.body.deadline > Date.now() - 1000, 'the deadline is ahead (wall-clock ms)')
    }
    assert.notEqual(asJson.body.taskId, asFile.body.taskId)
    const views = await Promise.all([asJson, asFile].map(async a => await waitSettled(openUrl, a.body.links.self, TASK_TIMEOUT_MS)))
    for (const [i, view] of views.entries()) {
      assert.equal(view.status, 'certified', JSON.stringify(view))
      assert.equal(view.taskId, [asJson, asFile][i].body.taskId)
      const qc = certificateOf(view.certificate)
      assert.equal(to0xHex(qc.taskId), view.taskId)
      const verdict = verifyCertificate(qc, net.operatorSet)
      assert.ok(verdict.ok, verdict.ok ? '' : verdict.reason)
      assert.deepEqual(view.signers, verdict.signers)
      assert.ok(verdict.signers.length >= 2)
      assert.equal(view.output, view.certificate.output, 'the output is the certified one')
      assert.equal(view.resultHash, view.certificate.resultHash)
      assert.ok(Array.isArray(view.outputTensors) && view.outputTensors.length > 0, 'the output decoded into tensors')
      assert.equal(view.epoch, net.operatorSet.epoch.toString())
      assert.equal(BigInt(view.totalStake), net.operatorSet.totalStake)
      assert.ok(typeof view.latencyMs === 'number' && view.latencyMs >= 0)
    }
    // The same input both ways: the same model output.
    assert.equal(views[0].resultHash, views[1].resultHash)
    // Asked again without waiting: the remembered answer.
    const again = await call(`${openUrl}${asJson.body.links.self}`)
    assert.equal(again.body.status, 'certified')
    assert.equal(again.body.certificate.aggregateSig, views[0].certificate.aggregateSig)
  })

  it('beyond loopback a write needs the bearer token (401 JSON without it or with a wrong one); reads do not', async () => {
    assert.equal(guarded.needsToken, true)
    assert.equal(open.needsToken, false)
    const body = { model: modelId, input: JSON.parse(new TextDecoder().decode(exampleInput(8))) }
    const attempts: Array<Record<string, string>> = [{}, { authorization: `Bearer ${'0'.repeat(64)}` }, { authorization: token }, { authorization: `Basic ${token}` }]
    for (const headers of attempts) {
      const refused = await post(guardedUrl, body, headers)
      assert.equal(refused.status, 401, JSON.stringify(headers))
      assert.equal(refused.body.error.code, 'ERR_UNAUTHORIZED')
      assert.equal(refused.headers.get('www-authenticate'), 'Bearer')
      assert.ok(!JSON.stringify(refused.body).includes(token), 'the answer does not carry the token')
    }
    const accepted = await post(guardedUrl, body, { authorization: `Bearer ${token}` })
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body))
    const view = await waitSettled(guardedUrl, accepted.body.links.self, TASK_TIMEOUT_MS)
    assert.equal(view.status, 'certified')
    assert.equal((await call(`${guardedUrl}/health`)).status, 200)
  })

  it('a body above the input limit gets 413 JSON before it is read in full', async () => {
    const big = JSON.stringify({ model: modelId, input: { base64: 'A'.repeat(GATEWAY_BODY_LIMIT_BYTES) } })
    const { status, body } = await post(openUrl, big)
    assert.equal(status, 413)
    assert.equal(body.error.code, 'ERR_BODY_TOO_LARGE')
    // Just under the limit the body is read, and the client refuses the decoded input, above the largest a task carries.
    const { status: under, body: underBody } = await post(openUrl, { model: modelId, input: { base64: 'A'.repeat(GATEWAY_BODY_LIMIT_BYTES - 200) } })
    assert.equal(under, 413, JSON.stringify(underBody))
    assert.equal(underBody.error.code, 'ERR_INPUT_TOO_LARGE')
    assert.equal(underBody.error.field, 'input')
  })

  it('bad requests get 400 with the field at fault: JSON, schema, the model, the input against the manifest, the timeout against the nodes', async () => {
    const input = JSON.parse(new TextDecoder().decode(exampleInput(9)))
    const cases: Array<[string, unknown, string]> = [
      ['malformed JSON', '{"model": ', 'body'],
      ['no model', { input }, 'model'],
      ['a model id that is no id', { model: 'not a model', input }, 'model'],
      ['an unknown field', { model: modelId, input, timeout: 5 }, 'timeout'],
      ['a fee that is no decimal', { model: modelId, input, fee: '1e18' }, 'fee'],
      ['a timeout of 0', { model: modelId, input, timeoutMs: 0 }, 'timeoutMs'],
      ['a quorum above 10000 bps', { model: modelId, input, quorumBps: 10_001 }, 'quorumBps'],
      ['input that is no object', { model: modelId, input: [1, 2] }, 'input'],
      ['base64 that is not base64', { model: modelId, input: { base64: 'not base64!' } }, 'input.base64'],
      ['a tensor file cut short', { model: modelId, input: { base64: Buffer.from('POIT\x01\x00\x01x').toString('base64') } }, 'input'],
      ['a wrong tensor shape', { model: modelId, input: { x: { dims: [1, 15], data: new Array(15).fill(0) } } }, 'input'],
      ['an unknown input name', { model: modelId, input: { y: { dims: [1, 16], data: new Array(16).fill(0) } } }, 'input'],
      ['a model nobody published', { model: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', input }, 'model'],
      ['a timeout beyond the nodes\' maximum task TTL', { model: modelId, input, timeoutMs: 3_600_000 }, 'timeoutMs'],
      ['a fee on a network without a chain', { model: modelId, input, fee: '5' }, 'fee']
    ]
    for (const [what, body, field] of cases) {
      const res = await post(openUrl, body)
      assert.equal(res.status, 400, `${what}: ${JSON.stringify(res.body)}`)
      // The client names an input tensor as `input.<name>`.
      assert.ok(res.body.error.field === field || (field === 'input' && /^input\.\w+$/.test(res.body.error.field)), `${what}: ${JSON.stringify(res.body)}`)
      assert.equal(typeof res.body.error.message, 'string')
    }
    // Querystring and path are checked too.
    const id = `0x${'ab'.repeat(32)}`
    const tooLong = await call(`${openUrl}/v1/tasks/${id}?wait=${MAX_WAIT_MS + 1}`)
    assert.equal(tooLong.status, 400)
    assert.equal(tooLong.body.error.field, 'wait')
    const badId = await call(`${openUrl}/v1/tasks/0x1234`)
    assert.equal(badId.status, 400)
    assert.equal(badId.body.error.field, 'id')
  })

  it('a task it never saw is looked up from full nodes: unknown when none has it', async () => {
    const id = `0x${'cd'.repeat(32)}`
    const { status, body } = await call(`${openUrl}/v1/tasks/${id}`)
    assert.equal(status, 200)
    assert.deepEqual(body, { taskId: id, status: 'unknown', links: { self: `/v1/tasks/${id}` } })
  })

  it('unknown routes get 404 and wrong methods 405 with Allow, as JSON', async () => {
    const missing = await call(`${openUrl}/v1/nothing`)
    assert.equal(missing.status, 404)
    assert.equal(missing.body.error.code, 'ERR_NOT_FOUND')
    const list = await call(`${openUrl}/v1/tasks`)
    assert.equal(list.status, 405)
    assert.equal(list.headers.get('allow'), 'POST')
    const postOne = await call(`${openUrl}/v1/tasks/0x${'ab'.repeat(32)}`, { method: 'POST' })
    assert.equal(postOne.status, 405)
    assert.equal(postOne.headers.get('allow'), 'GET, HEAD')
  })

  it('a client over its rate gets 429 JSON with Retry-After; another client (the token holder) keeps its own budget', async () => {
    const limited = createGateway(client, { host: '0.0.0.0', port: 0, token, rateLimit: { max: 3, windowMs: 60_000 } })
    await limited.start()
    try {
      const base = `http://127.0.0.1:${limited.address!.port}`
      for (let i = 0; i < 3; i++) assert.equal((await call(`${base}/v1/tasks`)).status, 405)
      const over = await call(`${base}/v1/tasks`)
      assert.equal(over.status, 429)
      assert.equal(over.body.error.code, 'ERR_RATE_LIMITED')
      assert.ok(Number(over.headers.get('retry-after')) > 0, `Retry-After: ${over.headers.get('retry-after')}`)
      // A made-up token is the same client as its IP; the right token is another.
      assert.equal((await call(`${base}/v1/tasks`, { headers: { authorization: `Bearer ${'1'.repeat(64)}` } })).status, 429)
      assert.equal((await call(`${base}/v1/tasks`, { headers: { authorization: `Bearer ${token}` } })).status, 405)
      // Health is not limited (an orchestrator probes it).
      assert.equal((await call(`${base}/health`)).status, 200)
    } finally {
      await limited.stop()
    }
  })

  it('GET /metrics counts the tasks submitted and certified here and the requests refused, in Prometheus text', async () => {
    const scrape = async (): Promise<ReturnType<typeof parsePromText>> => {
      const res = await fetch(`${openUrl}/metrics`)
      assert.equal(res.status, 200)
      return parsePromText(await res.text())
    }
    const before = await scrape()
    const accepted = await post(openUrl, { model: modelId, input: JSON.parse(new TextDecoder().decode(exampleInput(11))) })
    assert.equal(accepted.status, 202)
    assert.equal((await waitSettled(openUrl, accepted.body.links.self, TASK_TIMEOUT_MS)).status, 'certified')
    assert.equal((await post(openUrl, '{')).status, 400)
    const after = await scrape()
    const grew = (name: string, labels: Record<string, string> = {}): number => total(after, name, labels) - total(before, name, labels)
    assert.equal(grew('poi_gateway_tasks_submitted_total'), 1)
    assert.equal(grew('poi_gateway_tasks_settled_total', { status: 'certified' }), 1)
    assert.equal(grew('poi_gateway_task_seconds_count', { status: 'certified' }), 1)
    assert.equal(grew('poi_gateway_requests_refused_total', { status: '400', code: 'ERR_BAD_JSON' }), 1)
    assert.equal(total(after, 'poi_gateway_tracked_tasks'), open.trackedTasks)
    assert.equal(samplesOf(after, 'poi_gateway_tasks_submitted_total')[0].labels.role, 'gateway')
  })

  it(`${FUZZ_REQUESTS} seeded malformed requests (the HTTP fuzz helper): every answer a 4xx (or a 2xx valid by chance) with JSON, no 5xx, no key, token or path revealed; the gateway still serves`, async () => {
    // Its own gateway: the rate limit would otherwise answer most of them 429 before they are parsed.
    const fuzzed = createGateway(client, { host: '127.0.0.1', port: 0, token, rateLimit: { max: 10 * FUZZ_REQUESTS } })
    await fuzzed.start()
    try {
      const keyHexes = await Promise.all(Object.values(KEY_FILES).map(async f => (await readFile(join(keystore, f), 'utf8')).trim().replace(/^0x/, '')))
      const forbidden = [net.root, keystore, token, homedir(), `${tmpdir()}/`, process.cwd(), ...keyHexes]
      const report = await runHttpFuzz({ url: fuzzed.url!, routes: GATEWAY_ROUTES, count: FUZZ_REQUESTS, seed: FUZZ_SEED, bodyLimitBytes: GATEWAY_BODY_LIMIT_BYTES, forbidden })
      assert.equal(report.sent, FUZZ_REQUESTS)
      assert.deepEqual(report.problems.slice(0, 20), [], `${report.problems.length} answers broke the rules; by status ${JSON.stringify(report.byStatus)}`)
      for (const status of [400, 404, 405, 413, 415]) assert.ok((report.byStatus[status] ?? 0) > 0, `some requests answered ${status}: ${JSON.stringify(report.byStatus)}`)
      assert.equal((await call(`${fuzzed.url!}/health`)).status, 200)
      // No malformed body became a task.
      assert.equal(fuzzed.trackedTasks, 0)
    } finally {
      await fuzzed.stop()
    }
  })

  it('GET /health says the light peer is connected and the operator set known', async () => {
    const { status, body } = await call(`${openUrl}/health`)
    assert.equal(status, 200)
    assert.equal(body.ok, true)
    assert.deepEqual(body.checks.map((c: Json) => c.name), ['gateway', 'peers', 'operator-set'])
  })

  it('the token file: made once with mode 0600 and reused; one others can read, or malformed, is refused', async () => {
    const dir = join(net.root, 'token-test')
    await mkdir(dir)
    const first = await loadOrCreateGatewayToken(dir)
    assert.equal(first.created, true)
    assert.match(first.token, /^[0-9a-f]{64}$/)
    assert.equal(first.path, join(dir, GATEWAY_TOKEN_FILE))
    assert.equal((await stat(first.path)).mode & 0o777, 0o600)
    const second = await loadOrCreateGatewayToken(dir)
    assert.deepEqual(second, { ...first, created: false })
    assert.equal(bearerMatches(`Bearer ${first.token}`, first.token), true)
    assert.equal(bearerMatches(`bearer   ${first.token}`, first.token), true)
    assert.equal(bearerMatches(`Bearer ${first.token.slice(1)}`, first.token), false)
    assert.equal(bearerMatches(undefined, first.token), false)
    await chmod(first.path, 0o644)
    await assert.rejects(loadOrCreateGatewayToken(dir), (err: unknown) => err instanceof GatewayTokenError && /chmod 600/.test(err.message))
    await chmod(first.path, 0o600)
    await writeFile(first.path, 'short\n')
    await assert.rejects(loadOrCreateGatewayToken(dir), (err: unknown) => err instanceof GatewayTokenError && /delete it/.test(err.message))
  })

  it('`poi gateway` prints gateway-ready with its URL, serves a task, and stops cleanly on SIGTERM', async () => {
    const dir = join(net.root, 'cli-gateway')
    const keys = join(dir, 'keys')
    await generateKeystore(keys)
    const child = new ChildNode('gateway', ['gateway', '--http', '127.0.0.1:0', '--keystore', keys, '--data-dir', join(dir, 'data'), '--bootstrap', net.bootstrapAddr, '--genesis', genesisPath], join(net.root, 'gateway.log'))
    try {
      const ready = await child.waitForEvent('gateway-ready', () => true, READY_TIMEOUT_MS, 'gateway-ready')
      assert.match(ready.url, /^http:\/\/127\.0\.0\.1:\d+$/)
      assert.equal(ready.tokenRequired, false)
      assert.equal(ready.tokenFile, join(keys, GATEWAY_TOKEN_FILE))
      const onDisk = (await readFile(ready.tokenFile, 'utf8')).trim()
      assert.ok(!(await readFile(child.logFile, 'utf8')).includes(onDisk), 'the token is printed nowhere')
      assert.equal((await call(`${ready.url}/health`)).status, 200)
      const accepted = await post(ready.url, { model: modelId, input: JSON.parse(new TextDecoder().decode(exampleInput(10))) })
      assert.equal(accepted.status, 202, JSON.stringify(accepted.body))
      const view = await waitSettled(ready.url, accepted.body.links.self, TASK_TIMEOUT_MS)
      assert.equal(view.status, 'certified')
      assert.ok(verifyCertificate(certificateOf(view.certificate), net.operatorSet).ok)
      await child.stop('SIGTERM')
      assert.deepEqual(await child.exited, { code: 0, signal: null })
    } finally {
      await child.stop('SIGKILL')
    }
  })
})
