/**
 * The gossip validators as pure functions: bytes and a context in, a verdict with its reason
 * out. No network: real BLS keys, real EIP-712 signatures, the real codec.
 */
import assert from 'node:assert/strict'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { keccak256 } from 'viem'
import { TaskAggregation, verifySignatureSets, type SignatureSet } from '../consensus/index.js'
import { checkAttestation, checkCertificate, checkTask, outputMismatch, type Validation } from '../protocols/gossip/index.js'
import {
  encodeAttestation, encodeQuorumCertificate, encodeTaskAnnouncement, signTask, toHex, type Attestation
} from '../protocols/wire/index.js'
import { attest, makeOperators, TEST_DOMAIN, type TaskResult } from './consensus-fixtures.js'

const NOW = 1_800_000_000_000
const verify = async (set: SignatureSet): Promise<boolean> => verifySignatureSets([set])[0]

function reasonOf<T> (v: Validation<T>): string {
  assert.notEqual(v.verdict, 'accept', 'expected a refusal')
  return (v as { reason: string }).reason
}

/** A result whose outputRef and resultHash are both the keccak256 of the output, as operators sign it. */
function consistentResult (task: string, output: string): TaskResult {
  const bytes = new TextEncoder().encode(output)
  const hash = keccak256(bytes, 'bytes')
  return { taskId: keccak256(new TextEncoder().encode(task), 'bytes'), resultHash: hash, outputRef: hash, output: bytes }
}

describe('gossip validators (pure functions)', () => {
  const account = privateKeyToAccount(generatePrivateKey())
  const modelId = Uint8Array.from([1, 85, 18, 32, ...new Uint8Array(32).fill(7)])
  const taskContext = {
    known: () => false,
    chainId: TEST_DOMAIN.chainId,
    taskManager: TEST_DOMAIN.taskManager,
    now: NOW,
    maxTaskTtlMs: 600_000,
    isModelId: (id: Uint8Array) => id.length > 4,
    displayModelId: (id: Uint8Array) => toHex(id)
  }
  const fields = { chainId: TEST_DOMAIN.chainId, modelId, input: new TextEncoder().encode('{}'), fee: 0n, deadline: BigInt(NOW + 30_000), quorumBps: 6667, nonce: 1n }

  describe('checkTask', () => {
    it('accepts a signed, live task for this chain and returns it with its id', async () => {
      const task = await signTask(account, TEST_DOMAIN.taskManager, fields)
      const v = await checkTask(encodeTaskAnnouncement(task), taskContext)
      assert.equal(v.verdict, 'accept')
      if (v.verdict === 'accept') assert.equal(v.message.task.nonce, 1n)
    })

    it('rejects garbage, another chain, a too distant deadline, an unknown model and a forged signature, saying which', async () => {
      assert.match(reasonOf(await checkTask(Uint8Array.from([0xff, 0xff]), taskContext)), /TaskAnnouncement|undecodable|cannot decode/)
      const otherChain = await signTask(account, TEST_DOMAIN.taskManager, { ...fields, chainId: 1n })
      assert.match(reasonOf(await checkTask(encodeTaskAnnouncement(otherChain), taskContext)), /is for chain 1, this network is chain 31337/)
      const far = await signTask(account, TEST_DOMAIN.taskManager, { ...fields, deadline: BigInt(NOW + 3_600_000) })
      const farVerdict = await checkTask(encodeTaskAnnouncement(far), taskContext)
      assert.match(reasonOf(farVerdict), /more than the 600 s this node accepts/)
      const unknown = await signTask(account, TEST_DOMAIN.taskManager, { ...fields, modelId: Uint8Array.from([1, 2, 3]) })
      const unknownVerdict = await checkTask(encodeTaskAnnouncement(unknown), taskContext)
      assert.match(reasonOf(unknownVerdict), /names unknown model/)
      // This node's own limits are ignored, not rejected: the honest sender keeps its gossip score.
      assert.equal(farVerdict.verdict, 'ignore')
      assert.equal(unknownVerdict.verdict, 'ignore')
      assert.equal((await checkTask(encodeTaskAnnouncement(otherChain), taskContext)).verdict, 'reject')
      const good = await signTask(account, TEST_DOMAIN.taskManager, fields)
      const forged = { ...good, nonce: 2n }
      const v = await checkTask(encodeTaskAnnouncement(forged), taskContext)
      assert.equal(v.verdict, 'reject')
      assert.match(reasonOf(v), /bad requester signature/)
    })

    it('accepts a well-signed zk task when this node can check proofs for its model, and ignores it otherwise, naming what is missing; ignores every both task', async () => {
      const zkModel = Uint8Array.from([1, 85, 18, 32, ...new Uint8Array(32).fill(9)])
      const asked: string[] = []
      const zkRefusal = async (id: Uint8Array): Promise<string | undefined> => {
        asked.push(toHex(id))
        return toHex(id) === toHex(zkModel) ? undefined : `model ${toHex(id)} has no zk circuit`
      }
      // tier both: operators do not sign output commitments yet, so no both task is run, model or not
      const both = { ...fields, nonce: 1n << 40n, tier: 'both' as const, inputCommitment: new Uint8Array(32).fill(3), modelId: zkModel }
      const refusedBoth = await checkTask(encodeTaskAnnouncement(await signTask(account, TEST_DOMAIN.taskManager, both)), { ...taskContext, zkRefusal })
      assert.equal(refusedBoth.verdict, 'ignore')
      assert.match(reasonOf(refusedBoth), /asks for the both tier: this version's operators do not sign output commitments yet/)
      for (const tier of ['zk'] as const) {
        const zk = { ...fields, nonce: 1n << 40n, tier, inputCommitment: new Uint8Array(32).fill(3) }
        const accepted = await checkTask(encodeTaskAnnouncement(await signTask(account, TEST_DOMAIN.taskManager, { ...zk, modelId: zkModel })), { ...taskContext, zkRefusal })
        assert.equal(accepted.verdict, 'accept')
        const plain = await checkTask(encodeTaskAnnouncement(await signTask(account, TEST_DOMAIN.taskManager, zk)), { ...taskContext, zkRefusal })
        assert.equal(plain.verdict, 'ignore')
        assert.match(reasonOf(plain), new RegExp(`asks for the ${tier} tier: model ${toHex(modelId)} has no zk circuit`))
        // a node without the capability at all says so
        const unable = await checkTask(encodeTaskAnnouncement(await signTask(account, TEST_DOMAIN.taskManager, { ...zk, modelId: zkModel })), taskContext)
        assert.equal(unable.verdict, 'ignore')
        assert.match(reasonOf(unable), /this node does not check zk proofs/)
        // a forged zk task is rejected before any verification key is looked for
        const before = asked.length
        const forged = { ...await signTask(account, TEST_DOMAIN.taskManager, { ...zk, modelId: zkModel }), deadline: zk.deadline + 1n }
        assert.equal((await checkTask(encodeTaskAnnouncement(forged), { ...taskContext, zkRefusal })).verdict, 'reject')
        assert.equal(asked.length, before)
      }
      // replicated tasks never ask
      const count = asked.length
      await checkTask(encodeTaskAnnouncement(await signTask(account, TEST_DOMAIN.taskManager, fields)), { ...taskContext, zkRefusal })
      assert.equal(asked.length, count)
    })

    it('ignores, without penalty, a task past its deadline and a task it already knows', async () => {
      const late = await signTask(account, TEST_DOMAIN.taskManager, { ...fields, deadline: BigInt(NOW - 1) })
      const v = await checkTask(encodeTaskAnnouncement(late), taskContext)
      assert.equal(v.verdict, 'ignore')
      assert.match(reasonOf(v), /after its deadline/)
      const task = await signTask(account, TEST_DOMAIN.taskManager, fields)
      const dup = await checkTask(encodeTaskAnnouncement(task), { ...taskContext, known: () => true })
      assert.deepEqual([dup.verdict, (dup as { duplicate?: boolean }).duplicate], ['ignore', true])
    })
  })

  describe('checkAttestation', () => {
    const ops = makeOperators([32n, 32n, 32n, 32n])
    const result = consistentResult('t1', 'label 3')
    const context = { operatorSet: ops.set, now: NOW, acceptUntil: () => undefined, firstResult: () => undefined, verify }

    it('accepts a validly signed attestation of the current epoch', async () => {
      const v = await checkAttestation(encodeAttestation(attest(ops, 1, result)), context)
      assert.equal(v.verdict, 'accept')
      if (v.verdict === 'accept') assert.equal(v.message.operatorIndex, 1)
    })

    it('rejects an unknown operator, a bad signature and inconsistent output fields', async () => {
      const other = makeOperators([32n, 32n, 32n, 32n, 32n])
      assert.match(reasonOf(await checkAttestation(encodeAttestation(attest(other, 4, result)), context)), /unknown operator 4/)
      const signedByOther: Attestation = { ...attest(other, 2, result) }
      assert.match(reasonOf(await checkAttestation(encodeAttestation(signedByOther), context)), /bad BLS signature for operator 2/)
      const badRef = attest(ops, 0, result, { outputRef: new Uint8Array(32).fill(9) })
      assert.match(reasonOf(await checkAttestation(encodeAttestation(badRef), context)), /outputRef is not the content address/)
    })

    it('ignores, never rejects, another epoch: honest relays read an epoch change at different moments', async () => {
      let verified = 0
      const counting = { ...context, verify: async (set: SignatureSet) => { verified++; return await verify(set) } }
      for (const epoch of [5n, 1n]) {
        const v = await checkAttestation(encodeAttestation(attest(ops, 0, result, { epoch })), counting)
        assert.equal(v.verdict, 'ignore')
        assert.match(reasonOf(v), new RegExp(`names epoch ${epoch}, current epoch is 0`))
      }
      assert.equal(verified, 0, 'no pairing is spent on an attestation of another epoch')
    })

    it('accepts the previous epoch during its grace period, checked against that epoch\'s set', async () => {
      const next = makeOperators([32n, 32n, 32n], { epoch: 1n })
      const during = { ...context, operatorSet: next.set, previousSet: ops.set }
      const old = await checkAttestation(encodeAttestation(attest(ops, 3, result)), during)
      assert.equal(old.verdict, 'accept', 'operator 3 exists only in the previous set')
      const forged = await checkAttestation(encodeAttestation({ ...attest(next, 0, result), epoch: 0n }), during)
      assert.equal(forged.verdict, 'reject')
      const after = await checkAttestation(encodeAttestation(attest(ops, 3, result)), { ...context, operatorSet: next.set })
      assert.equal(after.verdict, 'ignore')
    })

    it('ignores an attestation, a task or a certificate of a forgotten task before any signature work', async () => {
      let verified = 0
      const counting = { ...context, verify: async (set: SignatureSet) => { verified++; return await verify(set) }, forgotten: () => true }
      const v = await checkAttestation(encodeAttestation(attest(ops, 1, result)), counting)
      assert.equal(v.verdict, 'ignore')
      assert.match(reasonOf(v), /replay/)
      assert.equal(verified, 0)
      const task = await signTask(account, TEST_DOMAIN.taskManager, fields)
      const t = await checkTask(encodeTaskAnnouncement(task), { ...taskContext, forgotten: () => true })
      assert.equal(t.verdict, 'ignore')
      assert.match(reasonOf(t), /replay/)
    })

    it('ignores a repeat of the first result and an attestation past the deadline slack, before checking the signature', async () => {
      let verified = 0
      const counting = { ...context, verify: async (set: SignatureSet) => { verified++; return await verify(set) } }
      const att = attest(ops, 2, result)
      const repeat = await checkAttestation(encodeAttestation(att), { ...counting, firstResult: () => toHex(result.resultHash) })
      assert.equal(repeat.verdict, 'ignore')
      const late = await checkAttestation(encodeAttestation(att), { ...counting, acceptUntil: () => NOW - 1 })
      assert.equal(late.verdict, 'ignore')
      assert.match(reasonOf(late), /after the deadline/)
      assert.equal(verified, 0, 'no pairing is spent on a repeat or a late attestation')
    })

    it('accepts a second, different result by the same operator (it is evidence, the caller records it)', async () => {
      const other = consistentResult('t1', 'label 4')
      const v = await checkAttestation(encodeAttestation(attest(ops, 2, other)), { ...context, firstResult: () => toHex(result.resultHash) })
      assert.equal(v.verdict, 'accept')
    })
  })

  describe('checkCertificate', () => {
    const ops = makeOperators([32n, 32n, 32n, 32n])
    const result = consistentResult('t2', 'label 1')
    function certificate (signers: number[]): Uint8Array {
      const agg = new TaskAggregation({ operatorSet: ops.set, taskId: result.taskId, quorumBps: 6667, deadline: NOW + 10_000 })
      for (const i of signers) agg.add(attest(ops, i, result), NOW)
      return encodeQuorumCertificate(agg.buildCertificate(result.resultHash))
    }
    const context = { settled: () => false, operatorSetOf: (epoch: bigint) => epoch === ops.set.epoch ? ops.set : undefined, quorumBpsOf: () => undefined }

    it('accepts a certificate with a quorum of valid signers', async () => {
      assert.equal((await checkCertificate(certificate([0, 1, 2]), context)).verdict, 'accept')
    })

    it('rejects too little stake for the task\'s quorum and an epoch it does not know; ignores a settled task', async () => {
      assert.match(reasonOf(await checkCertificate(certificate([0, 1, 2]), { ...context, quorumBpsOf: () => 10_000 })), /stake|quorum/)
      assert.match(reasonOf(await checkCertificate(certificate([0, 1, 2]), { ...context, operatorSetOf: () => undefined })), /which this node does not know/)
      const settled = await checkCertificate(certificate([0, 1, 2]), { ...context, settled: () => true })
      assert.equal(settled.verdict, 'ignore')
    })

    it('ignores a certificate of a forgotten task before checking it', async () => {
      let looked = 0
      const replay = await checkCertificate(certificate([0, 1, 2]), { ...context, forgotten: () => true, settled: () => { looked++; return false } })
      assert.equal(replay.verdict, 'ignore')
      assert.match(reasonOf(replay), /replay/)
      assert.equal(looked, 0)
    })
  })

  it('outputMismatch: the reference must be the result hash, and an inline output must hash to it', () => {
    const result = consistentResult('t3', 'out')
    assert.equal(outputMismatch(result), undefined)
    assert.match(outputMismatch({ ...result, outputRef: new Uint8Array(32) }) ?? '', /outputRef is not the content address/)
    assert.match(outputMismatch({ ...result, output: Uint8Array.from([1]) }) ?? '', /does not hash to resultHash/)
    assert.equal(outputMismatch({ ...result, output: new Uint8Array(0) }), undefined)
  })
})
