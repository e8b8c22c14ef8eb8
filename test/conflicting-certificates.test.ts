/**
 * Conflicting certificates are slashing evidence in the network (issue 10, hole 4, node side).
 * Operators that collude (or whose keys cancel) can meet the quorum twice for one task with
 * different results without ever gossiping an attestation; their two certificates are then the
 * only evidence against them. A full node must not drop the second certificate as a duplicate:
 * it verifies it, keeps the pair, relays it, and a funded aggregator posts it, slashing every
 * operator named as a signer in both.
 *
 * Real components: anvil with the poi contracts, operators registered with real BLS keys, real
 * libp2p nodes over TCP on 127.0.0.1 with a LevelDB each, the node's own ChainClient.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { keccak256 } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { TaskAggregation, generateBlsSecretKey, signAttestation, verifySignatureSets, type SignatureSet } from '../consensus/index.js'
import { ANVIL_PRIVATE_KEYS, readOperatorSet, type OnChainOperatorSet } from '../contracts/index.js'
import { ChainClient } from '../node/chain-client.js'
import { exampleInput } from '../node/cli/devnet.js'
import { SHIPPED_MODEL_DIR, loadModelDir } from '../node/inference/index.js'
import type { PoiNode } from '../node/poi-node.js'
import { Submitter } from '../node/roles/index.js'
import { checkCertificate } from '../protocols/gossip/index.js'
import { decodeQuorumCertificate, encodeAttestation, encodeQuorumCertificate, encodeTaskAnnouncement, signTask, taskIdOf, toHex, type QuorumCertificate } from '../protocols/wire/index.js'
import { NodeStore, type Submission } from '../storage/index.js'
import { ETHER, makeOperators, attest, type TaskResult } from './consensus-fixtures.js'
import { routerOf, startFullNode, topicHandlerOf } from './helpers/network.js'
import { makeCertificate, nextEpoch, registerAll, startPoiChain, type PoiChain } from './helpers/poi-chain.js'
import { until, waitForEvent } from './helpers/wait.js'

/** Gossip meshes, a hop, a store write: generous for a loaded 2-core machine. */
const FOLLOW_UP_TIMEOUT_MS = 20_000
/** A slash on anvil through the submitter: a simulation, a send, a receipt. */
const SLASH_TIMEOUT_MS = 30_000

/** A result as operators sign it: resultHash and outputRef are both the keccak256 of the output. */
function signedResult (taskId: Uint8Array, output: string): TaskResult {
  const bytes = new TextEncoder().encode(output)
  const hash = keccak256(bytes, 'bytes')
  return { taskId, resultHash: hash, outputRef: hash, output: bytes }
}

describe('conflicting certificates', function () {
  this.timeout(90_000)

  describe('the certificate validator', () => {
    const ops = makeOperators([32n, 32n, 32n, 32n])
    const taskId = keccak256(new TextEncoder().encode('validator task'), 'bytes')
    const first = signedResult(taskId, 'label 1')
    const other = signedResult(taskId, 'label 2')
    const certificate = (result: TaskResult, signers: number[]): Uint8Array => {
      const agg = new TaskAggregation({ operatorSet: ops.set, taskId, quorumBps: 6667, deadline: Date.now() + 10_000 })
      for (const i of signers) agg.add(attest(ops, i, result), Date.now())
      return encodeQuorumCertificate(agg.buildCertificate(result.resultHash))
    }
    const settled = {
      settled: () => true,
      operatorSetOf: (epoch: bigint) => epoch === ops.set.epoch ? ops.set : undefined,
      quorumBpsOf: () => undefined
    }

    it('checks a second certificate with another result in full instead of dropping it as a duplicate', async () => {
      const held = async (): Promise<{ resultHash: Uint8Array, pairs: number }> => ({ resultHash: first.resultHash, pairs: 0 })
      const conflicting = await checkCertificate(certificate(other, [1, 2, 3]), { ...settled, held })
      assert.equal(conflicting.verdict, 'accept', `a valid conflicting certificate is evidence: ${'reason' in conflicting ? conflicting.reason : ''}`)
      // Checked in full: a forged one is still rejected (its sender penalised), not ignored.
      const forged = certificate(other, [1, 2, 3])
      forged[forged.length - 5] ^= 1
      assert.notEqual((await checkCertificate(forged, { ...settled, held })).verdict, 'accept')
      // The same result again is a duplicate, and so is anything once a pair is kept.
      const same = await checkCertificate(certificate(first, [0, 1, 3]), { ...settled, held })
      assert.deepEqual([same.verdict, 'duplicate' in same && same.duplicate], ['ignore', true])
      const full = await checkCertificate(certificate(other, [1, 2, 3]), { ...settled, held: async () => ({ resultHash: first.resultHash, pairs: 1 }) })
      assert.deepEqual([full.verdict, 'duplicate' in full && full.duplicate], ['ignore', true])
      // A node that keeps no evidence (light) still drops it.
      assert.equal((await checkCertificate(certificate(other, [1, 2, 3]), settled)).verdict, 'ignore')
    })

    it('hands the aggregate signature to the verifier it is given (the node\'s is off the main thread)', async () => {
      const held = async (): Promise<{ resultHash: Uint8Array, pairs: number }> => ({ resultHash: first.resultHash, pairs: 0 })
      const seen: SignatureSet[] = []
      const verify = async (set: SignatureSet): Promise<boolean> => { seen.push(set); return verifySignatureSets([set])[0] }
      assert.equal((await checkCertificate(certificate(other, [1, 2, 3]), { ...settled, held, verify })).verdict, 'accept')
      const forged = decodeQuorumCertificate(certificate(other, [1, 2, 3]))
      const wrong = decodeQuorumCertificate(certificate(first, [1, 2, 3]))
      const v = await checkCertificate(encodeQuorumCertificate({ ...forged, aggregateSig: wrong.aggregateSig }), { ...settled, held, verify })
      assert.equal(v.verdict, 'reject')
      assert.match('reason' in v ? v.reason : '', /aggregate signature does not verify/)
      assert.equal(seen.length, 2, 'one pairing per certificate, both through the verifier')
    })
  })

  describe('on anvil, through the network', () => {
    const STAKES = [10n, 10n, 10n, 10n].map(s => s * ETHER)
    const keys = STAKES.map(() => generateBlsSecretKey())
    let chain: PoiChain
    let set: OnChainOperatorSet
    let root: string
    const nodes: PoiNode[] = []
    const cleanups: Array<() => Promise<void>> = []

    before(async () => {
      chain = await startPoiChain({ epochDuration: 100n })
      await registerAll(chain, keys, STAKES)
      await nextEpoch(chain)
      set = await readOperatorSet(chain.publicClient, chain.deployment, 1n)
      root = await mkdtemp(join(tmpdir(), 'poi-conflicts-'))
    })
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c()
    })
    after(async () => {
      await Promise.all(nodes.map(async n => await n.stop()))
      await chain?.stop()
      if (root != null) await rm(root, { recursive: true, force: true })
    })

    const client = async (account: number): Promise<ChainClient> =>
      await ChainClient.connect({ ...chain.deployment, rpcUrl: chain.anvil.rpcUrl }, privateKeyToAccount(ANVIL_PRIVATE_KEYS[account]))
    const stakeOf = async (chainClient: ChainClient, index: number): Promise<bigint> => await chainClient.liveStake(set.operators[index].address)

    async function startNode (name: string, opts: { aggregate: boolean, bootstrap: string[], settlement?: ChainClient }): Promise<PoiNode> {
      const node = await startFullNode(root, name, { ...opts, operatorSet: set })
      nodes.push(node)
      return node
    }

    it('a funded aggregator keeps and relays two valid certificates with different results, and posts them: the common signers are slashed', async () => {
      const reporter = await client(9)
      const aggregator = await startNode('aggregator', { aggregate: true, bootstrap: [], settlement: reporter })
      const aggregatorAddr = aggregator.addresses()[0]
      // An observer: another full node that keeps the evidence too.
      const attacker = await startNode('attacker', { aggregate: false, bootstrap: [aggregatorAddr] })
      const observer = await startNode('observer', { aggregate: false, bootstrap: [aggregatorAddr] })
      // Gossipsub forwards only to mesh peers, grafted on its heartbeat.
      await until(() => aggregator.meshPeers('certificates') >= 2 && attacker.meshPeers('certificates') >= 1 && observer.meshPeers('certificates') >= 1,
        FOLLOW_UP_TIMEOUT_MS, 'certificate meshes between the aggregator and the two other nodes')

      // Four colluding operators: 0, 1, 2 certify one result, 1, 2, 3 another (75 % of the stake each).
      const taskId = keccak256(new TextEncoder().encode('conflicting task'), 'bytes')
      const a = makeCertificate(set, keys, [0, 1, 2], signedResult(taskId, 'label 1'))
      const b = makeCertificate(set, keys, [1, 2, 3], signedResult(taskId, 'label 2'))
      const before = await Promise.all([0, 1, 2, 3].map(async i => await stakeOf(reporter, i)))

      const firstSeen = waitForEvent(observer, 'certificate', { timeoutMs: FOLLOW_UP_TIMEOUT_MS, what: 'the first certificate at the observer', filter: d => toHex(d.certificate.taskId) === toHex(taskId) })
      await routerOf(attacker).publish('certificates', encodeQuorumCertificate(a))
      await firstSeen
      await until(async () => await aggregator.store!.getCertificate(taskId) != null, FOLLOW_UP_TIMEOUT_MS, 'the aggregator storing the first certificate')
      // What the aggregator's validator tells gossipsub about each certificate from the attacker: 'accept' is relayed.
      const handler = topicHandlerOf(aggregator, 'certificates')
      const verdicts: string[] = []
      const validate = handler.validate
      handler.validate = async (data, from) => {
        const verdict = await validate(data, from)
        verdicts.push(verdict)
        return verdict
      }

      const atAggregator = waitForEvent(aggregator, 'conflict-evidence', { timeoutMs: FOLLOW_UP_TIMEOUT_MS, what: 'conflict evidence at the aggregator' })
      const atObserver = waitForEvent(observer, 'conflict-evidence', { timeoutMs: FOLLOW_UP_TIMEOUT_MS, what: 'conflict evidence at the observer (relayed by the aggregator)' })
      await routerOf(attacker).publish('certificates', encodeQuorumCertificate(b))
      const evidence = await atAggregator
      assert.equal(evidence.kind, 'certificates')
      assert.deepEqual(evidence.accused, [1, 2])
      assert.deepEqual(verdicts, ['accept'], 'the conflicting certificate is relayed, not dropped as a duplicate')
      assert.equal((await atObserver).id, evidence.id)

      // Stored (with the held certificate untouched), posted, and settled by this aggregator's account.
      const stored = await aggregator.store!.listConflicts(taskId)
      assert.equal(stored.length, 1)
      assert.ok(stored[0].kind === 'certificates')
      assert.deepEqual([toHex(stored[0].a.resultHash), toHex(stored[0].b.resultHash)], [toHex(a.resultHash), toHex(b.resultHash)])
      assert.equal(toHex((await aggregator.store!.getCertificate(taskId))!.resultHash), toHex(a.resultHash))
      let sub: Submission | undefined
      await until(async () => { sub = await aggregator.store!.getSubmission('conflict', evidence.id); return sub?.state !== 'pending' }, SLASH_TIMEOUT_MS,
        () => `the conflict submission to leave pending (${sub?.lastError ?? 'no error yet'})`)
      assert.equal(sub!.state, 'confirmed', `submission: ${JSON.stringify(sub)}`)

      const after = await Promise.all([0, 1, 2, 3].map(async i => await stakeOf(reporter, i)))
      const slashBps = BigInt(chain.params.slashBps)
      for (const i of [1, 2]) assert.equal(after[i], before[i] - before[i] * slashBps / 10_000n, `operator ${i} signed both results`)
      for (const i of [0, 3]) assert.equal(after[i], before[i], `operator ${i} signed only one result`)
      // The observer keeps the pair too; it has no account, so it posts nothing.
      assert.equal((await observer.store!.listConflicts(taskId)).length, 1)
      assert.equal(await observer.store!.getSubmission('conflict', evidence.id), undefined)
    })

    it('a funded aggregator holding an operator\'s attestation keeps a certificate naming it with another result as evidence, and posts it', async () => {
      const reporter = await client(6)
      const aggregator = await startNode('aggregator-2', { aggregate: true, bootstrap: [], settlement: reporter })
      const attacker = await startNode('attacker-2', { aggregate: false, bootstrap: [aggregator.addresses()[0]] })
      await until(() => aggregator.meshPeers('tasks') >= 1 && aggregator.meshPeers('attestations') >= 1 && aggregator.meshPeers('certificates') >= 1 &&
        attacker.meshPeers('certificates') >= 1, FOLLOW_UP_TIMEOUT_MS, 'meshes between the aggregator and the attacker')
      // A real task (no operator runs: every signature on the network is the test's).
      const modelId = (await loadModelDir(SHIPPED_MODEL_DIR)).modelId
      const task = await signTask(privateKeyToAccount(generatePrivateKey()), set.domain.taskManager, {
        chainId: set.domain.chainId, modelId, input: exampleInput(7), fee: 0n, deadline: BigInt(Date.now() + 60_000), quorumBps: 6667, nonce: 1n
      })
      const taskId = taskIdOf(task, set.domain.taskManager)
      const tracked = waitForEvent(aggregator, 'task', { timeoutMs: FOLLOW_UP_TIMEOUT_MS, what: 'the task at the aggregator', filter: d => toHex(d.taskId) === toHex(taskId) })
      await routerOf(attacker).publish('tasks', encodeTaskAnnouncement(task))
      await tracked
      // Operator 0 attests to one result, then a certificate it signed names another.
      const attested = signedResult(taskId, 'label 5')
      const counted = waitForEvent(aggregator, 'attestation', { timeoutMs: FOLLOW_UP_TIMEOUT_MS, what: 'operator 0\'s attestation at the aggregator', filter: d => toHex(d.taskId) === toHex(taskId) })
      await routerOf(attacker).publish('attestations', encodeAttestation(signAttestation(keys[0], set.domain, { ...attested, epoch: set.epoch, operatorIndex: 0 })))
      await counted
      const before = await stakeOf(reporter, 0)
      const found = waitForEvent(aggregator, 'conflict-evidence', { timeoutMs: FOLLOW_UP_TIMEOUT_MS, what: 'certificate-attestation evidence at the aggregator' })
      await routerOf(attacker).publish('certificates', encodeQuorumCertificate(makeCertificate(set, keys, [0, 2, 3], signedResult(taskId, 'label 6'))))
      const evidence = await found
      assert.equal(evidence.kind, 'certificate-attestation')
      assert.deepEqual(evidence.accused, [0])
      let sub: Submission | undefined
      await until(async () => { sub = await aggregator.store!.getSubmission('conflict', evidence.id); return sub?.state !== 'pending' }, SLASH_TIMEOUT_MS,
        () => `the conflict submission to leave pending (${sub?.lastError ?? 'no error yet'})`)
      assert.equal(sub!.state, 'confirmed', `submission: ${JSON.stringify(sub)}`)
      assert.equal(await stakeOf(reporter, 0), before - before * BigInt(chain.params.slashBps) / 10_000n)
    })

    it('a certificate and a conflicting attestation by a signer it names: stored, kept across a restart, posted, the signer slashed', async () => {
      const taskId = keccak256(new TextEncoder().encode('certificate against attestation'), 'bytes')
      const qc: QuorumCertificate = makeCertificate(set, keys, [0, 1, 3], signedResult(taskId, 'label 3'))
      const other = signedResult(taskId, 'label 4')
      const attestation = signAttestation(keys[3], set.domain, { ...other, epoch: set.epoch, operatorIndex: 3 })
      const dir = join(root, 'restart')
      let store = await NodeStore.open(dir)
      const id = await store.putConflict({ kind: 'certificate-attestation', taskId, certificate: qc, attestation }, { submit: true })
      await store.close()
      store = await NodeStore.open(dir)
      const reporter = await client(8)
      const submitter = new Submitter(store, reporter)
      cleanups.push(async () => { await submitter.stop(); await store.close() })
      const stakeBefore = await stakeOf(reporter, 3)
      assert.equal(await submitter.start(), 1, 'the stored conflict is resumed after the restart')
      let sub: Submission | undefined
      await until(async () => { sub = await store.getSubmission('conflict', id); return sub?.state !== 'pending' }, SLASH_TIMEOUT_MS,
        () => `the conflict submission to leave pending (${sub?.lastError ?? 'no error yet'})`)
      assert.equal(sub!.state, 'confirmed', `submission: ${JSON.stringify(sub)}`)
      assert.equal(await stakeOf(reporter, 3), stakeBefore - stakeBefore * BigInt(chain.params.slashBps) / 10_000n)

      // Posted again from another account: the chain already holds the slash, and says whose.
      const late = new Submitter(store, await client(7))
      cleanups.push(async () => { await late.stop() })
      await store.putSubmission({ ...sub!, state: 'pending', attempts: 0 })
      late.kick('conflict', id)
      await until(async () => { sub = await store.getSubmission('conflict', id); return sub?.state !== 'pending' }, SLASH_TIMEOUT_MS, 'the second posting to settle')
      assert.equal(sub!.state, 'settled-by-other')
      assert.equal(sub!.settledBy?.toLowerCase(), reporter.account!.toLowerCase())

      assert.deepEqual((await store.listConflicts()).map(c => c.id), [id])
      await store.deleteConflict(id)
      assert.deepEqual(await store.listConflicts(), [])
      assert.equal(await store.getSubmission('conflict', id), undefined)
    })
  })
})
