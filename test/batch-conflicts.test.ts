/**
 * Issue 15, point 4 (disputes need no new trust), node side: a full node holds every verified
 * batch signature against the attestations it keeps. When operator i signed a batch whose leaf
 * for a task has another result than i's own attestation for that task, the node keeps the
 * evidence (`conflict/<task>/batch/…`), reports it (`conflict-evidence`, kind
 * `batch-attestation`), and a funded aggregator posts it (SlashingManager.submitBatchLeafAndAttestation).
 *
 * Real components: real BLS keys and a LevelDB NodeStore for the detector; then anvil with the poi
 * contracts, operators registered with real BLS keys and in-process libp2p nodes over TCP, where
 * the test stands in for the operators by publishing their signed messages on the gossip topics.
 */
import { TypedEventEmitter } from '@libp2p/interface'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bytesToHex, keccak256, type Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import {
  BatchTree, batchDigest, batchSummaryHash, generateBlsSecretKey, signAttestation, signBatch, verifyBatchProof, verifySignatureSets,
  type BatchLeaf, type OperatorSet
} from '../consensus/index.js'
import { ANVIL_PRIVATE_KEYS, readOperatorSet, type OnChainOperatorSet } from '../contracts/index.js'
import { ChainClient } from '../node/chain-client.js'
import { exampleInput } from '../node/cli/devnet.js'
import { SHIPPED_MODEL_DIR, loadModelDir } from '../node/inference/index.js'
import type { PoiNode } from '../node/poi-node.js'
import { AttestationLedger, Conflicts, Submitter, type ConflictReport, type PoiNodeEvents } from '../node/roles/index.js'
import { batchProposalOf, batchSignatureOf } from '../protocols/gossip/index.js'
import { encodeAttestation, encodeBatchGossip, encodeTaskAnnouncement, signTask, taskIdOf, toHex, type Attestation } from '../protocols/wire/index.js'
import { NodeStore, conflictIdOf, type Submission } from '../storage/index.js'
import { ETHER, makeOperators, taskResult, type TaskResult } from './consensus-fixtures.js'
import { tabBatch, type TabTask } from './helpers/batch-chain.js'
import { routerOf, startFullNode, topicHandlerOf } from './helpers/network.js'
import { nextEpoch, registerAll, startPoiChain, type PoiChain } from './helpers/poi-chain.js'
import { until, waitForEvent } from './helpers/wait.js'

/** Gossip meshes, a hop, a store write: generous for a loaded 2-core machine. */
const FOLLOW_UP_TIMEOUT_MS = 20_000
/** A slash on anvil through the submitter: a simulation, a send, a receipt. */
const SLASH_TIMEOUT_MS = 30_000

const leafOf = (r: TaskResult): BatchLeaf => ({ taskId: bytesToHex(r.taskId), resultHash: bytesToHex(r.resultHash), outputRef: bytesToHex(r.outputRef) })
const inBatchOrder = (leaves: BatchLeaf[]): BatchLeaf[] => [...leaves].sort((a, b) => BigInt(a.taskId) < BigInt(b.taskId) ? -1 : 1)

/** Operator `index`'s signature over a batch, as the batches topic delivers it to Conflicts. */
function batchSignature (set: OperatorSet, secretKey: Uint8Array, index: number, root: Hex, summaryHash: Hex): Parameters<Conflicts['batchSignature']>[0] {
  const share = signBatch(secretKey, set, { root, epoch: set.epoch, summaryHash }, index)
  return { root, epoch: set.epoch, summaryHash, operatorIndex: index, signature: share.blsSig }
}

describe('batch leaves against attestations (issue 15, point 4)', function () {
  this.timeout(90_000)

  describe('the detector', () => {
    const ops = makeOperators([10n, 10n, 10n, 10n], { epoch: 1n })
    const summaryHash: Hex = `0x${'5a'.repeat(32)}`
    let dir: string
    let store: NodeStore
    let conflicts: Conflicts
    let ledger: AttestationLedger
    const reports: ConflictReport[] = []

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'poi-batch-conflicts-'))
      store = await NodeStore.open(dir)
      const events = new TypedEventEmitter<PoiNodeEvents>()
      events.addEventListener('conflict-evidence', ({ detail }) => { reports.push(detail) })
      ledger = new AttestationLedger({ events, tasks: { has: () => true, onForget: () => {} } })
      const epochs = { setOf: (e: bigint) => e === ops.set.epoch ? ops.set : undefined, resolveSet: async (e: bigint) => e === ops.set.epoch ? ops.set : undefined }
      conflicts = new Conflicts({ store, events, epochs, ledger })
    })
    after(async () => {
      await store?.close()
      if (dir != null) await rm(dir, { recursive: true, force: true })
    })

    const attestAs = (index: number, r: TaskResult): Attestation => {
      const att = signAttestation(ops.secretKeys[index], ops.set.domain, { ...r, epoch: ops.set.epoch, operatorIndex: index })
      ledger.remember(att)
      return att
    }

    it('keeps and reports a batch signature over a leaf that contradicts the signer\'s attestation; an honest signature or another operator\'s attestation is no evidence', async () => {
      const disputed = taskResult('detector disputed', 'dog')
      const leaves = inBatchOrder([leafOf(disputed), leafOf(taskResult('detector other 1', 'x')), leafOf(taskResult('detector other 2', 'y'))])
      const root = new BatchTree(leaves).root
      attestAs(0, disputed) // agrees with the leaf
      const contrary = attestAs(1, taskResult('detector disputed', 'cat')) // operator 1 attested another result
      attestAs(2, taskResult('detector disputed', 'eel')) // so did operator 2, which never signs the batch

      await conflicts.batchProposal(root, leaves)
      await conflicts.batchSignature(batchSignature(ops.set, ops.secretKeys[0], 0, root, summaryHash))
      await conflicts.batchSignature(batchSignature(ops.set, ops.secretKeys[3], 3, root, summaryHash)) // no attestation held
      assert.equal(reports.length, 0, 'an honest batch signature produced evidence')
      assert.deepEqual(await store.listConflicts(), [])

      const sig = batchSignature(ops.set, ops.secretKeys[1], 1, root, summaryHash)
      await conflicts.batchSignature(sig)
      await conflicts.batchSignature(sig) // a repeat keeps one entry and reports once
      assert.equal(reports.length, 1)
      const [report] = reports
      const id = conflictIdOf({ kind: 'batch-attestation', taskId: disputed.taskId, attestation: contrary })
      assert.deepEqual([report.kind, report.id, report.accused], ['batch-attestation', id, [1]])

      // What is stored is what the chain checks: the signer's signature over the batch, the leaf's proof to the root, its attestation.
      const stored = await store.getConflict(id)
      assert.ok(stored?.kind === 'batch-attestation')
      assert.deepEqual(await store.listConflicts(disputed.taskId), [stored])
      assert.equal(toHex(stored.attestation.resultHash), toHex(contrary.resultHash))
      const { batch } = stored
      assert.deepEqual([batch.root, batch.epoch, batch.summaryHash, batch.operatorIndex], [root, ops.set.epoch, summaryHash, 1])
      assert.ok(verifyBatchProof(batch.root, { taskId: bytesToHex(disputed.taskId), resultHash: batch.resultHash, outputRef: batch.outputRef }, batch.proof))
      assert.equal(batch.resultHash, bytesToHex(disputed.resultHash))
      const [verified] = verifySignatureSets([{
        publicKey: ops.set.operators[1].blsPublicKey, message: batchDigest(ops.set.domain, batch.root, batch.epoch, batch.summaryHash), signature: Buffer.from(batch.signature.slice(2), 'hex')
      }])
      assert.ok(verified, 'the stored batch signature verifies for operator 1')
    })

    it('holds a signature that arrives before its proposal until the proposal comes', async () => {
      reports.length = 0
      const disputed = taskResult('detector early', 'dog')
      const leaves = inBatchOrder([leafOf(disputed), leafOf(taskResult('detector early other', 'x'))])
      const root = new BatchTree(leaves).root
      attestAs(2, taskResult('detector early', 'cat'))
      await conflicts.batchSignature(batchSignature(ops.set, ops.secretKeys[2], 2, root, summaryHash))
      assert.equal(reports.length, 0, 'evidence before the leaves were known')
      await conflicts.batchProposal(root, leaves)
      assert.deepEqual(reports.map(r => [r.kind, r.accused]), [['batch-attestation', [2]]])
      assert.ok(reports[0].kind === 'batch-attestation' && reports[0].batch.proof.length === 1, 'a two-leaf batch proves a leaf with one sibling')
    })
  })

  describe('on anvil, through the network', () => {
    const STAKES = [10n, 10n, 10n, 10n].map(s => s * ETHER)
    const keys = STAKES.map(() => generateBlsSecretKey())
    let chain: PoiChain
    let set: OnChainOperatorSet
    let root: string
    const nodes: PoiNode[] = []

    before(async () => {
      chain = await startPoiChain({ epochDuration: 100n })
      await registerAll(chain, keys, STAKES)
      await nextEpoch(chain)
      set = await readOperatorSet(chain.publicClient, chain.deployment, 1n)
      root = await mkdtemp(join(tmpdir(), 'poi-batch-conflicts-net-'))
    })
    after(async () => {
      await Promise.all(nodes.map(async n => await n.stop()))
      await chain?.stop()
      if (root != null) await rm(root, { recursive: true, force: true })
    })

    it('a funded aggregator posts an operator\'s batch signature over a leaf contradicting its attestation: that operator alone is slashed by slashBps; an honest batch is no evidence', async () => {
      const reporter = await ChainClient.connect({ ...chain.deployment, rpcUrl: chain.anvil.rpcUrl }, privateKeyToAccount(ANVIL_PRIVATE_KEYS[9]))
      const aggregator = await startFullNode(root, 'aggregator', { operatorSet: set, aggregate: true, bootstrap: [], settlement: reporter })
      nodes.push(aggregator)
      const attacker = await startFullNode(root, 'attacker', { operatorSet: set, aggregate: false, bootstrap: [aggregator.addresses()[0]] })
      nodes.push(attacker)
      await until(() => (['tasks', 'attestations', 'batches'] as const).every(t => aggregator.meshPeers(t) >= 1 && attacker.meshPeers(t) >= 1),
        FOLLOW_UP_TIMEOUT_MS, 'task, attestation and batch meshes between the aggregator and the attacker')
      const router = routerOf(attacker)
      // Counts the batch messages the aggregator has finished handling: the honest batch's are
      // checked before the test looks for evidence, without waiting on a clock.
      const handler = topicHandlerOf(aggregator, 'batches')
      let handled = 0
      const onMessage = handler.onMessage!
      handler.onMessage = async (data, from) => { try { await onMessage(data, from) } finally { handled++ } }
      const reports: ConflictReport[] = []
      aggregator.addEventListener('conflict-evidence', ({ detail }) => { reports.push(detail) })

      // Two real tab tasks of one requester; operators attest to them (the test signs as they would).
      const requester = privateKeyToAccount(generatePrivateKey())
      const modelId = (await loadModelDir(SHIPPED_MODEL_DIR)).modelId
      const deadlineMs = BigInt(Date.now() + 60_000)
      const tasks = await Promise.all([1n, 2n].map(async nonce => await signTask(requester, set.domain.taskManager, {
        chainId: set.domain.chainId, modelId, input: exampleInput(Number(nonce)), fee: 0n, deadline: deadlineMs, quorumBps: 6667, nonce
      })))
      const ids = tasks.map(t => taskIdOf(t, set.domain.taskManager))
      for (const [k, task] of tasks.entries()) {
        const tracked = waitForEvent(aggregator, 'task', { timeoutMs: FOLLOW_UP_TIMEOUT_MS, what: `task ${k} at the aggregator`, filter: d => toHex(d.taskId) === toHex(ids[k]) })
        await router.publish('tasks', encodeTaskAnnouncement(task))
        await tracked
      }
      const resultOf = (k: number, label: string): TaskResult => {
        const output = new TextEncoder().encode(label)
        const hash = keccak256(output, 'bytes')
        return { taskId: ids[k], resultHash: hash, outputRef: hash, output }
      }
      const certified = [resultOf(0, 'label 1'), resultOf(1, 'label 2')]
      const attestations: Array<[number, TaskResult]> = [[0, certified[0]], [0, certified[1]], [2, certified[0]], [1, certified[1]], [1, resultOf(0, 'label 9')]]
      for (const [index, r] of attestations) {
        const counted = waitForEvent(aggregator, 'attestation', {
          timeoutMs: FOLLOW_UP_TIMEOUT_MS, what: `operator ${index}'s attestation at the aggregator`, filter: d => toHex(d.taskId) === toHex(r.taskId) && d.operatorIndex === index
        })
        await router.publish('attestations', encodeAttestation(signAttestation(keys[index], set.domain, { ...r, epoch: set.epoch, operatorIndex: index })))
        await counted
      }

      // One batch of both tasks with the certified results, as an aggregator proposes it.
      const tabTasks: TabTask[] = certified.map((r, k) => ({
        account: requester, sequence: tasks[k].nonce, modelId, fee: 0n, deadlineMs, leaf: leafOf(r), cumulative: 0n
      }))
      const { tree, summary } = await tabBatch(tabTasks, set.domain, `0x${'00'.repeat(32)}`)
      const proposal = batchProposalOf({ epoch: set.epoch, seq: 1n, leaves: [...tree.leaves], summary })
      const summaryHash = batchSummaryHash(summary)
      const publishSignature = async (index: number): Promise<void> => {
        const share = signBatch(keys[index], set, { root: tree.root, epoch: set.epoch, summaryHash }, index)
        await router.publish('batches', encodeBatchGossip({ kind: 'signature', signature: batchSignatureOf({ root: tree.root, epoch: set.epoch, summaryHash, operatorIndex: index, signature: share.blsSig }) }))
      }
      const stakesBefore = await Promise.all(set.operators.map(async o => await reporter.liveStake(o.address)))

      // Honest: operators 0 and 2 attested the leaves' results (operator 3 attested nothing).
      await router.publish('batches', encodeBatchGossip({ kind: 'proposal', proposal }))
      for (const index of [0, 2, 3]) await publishSignature(index)
      await until(() => handled >= 4, FOLLOW_UP_TIMEOUT_MS, () => `the aggregator to handle the proposal and three signatures (${handled})`)
      assert.equal(reports.length, 0, 'an honest batch produced evidence')
      assert.deepEqual(await aggregator.store!.listConflicts(), [])

      // Operator 1 attested another result for task 0, then signed the batch holding the certified one.
      const found = waitForEvent(aggregator, 'conflict-evidence', { timeoutMs: FOLLOW_UP_TIMEOUT_MS, what: 'batch-attestation evidence at the aggregator' })
      await publishSignature(1)
      const evidence = await found
      assert.deepEqual([evidence.kind, toHex(evidence.taskId), evidence.accused], ['batch-attestation', toHex(ids[0]), [1]])
      let sub: Submission | undefined
      await until(async () => { sub = await aggregator.store!.getSubmission('conflict', evidence.id); return sub?.state !== 'pending' }, SLASH_TIMEOUT_MS,
        () => `the conflict submission to leave pending (${sub?.lastError ?? 'no error yet'})`)
      assert.equal(sub!.state, 'confirmed', `submission: ${JSON.stringify(sub)}`)

      const stakesAfter = await Promise.all(set.operators.map(async o => await reporter.liveStake(o.address)))
      const slashBps = BigInt(chain.params.slashBps)
      assert.deepEqual(stakesAfter, stakesBefore.map((s, i) => i === 1 ? s - s * slashBps / 10_000n : s), 'operator 1 alone loses slashBps of its stake')
      // Task 1's leaf agrees with operator 1's attestation for it: one piece of evidence only.
      assert.deepEqual((await aggregator.store!.listConflicts()).map(c => c.id), [evidence.id])

      // Posted again from another account (a second reporter): the slash is done, so it is settled, by whom the chain says.
      const late = new Submitter(aggregator.store!, await ChainClient.connect({ ...chain.deployment, rpcUrl: chain.anvil.rpcUrl }, privateKeyToAccount(ANVIL_PRIVATE_KEYS[8])))
      try {
        await aggregator.store!.putSubmission({ ...sub!, state: 'pending', attempts: 0 })
        late.kick('conflict', evidence.id)
        await until(async () => { sub = await aggregator.store!.getSubmission('conflict', evidence.id); return sub?.state !== 'pending' }, SLASH_TIMEOUT_MS, 'the second posting to settle')
      } finally {
        await late.stop()
      }
      assert.deepEqual([sub!.state, sub!.settledBy?.toLowerCase()], ['settled-by-other', reporter.account!.toLowerCase()])
      assert.deepEqual(await Promise.all(set.operators.map(async o => await reporter.liveStake(o.address))), stakesAfter, 'no second slash')
    })
  })
})
