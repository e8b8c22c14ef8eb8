/**
 * Aggregation survives restarts (issue 9, finding 1): an aggregator reloads its open tasks and
 * their stored attestations at start and carries on; a relay-only full node aggregates as a
 * backup when no aggregator forms the certificate. Real libp2p nodes on 127.0.0.1, real
 * LevelDB, in this process.
 */
import { strict as assert } from 'node:assert'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { TypedEventEmitter } from '@libp2p/interface'
import { DEFAULT_QUORUM_BPS, signProofOfPossession, verifyCertificate, writeGenesis } from '../consensus/index.js'
import { exampleInput } from '../node/cli/devnet.js'
import { resolveConfig } from '../node/config.js'
import { loadModelDir, SHIPPED_MODEL_DIR, type ModelDir } from '../node/inference/index.js'
import { generateKeystore, loadKeystore } from '../node/keys.js'
import { PoiNode } from '../node/poi-node.js'
import { BACKUP_AGGREGATION_DELAY_MS, TaskBook, createAggregator, createEpochs, type Aggregator, type PoiNodeEvents } from '../node/roles/index.js'
import type { GossipRouter } from '../protocols/gossip/index.js'
import { MAX_RELOADED_TASKS, bytesEqual, signTask, taskIdOf, toHex, uint256ToBytes, type TaskAnnouncement } from '../protocols/wire/index.js'
import { NodeStore } from '../storage/index.js'
import { attest, hash32, makeOperators, taskResult, type TestOperators } from './consensus-fixtures.js'
import { startTestNetwork, type TestNetwork } from './helpers/network.js'
import { timedOut, until, waitForEvent } from './helpers/wait.js'

const OPERATORS = 4
/**
 * Long, so that stopping the aggregator once it stored the three attestations lands inside the
 * window however slow the machine (the window opens when the third one is counted).
 */
const GRACE_MS = 5_000
/** Room for attestations, a restart and the grace window on a loaded machine. */
const TASK_TTL_MS = 35_000
/**
 * A deadline the test waits out: long enough that three attestations are stored before it on
 * a loaded machine (inference and gossip take about a second when idle).
 */
const SHORT_TASK_TTL_MS = 8_000
/** Three attestations stored, a certificate heard: gossip plus inference, generous for a loaded machine. */
const EVENT_TIMEOUT_MS = 20_000
/** How long a node that must not form a certificate is watched (longer than any formation delay here). */
const NO_FORMATION_WAIT_MS = 2_000
/** A node process loads libp2p, onnxruntime and viem before it listens: seconds idle, tens of seconds on a loaded machine. */
const CHILD_READY_TIMEOUT_MS = 40_000

let nonce = 0n

async function newTask (net: TestNetwork, model: ModelDir, ttlMs: number): Promise<{ task: TaskAnnouncement, taskId: Uint8Array }> {
  const set = net.operatorSet
  const task = await signTask(net.requesterKeys.account, set.domain.taskManager, {
    chainId: set.domain.chainId, modelId: model.modelId, input: exampleInput(Number(++nonce)), fee: 0n, deadline: BigInt(Date.now() + ttlMs), quorumBps: DEFAULT_QUORUM_BPS, nonce
  })
  return { task, taskId: taskIdOf(task, set.domain.taskManager) }
}

/** Starts an aggregator from a node directory of the test network (keys and data), as a restart does. */
async function startAggregator (net: TestNetwork, name = 'aggregator'): Promise<PoiNode> {
  const dir = join(net.root, name)
  return await PoiNode.start({
    operate: false,
    aggregate: true,
    light: false,
    keystore: await loadKeystore(join(dir, 'keys')),
    config: resolveConfig({ keystore: join(dir, 'keys'), dataDir: join(dir, 'data'), genesis: join(net.root, 'genesis.json'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [net.bootstrapAddr], graceMs: GRACE_MS }),
    operatorSet: net.operatorSet
  })
}

/** Reads the aggregator's data directory while no node holds it. */
async function readStore<T> (net: TestNetwork, read: (s: NodeStore) => Promise<T>): Promise<T> {
  const store = await NodeStore.open(join(net.root, 'aggregator', 'data'))
  try {
    return await read(store)
  } finally {
    await store.close()
  }
}

/**
 * Waits until `aggregator` stored the three live operators' attestations for the task (the
 * quorum is there, the fourth operator is down, so the grace window runs), then stops it.
 * Asserts the stop landed inside the window: no certificate was formed or stored.
 */
async function stopInsideGraceWindow (net: TestNetwork, aggregator: PoiNode, taskId: Uint8Array): Promise<void> {
  let formed = false
  aggregator.addEventListener('certificate', ({ detail }) => { if (bytesEqual(detail.certificate.taskId, taskId)) formed = true })
  await until(async () => (await aggregator.store!.getAttestations(taskId)).length >= OPERATORS - 1, EVENT_TIMEOUT_MS, 'the aggregator storing the three live operators\' attestations')
  await aggregator.stop()
  assert.equal(formed, false, `the aggregator formed the certificate before it was stopped: the stop missed the ${GRACE_MS} ms grace window (machine too slow?)`)
  assert.equal(await readStore(net, async s => await s.getCertificate(taskId)), undefined, 'a certificate was stored before the stop')
}

/** What the aggregator process prints, one JSON object a line. */
type ChildLine = { event: 'ready' } | { event: 'stored', taskId: string, operatorIndex: number } | { event: 'certificate', taskId: string }

/**
 * An aggregator in its own process, so it can die by SIGKILL (no shutdown handler runs, LevelDB
 * is not closed). It prints `stored` once an accepted attestation is in its store (the node's
 * 'attestation' event follows the awaited write) and `ready` once it has its gossip meshes.
 */
class AggregatorProcess {
  readonly lines: ChildLine[] = []
  private readonly waiters: Array<() => void> = []
  readonly exited: Promise<NodeJS.Signals | number | null>
  private stderr = ''

  private constructor (readonly proc: ChildProcess) {
    this.exited = new Promise(resolve => proc.once('exit', (code, signal) => resolve(signal ?? code)))
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      try { this.lines.push(JSON.parse(line) as ChildLine) } catch { return }
      for (const wake of this.waiters.splice(0)) wake()
    })
    proc.stderr!.on('data', (d: Buffer) => { this.stderr = (this.stderr + d.toString()).slice(-4_000) })
  }

  static async start (net: TestNetwork, name: string): Promise<AggregatorProcess> {
    const here = dirname(fileURLToPath(import.meta.url))
    const moduleUrl = (path: string): string => JSON.stringify(pathToFileURL(resolve(here, path)).href)
    const genesis = join(net.root, 'genesis.json')
    await writeGenesis(genesis, net.operatorSet, net.keys.map(k => signProofOfPossession(k.blsSecretKey, k.account.address)))
    const keys = join(net.root, name, 'keys')
    await generateKeystore(keys)
    const script = join(net.root, `${name}.mjs`)
    await writeFile(script, `
import { loadGenesis } from ${moduleUrl('../consensus/index.js')}
import { resolveConfig } from ${moduleUrl('../node/config.js')}
import { loadKeystore } from ${moduleUrl('../node/keys.js')}
import { PoiNode } from ${moduleUrl('../node/poi-node.js')}
const [keys, dataDir, genesis, bootstrap, graceMs] = process.argv.slice(2)
const print = (o) => process.stdout.write(JSON.stringify(o) + '\\n')
const hex = (b) => Buffer.from(b).toString('hex')
const node = await PoiNode.start({
  operate: false, aggregate: true, light: false, keystore: await loadKeystore(keys), operatorSet: await loadGenesis(genesis),
  config: resolveConfig({ keystore: keys, dataDir, genesis, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [bootstrap], graceMs: Number(graceMs) })
})
node.addEventListener('attestation', ({ detail }) => print({ event: 'stored', taskId: hex(detail.taskId), operatorIndex: detail.operatorIndex }))
node.addEventListener('certificate', ({ detail }) => { if (detail.formedHere) print({ event: 'certificate', taskId: hex(detail.certificate.taskId) }) })
const meshed = setInterval(() => {
  if (node.meshPeers('tasks') > 0 && node.meshPeers('attestations') > 0 && node.meshPeers('certificates') > 0) { clearInterval(meshed); print({ event: 'ready' }) }
}, 50)
process.on('SIGTERM', () => { node.stop().then(() => process.exit(0)) })
`)
    const proc = spawn(process.execPath, [script, keys, join(net.root, name, 'data'), genesis, net.bootstrapAddr, String(GRACE_MS)], { stdio: ['ignore', 'pipe', 'pipe'] })
    const child = new AggregatorProcess(proc)
    try {
      await child.until(l => l.event === 'ready', CHILD_READY_TIMEOUT_MS, 'the aggregator process ready with its gossip meshes')
    } catch (err) {
      await child.kill()
      throw err
    }
    return child
  }

  /** Resolves once `count` printed lines pass `filter`; rejects (with the process's stderr) after `timeoutMs` or if it exits. */
  async until (filter: (l: ChildLine) => boolean, timeoutMs: number, what: string, count = 1): Promise<void> {
    const end = Date.now() + timeoutMs
    while (this.lines.filter(filter).length < count) {
      if (this.proc.exitCode != null || this.proc.signalCode != null) throw new Error(`the aggregator process exited while waiting for ${what}; stderr: ${this.stderr}`)
      const left = end - Date.now()
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stderr: ${this.stderr}`)
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, Math.min(left, 250))
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  async kill (): Promise<NodeJS.Signals | number | null> {
    if (this.proc.exitCode == null && this.proc.signalCode == null) this.proc.kill('SIGKILL')
    return await this.exited
  }
}

describe('aggregator restart: aggregation survives restarts', function () {
  this.timeout(60_000)
  let model: ModelDir

  before(async () => { model = await loadModelDir(SHIPPED_MODEL_DIR) })

  describe('one of four operators down, no backup aggregators', () => {
    let net: TestNetwork | undefined
    /** The aggregator now running from the network's aggregator directory. */
    let aggregator: PoiNode | undefined

    before(async () => {
      net = await startTestNetwork({ operators: OPERATORS, offline: [OPERATORS - 1], graceMs: GRACE_MS, backupAggregation: false })
      aggregator = net.aggregator
    })
    after(async () => {
      await aggregator?.stop()
      await net?.stop()
    })

    it('stopped inside its grace window and restarted at once from the same directory, the aggregator forms the certificate before the deadline', async () => {
      assert.ok(net != null && aggregator != null)
      const { task, taskId } = await newTask(net, model, TASK_TTL_MS)
      const deadline = Number(task.deadline)
      const atRequester = waitForEvent(net.requester, 'certificate', {
        timeoutMs: TASK_TTL_MS, what: `certificate for task ${toHex(taskId)} at the requester`, filter: d => bytesEqual(d.certificate.taskId, taskId)
      })
      await net.requester.announce(task)
      await stopInsideGraceWindow(net, aggregator, taskId)

      aggregator = await startAggregator(net)
      const formed = await waitForEvent(aggregator, 'certificate', {
        timeoutMs: Math.max(0, deadline - Date.now()),
        what: `certificate formed by the restarted aggregator for task ${toHex(taskId)} before its deadline`,
        filter: d => bytesEqual(d.certificate.taskId, taskId) && d.formedHere
      })
      assert.ok(Date.now() <= deadline, 'the certificate formed after the deadline')
      const verdict = verifyCertificate(formed.certificate, net.operatorSet)
      assert.ok(verdict.ok, verdict.ok ? '' : verdict.reason)
      assert.deepEqual(verdict.signers, [0, 1, 2])
      // The certificate is gossiped: the requester, which never saw the aggregator stop, gets it.
      const heard = await atRequester
      assert.ok(bytesEqual(heard.certificate.resultHash, formed.certificate.resultHash))
      assert.equal((await aggregator.store!.getTaskState(taskId))?.state, 'quorum')
    })

    it('a task whose deadline passed while the aggregator was down ends NoQuorum at restart, without a certificate', async () => {
      assert.ok(net != null && aggregator != null)
      const { task, taskId } = await newTask(net, model, SHORT_TASK_TTL_MS)
      const deadline = Number(task.deadline)
      await net.requester.announce(task)
      // The quorum is stored, but the stop lands before the grace window ends and before the deadline.
      await stopInsideGraceWindow(net, aggregator, taskId)
      assert.ok(Date.now() < deadline, 'the aggregator was stopped after the deadline (machine too slow for this test?)')
      assert.equal(await readStore(net, async s => (await s.getTaskState(taskId))?.state), 'open')
      await until(() => Date.now() > deadline, deadline - Date.now() + EVENT_TIMEOUT_MS, 'the task deadline to pass')

      aggregator = await startAggregator(net)
      const restarted = aggregator
      const formed = waitForEvent(restarted, 'certificate', {
        timeoutMs: NO_FORMATION_WAIT_MS, what: 'certificate', filter: d => bytesEqual(d.certificate.taskId, taskId) && d.formedHere
      })
      // The store, not the no-quorum event: the reload can end the task before start() returns
      // (its deadline has passed), so a listener attached after the restart may miss the event.
      await until(async () => (await restarted.store!.getTaskState(taskId))?.state === 'no-quorum', EVENT_TIMEOUT_MS, `no-quorum for task ${toHex(taskId)} after the restart`)
      assert.equal(await timedOut(formed), true, 'the restarted aggregator certified a task whose deadline had passed')
      assert.equal(await restarted.store!.getCertificate(taskId), undefined)
    })

    it('killed with SIGKILL inside its grace window and restarted at once from the same directory, the aggregator forms the certificate before the deadline', async function () {
      this.timeout(90_000)
      assert.ok(net != null && aggregator != null)
      // The in-process aggregator gives way to one in its own process.
      await aggregator.stop()
      aggregator = undefined
      const name = 'aggregator-process'
      const child = await AggregatorProcess.start(net, name)
      try {
        const { task, taskId } = await newTask(net, model, TASK_TTL_MS)
        const deadline = Number(task.deadline)
        const atRequester = waitForEvent(net.requester, 'certificate', {
          timeoutMs: TASK_TTL_MS, what: `certificate for task ${toHex(taskId)} at the requester`, filter: d => bytesEqual(d.certificate.taskId, taskId)
        })
        await net.requester.announce(task)
        const id = toHex(taskId)
        await child.until(l => l.event === 'stored' && l.taskId === id, EVENT_TIMEOUT_MS, 'the three live operators\' attestations stored by the aggregator process', OPERATORS - 1)
        assert.equal(await child.kill(), 'SIGKILL')
        assert.ok(!child.lines.some(l => l.event === 'certificate'), `the aggregator process formed the certificate before it was killed: the kill missed the ${GRACE_MS} ms grace window (machine too slow?)`)

        aggregator = await startAggregator(net, name)
        const formed = await waitForEvent(aggregator, 'certificate', {
          timeoutMs: Math.max(0, deadline - Date.now()),
          what: `certificate formed by the restarted aggregator for task ${id} before its deadline`,
          filter: d => bytesEqual(d.certificate.taskId, taskId) && d.formedHere
        })
        const verdict = verifyCertificate(formed.certificate, net.operatorSet)
        assert.ok(verdict.ok, verdict.ok ? '' : verdict.reason)
        assert.deepEqual(verdict.signers, [0, 1, 2])
        assert.ok(bytesEqual((await atRequester).certificate.resultHash, formed.certificate.resultHash))
      } finally {
        await child.kill()
      }
    })
  })

  describe('a relay-only full node as backup aggregator', () => {
    let net: TestNetwork | undefined

    before(async () => { net = await startTestNetwork({ operators: OPERATORS }) })
    after(async () => { await net?.stop() })

    it('leaves the certificate to a running aggregator, and forms it itself when no aggregator runs', async () => {
      assert.ok(net != null)
      // With the aggregator up, the bootstrap (relay-only) receives its certificate and forms none.
      const first = await newTask(net, model, TASK_TTL_MS)
      const byAggregator = waitForEvent(net.aggregator, 'certificate', { timeoutMs: EVENT_TIMEOUT_MS, what: 'certificate formed by the aggregator', filter: d => bytesEqual(d.certificate.taskId, first.taskId) && d.formedHere })
      const atBootstrap = waitForEvent(net.bootstrap, 'certificate', { timeoutMs: EVENT_TIMEOUT_MS, what: 'certificate at the bootstrap', filter: d => bytesEqual(d.certificate.taskId, first.taskId) })
      await net.requester.announce(first.task)
      await byAggregator
      // Receiving it ends the bootstrap's own aggregation of the task (its backup timer is cleared).
      assert.equal((await atBootstrap).formedHere, false, 'the bootstrap formed a certificate although the aggregator had')

      // Without an aggregator, the bootstrap forms it after its backup delay and every node gets it.
      await net.aggregator.stop()
      const second = await newTask(net, model, TASK_TTL_MS)
      const byBackup = waitForEvent(net.bootstrap, 'certificate', { timeoutMs: TASK_TTL_MS, what: 'certificate formed by the backup', filter: d => bytesEqual(d.certificate.taskId, second.taskId) && d.formedHere })
      const atRequester = waitForEvent(net.requester, 'certificate', { timeoutMs: TASK_TTL_MS, what: 'certificate at the requester', filter: d => bytesEqual(d.certificate.taskId, second.taskId) })
      const announcedAt = Date.now()
      await net.requester.announce(second.task)
      const formed = await byBackup
      assert.ok(Date.now() - announcedAt >= BACKUP_AGGREGATION_DELAY_MS, 'the backup formed the certificate before its delay')
      assert.ok(Date.now() <= Number(second.task.deadline), 'the backup formed the certificate after the deadline')
      const verdict = verifyCertificate(formed.certificate, net.operatorSet)
      assert.ok(verdict.ok, verdict.ok ? '' : verdict.reason)
      assert.deepEqual(verdict.signers, [0, 1, 2, 3])
      assert.ok(bytesEqual((await atRequester).certificate.resultHash, formed.certificate.resultHash))
      assert.ok(await net.bootstrap.store!.getCertificate(second.taskId) != null)
    })
  })
})

/** A task as the store and the task book hold it; only its deadline and quorum matter here. */
function storedTask (n: number, deadline: number): TaskAnnouncement {
  return {
    version: 1,
    chainId: 31337n,
    modelId: new Uint8Array(32).fill(7),
    input: new TextEncoder().encode(`{"x":{"data":[${n}]}}`),
    inputRef: new Uint8Array(0),
    params: new Uint8Array(0),
    fee: uint256ToBytes(0n),
    deadline: BigInt(deadline),
    quorumBps: DEFAULT_QUORUM_BPS,
    nonce: BigInt(n),
    requester: new Uint8Array(20).fill(0xaa),
    requesterSig: new Uint8Array(65).fill(0x1b),
    validationRequest: new Uint8Array(0),
    tier: 0,
    inputCommitment: new Uint8Array(0)
  }
}

/**
 * The aggregator service alone, on a real store, with the gossip it publishes to recorded:
 * its decisions without a network (fast, and independent of gossip timing).
 */
describe('aggregator restart: the aggregator service on its store', function () {
  this.timeout(30_000)
  const GRACE = 100
  let root: string
  let store: NodeStore | undefined
  let aggregator: Aggregator | undefined
  let tasks: TaskBook
  let events: TypedEventEmitter<PoiNodeEvents>

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'poi-agg-restart-'))
    store = await NodeStore.open(join(root, 'data'))
    tasks = new TaskBook()
    events = new TypedEventEmitter<PoiNodeEvents>()
  })
  afterEach(async () => {
    await aggregator?.stop()
    aggregator = undefined
    await store?.close()
    await rm(root, { recursive: true, force: true })
  })

  function startAggregatorOn (ops: TestOperators, withStore = true): Aggregator {
    const gossip = { publish: async () => 1 } as unknown as GossipRouter
    const epochs = createEpochs({ blsPublicKey: new Uint8Array(48) }, { operatorSet: ops.set })
    aggregator = createAggregator({ gossip, epochs, tasks, events, store: withStore ? store : undefined }, { graceMs: GRACE })
    return aggregator
  }

  it('the certificate event reports the longest signature check, also of attestations checked before their task arrived', async () => {
    const ops = makeOperators([1n, 1n, 1n, 1n])
    const agg = startAggregatorOn(ops, false)
    await agg.start()
    const result = taskResult('early', 'r')
    // Checked by the relay before the task itself arrived (they waited in its early buffer)…
    tasks.noteVerification(result.taskId, 7)
    tasks.noteVerification(result.taskId, 3)
    const formed = waitForEvent(events, 'certificate', { timeoutMs: 5_000, what: 'certificate', filter: d => d.formedHere })
    const { entry } = tasks.track(result.taskId, storedTask(1, Date.now() + 60_000))
    agg.track(entry)
    // … and handed over once it did.
    for (let i = 0; i < 4; i++) agg.add(attest(ops, i, result))
    assert.equal((await formed).verifyMs, 7)
  })

  it('reloads open tasks: forms the certificate of a task whose stored attestations hold the quorum; ignores another epoch\'s, which end NoQuorum', async () => {
    const current = makeOperators([1n, 1n, 1n, 1n], { epoch: 1n })
    const previous = makeOperators([1n, 1n, 1n, 1n], { epoch: 0n })
    const quorum = taskResult('quorum', 'r')
    const otherEpoch = taskResult('other epoch', 'r')
    await store!.putTask(quorum.taskId, storedTask(1, Date.now() + 60_000))
    await store!.putTask(otherEpoch.taskId, storedTask(2, Date.now() + 1_500))
    for (let i = 0; i < 3; i++) {
      await store!.putAttestation(attest(current, i, quorum))
      await store!.putAttestation(attest(previous, i, otherEpoch))
    }
    const formed = waitForEvent(events, 'certificate', { timeoutMs: 5_000, what: 'certificate for the reloaded task', filter: d => bytesEqual(d.certificate.taskId, quorum.taskId) })
    const ended = waitForEvent(events, 'no-quorum', { timeoutMs: 10_000, what: 'no-quorum for the task attested in another epoch', filter: d => bytesEqual(d.taskId, otherEpoch.taskId) })
    await startAggregatorOn(current).start()
    assert.ok(tasks.has(quorum.taskId) && tasks.has(otherEpoch.taskId), 'the reloaded tasks are tracked')
    const verdict = verifyCertificate((await formed).certificate, current.set)
    assert.ok(verdict.ok, verdict.ok ? '' : verdict.reason)
    assert.deepEqual(verdict.signers, [0, 1, 2])
    await ended
    assert.equal((await store!.getTaskState(quorum.taskId))?.state, 'quorum')
    assert.equal((await store!.getTaskState(otherEpoch.taskId))?.state, 'no-quorum')
  })

  it(`reloads at most MAX_RELOADED_TASKS (${MAX_RELOADED_TASKS}) open tasks, newest deadlines first`, async () => {
    const ops = makeOperators([1n, 1n, 1n])
    const base = Date.now() + 60_000
    for (let n = 0; n <= MAX_RELOADED_TASKS; n++) await store!.putTask(hash32(`task ${n}`), storedTask(n, base + n))
    await startAggregatorOn(ops).start()
    assert.equal(tasks.has(hash32('task 0')), false, 'the task with the oldest deadline was reloaded beyond the bound')
    for (const n of [1, MAX_RELOADED_TASKS]) assert.ok(tasks.has(hash32(`task ${n}`)), `task ${n} was not reloaded`)
  })
})
