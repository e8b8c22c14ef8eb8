/**
 * Issue 10, holes 4 (evidence side) and 5, on a real anvil with real BLS keys: equivocation
 * across epochs, two conflicting certificates, and a certificate with a conflicting attestation
 * are each slashable evidence; a pair that does not conflict reverts with a named error and moves
 * no stake.
 */
import assert from 'node:assert/strict'
import { parseEventLogs } from 'viem'
import { generateBlsSecretKey, signAttestation, verifyEquivocationEvidence, type EquivocationEvidence } from '../consensus/index.js'
import {
  ANVIL_PRIVATE_KEYS, SlashingManagerAbi, certificateAndAttestationCalldata, conflictingCertificatesCalldata, evidenceCalldata,
  submitCertificateAndAttestation, submitConflictingCertificates, submitEvidence, type OnChainOperatorSet
} from '../contracts/index.js'
import { privateKeyToAccount } from 'viem/accounts'
import { ChainClient } from '../node/chain-client.js'
import { taskResult, type TaskResult } from './consensus-fixtures.js'
import { expectRevert, makeCertificate, type PoiChain, type Wallet } from './helpers/poi-chain.js'
import { REPORTER_BPS, startSlashingChain, type SlashingChain } from './helpers/slashing-chain.js'

const CHAIN_TIMEOUT_MS = 60_000

describe('slashing holes: cross-epoch equivocation and conflicting certificates', function () {
  this.timeout(CHAIN_TIMEOUT_MS)
  // six equal stakes: with the default quorum (6667 bps) a certificate needs five signers
  const keys = Array.from({ length: 6 }, () => generateBlsSecretKey())
  let slashingChain: SlashingChain
  let chain: PoiChain
  let reporter: Wallet
  let set1: OnChainOperatorSet
  let set2: OnChainOperatorSet
  const slashing = (): `0x${string}` => chain.deployment.slashing

  const liveStake = async (_set: OnChainOperatorSet, index: number): Promise<bigint> => await slashingChain.liveStake(index)
  const stakes = async (): Promise<bigint[]> => await Promise.all(keys.map(async (_, i) => await liveStake(set1, i)))
  const attestation = (set: OnChainOperatorSet, index: number, result: TaskResult): ReturnType<typeof signAttestation> => slashingChain.attestation(set, index, result)
  const slashedOf = (stake: bigint): bigint => slashingChain.slashedOf(stake)

  before(async () => {
    slashingChain = await startSlashingChain(keys)
    ;({ chain, reporter, set1, set2 } = slashingChain)
  })
  after(async () => { await chain?.stop() })

  it('slashes two attestations for one task with different results signed in different epochs (hole 5)', async () => {
    // before the fix: InvalidSignature(1) — attestation b was checked against the digest of a's epoch
    const a = attestation(set1, 0, taskResult('cross-epoch', 'first'))
    const b = attestation(set2, 0, taskResult('cross-epoch', 'second'))
    const evidence: EquivocationEvidence = { taskId: a.taskId, operatorIndex: 0, epoch: 1n, a, b }
    // off-chain, the same judgement: each attestation against its own epoch's set
    assert.equal(verifyEquivocationEvidence(evidence, set1, set2), true)
    assert.equal(verifyEquivocationEvidence(evidence, set1), false, 'b is not of epoch 1')
    assert.equal(verifyEquivocationEvidence({ ...evidence, b: attestation(set2, 1, taskResult('cross-epoch', 'second')) }, set1, set2), false, 'two operators')
    const before = await liveStake(set1, 0)
    const { slashed, receipt } = await submitEvidence(reporter, chain.publicClient, slashing(), evidence, set1, set2)
    assert.equal(slashed, slashedOf(before))
    assert.equal(await liveStake(set1, 0), before - slashed)
    const [event] = parseEventLogs({ abi: SlashingManagerAbi, logs: receipt.logs, eventName: 'EquivocationSlashed' })
    assert.equal(event.args.operator, set1.operators[0].address)
    assert.equal(event.args.reward, slashed * REPORTER_BPS / 10_000n)

    // each attestation must be proven in the epoch it names
    const c = attestation(set2, 0, taskResult('cross-epoch 2', 'second'))
    const args = evidenceCalldata({ taskId: c.taskId, operatorIndex: 0, epoch: 1n, a: attestation(set1, 0, taskResult('cross-epoch 2', 'first')), b: c }, set1, set2)
    const simulate = async (e: typeof args): Promise<unknown> =>
      await chain.publicClient.simulateContract({ account: reporter.account, address: slashing(), abi: SlashingManagerAbi, functionName: 'submitEvidence', args: [e] })
    await expectRevert(simulate({ ...args, b: { ...args.b, member: { ...args.b.member, epoch: 3n } } }), 'InvalidOperatorProof')
    await expectRevert(simulate({ ...args, b: { ...args.b, member: { ...args.a.member, epoch: 1n } } }), 'InvalidSignature')
  })

  it("a node's ChainClient submits stored evidence whose attestations name two epochs", async () => {
    const client = await ChainClient.connect({ ...chain.deployment, rpcUrl: chain.anvil.rpcUrl }, privateKeyToAccount(ANVIL_PRIVATE_KEYS[8]))
    const a = attestation(set1, 3, taskResult('cross-epoch via node', 'first'))
    const b = attestation(set2, 3, taskResult('cross-epoch via node', 'second'))
    const stored = { taskId: a.taskId, operatorIndex: 3, a, b, foundAt: Date.now() }
    const before = await liveStake(set1, 3)
    const receipt = await client.submitEvidence(stored)
    assert.equal(receipt.accepted, true)
    assert.equal(await client.isSlashed(stored), true)
    assert.equal(await liveStake(set1, 3), before - slashedOf(before))
  })

  it('slashes every operator named as a signer in two valid certificates with different results (hole 4)', async () => {
    // before the fix: SlashingManager had no submitConflictingCertificates (the call did not exist)
    const a = makeCertificate(set1, keys, [0, 1, 2, 3, 4], taskResult('conflict', 'cat'))
    const b = makeCertificate(set2, keys, [1, 2, 3, 4, 5], taskResult('conflict', 'dog'))
    const before = await stakes()
    const { slashed, receipt } = await submitConflictingCertificates(reporter, chain.publicClient, slashing(), a, set1, b, set2)
    const after = await stakes()
    const events = parseEventLogs({ abi: SlashingManagerAbi, logs: receipt.logs, eventName: 'EquivocationSlashed' })
    assert.deepEqual(events.map(e => e.args.operator), [1, 2, 3, 4].map(i => set1.operators[i].address))
    for (const i of [1, 2, 3, 4]) assert.equal(after[i], before[i] - slashedOf(before[i]), `operator ${i} slashed`)
    for (const i of [0, 5]) assert.equal(after[i], before[i], `operator ${i} named in one certificate only`)
    assert.equal(slashed, [1, 2, 3, 4].reduce((sum, i) => sum + slashedOf(before[i]), 0n))

    // once per (operator, task), whatever the kind of evidence
    await expectRevert(chain.publicClient.simulateContract({
      account: reporter.account, address: slashing(), abi: SlashingManagerAbi, functionName: 'submitConflictingCertificates', args: conflictingCertificatesCalldata(a, set1, b, set2)
    }), 'AlreadySlashed')
    const e1 = attestation(set1, 1, taskResult('conflict', 'cat'))
    const e2 = attestation(set1, 1, taskResult('conflict', 'dog'))
    await expectRevert(submitEvidence(reporter, chain.publicClient, slashing(), { taskId: e1.taskId, operatorIndex: 1, epoch: 1n, a: e1, b: e2 }, set1), 'AlreadySlashed')
  })

  it('slashes the attester when a valid certificate names it and its attestation has another result (hole 4)', async () => {
    // before the fix: SlashingManager had no submitCertificateAndAttestation
    const qc = makeCertificate(set2, keys, [0, 1, 2, 3, 4], taskResult('cert vs attestation', 'cat'))
    const other = attestation(set1, 2, taskResult('cert vs attestation', 'dog'))
    const before = await stakes()
    const { slashed } = await submitCertificateAndAttestation(reporter, chain.publicClient, slashing(), qc, set2, other, set1)
    assert.equal(slashed, slashedOf(before[2]))
    const after = await stakes()
    assert.deepEqual(after, before.map((s, i) => i === 2 ? s - slashed : s))

    // an attester the certificate does not name is not slashed
    const notNamed = attestation(set2, 5, taskResult('cert vs attestation', 'dog'))
    await expectRevert(chain.publicClient.simulateContract({
      account: reporter.account, address: slashing(), abi: SlashingManagerAbi, functionName: 'submitCertificateAndAttestation',
      args: certificateAndAttestationCalldata(qc, set2, notNamed)
    }), 'NotASigner')
  })

  it('rejects pairs that do not conflict, or certificates that are not valid, and moves no stake', async () => {
    const before = await stakes()
    const simulate = async (args: ReturnType<typeof conflictingCertificatesCalldata>): Promise<unknown> =>
      await chain.publicClient.simulateContract({ account: reporter.account, address: slashing(), abi: SlashingManagerAbi, functionName: 'submitConflictingCertificates', args })
    const same = conflictingCertificatesCalldata(
      makeCertificate(set1, keys, [0, 1, 2, 3, 4], taskResult('agree', 'cat')), set1,
      makeCertificate(set2, keys, [1, 2, 3, 4, 5], taskResult('agree', 'cat')), set2)
    await expectRevert(simulate(same), 'IdenticalResults')
    const twoTasks = conflictingCertificatesCalldata(
      makeCertificate(set1, keys, [0, 1, 2, 3, 4], taskResult('one task', 'cat')), set1,
      makeCertificate(set1, keys, [1, 2, 3, 4, 5], taskResult('another task', 'dog')), set1)
    await expectRevert(simulate(twoTasks), 'DifferentTasks')
    // a certificate whose signature is not its signers' is no evidence
    const forged = conflictingCertificatesCalldata(
      makeCertificate(set1, keys, [0, 1, 2, 3, 4], taskResult('forged', 'cat')), set1,
      makeCertificate(set1, keys, [1, 2, 3, 4, 5], taskResult('forged', 'dog'), { signatureFrom: [0, 1, 2, 3, 4] }), set1)
    await expectRevert(simulate(forged), 'InvalidSignature')
    // an operator accused though its bit is clear in one certificate
    const valid = conflictingCertificatesCalldata(
      makeCertificate(set1, keys, [0, 1, 2, 3, 4], taskResult('bit clear', 'cat')), set1,
      makeCertificate(set1, keys, [1, 2, 3, 4, 5], taskResult('bit clear', 'dog')), set1)
    const outsider = conflictingCertificatesCalldata(
      makeCertificate(set1, keys, [0, 1, 2, 3, 5], taskResult('bit clear', 'cat')), set1,
      makeCertificate(set1, keys, [0, 2, 3, 4, 5], taskResult('bit clear', 'dog')), set1)[4].find(x => x.operator === set1.operators[0].address)
    assert.ok(outsider !== undefined)
    assert.deepEqual(await expectRevert(simulate([valid[0], valid[1], valid[2], valid[3], [outsider]]), 'NotASigner'), [set1.operators[0].address, 1])
    await expectRevert(simulate([valid[0], valid[1], valid[2], valid[3], []]), 'NoOperatorNamed')
    assert.deepEqual(await stakes(), before)
  })
})
