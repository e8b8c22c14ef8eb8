/**
 * zk proofs on the network (issue 16, spec16n part B): three full nodes and a light requester,
 * real libp2p over TCP on 127.0.0.1, all holding the zk test model with its verification key. A
 * requester's signed zk task spreads; one node announces a real Groth16 proof of it and the
 * others check it off-chain, keep it and tell it (`proof`), the light requester too; a tampered
 * proof, a proof of another input and a wrong output commitment are rejected, named, and never
 * delivered.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createOperatorSet, type OperatorSet } from '../consensus/index.js'
import { resolveConfig } from '../node/config.js'
import { canonicalizeOutputs, modelIdOf, type ModelDir } from '../node/inference/index.js'
import { commitTensor, releaseCurve } from '../node/inference/zk/index.js'
import { PoiNode } from '../node/poi-node.js'
import { PROOF_CHANNEL, ZkProofAnnounceError } from '../node/roles/index.js'
import { fetchStreamMessageByPayload } from '../protocols/stream/index.js'
import {
  TASK_TIERS, encodeZkProofAnnouncement, encodeZkProofBody, proofRefOf, signTask, toHex, uint256ToBytes, zkProofAnnouncementOf, zkProofBodyOf,
  type TaskAnnouncement, type ZkProofAnnouncement
} from '../protocols/wire/index.js'
import { proofToBytes } from '../node/inference/zk/index.js'
import { freshKeysAsync } from './helpers/keys.js'
import { TEST_CHAIN_ID, TEST_TASK_MANAGER, STAKE, routerOf, until } from './helpers/network.js'
import { waitForEvent } from './helpers/wait.js'
import { zkTestModel, zkTestRun, type ZkTestRun } from './helpers/zk-test-model.js'

/** Gossipsub grafts on its 1 s heartbeat; room for a loaded machine. */
const MESH_TIMEOUT_MS = 20_000
/** A gossip hop and a proof check (about 0.1 s) on a loaded machine. */
const DELIVERY_TIMEOUT_MS = 15_000
/** The tasks' deadline: the whole file runs well within it. */
const TASK_TTL_MS = 120_000

const word = (v: bigint): Uint8Array<ArrayBuffer> => { const out = new Uint8Array(32); const be = uint256ToBytes(v); out.set(be, 32 - be.length); return out }

describe('zk proofs on the network', function () {
  // the first file to run on a machine builds the fixture (about 90 s on 2 loaded cores)
  this.timeout(300_000)
  let root: string
  let nodes: PoiNode[] = []
  let full: PoiNode[]
  let prover: PoiNode
  let light: PoiNode
  let runA: ZkTestRun
  let runB: ZkTestRun
  let held: ModelDir
  let proverAddress: bigint

  /** A zk task of the light requester for input `run`, announced and known to every full node. */
  async function zkTask (run: ZkTestRun, nonce: bigint): Promise<{ task: TaskAnnouncement, taskId: Uint8Array }> {
    const requester = await freshKeysAsync()
    const task = await signTask(requester.account, TEST_TASK_MANAGER, {
      chainId: TEST_CHAIN_ID, modelId: held.modelId, input: run.input, fee: 0n, deadline: BigInt(Date.now() + TASK_TTL_MS), quorumBps: 6667,
      nonce, tier: 'zk', inputCommitment: word(run.inputCommitment)
    })
    const taskId = await light.announce(task)
    await until(() => full.every(n => n.knowsTask(taskId)), DELIVERY_TIMEOUT_MS, `zk task ${toHex(taskId)} known to every full node`)
    return { task, taskId }
  }

  /** The announcement of `run`'s proof for `taskId`, as the prover node would make it. */
  function announcementOf (taskId: Uint8Array, run: ZkTestRun): ZkProofAnnouncement {
    return zkProofAnnouncementOf({ version: 1, taskId: Uint8Array.from(taskId), prover: word(proverAddress).slice(12), proof: Uint8Array.from(proofToBytes(run.proof)), outputCommitment: word(run.outputCommitment), output: Uint8Array.from(run.output) })
  }

  /** Publishes `announcement` raw from the prover; resolves with the reason a checking node gave, and checks nobody took it. */
  async function rejectedBy (checker: PoiNode, a: ZkProofAnnouncement, taskId: Uint8Array): Promise<string> {
    const rejected = waitForEvent(checker, 'rejected', { timeoutMs: DELIVERY_TIMEOUT_MS, what: `the proof's rejection for task ${toHex(taskId)}`, filter: (r) => r.topic === 'proof' && r.reason.includes(toHex(taskId)) })
    await routerOf(prover).publish('proofs', encodeZkProofAnnouncement(a))
    const { reason, verdict } = await rejected
    assert.equal(verdict, 'reject', reason)
    for (const n of [...full, light]) assert.equal(n.proofOf(taskId), undefined, 'a rejected proof is neither kept nor told')
    return reason
  }

  before(async function () {
    const started = Date.now()
    const model = await zkTestModel()
    held = { manifest: model.manifest, modelBytes: model.modelBytes, modelId: modelIdOf(model.manifest), zk: { circuitId: model.circuitId, wasm: model.wasm, zkey: model.zkey, verificationKey: model.verificationKey } }
    root = await mkdtemp(join(tmpdir(), 'poi-zk-net-'))
    const proverKeys = await freshKeysAsync()
    proverAddress = BigInt(proverKeys.account.address)
    runA = await zkTestRun([5, -7], proverAddress)
    runB = await zkTestRun([-128, 127], proverAddress)
    const fixtureMs = Date.now() - started
    // One operator that never starts: these nodes only relay and check proofs.
    const operatorSet: OperatorSet = createOperatorSet({
      epoch: 0n,
      domain: { chainId: TEST_CHAIN_ID, taskManager: TEST_TASK_MANAGER },
      operators: [{ address: (await freshKeysAsync()).account.address, blsPublicKey: (await freshKeysAsync()).blsPublicKey, stake: STAKE }]
    })
    const start = async (name: string, bootstrap: string[], isLight = false, keystore?: Awaited<ReturnType<typeof freshKeysAsync>>): Promise<PoiNode> => {
      const config = resolveConfig({
        keystore: join(root, name, 'keys'), dataDir: join(root, name, 'data'), genesis: join(root, 'genesis.json'),
        listen: isLight ? [] : ['/ip4/127.0.0.1/tcp/0'], bootstrap, modelDirs: []
      })
      const node = await PoiNode.start({
        operate: false, aggregate: false, light: isLight, keystore: keystore ?? await freshKeysAsync(), config, operatorSet, backupAggregation: false, metrics: false, control: false, models: [held]
      })
      nodes.push(node)
      return node
    }
    prover = await start('prover', [], false, proverKeys)
    const bootstrap = [prover.addresses()[0]]
    const checkers = [await start('checker1', bootstrap), await start('checker2', bootstrap)]
    full = [prover, ...checkers]
    light = await start('requester', bootstrap, true)
    await until(() => full.every(n => n.meshPeers('proofs') > 0 && n.meshPeers('tasks') > 0) && prover.topicPeers('proofs') >= 3 && light.meshPeers('proofs') > 0,
      MESH_TIMEOUT_MS, 'proofs and tasks meshes on every node')
    console.log(`      (fixture and two proofs ${fixtureMs} ms (proving ${runA.proveMs} + ${runB.proveMs} ms), network ${Date.now() - started - fixtureMs} ms)`)
  })

  after(async function () {
    await Promise.all(nodes.map(async n => await n.stop()))
    nodes = []
    if (root !== undefined) await rm(root, { recursive: true, force: true })
    await releaseCurve()
  })

  it('accepts a real proof of a zk task: every full node checks and keeps it, tells it, serves its body; the light requester gets it', async function () {
    const { taskId } = await zkTask(runA, 1n << 40n)
    const [checker1, checker2] = full.slice(1)
    const told = [checker1, checker2, light].map(n => waitForEvent(n, 'proof', { timeoutMs: DELIVERY_TIMEOUT_MS, what: `the proof of task ${toHex(taskId)}`, filter: (p) => toHex(p.taskId) === toHex(taskId) }))
    const { proofRef } = await prover.announceProof(taskId, runA.proof, runA.output)
    const details = await Promise.all(told)
    for (const detail of details) {
      assert.equal(detail.prover, `0x${proverAddress.toString(16).padStart(40, '0')}`)
      assert.equal(detail.outputCommitment, runA.outputCommitment)
      assert.equal(toHex(detail.output), toHex(runA.output))
      assert.deepEqual(detail.proof.publicSignals, runA.proof.publicSignals)
      assert.equal(toHex(detail.proofRef), toHex(proofRef))
      assert.equal(detail.provedHere, false)
      assert.ok(detail.verifyMs > 0)
    }
    console.log(`      (verified in ${details.map(d => d.verifyMs.toFixed(0)).join(', ')} ms)`)
    assert.equal(prover.proofOf(taskId)?.provedHere, true)
    for (const n of [checker1, checker2, light]) assert.equal(toHex(n.proofOf(taskId)?.proofRef ?? new Uint8Array(0)), toHex(proofRef))
    // full nodes hold the body (fetched from whoever forwarded the announcement) and serve it like outputs
    for (const n of full) assert.ok(await n.streams?.getBytesByPayloadRef(proofRef) !== undefined, 'the proof body is in every full node\'s stream store')
    const served = await fetchStreamMessageByPayload(light.libp2p, checker2.libp2p.peerId, proofRef, { timeoutMs: DELIVERY_TIMEOUT_MS })
    assert.equal(toHex(served.message.payload), toHex(encodeZkProofBody(zkProofBodyOf(announcementOf(taskId, runA)))))
    assert.equal(new TextDecoder().decode(served.message.channelName), PROOF_CHANNEL)
    assert.equal(toHex(proofRef), toHex(proofRefOf(zkProofBodyOf(announcementOf(taskId, runA)))))
  })

  it('rejects, naming why, a tampered proof, a proof of another input, a wrong output commitment and an output of another shape; none is delivered', async function () {
    const { task, taskId } = await zkTask(runB, (1n << 40n) + 1n)
    assert.equal(task.tier, TASK_TIERS.zk)
    const checker = full[1]
    const good = announcementOf(taskId, runB)

    const tamperedProof = Uint8Array.from(good.proof)
    tamperedProof[63] ^= 1 // a.y's last byte: a point off the curve, or another point
    const tampered = zkProofAnnouncementOf({ ...zkProofBodyOf(good), proof: tamperedProof })
    assert.match(await rejectedBy(checker, tampered, taskId), /rejected \(invalid\)/)

    // runA's proof, output and commitment, consistent with each other, for runB's input
    const otherInput = announcementOf(taskId, runA)
    assert.match(await rejectedBy(checker, otherInput, taskId), /rejected \(invalid\).*does not verify/)

    // runB's proof and output with runA's output commitment
    const wrongCommitment = zkProofAnnouncementOf({ ...zkProofBodyOf(good), outputCommitment: word(runA.outputCommitment) })
    assert.match(await rejectedBy(checker, wrongCommitment, taskId), /outputCommitment is not the commitment of the output/)

    // an output of another shape with its own, consistent commitment (the commitment does not hash the length)
    const wide = canonicalizeOutputs({ logits: { dtype: 'int32', dims: [1, 3], data: Int32Array.from([...runB.logits, 0]) } }, { agreement: 'exact', outputs: [{ name: 'logits', dtype: 'int32', shape: [1, 3] }] })
    const wrongShape = zkProofAnnouncementOf({ ...zkProofBodyOf(good), output: Uint8Array.from(wide), outputCommitment: word(commitTensor(Int32Array.from([...runB.logits, 0]), 'int32')) })
    assert.match(await rejectedBy(checker, wrongShape, taskId), /is not the model's output "logits" int32\[1, 2\]/)

    // the prover's own node refuses to announce what every receiver would reject
    await assert.rejects(prover.announceProof(taskId, runA.proof, runA.output), (err: unknown) => err instanceof ZkProofAnnounceError && /input commitment/.test(err.message))
    await assert.rejects(prover.announceProof(taskId, runB.proof, runA.output), (err: unknown) => err instanceof ZkProofAnnounceError && /not the one the proof commits to/.test(err.message))

    // the honest proof still goes through afterwards
    const told = waitForEvent(light, 'proof', { timeoutMs: DELIVERY_TIMEOUT_MS, what: `the proof of task ${toHex(taskId)}`, filter: (p) => toHex(p.taskId) === toHex(taskId) })
    await prover.announceProof(taskId, runB.proof, runB.output)
    assert.equal(toHex((await told).output), toHex(runB.output))
  })

  it('ignores a proof of a task it does not know, and rejects one for a replicated task', async function () {
    const unknown = announcementOf(new Uint8Array(32).fill(0x77), runA)
    const ignored = waitForEvent(full[1], 'rejected', { timeoutMs: DELIVERY_TIMEOUT_MS, what: 'the unknown task\'s proof ignored', filter: (r) => r.topic === 'proof' && r.reason.includes('77777777') })
    await routerOf(prover).publish('proofs', encodeZkProofAnnouncement(unknown))
    assert.equal((await ignored).verdict, 'ignore')

    const requester = await freshKeysAsync()
    const replicated = await signTask(requester.account, TEST_TASK_MANAGER, {
      chainId: TEST_CHAIN_ID, modelId: held.modelId, input: runA.input, fee: 0n, deadline: BigInt(Date.now() + TASK_TTL_MS), quorumBps: 6667, nonce: 7n
    })
    const taskId = await light.announce(replicated)
    await until(() => full.every(n => n.knowsTask(taskId)), DELIVERY_TIMEOUT_MS, 'the replicated task known to every full node')
    assert.match(await rejectedBy(full[1], announcementOf(taskId, runA), taskId), /asked for the replicated tier/)
  })
})
