import assert from 'node:assert/strict'
import {
  AggregationError, TaskAggregation, verifyCertificate, verifyEquivocationEvidence, type EquivocationEvidence
} from '../consensus/index.js'
import { ETHER, attest, hash32, makeOperators, taskResult, type TestOperators } from './consensus-fixtures.js'

const NOW = 1_700_000_000_000
const DEADLINE = NOW + 30_000

function aggregationFor (ops: TestOperators, taskId: Uint8Array, quorumBps: number, minSigners?: number): TaskAggregation {
  return new TaskAggregation({ operatorSet: ops.set, taskId, quorumBps, deadline: DEADLINE, ...(minSigners !== undefined ? { minSigners } : {}) })
}

describe('consensus: TaskAggregation', () => {
  // unequal stakes, total 100 ether
  let ops: TestOperators
  const cat = taskResult('t', 'cat')
  const dog = taskResult('t', 'dog')

  before(() => {
    ops = makeOperators([30n, 30n, 20n, 10n, 10n])
  })

  it('reaches quorum exactly at quorumBps of the stake, not one basis point before', () => {
    const exact = aggregationFor(ops, cat.taskId, 7000)
    for (const i of [0, 1]) assert.equal(exact.add(attest(ops, i, cat), NOW).kind, 'accepted')
    assert.equal(exact.quorumReached(), null, '60% is below 70%')
    assert.equal(exact.status(NOW), 'collecting')
    exact.add(attest(ops, 3, cat), NOW)
    assert.deepEqual(exact.quorumReached(), cat.resultHash, '70% of stake meets 7000 bps exactly')
    assert.equal(exact.status(NOW), 'quorum')

    const stricter = aggregationFor(ops, cat.taskId, 7001)
    for (const i of [0, 1, 3]) stricter.add(attest(ops, i, cat), NOW)
    assert.equal(stricter.quorumReached(), null, '70% is below 70.01%')
    stricter.add(attest(ops, 4, cat), NOW)
    assert.deepEqual(stricter.quorumReached(), cat.resultHash)
  })

  it('needs at least minSigners operators whatever their stake', () => {
    const whales = makeOperators([50n, 40n, 5n, 5n])
    const aggregation = aggregationFor(whales, cat.taskId, 6667)
    whales.set.operators.slice(0, 2).forEach((_, i) => aggregation.add(attest(whales, i, cat), NOW))
    assert.equal(aggregation.quorumReached(), null, '90% of stake but only 2 signers')
    assert.throws(() => aggregation.buildCertificate(cat.resultHash), AggregationError)
    aggregation.add(attest(whales, 2, cat), NOW)
    assert.deepEqual(aggregation.quorumReached(), cat.resultHash)

    const relaxed = aggregationFor(whales, cat.taskId, 6667, 2)
    for (const i of [0, 1]) relaxed.add(attest(whales, i, cat), NOW)
    assert.deepEqual(relaxed.quorumReached(), cat.resultHash, 'minSigners is configurable')
  })

  it('counts a relayed duplicate once', () => {
    const aggregation = aggregationFor(ops, cat.taskId, 6000)
    const att = attest(ops, 0, cat)
    assert.equal(aggregation.add(att, NOW).kind, 'accepted')
    assert.equal(aggregation.add(att, NOW).kind, 'duplicate')
    assert.equal(aggregation.add(attest(ops, 0, cat), NOW).kind, 'duplicate')
    aggregation.add(attest(ops, 1, cat), NOW)
    assert.equal(aggregation.quorumReached(), null, '30 + 30, the duplicate adds nothing')
  })

  it('returns verifiable equivocation evidence and stops counting the equivocator', () => {
    const aggregation = aggregationFor(ops, cat.taskId, 6000)
    for (const i of [0, 1, 2]) aggregation.add(attest(ops, i, cat), NOW)
    assert.deepEqual(aggregation.quorumReached(), cat.resultHash, '80%')

    const outcome = aggregation.add(attest(ops, 0, dog), NOW)
    assert.equal(outcome.kind, 'equivocation')
    if (outcome.kind !== 'equivocation') return
    const evidence = outcome.evidence
    assert.equal(evidence.operatorIndex, 0)
    assert.equal(evidence.epoch, ops.set.epoch)
    assert.deepEqual(evidence.a.resultHash, cat.resultHash)
    assert.deepEqual(evidence.b.resultHash, dog.resultHash)
    assert.equal(verifyEquivocationEvidence(evidence, ops.set), true)

    assert.deepEqual(aggregation.equivocatingOperators(), [0])
    assert.equal(aggregation.quorumReached(), null, 'without operator 0 only 50% signed cat')
    assert.equal(aggregation.add(attest(ops, 0, dog), NOW).kind, 'duplicate', 'the second result again')
    aggregation.add(attest(ops, 3, cat), NOW)
    const resultHash = aggregation.quorumReached()
    assert.deepEqual(resultHash, cat.resultHash, '1 + 2 + 3 = 60%')
    const qc = aggregation.buildCertificate(cat.resultHash)
    const verified = verifyCertificate(qc, ops.set, { quorumBps: 6000 })
    assert.deepEqual(verified, { ok: true, signers: [1, 2, 3], signedStake: 60n * ETHER }, 'the equivocator is left out of the QC')
  })

  it('rejects evidence that does not prove equivocation', () => {
    const a = attest(ops, 1, cat)
    const b = attest(ops, 1, dog)
    const good: EquivocationEvidence = { taskId: cat.taskId, operatorIndex: 1, epoch: 0n, a, b }
    assert.equal(verifyEquivocationEvidence(good, ops.set), true)
    assert.equal(verifyEquivocationEvidence({ ...good, b: attest(ops, 1, cat, { outputRef: hash32('other ref') }) }, ops.set), false, 'same result hash')
    assert.equal(verifyEquivocationEvidence({ ...good, b: attest(ops, 2, dog) }, ops.set), false, 'two operators')
    assert.equal(verifyEquivocationEvidence({ ...good, b: { ...b, operatorIndex: 1, blsSig: attest(ops, 2, dog).blsSig } }, ops.set), false, 'forged signature')
    assert.equal(verifyEquivocationEvidence({ ...good, b: attest(ops, 1, taskResult('other task', 'dog')) }, ops.set), false, 'two tasks')
    assert.equal(verifyEquivocationEvidence({ ...good, b: attest(ops, 1, dog, { epoch: 1n }) }, ops.set), false, 'two epochs')
    assert.equal(verifyEquivocationEvidence({ ...good, epoch: 1n }, ops.set), false, 'evidence for another epoch')
    assert.equal(verifyEquivocationEvidence({ ...good, b: { ...b, blsSig: new Uint8Array(5) } }, ops.set), false, 'malformed bytes')
  })

  it('classifies late, unknown-operator, wrong-epoch and wrong-task attestations', () => {
    const aggregation = aggregationFor(ops, cat.taskId, 6000)
    assert.equal(aggregation.add(attest(ops, 0, cat), DEADLINE).kind, 'accepted', 'at the deadline is still on time')
    assert.equal(aggregation.add(attest(ops, 1, cat), DEADLINE + 1).kind, 'late')
    assert.equal(aggregation.add({ ...attest(ops, 2, cat), operatorIndex: 5 }, NOW).kind, 'unknown-operator')
    assert.equal(aggregation.add(attest(ops, 2, cat, { epoch: 1n }), NOW).kind, 'wrong-epoch')
    assert.equal(aggregation.add(attest(ops, 2, taskResult('another', 'cat')), NOW).kind, 'wrong-task')
    // a late second result is still evidence
    assert.equal(aggregation.add(attest(ops, 0, dog), DEADLINE + 1).kind, 'equivocation')
  })

  it('ends in no-quorum once the deadline passes without quorum', () => {
    const aggregation = aggregationFor(ops, cat.taskId, 6667)
    for (const i of [0, 1]) aggregation.add(attest(ops, i, cat), NOW)
    for (const i of [2, 3, 4]) aggregation.add(attest(ops, i, dog), NOW)
    assert.equal(aggregation.status(DEADLINE), 'collecting')
    assert.equal(aggregation.status(DEADLINE + 1), 'no-quorum')
  })

  it('tells when every operator signed, so the grace window can end early', () => {
    const aggregation = aggregationFor(ops, cat.taskId, 6667)
    for (const i of [0, 1, 2, 3]) aggregation.add(attest(ops, i, cat), NOW)
    assert.deepEqual(aggregation.quorumReached(), cat.resultHash)
    assert.equal(aggregation.allSigned(cat.resultHash), false)
    aggregation.add(attest(ops, 4, cat), NOW)
    assert.equal(aggregation.allSigned(cat.resultHash), true)
    assert.equal(aggregation.allSigned(dog.resultHash), false)

    const qc = aggregation.buildCertificate(cat.resultHash)
    assert.deepEqual(qc.output, cat.output)
    assert.deepEqual(qc.outputRef, cat.outputRef)
    assert.deepEqual(verifyCertificate(qc, ops.set), { ok: true, signers: [0, 1, 2, 3, 4], signedStake: 100n * ETHER })
  })

  it('keeps signatures over another outputRef out of the aggregate', () => {
    const aggregation = aggregationFor(ops, cat.taskId, 6000)
    for (const i of [0, 1, 2]) aggregation.add(attest(ops, i, cat), NOW)
    aggregation.add(attest(ops, 3, cat, { outputRef: hash32('a different stream') }), NOW)
    const qc = aggregation.buildCertificate(cat.resultHash)
    assert.deepEqual(verifyCertificate(qc, ops.set, { quorumBps: 6000 }), { ok: true, signers: [0, 1, 2], signedStake: 80n * ETHER })
  })

  it('rejects a bad configuration with AggregationError', () => {
    assert.throws(() => aggregationFor(ops, cat.taskId, 0), AggregationError)
    assert.throws(() => aggregationFor(ops, cat.taskId, 10_001), AggregationError)
    assert.throws(() => aggregationFor(ops, new Uint8Array(4), 6667), AggregationError)
    assert.throws(() => aggregationFor(ops, cat.taskId, 6667, 0), AggregationError)
  })
})
