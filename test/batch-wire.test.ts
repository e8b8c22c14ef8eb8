/**
 * Issue 15's wire: the tab voucher a task carries, the three batch messages and their gossip
 * envelope (strict codecs: round trips, every structural rule, oversized and non-canonical
 * input), the conversions to consensus/batch.ts's types (root and summary hash agree), and the
 * batches topic's checks with a real operator set and real BLS signatures.
 */
import assert from 'node:assert/strict'
import bls from '@chainsafe/bls/blst-native'
import { bytesToHex, getAddress, keccak256, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import {
  batchDigest, batchSummaryHash, blsSign, BatchTree, encodeSignerBitmap, sequenceWords, verifyBatchProof,
  type BatchLeaf, type BatchSummary, type TabCharge
} from '../consensus/index.js'
import {
  batchCertificateOf, batchCertificateParts, batchProposalOf, batchProposalParts, batchSignatureOf, checkBatchMessage, TOPICS,
  type BatchCheckContext
} from '../protocols/gossip/index.js'
import {
  BatchProposal, decodeBatchCertificate, decodeBatchGossip, decodeBatchProposal, decodeBatchSignature, decodeTaskAnnouncement,
  encodeBatchCertificate, encodeBatchGossip, encodeBatchProposal, encodeBatchSignature, encodeTaskAnnouncement, signTask,
  signVoucher, taskIdOf, uint256ToBytes, verifyVoucherSignature, MAX_BATCH_GOSSIP_BYTES, MAX_BATCH_LEAVES, MAX_BATCH_PROPOSAL_BYTES,
  MAX_TAB_SEQUENCE_WORDS, GOSSIP_MAX_RPC_BYTES, VOUCHER_SEQUENCE_LIMIT, type TaskAnnouncement
} from '../protocols/wire/index.js'
import { makeOperators, TEST_DOMAIN } from './consensus-fixtures.js'
import { expectDecodeError, expectEncodeError, filled } from './helpers/wire-fixtures.js'

const KEYS: Hex[] = [
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  '0x5de4111afa1a4b94908f83103eb1f1706367c2e82ca4a8e6a27b12a1b3b2d8c4'
]
const REQUESTERS = KEYS.map(k => privateKeyToAccount(k))
const MODEL_A = new TextEncoder().encode('model-a')
const MODEL_B = new TextEncoder().encode('model-b')
const NOW_S = 1_800_000_000n

function hash (label: string): Hex {
  return keccak256(new TextEncoder().encode(label))
}

/** A task's leaf with a fee, a model and a tab sequence. */
interface TabTaskLeaf { leaf: BatchLeaf, requester: number, sequence: bigint, fee: bigint, model: Uint8Array, deadline: bigint, cumulative: bigint }

/** A real batch: two requesters' tab tasks on two models, vouchers signed, the summary as spec15 builds it. */
async function makeBatch (): Promise<{ leaves: BatchLeaf[], summary: BatchSummary }> {
  const items: TabTaskLeaf[] = []
  for (const [r, count] of [[0, 3], [1, 2]] as const) {
    let cumulative = 0n
    for (let s = 1n; s <= BigInt(count); s++) {
      const fee = 1000n * s
      cumulative += fee
      const id = `task-${r}-${s}`
      items.push({ leaf: { taskId: hash(id), resultHash: hash(`result ${id}`), outputRef: hash(`result ${id}`) }, requester: r, sequence: s, fee, model: s === 1n ? MODEL_B : MODEL_A, deadline: NOW_S + s, cumulative })
    }
  }
  const tabs: TabCharge[] = []
  for (const r of [0, 1]) {
    const mine = items.filter(i => i.requester === r)
    const top = mine.reduce((a, b) => a.sequence > b.sequence ? a : b)
    const account = REQUESTERS[r]
    const signature = await signVoucher(account, TEST_DOMAIN.chainId, { requester: account.address, taskManager: TEST_DOMAIN.taskManager, cumulative: top.cumulative, sequence: top.sequence })
    const byModel = new Map<Hex, TabTaskLeaf[]>()
    for (const i of mine) {
      const key = keccak256(i.model)
      byModel.set(key, [...(byModel.get(key) ?? []), i])
    }
    const models = [...byModel.entries()].sort(([a], [b]) => BigInt(a) < BigInt(b) ? -1 : 1).map(([modelKey, list]) => ({
      modelKey, count: list.length, fees: list.reduce((s, i) => s + i.fee, 0n),
      firstDeadline: list.reduce((m, i) => i.deadline < m ? i.deadline : m, list[0].deadline),
      lastDeadline: list.reduce((m, i) => i.deadline > m ? i.deadline : m, list[0].deadline)
    }))
    tabs.push({ requester: account.address, cumulative: top.cumulative, sequence: top.sequence, signature, ...sequenceWords(mine.map(i => i.sequence)), models })
  }
  tabs.sort((a, b) => BigInt(a.requester) < BigInt(b.requester) ? -1 : 1)
  const leaves = items.map(i => i.leaf).sort((a, b) => BigInt(a.taskId) < BigInt(b.taskId) ? -1 : 1)
  const validations = [{ taskId: leaves[1].taskId, requestHash: hash('erc-8004 request'), resultHash: leaves[1].resultHash }]
  return { leaves, summary: { leafCount: leaves.length, batchRef: hash('batch leaves stream'), tabs, validations } }
}

/** A copy with `change` applied, for one malformed field at a time. */
function mutate (p: BatchProposal, change: (q: BatchProposal) => void): BatchProposal {
  const q = decodeBatchProposal(encodeBatchProposal(p))
  change(q)
  return q
}

describe('batch wire (issue 15)', function () {
  this.timeout(30_000)
  let leaves: BatchLeaf[]
  let summary: BatchSummary
  let proposal: BatchProposal

  before(async () => {
    ({ leaves, summary } = await makeBatch())
    proposal = batchProposalOf({ epoch: 3n, seq: 7n, leaves, summary })
  })

  describe('task voucher', () => {
    async function tabTask (nonce: bigint, fee: bigint): Promise<TaskAnnouncement> {
      return await signTask(REQUESTERS[0], TEST_DOMAIN.taskManager, {
        chainId: TEST_DOMAIN.chainId, modelId: MODEL_A, input: filled(4, 1), fee, deadline: 1n + NOW_S * 1000n, quorumBps: 6667, nonce
      })
    }

    it('round-trips a tab task and leaves its task id unchanged (the voucher is outside the EIP-712 digest)', async () => {
      const task = await tabTask(5n, 1234n)
      const id = taskIdOf(task, TEST_DOMAIN.taskManager)
      const signature = await signVoucher(REQUESTERS[0], TEST_DOMAIN.chainId, { requester: REQUESTERS[0].address, taskManager: TEST_DOMAIN.taskManager, cumulative: 5000n, sequence: 5n })
      const withVoucher = { ...task, voucher: { cumulative: uint256ToBytes(5000n), sequence: 5n, signature: filled(0, 0) } }
      withVoucher.voucher.signature = Uint8Array.from(Buffer.from(signature.slice(2), 'hex'))
      const decoded = decodeTaskAnnouncement(encodeTaskAnnouncement(withVoucher))
      assert.deepEqual(decoded.voucher, withVoucher.voucher)
      assert.deepEqual(taskIdOf(decoded, TEST_DOMAIN.taskManager), id)
      assert.ok(await verifyVoucherSignature(TEST_DOMAIN.chainId, { requester: REQUESTERS[0].address, taskManager: TEST_DOMAIN.taskManager, cumulative: 5000n, sequence: 5n }, signature))
      // without a voucher the encoding is the old one: no field 14
      assert.equal(decodeTaskAnnouncement(encodeTaskAnnouncement(task)).voucher, undefined)
    })

    it('refuses a voucher for another nonce, a sequence at 2^40, a cumulative below the fee, a short signature, a non-canonical amount', async () => {
      const voucher = { cumulative: uint256ToBytes(5000n), sequence: 5n, signature: filled(65, 1) }
      const task = { ...await tabTask(5n, 1234n), voucher }
      expectEncodeError(() => encodeTaskAnnouncement({ ...task, nonce: 6n }), 'INVALID_FIELD', 'voucher.sequence')
      const big = await tabTask(VOUCHER_SEQUENCE_LIMIT, 1n)
      expectEncodeError(() => encodeTaskAnnouncement({ ...big, voucher: { ...voucher, sequence: VOUCHER_SEQUENCE_LIMIT } }), 'INVALID_FIELD', 'voucher.sequence')
      expectEncodeError(() => encodeTaskAnnouncement({ ...task, voucher: { ...voucher, cumulative: uint256ToBytes(1233n) } }), 'INVALID_FIELD', 'voucher.cumulative')
      expectEncodeError(() => encodeTaskAnnouncement({ ...task, voucher: { ...voucher, signature: filled(64, 1) } }), 'INVALID_FIELD', 'voucher.signature')
      expectEncodeError(() => encodeTaskAnnouncement({ ...task, voucher: { ...voucher, cumulative: Uint8Array.from([0, 1]) } }), 'NON_CANONICAL', 'voucher.cumulative')
      // and the decoder says the same of such bytes from a peer
      const bytes = encodeTaskAnnouncement({ ...task, nonce: 6n, voucher: { ...voucher, sequence: 6n } })
      const forged = Buffer.from(bytes)
      // the voucher is the last field: its sequence varint (6) is the byte before the 0x1a signature tag
      const at = forged.lastIndexOf(Buffer.from([0x10, 6, 0x1a]))
      forged[at + 1] = 7
      expectDecodeError(() => decodeTaskAnnouncement(forged), 'INVALID_FIELD', 'voucher.sequence')
    })
  })

  describe('codecs and conversions', () => {
    it('round-trips a proposal, a signature, a certificate and the gossip envelope', () => {
      assert.deepEqual(decodeBatchProposal(encodeBatchProposal(proposal)), proposal)
      const sig = batchSignatureOf({ root: bytesToHex(proposal.root), epoch: 3n, summaryHash: batchSummaryHash(summary), operatorIndex: 2, signature: filled(96, 5) })
      assert.deepEqual(decodeBatchSignature(encodeBatchSignature(sig)), sig)
      const cert = batchCertificateOf({ root: bytesToHex(proposal.root), epoch: 3n, summary, signerBitmap: Uint8Array.from([0b111]), signature: filled(96, 5) })
      assert.deepEqual(decodeBatchCertificate(encodeBatchCertificate(cert)), cert)
      for (const m of [{ kind: 'proposal', proposal }, { kind: 'signature', signature: sig }, { kind: 'certificate', certificate: cert }] as const) {
        assert.deepEqual(decodeBatchGossip(encodeBatchGossip(m)), m)
      }
    })

    it('converts to and from consensus types: same root, same summary hash, proofs verify', () => {
      const parts = batchProposalParts(decodeBatchProposal(encodeBatchProposal(proposal)))
      const tree = new BatchTree(leaves)
      assert.equal(parts.root, tree.root)
      assert.deepEqual(parts.leaves, leaves)
      assert.deepEqual(parts.summary, { ...summary, tabs: summary.tabs.map(t => ({ ...t, requester: getAddress(t.requester) })) })
      assert.equal(parts.summaryHash, batchSummaryHash(summary))
      leaves.forEach((leaf, k) => assert.ok(verifyBatchProof(parts.root, leaf, tree.proof(k))))
      const cert = batchCertificateParts(batchCertificateOf({ root: tree.root, epoch: 3n, summary: { ...summary, batchRef: `0x${'00'.repeat(32)}` }, signerBitmap: Uint8Array.from([1]), signature: filled(96, 5) }))
      assert.equal(cert.summary.batchRef, `0x${'00'.repeat(32)}`)
      assert.equal(cert.summaryHash, batchSummaryHash({ ...summary, batchRef: `0x${'00'.repeat(32)}` }))
    })

    it('bounds: the largest proposal fits one gossip RPC', () => {
      assert.ok(MAX_BATCH_PROPOSAL_BYTES < GOSSIP_MAX_RPC_BYTES && MAX_BATCH_GOSSIP_BYTES < GOSSIP_MAX_RPC_BYTES, `${MAX_BATCH_GOSSIP_BYTES}`)
    })

    const rejections: Array<[string, (q: BatchProposal) => void, string, string]> = [
      ['reordered leaves', q => { q.leaves.reverse() }, 'INVALID_FIELD', 'leaves[1].taskId'],
      ['a duplicated leaf', q => { q.leaves[1] = q.leaves[0] }, 'INVALID_FIELD', 'leaves[1].taskId'],
      ['a short task id', q => { q.leaves[0].taskId = q.leaves[0].taskId.subarray(1) }, 'INVALID_FIELD', 'leaves[0].taskId'],
      ['a leaf count that is not the leaves\'', q => { q.leafCount = 4 }, 'INVALID_FIELD', 'leafCount'],
      ['no tabs', q => { q.tabs = [] }, 'INVALID_FIELD', 'tabs'],
      ['tabs out of requester order', q => { q.tabs.reverse() }, 'INVALID_FIELD', 'tabs[1].requester'],
      ['a voucher below its highest sequence', q => { q.tabs[0].sequence -= 1n }, 'INVALID_FIELD', 'tabs[0].sequence'],
      ['a voucher sequence of 2^40', q => { q.tabs[0].sequence = VOUCHER_SEQUENCE_LIMIT }, 'INVALID_FIELD', 'tabs[0].sequence'],
      ['a short voucher signature', q => { q.tabs[0].signature = q.tabs[0].signature.subarray(1) }, 'INVALID_FIELD', 'tabs[0].signature'],
      ['a trailing empty bitmap word', q => { q.tabs[0].sequenceBits.push(new Uint8Array(0)) }, 'NON_CANONICAL', 'tabs[0].sequenceBits[1]'],
      ['sequence 0 settled', q => { q.tabs[0].sequenceBits[0] = uint256ToBytes(0b1111n) }, 'INVALID_FIELD', 'tabs[0].sequenceBits[0]'],
      ['model counts off the bitmap', q => { q.tabs[0].models[0].count += 1 }, 'INVALID_FIELD', 'tabs[0].models'],
      ['models out of key order', q => { q.tabs[0].models.reverse() }, 'INVALID_FIELD', 'tabs[0].models[1].modelKey'],
      ['a last deadline before the first', q => { const m = q.tabs[0].models.find(m => m.count > 1)!; m.lastDeadline = m.firstDeadline - 1n }, 'INVALID_FIELD', 'lastDeadline'],
      ['an all-zero batch reference', q => { q.batchRef = new Uint8Array(32) }, 'NON_CANONICAL', 'batchRef'],
      ['a validation for no leaf', q => { q.validations[0].taskId = new Uint8Array(32).fill(0xff) }, 'INVALID_FIELD', 'validations[0].taskId'],
      ['a validation with another result', q => { q.validations[0].resultHash = new Uint8Array(32).fill(1) }, 'INVALID_FIELD', 'validations[0].resultHash'],
      ['a leading zero in a fee', q => { q.tabs[0].models[0].fees = Uint8Array.from([0, ...q.tabs[0].models[0].fees]) }, 'NON_CANONICAL', 'tabs[0].models[0].fees'],
      ['another version', q => { q.version = 2 }, 'UNKNOWN_VERSION', 'version']
    ]
    for (const [what, change, code, field] of rejections) {
      it(`refuses a proposal with ${what} (encode and decode)`, () => {
        const bad = mutate(proposal, change)
        let caught: unknown
        try { encodeBatchProposal(bad) } catch (err) { caught = err }
        assert.ok(caught !== undefined, `${what} encoded`)
        const e = caught as { code: string, field: string }
        assert.equal(e.code, code, String(caught))
        assert.ok(e.field.endsWith(field), `${String(caught)}: field ${e.field}, expected ${field}`)
        // the same bytes from a peer (protons writes anything) are refused by the decoder
        expectDecodeError(() => decodeBatchProposal(BatchProposal.encode(bad)), code as 'INVALID_FIELD', e.field)
      })
    }

    it('refuses oversized input: too many leaves, too many bitmap words, too many bytes', () => {
      const many = mutate(proposal, q => {
        q.leaves = Array.from({ length: MAX_BATCH_LEAVES + 1 }, (_, i) => ({ taskId: uint256Word(BigInt(i + 1)), resultHash: filled(32, 1), outputRef: filled(32, 1) }))
      })
      expectDecodeError(() => decodeBatchProposal(BatchProposal.encode(many)), 'OVERSIZED')
      expectEncodeError(() => encodeBatchProposal(many), 'OVERSIZED', 'leaves')
      const wide = mutate(proposal, q => { q.tabs[0].sequenceBits = Array.from({ length: MAX_TAB_SEQUENCE_WORDS + 1 }, () => uint256ToBytes(1n)) })
      expectDecodeError(() => decodeBatchProposal(BatchProposal.encode(wide)), 'OVERSIZED')
      expectDecodeError(() => decodeBatchProposal(new Uint8Array(MAX_BATCH_PROPOSAL_BYTES + 1)), 'OVERSIZED')
    })

    it('refuses non-canonical bytes: a repeated field split by another, trailing bytes, an envelope with two messages', () => {
      const bytes = encodeBatchProposal(proposal)
      // move the root (field 5) between two leaves (field 4): same message, not its canonical encoding
      const split = splitFields(bytes)
      const rootField = split.find(f => f.number === 5)!
      const leafFields = split.filter(f => f.number === 4)
      const reordered = Buffer.concat(split.filter(f => f !== rootField).flatMap(f => f === leafFields[0] ? [f.bytes, rootField.bytes] : [f.bytes]))
      expectDecodeError(() => decodeBatchProposal(reordered), 'NON_CANONICAL')
      expectDecodeError(() => decodeBatchProposal(Buffer.concat([bytes, Buffer.from([0x08, 0x01])])), 'NON_CANONICAL')
      expectDecodeError(() => decodeBatchProposal(Buffer.concat([bytes, Buffer.from([0x08])])), 'TRUNCATED')
      const two = Buffer.concat([encodeBatchGossip({ kind: 'proposal', proposal }), Buffer.from(encodeBatchGossip({ kind: 'signature', signature: batchSignatureOf({ root: bytesToHex(proposal.root), epoch: 3n, summaryHash: batchSummaryHash(summary), operatorIndex: 0, signature: filled(96, 5) }) }))])
      expectDecodeError(() => decodeBatchGossip(two), 'INVALID_FIELD', 'proposal')
      expectDecodeError(() => decodeBatchGossip(new Uint8Array(0)), 'INVALID_FIELD', 'proposal')
    })
  })

  describe('the batches topic', () => {
    const ops = makeOperators([10n, 10n, 10n, 10n], { epoch: 3n })
    const ctx: BatchCheckContext = { operatorSetOf: (epoch) => epoch === 3n ? ops.set : undefined }

    it('is a poi topic', () => {
      assert.equal(TOPICS.batches, '/poi/1/batches/proto')
    })

    it('accepts a proposal whose root is its leaves\', rejects another root, ignores an unknown epoch', async () => {
      assert.equal((await checkBatchMessage(encodeBatchGossip({ kind: 'proposal', proposal }), ctx)).verdict, 'accept')
      const wrongRoot = { ...proposal, root: filled(32, 9) }
      const bad = await checkBatchMessage(encodeBatchGossip({ kind: 'proposal', proposal: wrongRoot }), ctx)
      assert.equal(bad.verdict, 'reject')
      assert.match((bad as { reason: string }).reason, /not the Merkle root/)
      assert.equal((await checkBatchMessage(encodeBatchGossip({ kind: 'proposal', proposal: { ...proposal, epoch: 9n } }), ctx)).verdict, 'ignore')
      assert.equal((await checkBatchMessage(new Uint8Array([1, 2, 3]), ctx)).verdict, 'reject')
    })

    it('accepts an operator\'s batch signature, rejects one by another key or over another summary', async () => {
      const summaryHash = batchSummaryHash(summary)
      const root = bytesToHex(proposal.root)
      const digest = batchDigest(ops.set.domain, root, 3n, summaryHash)
      const good = batchSignatureOf({ root, epoch: 3n, summaryHash, operatorIndex: 1, signature: blsSign(ops.secretKeys[1], digest) })
      assert.equal((await checkBatchMessage(encodeBatchGossip({ kind: 'signature', signature: good }), ctx)).verdict, 'accept')
      const otherKey = { ...good, signature: new Uint8Array(blsSign(ops.secretKeys[2], digest)) }
      assert.equal((await checkBatchMessage(encodeBatchGossip({ kind: 'signature', signature: otherKey }), ctx)).verdict, 'reject')
      const otherSummary = { ...good, summaryHash: filled(32, 3) }
      assert.equal((await checkBatchMessage(encodeBatchGossip({ kind: 'signature', signature: otherSummary }), ctx)).verdict, 'reject')
      const unknown = { ...good, operatorIndex: 9 }
      assert.equal((await checkBatchMessage(encodeBatchGossip({ kind: 'signature', signature: unknown }), ctx)).verdict, 'reject')
    })

    it('accepts a certificate of a quorum, rejects one below quorum or with a changed summary', async () => {
      const root = bytesToHex(proposal.root)
      const digest = batchDigest(ops.set.domain, root, 3n, batchSummaryHash(summary))
      const signers = [0, 1, 3]
      const aggregate = bls.aggregateSignatures(signers.map(i => blsSign(ops.secretKeys[i], digest)))
      const cert = batchCertificateOf({ root, epoch: 3n, summary, signerBitmap: encodeSignerBitmap(signers), signature: aggregate })
      assert.equal((await checkBatchMessage(encodeBatchGossip({ kind: 'certificate', certificate: cert }), ctx)).verdict, 'accept')
      const few = batchCertificateOf({ root, epoch: 3n, summary, signerBitmap: encodeSignerBitmap([0, 1]), signature: bls.aggregateSignatures([0, 1].map(i => blsSign(ops.secretKeys[i], digest))) })
      const below = await checkBatchMessage(encodeBatchGossip({ kind: 'certificate', certificate: few }), ctx)
      assert.equal(below.verdict, 'reject')
      assert.match((below as { reason: string }).reason, /below the quorum/)
      const changed = { ...cert, validations: [] }
      const moved = await checkBatchMessage(encodeBatchGossip({ kind: 'certificate', certificate: changed }), ctx)
      assert.equal(moved.verdict, 'reject')
      assert.match((moved as { reason: string }).reason, /does not verify/)
    })
  })
})

function uint256Word (value: bigint): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(32)
  for (let i = 31, v = value; i >= 0; i--, v >>= 8n) out[i] = Number(v & 0xffn)
  return out
}

/** The top-level fields of a protobuf message (tag, length and value bytes each). */
function splitFields (bytes: Uint8Array): Array<{ number: number, bytes: Uint8Array }> {
  const out: Array<{ number: number, bytes: Uint8Array }> = []
  let pos = 0
  const varint = (): number => { let v = 0; let s = 1; for (;;) { const b = bytes[pos++]; v += (b & 0x7f) * s; s *= 128; if (b < 0x80) return v } }
  while (pos < bytes.length) {
    const start = pos
    const tag = varint()
    if ((tag & 7) === 2) {
      const length = varint()
      pos += length
    } else varint()
    out.push({ number: Math.floor(tag / 8), bytes: bytes.subarray(start, pos) })
  }
  return out
}
