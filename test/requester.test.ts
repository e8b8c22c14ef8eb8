import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { getEventListeners } from 'node:events'
import { join } from 'node:path'
import { exampleInput } from '../node/cli/devnet.js'
import { SHIPPED_MODEL_DIR, loadModelDir } from '../node/inference/index.js'
import { resolveConfig } from '../node/config.js'
import { createPoiLibp2p, type PoiLibp2p } from '../node/p2p.js'
import { PoiNode } from '../node/poi-node.js'
import {
  NoQuorumError, NotConnectedError, OutputNotFoundError, RequestAbortedError, ResultNotFoundError, RESULT_LOOKUP_TIMEOUT_MS,
  fetchOutput, lookupResult, requestInference, waitForNetwork
} from '../node/requester/index.js'
import { RESULT_PROTOCOL } from '../protocols/result/index.js'
import { freshKeysAsync } from './helpers/keys.js'
import { startTestNetwork, type TestNetwork } from './helpers/network.js'
import { WaitTimeoutError } from './helpers/wait.js'

/** Settles like `promise`, or fails the test after `ms` naming what did not happen. */
async function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new WaitTimeoutError(`timed out after ${ms} ms waiting for ${what}`)) }, ms) })
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** The error `promise` rejects with, within `ms`; fails the test if it resolves. */
async function rejection (promise: Promise<unknown>, ms: number, what: string): Promise<unknown> {
  return await within(promise.then(
    (value) => { throw new assert.AssertionError({ message: `expected ${what} to fail, it resolved with ${String(value)}` }) },
    (err: unknown) => err
  ), ms, what)
}

/** Listeners the requester adds to its node while a request is open. */
function requestListeners (node: PoiNode): { certificate: number, noQuorum: number } {
  return { certificate: node.listenerCount('certificate'), noQuorum: node.listenerCount('no-quorum') }
}

/** A plain libp2p peer on 127.0.0.1 (not a poi node), dialled by `from`. */
async function plainPeer (from: PoiNode): Promise<PoiLibp2p> {
  const peer = await createPoiLibp2p({ privateKey: (await freshKeysAsync()).privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], dhtClientMode: true })
  await peer.start()
  await within(from.libp2p.dial(peer.getMultiaddrs()), 5_000, `a connection to plain peer ${peer.peerId.toString()}`)
  return peer
}

describe('requester client', function () {
  // The network starts in a few seconds; each test bounds its own waits below.
  this.timeout(30_000)
  let net: TestNetwork
  let modelId: Uint8Array
  // No operator online: every task is relayed and tracked, and ends without a certificate.
  before(async () => {
    modelId = (await loadModelDir(SHIPPED_MODEL_DIR)).modelId
    net = await startTestNetwork({ operators: 3, offline: [0, 1, 2] })
  })
  after(async () => { await net?.stop() })

  const params = (timeoutMs: number): { modelId: Uint8Array, input: Uint8Array, timeoutMs: number } =>
    ({ modelId, input: exampleInput(), timeoutMs })

  it('a task that times out ends NoQuorum with each full node\'s reason and leaves no listener, timer or abort handler behind', async () => {
    const node = net.requester
    const before = requestListeners(node)
    const controller = new AbortController()
    let during: ReturnType<typeof requestListeners> | undefined
    const timeoutMs = 1_500
    const started = Date.now()
    const err = await rejection(requestInference(node, net.requesterKeys.account, params(timeoutMs), {
      signal: controller.signal,
      onProgress: (line) => { if (line.startsWith('announced task')) during = requestListeners(node) }
    }), timeoutMs + RESULT_LOOKUP_TIMEOUT_MS + 5_000, 'the request to end NoQuorum after its deadline')

    assert.ok(err instanceof NoQuorumError, String(err))
    assert.equal(err.code, 'ERR_NO_QUORUM')
    assert.match(err.message, /ended with NoQuorum: no valid quorum certificate within 1.5 s \(too few operators online/)
    // Asked after the deadline, the full nodes each say why they have no certificate: they
    // know the task (it was relayed), it has none.
    assert.ok(err.failures.length > 0, err.message)
    for (const f of err.failures) {
      assert.ok(['PENDING', 'NO_QUORUM'].includes(f.code), `${f.peer}: ${f.reason}`)
      assert.ok(err.message.includes(f.reason), err.message)
    }
    assert.ok(Date.now() - started >= timeoutMs, 'ended before its deadline')
    // The request did listen (so the counts measure something), and took everything away again.
    assert.deepEqual(during, { certificate: before.certificate + 1, noQuorum: before.noQuorum + 1 })
    assert.deepEqual(requestListeners(node), before)
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0, 'abort listeners left on the caller\'s signal')
  })

  it('aborting a request rejects at once with RequestAbortedError and cleans up, at every stage', async () => {
    const node = net.requester
    const before = requestListeners(node)

    // While waiting for the certificate.
    const controller = new AbortController()
    const reason = new Error('the user pressed Ctrl-C')
    let abortedAt = 0
    const err = await rejection(requestInference(node, net.requesterKeys.account, params(20_000), {
      signal: controller.signal,
      onProgress: (line) => {
        if (!line.startsWith('announced task')) return
        abortedAt = Date.now()
        setImmediate(() => { controller.abort(reason) })
      }
    }), 10_000, 'the request to reject after its signal aborted')
    assert.ok(abortedAt > 0, 'the task was never announced')
    assert.ok(err instanceof RequestAbortedError, String(err))
    assert.equal(err.code, 'ERR_REQUEST_ABORTED')
    assert.match(err.message, /aborted while waiting for the certificate of task 0x[0-9a-f]{64}: the user pressed Ctrl-C/)
    assert.equal(err.cause, reason)
    // Far below the task's 20 s deadline, with room for a loaded machine.
    assert.ok(Date.now() - abortedAt < 2_000, `took ${Date.now() - abortedAt} ms to reject after the abort`)
    assert.deepEqual(requestListeners(node), before)
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0, 'abort listeners left on the caller\'s signal')

    // With a signal that has already fired: nothing is announced.
    const announced: string[] = []
    const early = await rejection(requestInference(node, net.requesterKeys.account, params(20_000), {
      signal: AbortSignal.abort(reason),
      onProgress: (line) => { announced.push(line) }
    }), 1_000, 'a request with an aborted signal to reject')
    assert.ok(early instanceof RequestAbortedError, String(early))
    assert.deepEqual(announced, [])
    assert.deepEqual(requestListeners(node), before)
  })

  it('waiting for the network says what it waited for and how long, and stops when aborted', async () => {
    // A light node with no bootstrap address: it never finds a gossip peer.
    const keys = await freshKeysAsync()
    const dir = join(net.root, 'isolated')
    const isolated = await PoiNode.start({
      operate: false,
      aggregate: false,
      light: true,
      keystore: keys,
      config: resolveConfig({ keystore: join(dir, 'keys'), dataDir: join(dir, 'data'), genesis: join(net.root, 'genesis.json'), listen: [], bootstrap: [] }),
      operatorSet: net.operatorSet
    })
    try {
      const notConnected = await rejection(waitForNetwork(isolated, { timeoutMs: 300 }), 5_000, 'waitForNetwork to give up')
      assert.ok(notConnected instanceof NotConnectedError, String(notConnected))
      assert.equal(notConnected.code, 'ERR_NOT_CONNECTED')
      assert.equal(notConnected.waitedFor, 'a peer subscribed to the tasks topic')
      assert.match(notConnected.message, /waited 300 ms for a peer subscribed to the tasks topic and saw none \(connected to 0 peers\); check the --bootstrap address/)

      const controller = new AbortController()
      const waiting = waitForNetwork(isolated, { timeoutMs: 20_000, signal: controller.signal })
      const abortedAt = Date.now()
      controller.abort()
      const aborted = await rejection(waiting, 2_000, 'waitForNetwork to stop when aborted')
      assert.ok(aborted instanceof RequestAbortedError, String(aborted))
      assert.match(aborted.message, /^aborted while waiting for a peer subscribed to the tasks topic$/)
      assert.ok(Date.now() - abortedAt < 2_000, `took ${Date.now() - abortedAt} ms to stop after the abort`)
      assert.equal(getEventListeners(controller.signal, 'abort').length, 0)
    } finally {
      await isolated.stop()
    }
  })

  it('lookupResult and fetchOutput name every peer asked and why it could not help', async () => {
    const node = net.requester
    // One peer that takes the result protocol and never answers, one that does not speak it.
    const silent = await plainPeer(node)
    const bare = await plainPeer(node)
    try {
      await silent.handle(RESULT_PROTOCOL, () => {})
      const taskId = randomBytes(32)
      const peers = [net.bootstrap.libp2p.peerId, silent.peerId, bare.peerId]
      // The silent peer costs this timeout; the others answer well within it, even on a loaded machine.
      const err = await rejection(lookupResult(node, taskId, { peers, timeoutMs: 2_000 }), 10_000, 'lookupResult to give up')
      assert.ok(err instanceof ResultNotFoundError, String(err))
      assert.equal(err.code, 'ERR_RESULT_NOT_FOUND')
      assert.deepEqual(err.failures.map(f => [f.peer, f.code]), [
        [peers[0].toString(), 'UNKNOWN_TASK'],
        [peers[1].toString(), 'TIMEOUT'],
        [peers[2].toString(), 'DIAL_FAILED']
      ])
      assert.equal(err.failures[1].reason, 'timed out after 2 s')
      assert.match(err.message, /^no connected full node has a certificate for task 0x[0-9a-f]{64} that verifies \(asked 3 peers: 12D3…\S{6}: UNKNOWN_TASK: has never seen the task; 12D3…\S{6}: timed out after 2 s; 12D3…\S{6}: DIAL_FAILED: .+\)$/)

      const outputRef = randomBytes(32)
      const missing = await rejection(fetchOutput(node, outputRef, outputRef, { peers: [peers[0], peers[2]] }), 15_000, 'fetchOutput to give up')
      assert.ok(missing instanceof OutputNotFoundError, String(missing))
      assert.equal(missing.code, 'ERR_OUTPUT_NOT_FOUND')
      assert.deepEqual(missing.failures.map(f => f.code), ['NOT_FOUND', 'DIAL_FAILED'])
      assert.match(missing.message, /\(asked 2 peers: 12D3…\S{6}: NOT_FOUND: does not hold it; 12D3…\S{6}: DIAL_FAILED: /)
    } finally {
      await silent.stop()
      await bare.stop()
    }
  })
})

describe('requester errors', () => {
  it('NoQuorum says the network refused the task when no full node asked ever saw it', async () => {
    const peer = (await freshKeysAsync()).peerId.toString()
    const refused = new NoQuorumError(randomBytes(32), 30_000, [{ peer, code: 'UNKNOWN_TASK', reason: 'UNKNOWN_TASK: has never seen the task' }])
    assert.match(refused.message, /within 30 s \(the full nodes asked never saw the task: the network refused it/)
    assert.ok(refused.message.endsWith(`(asked 1 peer: ${peer.slice(0, 4)}…${peer.slice(-6)}: UNKNOWN_TASK: has never seen the task)`), refused.message)
  })
})
