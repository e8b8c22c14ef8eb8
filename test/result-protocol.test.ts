/**
 * /poi/result/1/ between real libp2p nodes on 127.0.0.1: a light requester fetches a task's
 * quorum certificate and output from a full node's LevelDB store and verifies them against the
 * operator set; lying, garbage and oversized answers are refused.
 */
import { strict as assert } from 'node:assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { keccak256 } from 'viem'
import { TaskAggregation } from '../consensus/index.js'
import type { PoiLibp2p } from '../node/p2p.js'
import {
  encodeQuorumCertificate, uint256ToBytes, type QuorumCertificate, type TaskAnnouncement, payloadRefOf
} from '../protocols/wire/index.js'
import {
  encodeResultResponse, fetchResult, MAX_RESULT_RESPONSE_BYTES, RESULT_PROTOCOL, RESULT_STATUS,
  RESULT_VERSION, ResultServer, verifyResult
} from '../protocols/result/index.js'
import type { ExchangeError } from '../protocols/exchange/index.js'
import { openTempStore, rejectsExchange, startExchangePeers, type ExchangePeers, type RogueAnswer, type TempStore } from './helpers/exchange-peers.js'
import type { NodeStore } from '../storage/index.js'
import { attest, hash32, makeOperators, type TaskResult, type TestOperators } from './consensus-fixtures.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const text = (s: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(s)
const EMPTY = new Uint8Array(0)
/** Far in the future: aggregation here is not about lateness. */
const DEADLINE = Date.now() + 3_600_000

/** A result whose hashes follow the protocol: resultHash = outputRef = keccak256(canonical output). */
function resultOf (task: string, output: Uint8Array): TaskResult {
  const hash = keccak256(output, 'bytes')
  return { taskId: hash32(`task:${task}`), resultHash: hash, outputRef: hash, output }
}

/** A real QC: every operator signs `result` and the signatures are aggregated. */
function certify (ops: TestOperators, result: TaskResult, inlineOutput = true): QuorumCertificate {
  const aggregation = new TaskAggregation({ operatorSet: ops.set, taskId: result.taskId, quorumBps: 6667, deadline: DEADLINE })
  const signed = inlineOutput ? result : { ...result, output: EMPTY }
  ops.secretKeys.forEach((_, i) => assert.equal(aggregation.add(attest(ops, i, signed), Date.now()).kind, 'accepted'))
  return aggregation.buildCertificate(result.resultHash)
}

function taskWithId (nonce: bigint): TaskAnnouncement {
  return {
    version: 1,
    chainId: 31337n,
    modelId: new Uint8Array(36).fill(7),
    input: text('{}'),
    inputRef: EMPTY,
    params: EMPTY,
    fee: uint256ToBytes(1n) as Uint8Array<ArrayBuffer>,
    deadline: BigInt(DEADLINE),
    quorumBps: 6667,
    nonce,
    requester: new Uint8Array(20).fill(0xaa),
    requesterSig: new Uint8Array(65).fill(0x1b),
    validationRequest: new Uint8Array(0),
    tier: 0,
    inputCommitment: new Uint8Array(0)
  }
}

async function rejects (p: Promise<unknown>, code: string): Promise<ExchangeError> {
  return await rejectsExchange(p, RESULT_PROTOCOL, code)
}

describe('result protocol: /poi/result/1/', function () {
  let store: NodeStore
  let fullNode: PoiLibp2p
  let requester: PoiLibp2p
  let rogue: PoiLibp2p
  let peers: ExchangePeers | undefined
  let temp: TempStore | undefined
  let server: ResultServer
  let ops: TestOperators
  let inline: TaskResult
  let inlineQc: QuorumCertificate
  let byRef: TaskResult
  let byRefQc: QuorumCertificate
  let rogueAnswer: RogueAnswer = {}

  before(async () => {
    ops = makeOperators([10n, 10n, 10n, 10n])
    inline = resultOf('inline', text('{"label":"cat"}'))
    inlineQc = certify(ops, inline)
    // An output too big to inline: the QC carries only its reference, an operator's channel holds it.
    byRef = resultOf('by-ref', new Uint8Array(200 * 1024).fill(3))
    byRefQc = certify(ops, byRef, false)

    temp = await openTempStore('poi-result-')
    store = temp.store
    await store.putCertificate(inlineQc)
    await store.putCertificate(byRefQc)
    const operatorKey = await generateKeyPair('Ed25519')
    const { message } = await temp.streams.append(operatorKey, 'outputs', byRef.output)
    assert.equal(hex(payloadRefOf(message.payload)), hex(byRefQc.outputRef))

    peers = await startExchangePeers(RESULT_PROTOCOL, () => rogueAnswer)
    ;({ server: fullNode, client: requester, rogue } = peers)
    server = new ResultServer({ libp2p: fullNode, results: store, outputs: temp.streams })
    await server.start()
  })

  after(async () => {
    await server?.stop()
    await peers?.stop()
    await temp?.close()
  })

  it('returns a stored QC with its inline output, and both verify against the operator set', async () => {
    const got = await fetchResult(requester, fullNode.peerId, inline.taskId)
    assert.equal(got.status, 'found')
    if (got.status !== 'found') return
    assert.equal(hex(encodeQuorumCertificate(got.certificate)), hex(encodeQuorumCertificate(inlineQc)))
    assert.equal(hex(got.output ?? EMPTY), hex(inline.output))
    const verdict = verifyResult(got.certificate, got.output ?? EMPTY, ops.set)
    assert.ok(verdict.ok, verdict.ok ? '' : verdict.reason)
    assert.deepEqual(verdict.signers, [0, 1, 2, 3])
  })

  it('sends an output held by reference beside the QC', async () => {
    const got = await fetchResult(requester, fullNode.peerId, byRef.taskId)
    assert.equal(got.status, 'found')
    if (got.status !== 'found') return
    assert.equal(got.certificate.output.length, 0)
    assert.equal(got.output?.length, byRef.output.length)
    assert.ok(verifyResult(got.certificate, got.output ?? EMPTY, ops.set).ok)
  })

  it('verifyResult refuses a wrong output, another operator set and a missed quorum', () => {
    const wrongOutput = verifyResult(inlineQc, text('{"label":"dog"}'), ops.set)
    assert.ok(!wrongOutput.ok && /resultHash/.test(wrongOutput.reason))
    const otherSet = makeOperators([10n, 10n, 10n, 10n])
    assert.ok(!verifyResult(inlineQc, inline.output, otherSet.set).ok)
    // 3 of 4 equal stakes is 75 %: enough for the default quorum, not for 80 %
    const aggregation = new TaskAggregation({ operatorSet: ops.set, taskId: inline.taskId, quorumBps: 6667, deadline: DEADLINE })
    for (const i of [0, 1, 2]) aggregation.add(attest(ops, i, inline), Date.now())
    const threeOfFour = aggregation.buildCertificate(inline.resultHash)
    assert.ok(verifyResult(threeOfFour, inline.output, ops.set).ok)
    assert.ok(!verifyResult(threeOfFour, inline.output, ops.set, { quorumBps: 8000 }).ok)
  })

  it('answers unknown, pending and no-quorum tasks with a clear status', async () => {
    assert.deepEqual(await fetchResult(requester, fullNode.peerId, hash32('never announced')), { status: 'unknown-task' })
    const pendingId = hash32('pending task')
    await store.putTask(pendingId, taskWithId(1n))
    assert.deepEqual(await fetchResult(requester, fullNode.peerId, pendingId), { status: 'pending' })
    await store.setTaskState(pendingId, 'no-quorum', 'deadline passed')
    assert.deepEqual(await fetchResult(requester, fullNode.peerId, pendingId), { status: 'no-quorum' })
  })

  it('refuses a QC for another task and an output that does not match the result hash', async () => {
    rogueAnswer = { frame: encodeResultResponse({ version: RESULT_VERSION, status: RESULT_STATUS.FOUND, certificate: encodeQuorumCertificate(inlineQc), output: EMPTY, reason: '' }) }
    await rejects(fetchResult(requester, rogue.peerId, byRef.taskId), 'WRONG_TASK')
    rogueAnswer = { frame: encodeResultResponse({ version: RESULT_VERSION, status: RESULT_STATUS.FOUND, certificate: encodeQuorumCertificate(byRefQc), output: text('forged output'), reason: '' }) }
    await rejects(fetchResult(requester, rogue.peerId, byRef.taskId), 'WRONG_OUTPUT')
    rogueAnswer = { frame: encodeResultResponse({ version: RESULT_VERSION, status: RESULT_STATUS.FOUND, certificate: encodeQuorumCertificate(inlineQc), output: inline.output as Uint8Array<ArrayBuffer>, reason: '' }) }
    await rejects(fetchResult(requester, rogue.peerId, inline.taskId), 'INVALID_RESPONSE')
  })

  it('rejects garbage and oversized responses', async () => {
    rogueAnswer = { frame: Uint8Array.from([0x08, 0x01, 0x1a, 0x03, 1, 2, 3]) } // a well-formed response whose certificate is not one
    await rejects(fetchResult(requester, rogue.peerId, inline.taskId), 'INVALID_RESPONSE')
    rogueAnswer = { frame: Uint8Array.from([0xde, 0xad, 0xbe, 0xef]) }
    await rejects(fetchResult(requester, rogue.peerId, inline.taskId), 'INVALID_RESPONSE')
    const tooLong = MAX_RESULT_RESPONSE_BYTES + 1
    rogueAnswer = { raw: Uint8Array.from([(tooLong & 0x7f) | 0x80, ((tooLong >> 7) & 0x7f) | 0x80, tooLong >> 14, 0]) }
    await rejects(fetchResult(requester, rogue.peerId, inline.taskId), 'OVERSIZED')
  })
})
