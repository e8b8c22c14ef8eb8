/**
 * The node's HTTP API (node/api/http-server.ts) over real HTTP against real nodes: health on a
 * formed network and on a node without peers, the network view, a really certified task, the
 * models held, the JSON errors (404, 405, 400, 413), and `poi bootstrap --http 127.0.0.1:0`
 * reporting its bound address in the `ready` event.
 */
import { strict as assert } from 'node:assert'
import { join } from 'node:path'
import { signProofOfPossession, writeGenesis } from '../consensus/index.js'
import { ChainClient } from '../node/chain-client.js'
import { ConfigError, parseHttpAddress, resolveConfig } from '../node/config.js'
import { exampleInput } from '../node/cli/devnet.js'
import { ChildNode } from '../node/cli/launcher.js'
import { loadModelDir, modelIdToString, SHIPPED_MODEL_DIR, type ModelDir } from '../node/inference/index.js'
import { generateKeystore, loadKeystore } from '../node/keys.js'
import { PoiNode } from '../node/poi-node.js'
import { requestInference } from '../node/requester/index.js'
import { to0xHex } from '../protocols/wire/index.js'
import { runPoi } from './helpers/cli.js'
import { startTestNetwork, until, type TestNetwork } from './helpers/network.js'
import { startPoiChain } from './helpers/poi-chain.js'

/** One task on loopback certifies in well under a second; generous for a loaded machine. */
const TASK_TIMEOUT_MS = 20_000
/** A node process prints `ready` within a few seconds; generous for a loaded machine. */
const READY_TIMEOUT_MS = 30_000

interface Json { [key: string]: any }

async function get (base: string | undefined, path: string, init?: RequestInit): Promise<{ status: number, headers: Headers, body: Json }> {
  assert.ok(base != null, 'the node serves HTTP')
  const res = await fetch(`${base}${path}`, init)
  const text = await res.text()
  let body: Json
  try {
    body = JSON.parse(text)
  } catch {
    assert.fail(`${init?.method ?? 'GET'} ${path} answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`)
  }
  return { status: res.status, headers: res.headers, body }
}

describe('--http addresses (parseHttpAddress)', () => {
  it('a bare port or :port is loopback, host:port and [ipv6]:port are taken as given, port 0 is allowed', () => {
    assert.deepEqual(parseHttpAddress('8080'), { host: '127.0.0.1', port: 8080 })
    assert.deepEqual(parseHttpAddress(':0'), { host: '127.0.0.1', port: 0 })
    assert.deepEqual(parseHttpAddress('0.0.0.0:9000'), { host: '0.0.0.0', port: 9000 })
    assert.deepEqual(parseHttpAddress('localhost:1'), { host: 'localhost', port: 1 })
    assert.deepEqual(parseHttpAddress('[::1]:8080'), { host: '::1', port: 8080 })
  })

  it('anything else is a ConfigError naming the setting, also from a config layer', () => {
    for (const bad of ['', 'host', 'host:', '1.2.3.4:65536', ':-1', 'http://127.0.0.1:80', '::1:80', 42]) {
      assert.throws(() => parseHttpAddress(bad), (err: unknown) => err instanceof ConfigError && /setting http: /.test(err.message), String(bad))
    }
    assert.throws(() => resolveConfig({ http: 'nope' }), /setting http: "nope" is not host:port/)
  })
})

describe('HTTP API (--http)', function () {
  this.timeout(60_000)
  let net: TestNetwork
  let model: ModelDir

  before(async () => {
    model = await loadModelDir(SHIPPED_MODEL_DIR)
    net = await startTestNetwork({ operators: 3, http: true })
  })
  after(async () => { await net?.stop() })

  it('GET /health is 200 with every check on a formed network (operator: libp2p, peers, tasks mesh)', async () => {
    const op = net.operators[0]!
    const r = await get(op.http?.url, '/health')
    assert.equal(r.status, 200, JSON.stringify(r.body))
    assert.equal(r.body.ok, true)
    assert.deepEqual(r.body.checks.map((c: Json) => c.name), ['libp2p', 'peers', 'tasks-mesh'])
    assert.ok(r.body.checks.every((c: Json) => c.ok === true && typeof c.detail === 'string'))
    // A bootstrap node is not checked for the operators' mesh.
    const boot = await get(net.bootstrap.http?.url, '/health')
    assert.equal(boot.status, 200)
    assert.deepEqual(boot.body.checks.map((c: Json) => c.name), ['libp2p', 'peers'])
  })

  it('GET /health is 503 naming the failing check on a node with no peers', async () => {
    const keystore = join(net.root, 'alone', 'keys')
    await generateKeystore(keystore)
    const alone = await PoiNode.start({
      operate: false,
      aggregate: false,
      light: false,
      keystore: await loadKeystore(keystore),
      config: resolveConfig({ keystore, dataDir: join(net.root, 'alone', 'data'), genesis: join(net.root, 'genesis.json'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], http: ':0' }),
      operatorSet: net.operatorSet
    })
    try {
      assert.equal(alone.http?.address?.host, '127.0.0.1', 'a bare :port binds loopback')
      const r = await get(alone.http?.url, '/health')
      assert.equal(r.status, 503)
      assert.equal(r.body.ok, false)
      assert.deepEqual(r.body.checks.map((c: Json) => [c.name, c.ok]), [['peers', false]])
      assert.match(r.body.checks[0].detail, /0 connected peers/)
    } finally {
      await alone.stop()
    }
    // Stopped with its node: nothing answers any more.
    await assert.rejects(fetch(`${alone.http!.url!}/health`))
  })

  it('with a chain: /health checks the RPC and turns 503 naming the chain when it stops answering; /v1/network has the deployment', async function () {
    this.timeout(120_000)
    const chain = await startPoiChain()
    let node: PoiNode | undefined
    try {
      const config = resolveConfig({
        keystore: join(net.root, 'chained', 'keys'),
        dataDir: join(net.root, 'chained', 'data'),
        genesis: join(net.root, 'genesis.json'),
        listen: ['/ip4/127.0.0.1/tcp/0'],
        bootstrap: [net.bootstrapAddr],
        http: '127.0.0.1:0',
        chain: { ...chain.deployment, rpcUrl: chain.anvil.rpcUrl }
      })
      await generateKeystore(config.keystore)
      const client = await ChainClient.connect(config.chain!)
      node = await PoiNode.start({ operate: false, aggregate: false, light: false, keystore: await loadKeystore(config.keystore), config, operatorSet: net.operatorSet, chainEpoch: async () => await client.currentEpoch() })
      const started = node
      await until(() => started.libp2p.getPeers().length > 0, 20_000, 'a peer')
      const healthy = await get(node.http?.url, '/health')
      assert.equal(healthy.status, 200, JSON.stringify(healthy.body))
      const check = healthy.body.checks.find((c: Json) => c.name === 'chain')
      assert.equal(check?.ok, true)
      assert.match(check.detail, new RegExp(`${chain.anvil.rpcUrl} answers: epoch \\d+`))
      const network = await get(node.http?.url, '/v1/network')
      assert.equal(network.body.deployment.registry, chain.deployment.registry)
      assert.equal(network.body.deployment.taskManager, chain.deployment.taskManager)
      assert.equal(network.body.deployment.chainId, Number(net.operatorSet.domain.chainId))
      assert.equal(network.body.deployment.rpcUrl, undefined, 'the RPC URL (it may carry a key) is not shown')
      await chain.stop()
      const down = await get(node.http?.url, '/health')
      assert.equal(down.status, 503)
      assert.deepEqual(down.body.checks.map((c: Json) => [c.name, c.ok]), [['chain', false]])
      assert.match(down.body.checks[0].detail, /does not answer/)
    } finally {
      await node?.stop()
      await chain.stop()
    }
  })

  it('GET /v1/network: peer id, role, version, peers and the operator set with stake shares', async () => {
    const agg = net.aggregator
    const before = agg.libp2p.getPeers().map(p => p.toString())
    const r = await get(agg.http?.url, '/v1/network')
    const after = agg.libp2p.getPeers().map(p => p.toString())
    assert.equal(r.status, 200)
    assert.equal(r.body.peerId, agg.libp2p.peerId.toString())
    assert.deepEqual(r.body.roles, ['aggregator'])
    assert.match(r.body.version, /^\d+\.\d+\.\d+/)
    // Peers may come and go (a node of another test disconnecting) between the snapshots.
    for (const p of before.filter(p => after.includes(p))) assert.ok(r.body.peers.includes(p), `peer ${p} is listed`)
    for (const p of r.body.peers) assert.ok(before.includes(p) || after.includes(p), `${p} is a connected peer`)
    assert.ok(r.body.peers.includes(net.bootstrap.libp2p.peerId.toString()))
    assert.equal(r.body.epoch, '0')
    assert.equal(r.body.operators.length, 3)
    for (const [i, o] of r.body.operators.entries()) {
      assert.equal(o.index, i)
      assert.equal(o.address, net.keys[i].account.address)
      assert.equal(o.stake, net.operatorSet.operators[i].stake.toString())
      assert.ok(Math.abs(o.share - 1 / 3) < 1e-5, `operator ${i} holds a third of the stake, got ${o.share}`)
    }
    assert.equal(r.body.totalStake, net.operatorSet.totalStake.toString())
    assert.equal(r.body.deployment, null, 'no chain: no deployment')
  })

  it('GET /v1/tasks/:id: certified with its certificate after a real task, unknown for one never seen; GET /v1/tasks?limit= lists it', async () => {
    const result = await requestInference(net.requester, net.requesterKeys.account, { modelId: model.modelId, input: exampleInput(5), timeoutMs: TASK_TIMEOUT_MS })
    const taskId = to0xHex(result.taskId)
    const qc = result.certificate
    // The aggregator stored the certificate it formed; an operator stores the one it received by gossip.
    for (const node of [net.aggregator, net.operators[1]!]) {
      let r = await get(node.http?.url, `/v1/tasks/${taskId}`)
      for (let i = 0; r.body.status !== 'certified' && i < 100; i++) {
        await new Promise(resolve => setTimeout(resolve, 100))
        r = await get(node.http?.url, `/v1/tasks/${taskId}`)
      }
      assert.equal(r.status, 200)
      assert.equal(r.body.status, 'certified', JSON.stringify(r.body))
      assert.equal(r.body.outputRef, to0xHex(qc.outputRef))
      assert.equal(r.body.certificate.taskId, taskId)
      assert.equal(r.body.certificate.resultHash, to0xHex(qc.resultHash))
      assert.equal(r.body.certificate.signerBitmap, to0xHex(qc.signerBitmap))
      assert.equal(r.body.certificate.aggregateSig, to0xHex(qc.aggregateSig))
      assert.equal(r.body.certificate.epoch, qc.epoch.toString())
    }
    // The most recent tasks: this one is listed, certified; limit bounds the list.
    const recent = await get(net.aggregator.http?.url, '/v1/tasks?limit=5')
    assert.equal(recent.status, 200)
    const listed = recent.body.tasks.find((t: Json) => t.taskId === taskId)
    assert.ok(listed != null, `task ${taskId} is among the recent ones: ${JSON.stringify(recent.body.tasks.map((t: Json) => t.taskId))}`)
    assert.equal(listed.status, 'certified')
    assert.equal(listed.certificate.resultHash, to0xHex(qc.resultHash))
    assert.ok(recent.body.tasks.length <= 5)
    const one = await get(net.aggregator.http?.url, '/v1/tasks?limit=1')
    assert.equal(one.body.tasks.length, 1)
    for (const bad of ['0', '101', 'abc', '-1']) {
      const r = await get(net.aggregator.http?.url, `/v1/tasks?limit=${bad}`)
      assert.equal(r.status, 400, `limit=${bad}`)
      assert.equal(r.body.error.code, 'ERR_BAD_REQUEST')
    }
    // Upper-case hex is the same task.
    const upper = await get(net.aggregator.http?.url, `/v1/tasks/0x${taskId.slice(2).toUpperCase()}`)
    assert.equal(upper.body.status, 'certified')
    const unknown = await get(net.aggregator.http?.url, `/v1/tasks/0x${'ab'.repeat(32)}`)
    assert.equal(unknown.status, 200)
    assert.deepEqual(unknown.body, { taskId: `0x${'ab'.repeat(32)}`, status: 'unknown', outputRef: null, certificate: null })
  })

  it('GET /metrics on a node serving the API: Prometheus text with poi\'s series after the task, libp2p\'s, and 405 for another method', async () => {
    const url = net.aggregator.http?.url
    assert.ok(url != null)
    await requestInference(net.requester, net.requesterKeys.account, { modelId: model.modelId, input: exampleInput(6), timeoutMs: TASK_TIMEOUT_MS })
    const res = await fetch(`${url}/metrics`)
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    const text = await res.text()
    // The task was certified here: the counter is at least 1, with this node's labels.
    const certified = text.split('\n').find(l => l.startsWith('poi_tasks_certified_total{'))
    assert.ok(certified != null, 'poi_tasks_certified_total is served')
    assert.ok(certified.includes(`peer_id="${net.aggregator.libp2p.peerId.toString()}"`), certified)
    assert.ok(Number(certified.split(' ').at(-1)) >= 1, certified)
    assert.match(text, /^libp2p_connection_manager_connections\{/m)
    assert.equal((await fetch(`${url}/metrics`, { method: 'POST' })).status, 405)
  })

  it('GET /v1/models and /v1/models/:id: the models held, with their manifests', async () => {
    const op = net.operators[0]!
    const r = await get(op.http?.url, '/v1/models')
    assert.equal(r.status, 200)
    const held = r.body.models.find((m: Json) => m.modelId === modelIdToString(model.modelId))
    assert.ok(held != null, `the shipped model ${modelIdToString(model.modelId)} is listed: ${JSON.stringify(r.body.models.map((m: Json) => m.modelId))}`)
    assert.equal(held.manifest.modelHash, model.manifest.modelHash)
    assert.equal(held.manifest.name, model.manifest.name)
    const one = await get(op.http?.url, `/v1/models/${modelIdToString(model.modelId)}`)
    assert.equal(one.status, 200)
    assert.deepEqual(one.body, held)
    const missing = await get(op.http?.url, `/v1/models/bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa`)
    assert.equal(missing.status, 404)
    assert.equal(missing.body.error.code, 'ERR_UNKNOWN_MODEL')
  })

  it('errors are JSON: unknown route 404, wrong method 405 with Allow, malformed input 400, oversized body 413', async () => {
    const base = net.bootstrap.http?.url
    const notFound = await get(base, '/v1/nothing')
    assert.equal(notFound.status, 404)
    assert.equal(notFound.body.error.code, 'ERR_NOT_FOUND')
    const wrongMethod = await get(base, '/health', { method: 'POST' })
    assert.equal(wrongMethod.status, 405)
    assert.equal(wrongMethod.headers.get('allow'), 'GET, HEAD')
    assert.equal(wrongMethod.body.error.code, 'ERR_METHOD_NOT_ALLOWED')
    const deleteTask = await get(base, `/v1/tasks/0x${'00'.repeat(32)}`, { method: 'DELETE' })
    assert.equal(deleteTask.status, 405)
    for (const bad of ['/v1/tasks/0x1234', '/v1/tasks/nothex', `/v1/tasks/0x${'zz'.repeat(32)}`, '/v1/models/NOT-A-CID']) {
      const r = await get(base, bad)
      assert.equal(r.status, 400, bad)
      assert.equal(r.body.error.code, 'ERR_BAD_REQUEST', bad)
      assert.match(r.body.error.message, /must match pattern/, bad)
    }
    const big = await get(base, '/health', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ x: 'y'.repeat(64 * 1024) }) })
    assert.equal(big.status, 413)
    assert.equal(typeof big.body.error.message, 'string')
  })

  it('poi bootstrap --http 127.0.0.1:0 serves on a free port and prints it in the ready event; a bad value is a usage error naming --http', async function () {
    this.timeout(READY_TIMEOUT_MS + 20_000)
    const genesis = join(net.root, 'cli-genesis.json')
    await writeGenesis(genesis, net.operatorSet, net.keys.map(k => signProofOfPossession(k.blsSecretKey, k.account.address)))
    const keystore = join(net.root, 'cli-boot', 'keys')
    await generateKeystore(keystore)
    const bad = await runPoi(net.root, READY_TIMEOUT_MS, 'bootstrap', '--keystore', keystore, '--genesis', genesis, '--http', '127.0.0.1:99999')
    assert.notEqual(bad.code, 0)
    assert.match(bad.stderr, /--http: "127\.0\.0\.1:99999" is not an address/)
    const child = new ChildNode('bootstrap', ['bootstrap', '--keystore', keystore, '--data-dir', join(net.root, 'cli-boot', 'data'), '--genesis', genesis,
      '--listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', net.bootstrapAddr, '--http', '127.0.0.1:0'], join(net.root, 'cli-boot.log'))
    try {
      const ready = await child.ready(READY_TIMEOUT_MS)
      assert.ok(ready.http != null, 'ready names the HTTP address')
      const url = new URL(ready.http)
      assert.equal(url.hostname, '127.0.0.1')
      assert.notEqual(url.port, '0', 'the bound port, not the one asked for')
      const r = await get(ready.http, '/v1/network')
      assert.equal(r.body.peerId, ready.peerId)
      assert.deepEqual(r.body.roles, ['bootstrap'])
    } finally {
      await child.stop()
    }
  })
})
