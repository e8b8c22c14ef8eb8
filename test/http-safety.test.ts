/**
 * The HTTP API under slow clients and lost peers: a client that sends part of its headers or
 * body and stalls is cut off by the server's timeouts (lowered here through
 * HttpServerInit.timeouts) with a JSON 408 while other clients are served; a silent connection
 * is closed too; and a real node's GET /health turns 503 naming `peers` when its only peer stops,
 * then 200 again when another connects.
 */
import { strict as assert } from 'node:assert'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createOperatorSet } from '../consensus/index.js'
import { createHttpServer, type HttpServer, type HttpSource } from '../node/api/index.js'
import { resolveConfig } from '../node/config.js'
import { generateKeystore, loadKeystore } from '../node/keys.js'
import { PoiNode, rpcOrigin } from '../node/poi-node.js'
import { STAKE, TEST_CHAIN_ID, TEST_TASK_MANAGER, until } from './helpers/network.js'
import { parseRawAnswer } from './helpers/http-fuzz.js'

/** The lowered request timeout: short enough for a quick test, long enough that a served request never meets it. */
const REQUEST_TIMEOUT_MS = 1_000
const IDLE_TIMEOUT_MS = 1_500
/** How often Node checks the timeouts (production: HTTP_TIMEOUT_CHECK_INTERVAL_MS). */
const CHECK_INTERVAL_MS = 200
/** A stalled client must be gone well before this, on a loaded machine too. */
const CUT_OFF_WITHIN_MS = 10_000
/** How many slow clients hold sockets at once while others are served. */
const SLOW_CLIENTS = 40
/** Peers connect and disconnect on loopback within a second or two; generous for a loaded machine. */
const PEER_TIMEOUT_MS = 20_000

/** A source with nothing behind it: these tests are about the transport, not the node. */
const stubSource: HttpSource = {
  health: async () => [{ name: 'stub', ok: true, detail: 'always' }],
  network: () => ({ peerId: 'stub', roles: [], version: '0', peers: [], epoch: '0', operators: [], totalStake: '0', deployment: null }),
  task: async (taskId) => ({ taskId, status: 'unknown', outputRef: null, certificate: null }),
  recentTasks: async () => [],
  models: async () => []
}

interface Stalled { socket: Socket, closed: Promise<{ afterMs: number, received: Buffer }> }

/** Opens a socket, sends `first`, then keeps dribbling `drip` (if any) without ever finishing the request. */
function stall (port: number, first: string, drip?: string): Stalled {
  const socket = connect(port, '127.0.0.1')
  const chunks: Buffer[] = []
  const opened = performance.now()
  let dripper: NodeJS.Timeout | undefined
  socket.on('connect', () => {
    socket.write(first)
    if (drip != null) dripper = setInterval(() => { if (socket.writable) socket.write(drip) }, CHECK_INTERVAL_MS / 2)
  })
  socket.on('data', (d: Buffer) => chunks.push(d))
  socket.on('error', () => {})
  const closed = new Promise<{ afterMs: number, received: Buffer }>((resolve) => {
    socket.on('close', () => { clearInterval(dripper); resolve({ afterMs: performance.now() - opened, received: Buffer.concat(chunks) }) })
  })
  return { socket, closed }
}

async function cutOff (s: Stalled, what: string): Promise<{ afterMs: number, received: Buffer }> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { s.socket.destroy(); reject(new Error(`${what}: still open after ${CUT_OFF_WITHIN_MS} ms`)) }, CUT_OFF_WITHIN_MS) })
  try {
    return await Promise.race([s.closed, limit])
  } finally {
    clearTimeout(timer)
  }
}

describe('HTTP API: slow clients are cut off by the timeouts', function () {
  this.timeout(60_000)
  let server: HttpServer
  let port: number

  before(async () => {
    server = createHttpServer(stubSource, { host: '127.0.0.1', port: 0, timeouts: { requestMs: REQUEST_TIMEOUT_MS, connectionMs: IDLE_TIMEOUT_MS, checkIntervalMs: CHECK_INTERVAL_MS } })
    await server.start()
    port = server.address!.port
  })
  after(async () => { await server?.stop() })

  it('partial headers dribbled a line at a time (slowloris), and a partial body, are answered 408 with JSON and closed, while others are served', async () => {
    const slowHeaders = Array.from({ length: SLOW_CLIENTS / 2 }, () => stall(port, 'GET /health HTTP/1.1\r\nHost: x\r\n', 'X-Slow: 1\r\n'))
    const slowBodies = Array.from({ length: SLOW_CLIENTS / 2 }, () => stall(port, 'POST /health HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a":', ' '))
    // Served meanwhile, on fresh connections.
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${server.url!}/health`, { headers: { connection: 'close' } })
      assert.equal(res.status, 200)
      assert.equal((await res.json() as { ok: boolean }).ok, true)
    }
    for (const [list, what] of [[slowHeaders, 'partial headers'], [slowBodies, 'partial body']] as const) {
      for (const s of list) {
        const { afterMs, received } = await cutOff(s, what)
        assert.ok(afterMs >= REQUEST_TIMEOUT_MS * 0.9, `${what}: cut off after ${afterMs.toFixed(0)} ms, not before the timeout`)
        const answer = parseRawAnswer(received)
        assert.ok(answer != null, `${what}: an HTTP answer before the close: ${received.toString('latin1').slice(0, 200)}`)
        assert.equal(answer.status, 408, `${what}: ${received.toString('latin1').slice(0, 300)}`)
        assert.equal(JSON.parse(answer.body).error.code, 'ERR_REQUEST_TIMEOUT')
      }
    }
    const res = await fetch(`${server.url!}/health`)
    assert.equal(res.status, 200)
  })

  it('a connection that never sends a request is closed once the request timeout passes (headers are due within it)', async () => {
    const { afterMs } = await cutOff(stall(port, ''), 'a silent connection')
    assert.ok(afterMs >= REQUEST_TIMEOUT_MS * 0.9, `closed after ${afterMs.toFixed(0)} ms`)
  })
})

describe('GET /health shows the RPC endpoint without its key', () => {
  it('rpcOrigin keeps scheme, host and port, and drops user, path and query (where providers put API keys)', () => {
    assert.equal(rpcOrigin('https://user:secret@eth.example:8443/v3/0123456789abcdef?key=abc'), 'https://eth.example:8443')
    assert.equal(rpcOrigin('http://127.0.0.1:8545'), 'http://127.0.0.1:8545')
    assert.equal(rpcOrigin('wss://rpc.example/ws/KEY'), 'wss://rpc.example')
    assert.equal(rpcOrigin('not a url /with/KEY'), 'the RPC endpoint')
  })
})

describe('GET /health follows the node\'s peers', function () {
  this.timeout(90_000)
  let root: string
  const nodes: PoiNode[] = []

  before(async () => { root = await mkdtemp(join(tmpdir(), 'poi-health-')) })
  after(async () => {
    await Promise.all(nodes.map(async n => await n.stop()))
    await rm(root, { recursive: true, force: true })
  })

  async function startNode (name: string, bootstrap: string[], http: boolean): Promise<PoiNode> {
    const keystore = join(root, name, 'keys')
    await generateKeystore(keystore)
    const keys = await loadKeystore(keystore)
    const operatorSet = createOperatorSet({ epoch: 0n, domain: { chainId: TEST_CHAIN_ID, taskManager: TEST_TASK_MANAGER }, operators: [{ address: keys.account.address, blsPublicKey: keys.blsPublicKey, stake: STAKE }] })
    const config = resolveConfig({ keystore, dataDir: join(root, name, 'data'), genesis: join(root, 'genesis.json'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, ...(http ? { http: '127.0.0.1:0' } : {}) })
    const node = await PoiNode.start({ operate: false, aggregate: false, light: false, keystore: keys, config, operatorSet, control: false })
    nodes.push(node)
    return node
  }

  async function health (node: PoiNode): Promise<{ status: number, body: { ok: boolean, checks: Array<{ name: string, ok: boolean, detail: string }> } }> {
    const res = await fetch(`${node.http!.url!}/health`)
    return { status: res.status, body: await res.json() as { ok: boolean, checks: Array<{ name: string, ok: boolean, detail: string }> } }
  }

  it('200 with a peer, 503 naming the peers check once its only peer stops, 200 again when a peer connects', async () => {
    const watched = await startNode('watched', [], true)
    const peer = await startNode('peer', [watched.addresses()[0]], false)
    await until(() => watched.libp2p.getPeers().length > 0, PEER_TIMEOUT_MS, 'the peer connecting')
    const up = await health(watched)
    assert.equal(up.status, 200, JSON.stringify(up.body))
    assert.equal(up.body.ok, true)

    await peer.stop()
    await until(() => watched.libp2p.getPeers().length === 0, PEER_TIMEOUT_MS, 'the watched node seeing its peer gone')
    const down = await health(watched)
    assert.equal(down.status, 503, JSON.stringify(down.body))
    assert.equal(down.body.ok, false)
    assert.deepEqual(down.body.checks.map(c => [c.name, c.ok]), [['peers', false]], 'only the failing check is listed')
    assert.match(down.body.checks[0].detail, /^0 connected peers/)

    await startNode('another', [watched.addresses()[0]], false)
    await until(async () => (await health(watched)).status === 200, PEER_TIMEOUT_MS, 'health back to 200 with the new peer')
    const back = await health(watched)
    assert.equal(back.body.ok, true)
    assert.ok(back.body.checks.some(c => c.name === 'peers' && c.ok && /^1 connected peer$/.test(c.detail)), JSON.stringify(back.body))
  })
})
