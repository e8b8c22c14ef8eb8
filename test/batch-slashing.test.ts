/**
 * Issue 15, point 4 (disputes need no new trust), on a real anvil with real BLS keys: an operator
 * whose own batch signature covers a leaf with one result, and whose attestation for that task has
 * another, is slashed by SlashingManager.submitBatchLeafAndAttestation; a leaf with the same result,
 * a wrong Merkle proof and a second report revert with named errors and move no stake.
 */
import assert from 'node:assert/strict'
import { bytesToHex, hexToBigInt, parseEventLogs, type Hex } from 'viem'
import { BatchTree, generateBlsSecretKey, signAttestation, signBatch, type BatchLeaf, type BatchSigningFields } from '../consensus/index.js'
import {
  SlashingManagerAbi, batchLeafAndAttestationCalldata, submitBatchLeafAndAttestation,
  type OnChainOperatorSet, type SignedBatchLeaf
} from '../contracts/index.js'
import { taskResult, type TaskResult } from './consensus-fixtures.js'
import { expectRevert, type PoiChain, type Wallet } from './helpers/poi-chain.js'
import { REPORTER_BPS, SLASH_BPS, startSlashingChain, type SlashingChain } from './helpers/slashing-chain.js'

const CHAIN_TIMEOUT_MS = 60_000
/** Any 32 bytes: the batch signature covers the summary hash, which this evidence only repeats. */
const SUMMARY_HASH: Hex = `0x${'5a'.repeat(32)}`

describe('slashing a batch leaf that contradicts an attestation (issue 15, point 4)', function () {
  this.timeout(CHAIN_TIMEOUT_MS)
  const keys = Array.from({ length: 3 }, () => generateBlsSecretKey())
  let slashingChain: SlashingChain
  let chain: PoiChain
  let reporter: Wallet
  let set1: OnChainOperatorSet
  let set2: OnChainOperatorSet
  const slashing = (): `0x${string}` => chain.deployment.slashing
  const liveStake = async (index: number): Promise<bigint> => await slashingChain.liveStake(index)
  const leafOf = (r: TaskResult): BatchLeaf => ({ taskId: bytesToHex(r.taskId), resultHash: bytesToHex(r.resultHash), outputRef: bytesToHex(r.outputRef) })
  /** A three-leaf batch holding `result`'s leaf, signed by operator `index` of `set`. */
  const signedBatch = (set: OnChainOperatorSet, index: number, result: TaskResult): SignedBatchLeaf => {
    const leaves = [leafOf(result), leafOf(taskResult(`${bytesToHex(result.taskId)} neighbour 1`, 'x')), leafOf(taskResult(`${bytesToHex(result.taskId)} neighbour 2`, 'y'))]
      .sort((a, b) => hexToBigInt(a.taskId) < hexToBigInt(b.taskId) ? -1 : 1)
    const tree = new BatchTree(leaves)
    const k = tree.indexOf(bytesToHex(result.taskId))
    const batch: BatchSigningFields = { root: tree.root, epoch: set.epoch, summaryHash: SUMMARY_HASH }
    return { batch, share: signBatch(keys[index], set, batch, index), leaf: leaves[k], proof: tree.proof(k) }
  }
  const attestation = (set: OnChainOperatorSet, index: number, result: TaskResult): ReturnType<typeof signAttestation> => slashingChain.attestation(set, index, result)
  const simulate = async (args: ReturnType<typeof batchLeafAndAttestationCalldata>): Promise<unknown> =>
    await chain.publicClient.simulateContract({ account: reporter.account, address: slashing(), abi: SlashingManagerAbi, functionName: 'submitBatchLeafAndAttestation', args })

  before(async () => {
    slashingChain = await startSlashingChain(keys)
    ;({ chain, reporter, set1, set2 } = slashingChain)
  })
  after(async () => { await chain?.stop() })

  it('slashes an operator whose batch leaf has another result than its attestation, once per task', async () => {
    const batch = signedBatch(set2, 1, taskResult('batched', 'dog'))
    const other = attestation(set1, 1, taskResult('batched', 'cat'))
    const before = await Promise.all(keys.map(async (_, i) => await liveStake(i)))
    const { slashed, receipt } = await submitBatchLeafAndAttestation(reporter, chain.publicClient, slashing(), batch, set2, other, set1)
    assert.equal(slashed, before[1] * SLASH_BPS / 10_000n)
    const after = await Promise.all(keys.map(async (_, i) => await liveStake(i)))
    assert.deepEqual(after, before.map((s, i) => i === 1 ? s - slashed : s), 'only the signer of both loses stake')
    const [event] = parseEventLogs({ abi: SlashingManagerAbi, logs: receipt.logs, eventName: 'EquivocationSlashed' })
    assert.equal(event.args.operator, set1.operators[1].address)
    assert.equal(event.args.taskId, bytesToHex(other.taskId))
    assert.equal(event.args.epoch, 2n)
    assert.equal(event.args.reward, slashed * REPORTER_BPS / 10_000n)

    await expectRevert(simulate(batchLeafAndAttestationCalldata(batch, set2, other, set1)), 'AlreadySlashed')
  })

  it('rejects a leaf with the same result, a wrong proof or a signature by another key, and moves no stake', async () => {
    const before = await Promise.all(keys.map(async (_, i) => await liveStake(i)))
    const batch = signedBatch(set1, 0, taskResult('disputed', 'dog'))
    const other = attestation(set1, 0, taskResult('disputed', 'cat'))
    await expectRevert(simulate(batchLeafAndAttestationCalldata(batch, set1, attestation(set1, 0, taskResult('disputed', 'dog')))), 'IdenticalResults')

    const valid = batchLeafAndAttestationCalldata(batch, set1, other)
    const [taskId, operator, pubkey, statement, signed] = valid
    // a proof with a wrong sibling, or one sibling too many, does not take this leaf to the root
    const wrongSibling: Hex = `0x${(hexToBigInt(statement.leafProof[0]) ^ 1n).toString(16).padStart(64, '0')}`
    await expectRevert(simulate([taskId, operator, pubkey, { ...statement, leafProof: [wrongSibling, ...statement.leafProof.slice(1)] }, signed]), 'NotInBatch')
    await expectRevert(simulate([taskId, operator, pubkey, { ...statement, leafProof: [...statement.leafProof, statement.root] }, signed]), 'NotInBatch')
    // a leaf the batch does not hold, under the same root
    await expectRevert(simulate([taskId, operator, pubkey, { ...statement, resultHash: bytesToHex(taskResult('disputed', 'eel').resultHash) }, signed]), 'NotInBatch')
    // another operator's batch signature is not this operator's statement
    const foreign = batchLeafAndAttestationCalldata({ ...batch, share: signBatch(keys[2], set1, batch.batch, 0) }, set1, other)
    assert.deepEqual(await expectRevert(simulate(foreign), 'InvalidSignature'), [0])
    // the batch signature is over the batch's epoch: proving the leaf in another epoch breaks it
    const memberIn2 = batchLeafAndAttestationCalldata({ ...batch, batch: { ...batch.batch, epoch: 2n } }, set2, other, set1)[3].member
    assert.deepEqual(await expectRevert(simulate([taskId, operator, pubkey, { ...statement, member: memberIn2 }, signed]), 'InvalidSignature'), [0])
    assert.deepEqual(await Promise.all(keys.map(async (_, i) => await liveStake(i))), before)

    // and the valid evidence does slash
    const { slashed } = await submitBatchLeafAndAttestation(reporter, chain.publicClient, slashing(), batch, set1, other)
    assert.equal(slashed, before[0] * SLASH_BPS / 10_000n)
  })
})
