/**
 * The relay's own state is bounded (issue 9): attestations for tasks a node does not know are
 * neither stored nor relayed (they wait, bounded and briefly, and count once the task comes);
 * replays of forgotten tasks are ignored before any signature work; stream data held for others
 * is bounded per forwarding peer, oldest evicted first, and a forwarder that lacks what it
 * forwarded is penalised; an attestation of the previous epoch during an epoch change is not.
 * Real nodes over TCP on 127.0.0.1, a real LevelDB each; the test acts as a registered operator
 * with the network's genesis keys.
 */
import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import type { GossipsubMessage } from '@chainsafe/libp2p-gossipsub'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { keccak256 } from 'viem'
import { TypedEventEmitter } from '@libp2p/interface'
import { createOperatorSet, signAttestation } from '../consensus/index.js'
import { exampleInput } from '../node/cli/devnet.js'
import { loadModelDir, SHIPPED_MODEL_DIR } from '../node/inference/index.js'
import type { PoiNode, PoiNodeEvents } from '../node/poi-node.js'
import { AttestationLedger } from '../node/roles/attestation-ledger.js'
import { EarlyAttestations } from '../node/roles/early-attestations.js'
import { ForgottenTasks } from '../node/roles/forgotten-tasks.js'
import { StreamData } from '../node/roles/stream-data.js'
import type { Relay } from '../node/roles/relay.js'
import type { TaskBook, TrackedTask } from '../node/roles/task-book.js'
import { TOPICS, type GossipRouter, type TopicHandler } from '../protocols/gossip/index.js'
import { MemoryMessageSource, STREAM_PROTOCOL, StreamServer } from '../protocols/stream/index.js'
import {
  MAX_TRACKED_TASKS, GENESIS_PREV_ID, MAX_EARLY_ATTESTATIONS_PER_PEER, createStreamMessage, decodeAttestation, encodeAttestation,
  encodeStreamMessage, encodeTaskAnnouncement, signTask, taskIdOf, toHex, type Attestation, type TaskAnnouncement
} from '../protocols/wire/index.js'
import { localNode, openTempStore, serveRogue } from './helpers/exchange-peers.js'
import { attest, makeOperators, type TaskResult } from './consensus-fixtures.js'
import { freshKeysAsync } from './helpers/keys.js'
import { startTestNetwork, TEST_CHAIN_ID, TEST_TASK_MANAGER, type TestNetwork } from './helpers/network.js'
import { until, waitForEvent } from './helpers/wait.js'

/** A flood of a few hundred: enough to pass every per-peer bound, small enough for a shared machine. */
const FLOOD = 300
/** A task's deadline; the certificate forms well before on loopback. */
const TASK_TIMEOUT_MS = 30_000
/** A gossip hop, a store write or a verdict that follows at once; generous for a loaded machine. */
const FOLLOW_UP_TIMEOUT_MS = 15_000

/** What the tests read inside a node (private by design: nothing else should reach them). */
interface NodeInternals {
  relay: Relay
  tasks: TaskBook
  router: GossipRouter
  verifier: { verify: (...args: never[]) => Promise<boolean> }
}
const internals = (node: PoiNode): NodeInternals => node as unknown as NodeInternals
/** The relay's validator for a topic, as gossipsub calls it. */
const validatorOf = (node: PoiNode, topic: keyof typeof TOPICS): TopicHandler['validate'] =>
  (internals(node).router as unknown as { handlers: Map<string, TopicHandler> }).handlers.get(TOPICS[topic])!.validate

describe('relay bounds: what peers can make a node keep', function () {
  this.timeout(60_000)
  let net: TestNetwork
  let attacker: PoiNode
  let modelId: Uint8Array
  let nonce = 1n

  /** Operator `index` of the genesis set signs `output` for `taskId`. */
  const attestation = (index: number, taskId: Uint8Array, output: Uint8Array, epoch = net.operatorSet.epoch): Attestation => {
    const resultHash = keccak256(output, 'bytes')
    return signAttestation(net.keys[index].blsSecretKey, net.operatorSet.domain, { taskId, resultHash, outputRef: resultHash, epoch, operatorIndex: index, output })
  }
  const newTask = async (fields: Partial<Parameters<typeof signTask>[2]> = {}): Promise<TaskAnnouncement> =>
    await signTask(net.requesterKeys.account, TEST_TASK_MANAGER, {
      chainId: TEST_CHAIN_ID, modelId, input: exampleInput(Number(nonce)), fee: 0n, deadline: BigInt(Date.now() + TASK_TIMEOUT_MS), quorumBps: 6667, nonce: nonce++, ...fields
    })

  before(async () => {
    modelId = (await loadModelDir(SHIPPED_MODEL_DIR)).modelId
    // No operator runs: every attestation on the network is one this test signs.
    net = await startTestNetwork({ operators: 4, offline: [0, 1, 2, 3] })
    attacker = await net.extraNode(await freshKeysAsync(), 'byzantine')
    const boot = net.bootstrap.libp2p.peerId.toString()
    await until(() => attacker.libp2p.services.pubsub.getSubscribers(TOPICS.attestations).some(p => p.toString() === boot), FOLLOW_UP_TIMEOUT_MS, 'the attacker seeing the bootstrap node subscribe to attestations')
  })
  after(async () => { await net?.stop() })

  it('(a) validly signed attestations for unknown tasks are not stored or relayed, wait within their bound, and count once their task comes', async () => {
    const attackerId = attacker.libp2p.peerId.toString()
    const bootId = net.bootstrap.libp2p.peerId.toString()
    // (Read as optional so that, run against a relay without the buffer, the test fails on its assertions.)
    const early = { get size (): number { return (internals(net.bootstrap).relay as Partial<Relay>).earlyAttestations?.size ?? 0 } }
    // What reaches the aggregator from the bootstrap node is what the bootstrap relayed.
    const relayedToAggregator = new Set<string>()
    const onMessage = (evt: CustomEvent<GossipsubMessage>): void => {
      const { msg, propagationSource } = evt.detail
      if (msg.topic === TOPICS.attestations && propagationSource.toString() === bootId) relayedToAggregator.add(toHex(decodeAttestation(msg.data).taskId))
    }
    net.aggregator.libp2p.services.pubsub.addEventListener('gossipsub:message', onMessage)
    const dropped: string[] = []
    const onRejected = (evt: CustomEvent<{ topic: string, reason: string, from: string, verdict: string }>): void => {
      const d = evt.detail
      if (d.topic === 'attestation' && d.from === attackerId) dropped.push(`${d.verdict}: ${d.reason}`)
    }
    net.bootstrap.addEventListener('rejected', onRejected)
    let mostWaiting = 0
    try {
      const unknown = Array.from({ length: FLOOD }, () => new Uint8Array(randomBytes(32)))
      for (const [i, taskId] of unknown.entries()) {
        await attacker.libp2p.services.pubsub.publish(TOPICS.attestations, encodeAttestation(attestation(i % 4, taskId, randomBytes(1024))))
        mostWaiting = Math.max(mostWaiting, early.size)
      }
      await until(() => {
        mostWaiting = Math.max(mostWaiting, early.size)
        return dropped.length >= FLOOD
      }, FOLLOW_UP_TIMEOUT_MS + 10_000, () => `the bootstrap node dropping all ${FLOOD} attestations (dropped ${dropped.length}, ${early.size} waiting)`)
      assert.ok(dropped.every(d => d.startsWith('ignore: ') && d.includes('task not known here')), dropped.find(d => !d.includes('task not known here')))
      const expired = dropped.filter(d => d.includes('within')).length
      assert.ok(mostWaiting <= MAX_EARLY_ATTESTATIONS_PER_PEER, `${mostWaiting} waited at once, the bound is ${MAX_EARLY_ATTESTATIONS_PER_PEER}`)
      assert.ok(expired <= MAX_EARLY_ATTESTATIONS_PER_PEER, `${expired} waited out their TTL, more than the ${MAX_EARLY_ATTESTATIONS_PER_PEER} one peer may have waiting`)
      assert.equal(early.size, 0)
      for (const taskId of unknown) {
        assert.equal((await net.bootstrap.store!.getAttestations(taskId)).length, 0, `the bootstrap node stored an attestation for unknown task ${toHex(taskId)}`)
        assert.equal((await net.aggregator.store!.getAttestations(taskId)).length, 0, `the aggregator stored an attestation for unknown task ${toHex(taskId)}`)
      }
      assert.equal(unknown.filter(id => relayedToAggregator.has(toHex(id))).length, 0, 'the bootstrap node relayed attestations for unknown tasks')

      // Three operators' attestations (a quorum of 3 of 4) come before their task.
      const task = await newTask()
      const taskId = taskIdOf(task, TEST_TASK_MANAGER)
      const output = new TextEncoder().encode('early result')
      for (const i of [0, 1, 2]) await attacker.libp2p.services.pubsub.publish(TOPICS.attestations, encodeAttestation(attestation(i, taskId, output)))
      await until(() => early.size >= 3, FOLLOW_UP_TIMEOUT_MS, () => `the three early attestations waiting at the bootstrap node (${early.size} waiting)`)
      assert.equal((await net.bootstrap.store!.getAttestations(taskId)).length, 0, 'nothing is stored before the task is known')
      const certified = waitForEvent(net.aggregator, 'certificate', { timeoutMs: TASK_TIMEOUT_MS - 5_000, what: `certificate for task ${toHex(taskId)} from its early attestations`, filter: d => toHex(d.certificate.taskId) === toHex(taskId) })
      await net.requester.announce(task)
      const { certificate } = await certified
      assert.equal(toHex(certificate.resultHash), toHex(keccak256(output, 'bytes')))
      await until(async () => (await net.bootstrap.store!.getAttestations(taskId)).length === 3, FOLLOW_UP_TIMEOUT_MS, 'the bootstrap node storing the three early attestations once the task came')
    } finally {
      net.aggregator.libp2p.services.pubsub.removeEventListener('gossipsub:message', onMessage)
      net.bootstrap.removeEventListener('rejected', onRejected)
    }
  })

  it('(b) replayed tasks and attestations of a forgotten task are ignored before any signature check', async () => {
    const node = net.bootstrap
    const task = await newTask()
    const taskId = taskIdOf(task, TEST_TASK_MANAGER)
    const att = attestation(0, taskId, new TextEncoder().encode('replayed'))
    const from = attacker.libp2p.peerId.toString()
    assert.equal(await validatorOf(node, 'tasks')(encodeTaskAnnouncement(task), from), 'accept')
    assert.equal(await validatorOf(node, 'attestations')(encodeAttestation(att), from), 'accept')
    // The task book forgets the task as it would a minute after its deadline.
    ;(internals(node).tasks as unknown as { sweep: (now: number) => void }).sweep(Date.now() + 10 * 60_000)
    assert.equal(node.knowsTask(taskId), false)
    const verifier = internals(node).verifier
    const verify = verifier.verify
    let verified = 0
    verifier.verify = async (...args) => { verified++; return await verify.apply(verifier, args) }
    const reasons: string[] = []
    const onRejected = (evt: CustomEvent<{ reason: string }>): void => { reasons.push(evt.detail.reason) }
    node.addEventListener('rejected', onRejected)
    try {
      assert.equal(await validatorOf(node, 'tasks')(encodeTaskAnnouncement(task), from), 'ignore')
      assert.equal(await validatorOf(node, 'attestations')(encodeAttestation(att), from), 'ignore')
      const other = attestation(1, taskId, new TextEncoder().encode('replayed'))
      assert.equal(await validatorOf(node, 'attestations')(encodeAttestation(other), from), 'ignore')
    } finally {
      verifier.verify = verify
      node.removeEventListener('rejected', onRejected)
    }
    assert.equal(verified, 0, 'a signature was checked for a replay')
    assert.equal(reasons.length, 3)
    assert.ok(reasons.every(r => r.includes('replay')), reasons.join('\n'))
    assert.equal(node.knowsTask(taskId), false, 'the replayed task was tracked again')
    assert.equal(internals(node).relay.earlyAttestations.size, 0)
  })

  it('tracks at most MAX_TRACKED_TASKS tasks: past the bound a new valid task is ignored and not tracked', async () => {
    const node = net.bootstrap
    const book = internals(node).tasks
    const from = attacker.libp2p.peerId.toString()
    const known = await newTask()
    assert.equal(await validatorOf(node, 'tasks')(encodeTaskAnnouncement(known), from), 'accept')
    // Fill the book up to its bound with tasks of a far deadline (their content does not matter here).
    const filler = { ...known, deadline: BigInt(Date.now() + 60_000) }
    const added: Uint8Array[] = []
    for (let i = 0; book.size < MAX_TRACKED_TASKS; i++) {
      const id = new Uint8Array(32)
      new DataView(id.buffer).setUint32(0, i + 1)
      id[31] = 0xfe
      book.track(id, filler)
      added.push(id)
    }
    try {
      const fresh = await newTask()
      assert.equal(await validatorOf(node, 'tasks')(encodeTaskAnnouncement(fresh), from), 'ignore')
      assert.equal(node.knowsTask(taskIdOf(fresh, TEST_TASK_MANAGER)), false)
      assert.equal(book.size, MAX_TRACKED_TASKS)
    } finally {
      // Forget the fillers (and the known task) as the sweep would after their deadline.
      ;(book as unknown as { sweep: (now: number) => void }).sweep(Date.now() + 10 * 60_000)
    }
  })

  it('(c) stream data held for one peer beyond its bound evicts the oldest; a slow peer is ignored, not penalised', async () => {
    const [server, client, rogue] = await Promise.all([localNode(), localNode(), localNode()])
    const temp = await openTempStore('poi-relay-bounds-')
    const messages = new MemoryMessageSource()
    const streamServer = new StreamServer({ libp2p: server, messages })
    const data = new StreamData({ libp2p: client, keystore: { privateKey: await generateKeyPair('Ed25519') }, streams: temp.streams }, { maxHeldMessagesPerPeer: 3, maxFetchesPerPeer: 2 })
    try {
      await streamServer.start()
      await serveRogue(rogue, STREAM_PROTOCOL, () => ({ silent: true }))
      await client.dial(server.getMultiaddrs())
      await client.dial(rogue.getMultiaddrs())
      await data.start()
      const author = await generateKeyPair('Ed25519')
      const ids: Uint8Array[] = []
      for (let i = 0; i < 5; i++) {
        const message = await createStreamMessage(author, `inputs/${i}`, 0n, GENESIS_PREV_ID, randomBytes(2048))
        ids.push(messages.add(encodeStreamMessage(message), Date.now() + 60_000))
      }
      const serverId = server.peerId.toString()
      for (const id of ids) assert.equal(await data.hold('input', id, serverId, Date.now() + 10_000), undefined)
      for (const id of ids.slice(0, 2)) assert.equal(await temp.streams.getBytes(id), undefined, 'an old copy beyond the bound is still held')
      for (const id of ids.slice(2)) assert.notEqual(await temp.streams.getBytes(id), undefined, 'a recent copy was evicted')
      assert.equal(data.heldFor(serverId).messages, 3)
      assert.equal((await temp.streams.listHeldCopies()).length, 3)

      // A silent peer: two fetches run (and time out: ignored), the third is refused at once.
      const rogueId = rogue.peerId.toString()
      const slow = await Promise.all([0, 1, 2].map(async () => await data.hold('input', randomBytes(32), rogueId, Date.now() + 1_500)))
      assert.deepEqual(slow.map(s => s?.verdict), ['ignore', 'ignore', 'ignore'])
      assert.equal(slow.filter(s => s?.reason.includes('already under way') === true).length, 1, slow.map(s => s?.reason).join('\n'))
      // A peer that says it lacks what it was asked for is at fault.
      const missing = await data.hold('input', randomBytes(32), serverId, Date.now() + 10_000)
      assert.equal(missing?.verdict, 'reject')
    } finally {
      data.stop()
      await streamServer.stop()
      await Promise.all([server, client, rogue].map(async n => { await n.stop() }))
      await temp.close()
    }
  })

  it('(c) a peer that forwards a task whose input it does not hold is rejected and loses score', async () => {
    const sender = await net.extraNode(await freshKeysAsync(), 'no-input')
    const senderId = sender.libp2p.peerId.toString()
    const boot = net.bootstrap.libp2p.peerId.toString()
    await until(() => sender.libp2p.services.pubsub.getSubscribers(TOPICS.tasks).some(p => p.toString() === boot), FOLLOW_UP_TIMEOUT_MS, 'the sender seeing the bootstrap node subscribe to tasks')
    const task = await newTask({ input: new Uint8Array(0), inputRef: new Uint8Array(randomBytes(32)) })
    const refused = waitForEvent(net.bootstrap, 'rejected', {
      timeoutMs: FOLLOW_UP_TIMEOUT_MS, what: `the bootstrap node refusing task ${toHex(taskIdOf(task, TEST_TASK_MANAGER))} for its missing input`,
      filter: d => d.topic === 'task' && d.from === senderId
    })
    await sender.libp2p.services.pubsub.publish(TOPICS.tasks, encodeTaskAnnouncement(task))
    const { verdict, reason } = await refused
    assert.match(reason, /NOT_FOUND/)
    assert.equal(verdict, 'reject')
    await until(() => net.bootstrap.libp2p.services.pubsub.getScore(senderId) < 0, FOLLOW_UP_TIMEOUT_MS, () => `the sender's score at the bootstrap node going below 0 (it is ${net.bootstrap.libp2p.services.pubsub.getScore(senderId)})`)
    assert.equal(net.bootstrap.knowsTask(taskIdOf(task, TEST_TASK_MANAGER)), false)
  })

  it('(d) an attestation of the previous epoch during an epoch change is accepted, not rejected', async () => {
    const task = await newTask()
    const taskId = taskIdOf(task, TEST_TASK_MANAGER)
    await net.requester.announce(task)
    await until(() => net.bootstrap.knowsTask(taskId), FOLLOW_UP_TIMEOUT_MS, `the bootstrap node knowing task ${toHex(taskId)}`)
    // The bootstrap node reads the next epoch from the chain; the operator signing has not yet.
    net.bootstrap.useOperatorSet(createOperatorSet({ epoch: 1n, domain: net.operatorSet.domain, operators: net.operatorSet.operators.map(o => ({ address: o.address, blsPublicKey: o.blsPublicKey, stake: o.stake })) }))
    const attackerId = attacker.libp2p.peerId.toString()
    const verdicts: string[] = []
    const onRejected = (evt: CustomEvent<{ topic: string, from: string, verdict: string, reason: string }>): void => {
      if (evt.detail.topic === 'attestation' && evt.detail.from === attackerId) verdicts.push(`${evt.detail.verdict}: ${evt.detail.reason}`)
    }
    net.bootstrap.addEventListener('rejected', onRejected)
    try {
      const accepted = waitForEvent(net.bootstrap, 'attestation', { timeoutMs: FOLLOW_UP_TIMEOUT_MS, what: `the epoch-0 attestation for task ${toHex(taskId)} accepted in epoch 1`, filter: d => toHex(d.taskId) === toHex(taskId) })
      await attacker.libp2p.services.pubsub.publish(TOPICS.attestations, encodeAttestation(attestation(0, taskId, new TextEncoder().encode('old epoch'), 0n)))
      const att = await accepted
      assert.equal(att.epoch, 0n)
    } finally {
      net.bootstrap.removeEventListener('rejected', onRejected)
    }
    assert.deepEqual(verdicts.filter(v => v.startsWith('reject')), [])
  })
})

describe('relay bounds: the in-memory maps (no network)', () => {
  const ops = makeOperators([32n, 32n, 32n, 32n])
  const result = (task: string): TaskResult => {
    const output = new Uint8Array(randomBytes(4096))
    const hash = keccak256(output, 'bytes')
    return { taskId: keccak256(new TextEncoder().encode(task), 'bytes'), resultHash: hash, outputRef: hash, output }
  }

  it('early attestations: bounded per task, per peer and in bytes; released with their task, dropped after the TTL', async () => {
    const early = new EarlyAttestations({ ttlMs: 200, maxWaiting: 100, maxWaitingPerPeer: 5, perOperator: 2, maxBytes: 10_000 })
    const waits = [0, 1, 2].map(async () => await early.wait('t1', 'p1', 1_000, 1))
    assert.match(await waits[2] ?? '', /2 attestations already wait for it/)
    // p1 has 2 waiting for t1; three more fill its 5, the sixth is refused.
    const more = [0, 1, 2].map(async i => await early.wait(`u${i}`, 'p1', 1_000, 4))
    assert.match(await early.wait('u3', 'p1', 1_000, 4) ?? '', /5 attestations from this peer/)
    early.release('t1')
    assert.deepEqual(await Promise.all(waits.slice(0, 2)), [undefined, undefined])
    assert.match(await early.wait('big', 'p2', 9_000, 4) ?? '', /already hold/)
    const expires = early.wait('never', 'p3', 100, 4)
    assert.match(await expires ?? '', /within 200 ms/)
    early.stop()
    assert.ok((await Promise.all(more)).every(why => why !== undefined), 'an attestation whose task never came was released')
    assert.equal(early.size, 0)
    assert.equal(early.bytes, 0)
  })

  it('forgotten tasks: the oldest go first past the bound, all after their memory', () => {
    const hooks: Array<(id: string, task: TrackedTask) => void> = []
    const forgotten = new ForgottenTasks({ onForget: (hook) => { hooks.push(hook) } }, { maxIds: 3, memoryMs: 60_000 })
    for (const id of ['a', 'b', 'c', 'd']) hooks[0](id, {} as TrackedTask)
    assert.deepEqual(['a', 'b', 'c', 'd'].map(id => forgotten.has(id)), [false, true, true, true])
    forgotten.add('e', Date.now() - 120_000)
    assert.equal(forgotten.has('e'), false)
    assert.ok(forgotten.size <= 3)
  })

  it('attestation ledger: only tracked tasks, no inline outputs, the oldest task dropped past the bound, a task dropped when forgotten', () => {
    const tracked = new Set<string>()
    const hooks: Array<(id: string, task: TrackedTask) => void> = []
    const events = new TypedEventEmitter<PoiNodeEvents>()
    const ledger = new AttestationLedger({ events, tasks: { has: (id) => tracked.has(typeof id === 'string' ? id : toHex(id)), onForget: (hook) => { hooks.push(hook) } } }, { maxFirstResults: 8 })
    const untracked = result('untracked')
    ledger.remember(attest(ops, 0, untracked))
    assert.equal(ledger.size, 0, 'a first result was kept for a task the book does not track')
    const tasks = ['t0', 't1', 't2'].map(result)
    for (const r of tasks) tracked.add(toHex(r.taskId))
    for (const r of tasks) for (const i of [0, 1, 2, 3]) ledger.remember(attest(ops, i, r))
    assert.equal(ledger.size, 8)
    assert.equal(ledger.firstResult(tasks[0].taskId, 0), undefined, 'the oldest task was not dropped first')
    assert.equal(ledger.firstResult(tasks[2].taskId, 3), toHex(tasks[2].resultHash))
    assert.equal(ledger.classify(attest(ops, 3, tasks[2])), 'duplicate')
    hooks[0](toHex(tasks[2].taskId), {} as TrackedTask)
    assert.equal(ledger.size, 4)
    assert.equal(ledger.classify(attest(ops, 3, tasks[2])), 'new')
  })
})
