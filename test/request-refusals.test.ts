import { strict as assert } from 'node:assert'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { exampleInput } from '../node/cli/devnet.js'
import { SHIPPED_MODEL_DIR, loadModelDir } from '../node/inference/index.js'
import { InvalidRequestError, TaskRefusedError, requestInference } from '../node/requester/index.js'
import { RESULT_STATUS, RESULT_VERSION, decodeResultResponse, encodeResultResponse, fetchResult } from '../protocols/result/index.js'
import { MAX_REFUSAL_REASON_BYTES } from '../protocols/wire/index.js'
import { RefusedTasks } from '../node/roles/refused-tasks.js'
import { AskBudget, refusalPollDelay } from '../node/requester/refusal-watch.js'
import { REFUSAL_ASKS_IN_FLIGHT, REFUSAL_FIRST_CHECK_MS, REFUSAL_POLL_MAX_MS, REFUSAL_POLL_MS } from '../node/requester/constants.js'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { checkTask } from '../protocols/gossip/index.js'
import { encodeTaskAnnouncement, signTask, toHex } from '../protocols/wire/index.js'
import { TEST_DOMAIN } from './consensus-fixtures.js'
import { runPoi } from './helpers/cli.js'
import { DEFAULT_MIN_SIGNERS, signProofOfPossession, writeGenesis } from '../consensus/index.js'
import { startTestNetwork, type TestNetwork } from './helpers/network.js'
import type { Rejection } from '../node/poi-node.js'

/** A peer id for bootstrap addresses that nothing answers as. */
const SOME_PEER = '12D3KooWGzRvmrDmrVGVdAN1EJbGpRvQcwhD5XHXjYNtdyUmyj9w'

describe('poi request refuses what the nodes would refuse, before any network traffic', function () {
  this.timeout(30_000)
  let home: string
  let listener: Server
  let connections = 0
  let bootstrap: string

  // A TCP port that counts connections: the checks below must not dial it.
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'poi-refusals-'))
    listener = createServer((socket) => { connections++; socket.destroy() })
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve))
    const port = (listener.address() as { port: number }).port
    bootstrap = `/ip4/127.0.0.1/tcp/${port}/p2p/${SOME_PEER}`
  })
  after(async () => {
    await new Promise<void>((resolve) => listener.close(() => { resolve() }))
    await rm(home, { recursive: true, force: true })
  })

  /** Refused before connecting: exit 1 for a value the command refuses, 2 (EXIT_USAGE) for a command line the parser refuses. */
  const refused = async (args: string[], message: RegExp, code = 1): Promise<void> => {
    const before = connections
    const r = await runPoi(home, 20_000, 'request', '--bootstrap', bootstrap, '--input', '{"x":{"data":[1]}}', ...args)
    assert.equal(r.code, code, `exit code: ${r.stderr}`)
    assert.match(r.stderr, message)
    assert.match(r.stderr, /^poi: /, 'a message, not a stack trace')
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')
    assert.doesNotMatch(r.stderr, /Warning/, 'no Node warning')
    assert.equal(r.stdout, '')
    assert.equal(connections, before, 'nothing dialled the bootstrap address')
  }

  it('refuses a timeout of 0 without a TimeoutNegativeWarning', async () => {
    await refused(['--genesis', join(home, 'genesis.json'), '--timeout', '0'], /timeout must be more than 0 s/)
  })

  it('refuses a quorum outside 1..10000 bps', async () => {
    await refused(['--genesis', join(home, 'genesis.json'), '--quorum', '20000'], /quorum must be a whole number of basis points from 1 to 10000.*got 20000/)
    await refused(['--genesis', join(home, 'genesis.json'), '--quorum', '0'], /got 0/)
  })

  it('refuses --chain together with --genesis', async () => {
    await refused(['--chain', join(home, 'deployment.json'), '--genesis', join(home, 'genesis.json')], /--chain and --genesis are mutually exclusive/, 2)
  })

  it('says which flags give a network when none is given', async () => {
    await refused([], /needs to know the network's operators: give --chain <deployment.json>.*--rpc <url>.*--genesis <file>/)
  })
})

describe('a task the nodes refuse fails at the requester with their reason', function () {
  // The network starts in a few seconds; each request below is bounded far below its timeout.
  this.timeout(60_000)
  let net: TestNetwork
  let input: Uint8Array
  let modelId: Uint8Array

  before(async () => {
    // Three operators: fewer could never certify (DEFAULT_MIN_SIGNERS), and the requester refuses to announce on such a network.
    net = await startTestNetwork({ operators: 3 })
    const shipped = await loadModelDir(SHIPPED_MODEL_DIR)
    modelId = shipped.modelId
    input = exampleInput()
  })
  after(async () => { await net?.stop() })

  /** A 40 s timeout: the refusal must come long before it. */
  const TIMEOUT_MS = 40_000
  /** Gossip, one refusal check after 0.5 s and the next every 1.5 s: a few seconds, with room for a slow machine. */
  const REFUSED_WITHIN_MS = 12_000

  it('a model no node knows: TaskRefusedError naming the node and its reason, within seconds', async () => {
    const unknownModel = randomBytes(32)
    const verdicts: string[] = []
    const onRejected = (e: CustomEvent<Rejection>): void => { if (e.detail.topic === 'task') verdicts.push(e.detail.verdict) }
    const nodes = [net.bootstrap, net.aggregator, ...net.operators].filter(n => n !== undefined)
    for (const n of nodes) n.addEventListener('rejected', onRejected)
    const started = Date.now()
    const err = await requestInference(net.requester, net.requesterKeys.account, { modelId: unknownModel, input, timeoutMs: TIMEOUT_MS })
      .then(() => undefined, (e: unknown) => e)
    const elapsed = Date.now() - started
    assert.ok(err instanceof TaskRefusedError, `expected TaskRefusedError, got ${String(err)}`)
    assert.ok(elapsed < REFUSED_WITHIN_MS, `refused after ${elapsed} ms, not within ${REFUSED_WITHIN_MS} ms`)
    assert.match(err.message, /was refused by 12D3\S+: task \S+ names unknown model/)
    assert.match(err.message, /claim/)
    assert.match(err.reason, /names unknown model/)
    const fullNodes = [net.bootstrap, net.aggregator, ...net.operators].filter(n => n !== undefined).map(n => n.libp2p.peerId.toString())
    assert.ok(fullNodes.includes(err.peer), `${err.peer} is one of the network's full nodes`)
    // Ignored, not rejected: an honest requester's mistake must not cost it the gossip score
    // that keeps it in the meshes bringing its next task's certificate (the next tests need them).
    for (const n of nodes) n.removeEventListener('rejected', onRejected)
    assert.ok(verdicts.length > 0 && verdicts.every(v => v === 'ignore'), `the nodes' verdicts on the task: ${verdicts.join(', ') || 'none'}`)

    // The node itself answers REFUSED with the reason over /poi/result/1/.
    const answer = await fetchResult(net.requester.libp2p, net.bootstrap.libp2p.peerId, err.taskId)
    assert.equal(answer.status, 'refused')
    assert.ok(answer.status === 'refused' && /names unknown model/.test(answer.reason))
    assert.equal(RESULT_STATUS.REFUSED, 5)
  })

  // The 11 min case here needs the network to ask its limit: the requester must still be in the
  // meshes after the previous test's refused task.
  it('the library refuses a timeout or quorum the nodes would refuse before announcing', async () => {
    const refused = async (params: { timeoutMs?: number, quorumBps?: number }, param: string, message?: RegExp): Promise<void> => {
      const err = await requestInference(net.requester, net.requesterKeys.account, { modelId, input, ...params }).then(() => undefined, (e: unknown) => e)
      assert.ok(err instanceof InvalidRequestError, `expected InvalidRequestError, got ${String(err)}`)
      assert.equal(err.param, param)
      if (message !== undefined) assert.match(err.message, message)
    }
    await refused({ timeoutMs: 0 }, 'timeout')
    await refused({ timeoutMs: -1000 }, 'timeout')
    await refused({ timeoutMs: 11 * 60_000 }, 'timeout', /more than the 600 s the network's nodes accept \(their maximum task TTL, reported by 12D3\S+ over \/poi\/network\/1\/\)/)
    await refused({ quorumBps: 20_000 }, 'quorum')
    await refused({ quorumBps: 0 }, 'quorum')
  })

  it('a deadline beyond the nodes\' maximum (a requester told a larger one): refused by the nodes within seconds', async () => {
    const started = Date.now()
    // The requester believes the network allows an hour; the nodes accept 10 min.
    const err = await requestInference(net.requester, net.requesterKeys.account, { modelId, input, timeoutMs: 15 * 60_000 }, { maxTaskTtlMs: 60 * 60_000 })
      .then(() => undefined, (e: unknown) => e)
    const elapsed = Date.now() - started
    assert.ok(err instanceof TaskRefusedError, `expected TaskRefusedError, got ${String(err)}`)
    assert.ok(elapsed < REFUSED_WITHIN_MS, `refused after ${elapsed} ms`)
    assert.match(err.reason, /deadline is 9\d\d s away, more than the 600 s this node accepts/)
  })
})

describe('a network with fewer operators than a certificate needs signers', function () {
  this.timeout(60_000)
  let net: TestNetwork
  before(async () => { net = await startTestNetwork({ operators: 2 }) })
  after(async () => { await net?.stop() })

  it('is refused before announcing, naming the count and what to do, instead of ending in NoQuorum at the deadline', async () => {
    const { modelId } = await loadModelDir(SHIPPED_MODEL_DIR)
    let seen = 0
    const count = (): void => { seen++ }
    for (const n of [net.aggregator, net.bootstrap]) n.addEventListener('task', count)
    const started = Date.now()
    const err = await requestInference(net.requester, net.requesterKeys.account, { modelId, input: exampleInput(), timeoutMs: 30_000 }).then(() => undefined, (e: unknown) => e)
    assert.ok(err instanceof InvalidRequestError, `expected InvalidRequestError, got ${String(err)}`)
    assert.equal(err.param, 'operators')
    assert.match(err.message, new RegExp(`has 2 operators, and a certificate needs at least ${DEFAULT_MIN_SIGNERS} distinct signers.*poi operator register`))
    assert.ok(Date.now() - started < 15_000, 'refused at once, not at the 30 s deadline')
    // Nothing was announced: a task would reach the full nodes within a gossip round.
    await new Promise(resolve => setTimeout(resolve, 1_000))
    for (const n of [net.aggregator, net.bootstrap]) n.removeEventListener('task', count)
    assert.equal(seen, 0)
  })
})

describe('the network\'s maximum task TTL, as its nodes report it over /poi/network/1/', function () {
  // One network of three operators and a CLI run: a few seconds each, with room for a slow machine.
  this.timeout(90_000)
  /** The nodes' limit here: above the 10 min default, so only a reported limit lets 15 min through. */
  const NETWORK_TTL_MS = 20 * 60_000
  let net: TestNetwork
  let modelId: Uint8Array
  let home: string

  before(async () => {
    net = await startTestNetwork({ operators: 3, maxTaskTtlMs: NETWORK_TTL_MS })
    modelId = (await loadModelDir(SHIPPED_MODEL_DIR)).modelId
    home = await mkdtemp(join(tmpdir(), 'poi-ttl-'))
  })
  after(async () => {
    await net?.stop()
    if (home !== undefined) await rm(home, { recursive: true, force: true })
  })

  it('a timeout above the default but within the reported limit is announced and certified', async () => {
    const r = await requestInference(net.requester, net.requesterKeys.account, { modelId, input: exampleInput(), timeoutMs: 15 * 60_000 })
    assert.equal(r.source, 'gossip')
    assert.ok(r.signers.length > 0)
  })

  it('poi request refuses a timeout beyond it before announcing, naming the limit and the node that reported it', async () => {
    const genesis = join(home, 'genesis.json')
    await writeGenesis(genesis, net.operatorSet, net.keys.map(k => signProofOfPossession(k.blsSecretKey, k.account.address)))
    let announced = 0
    const count = (): void => { announced++ }
    net.bootstrap.addEventListener('task', count)
    net.bootstrap.addEventListener('rejected', count)
    try {
      const r = await runPoi(home, 60_000, 'request', '--genesis', genesis, '--bootstrap', net.bootstrapAddr, '--timeout', '1500', '--input', new TextDecoder().decode(exampleInput()))
      assert.equal(r.code, 1, `exit code: ${r.stderr}`)
      assert.match(r.stderr, new RegExp(`timeout 1500 s is more than the 1200 s the network's nodes accept \\(their maximum task TTL, reported by ${net.bootstrap.libp2p.peerId.toString()} over /poi/network/1/\\).*at most 1200 s`))
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')
    } finally {
      net.bootstrap.removeEventListener('task', count)
      net.bootstrap.removeEventListener('rejected', count)
    }
    assert.equal(announced, 0, 'no task reached the bootstrap node, accepted or refused')
  })
})

describe('refusals as a node keeps and sends them', () => {
  const EMPTY = new Uint8Array(0)
  const response = (status: number, reason: string): Uint8Array => encodeResultResponse({ version: RESULT_VERSION, status, certificate: EMPTY, output: EMPTY, reason })

  it('/poi/result/1/ carries REFUSED with a reason of 1 to MAX_REFUSAL_REASON_BYTES bytes, and no reason with any other status', () => {
    const decoded = decodeResultResponse(response(RESULT_STATUS.REFUSED, 'task 0xab names unknown model x'))
    assert.equal(decoded.status, RESULT_STATUS.REFUSED)
    assert.equal(decoded.reason, 'task 0xab names unknown model x')
    assert.throws(() => response(RESULT_STATUS.REFUSED, ''), /reason/)
    assert.throws(() => response(RESULT_STATUS.REFUSED, 'x'.repeat(MAX_REFUSAL_REASON_BYTES + 1)), /reason/)
    assert.throws(() => response(RESULT_STATUS.UNKNOWN_TASK, 'not refused'), /reason/)
  })

  it('a refusal names its task for the requester; a duplicate or a forged signature does not', async () => {
    const account = privateKeyToAccount(generatePrivateKey())
    const now = Date.now()
    const context = (known: boolean): Parameters<typeof checkTask>[1] => ({
      known: () => known, chainId: TEST_DOMAIN.chainId, taskManager: TEST_DOMAIN.taskManager, now, maxTaskTtlMs: 600_000,
      isModelId: (id: Uint8Array) => id.length > 4, displayModelId: (id: Uint8Array) => toHex(id)
    })
    const fields = { chainId: TEST_DOMAIN.chainId, modelId: new Uint8Array(36).fill(7), input: new TextEncoder().encode('{}'), fee: 0n, deadline: BigInt(now + 30_000), quorumBps: 6667, nonce: 1n }
    const unknownModel = await checkTask(encodeTaskAnnouncement(await signTask(account, TEST_DOMAIN.taskManager, { ...fields, modelId: Uint8Array.from([1, 2, 3]) })), context(false))
    assert.ok(unknownModel.verdict !== 'accept' && unknownModel.taskId !== undefined, 'an unknown model is a refusal of that task')
    const good = await signTask(account, TEST_DOMAIN.taskManager, fields)
    const duplicate = await checkTask(encodeTaskAnnouncement(good), context(true))
    assert.ok(duplicate.verdict === 'ignore' && duplicate.duplicate === true && duplicate.taskId === undefined, 'a duplicate is not a refusal')
    const forged = await checkTask(encodeTaskAnnouncement({ ...good, nonce: 2n }), context(false))
    assert.ok(forged.verdict === 'reject' && forged.taskId === undefined, 'anyone can forge a bad signature: not the requester\'s refusal')
  })

  it('a node remembers a bounded number of refusals, for a bounded time, and forgets one it accepts later', () => {
    const refused = new RefusedTasks({ maxTasks: 3, memoryMs: 60_000 })
    for (let i = 0; i < 5; i++) refused.add(`0${i}`, `reason ${i}`)
    assert.equal(refused.size, 3)
    assert.equal(refused.refusalOf('00'), undefined, 'the oldest are dropped first')
    assert.equal(refused.refusalOf('04'), 'reason 4')
    refused.delete('04')
    assert.equal(refused.refusalOf('04'), undefined)
    const old = new RefusedTasks({ memoryMs: 1_000 })
    old.add('aa', 'long ago', Date.now() - 2_000)
    assert.equal(old.refusalOf('aa'), undefined, 'past its memory')
  })
})

describe('a light peer\'s refusal asks back off and share one budget', () => {
  it('waits REFUSAL_FIRST_CHECK_MS, then REFUSAL_POLL_MS doubling, never beyond REFUSAL_POLL_MAX_MS', () => {
    const delays = Array.from({ length: 40 }, (_, i) => refusalPollDelay(i))
    assert.equal(delays[0], REFUSAL_FIRST_CHECK_MS)
    assert.equal(delays[1], REFUSAL_POLL_MS)
    assert.equal(delays[2], 2 * REFUSAL_POLL_MS)
    for (let i = 2; i < delays.length; i++) assert.ok(delays[i] >= delays[i - 1] && delays[i] <= REFUSAL_POLL_MAX_MS, `delay ${i}: ${delays[i]}`)
    assert.equal(delays.at(-1), REFUSAL_POLL_MAX_MS)
    // 200 tasks pending for a minute ask at most this many times in all (the flat poll asked 40 times each)
    const asksPerTask = (ms: number): number => { let t = 0; let n = 0; while ((t += refusalPollDelay(n)) <= ms) n++; return n }
    assert.ok(asksPerTask(60_000) <= 10, `${asksPerTask(60_000)} asks per task in 60 s`)
  })

  it('lets at most its limit of asks run at once, and frees a place when one ends', () => {
    const budget = new AskBudget(REFUSAL_ASKS_IN_FLIGHT)
    for (let i = 0; i < REFUSAL_ASKS_IN_FLIGHT; i++) assert.equal(budget.tryTake(), true)
    assert.equal(budget.tryTake(), false)
    assert.equal(budget.busy, REFUSAL_ASKS_IN_FLIGHT)
    budget.release()
    assert.equal(budget.tryTake(), true)
    assert.equal(budget.tryTake(), false)
  })
})
