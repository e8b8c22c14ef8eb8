/**
 * The batch messages of issue 15 (DESIGN §14) as strict codecs: an aggregator's proposal
 * (leaves, root, settlement summary), one operator's signature of it, the formed certificate any
 * aggregator can post, and the envelope the batches gossip topic carries. The field rules here
 * are everything a message's bytes alone can tell, so a decoded message is structurally what
 * TaskManager.submitBatch accepts: leaves strictly ascending by task id, tabs by requester and
 * models by model key; each tab's bitmap ending at its voucher's sequence, its model counts adding
 * up to its bitmap, all bitmaps together to the leaf count; validations naming leaves. What the
 * bytes cannot tell (the root is the tree's, signatures, certificates held for the leaves) is
 * consensus's and the node's (protocols/gossip/batches.ts).
 *
 * The types here are the generated protobuf ones; protocols/gossip/batches.ts converts them to
 * and from consensus/batch.ts's (BatchLeaf, BatchSummary), so no other code converts by hand.
 */
import {
  ADDRESS_BYTES, BATCH_HASH_BYTES, BATCH_REF_BYTES, BLS_SIGNATURE_BYTES, MAX_BATCH_CERTIFICATE_BYTES, MAX_BATCH_GOSSIP_BYTES,
  MAX_BATCH_LEAVES, MAX_BATCH_PROPOSAL_BYTES, MAX_BATCH_SIGNATURE_BYTES, MAX_BATCH_TABS, MAX_OPERATORS,
  MAX_SIGNER_BITMAP_BYTES, MAX_TAB_MODELS, MAX_TAB_SEQUENCE_WORDS, OUTPUT_REF_BYTES, RESULT_HASH_BYTES, TASK_ID_BYTES,
  VOUCHER_SEQUENCE_LIMIT, VOUCHER_SIGNATURE_BYTES
} from './constants.js'
import {
  defineCodec, isAllZero, ruleBoundedBytes, ruleExactBytes, ruleUint256, ruleUint32, ruleUint64, ruleVersion, violation,
  WIRE_LENGTH_DELIMITED as L, WIRE_VARINT as V, type FieldViolation
} from './codec.js'
import {
  BatchCertificate, BatchGossip, BatchProposal, BatchSignature,
  type LeafEntry, type ModelChargeEntry, type TabChargeEntry, type ValidationEntry
} from './messages.pb.js'
import { bytesToUint256 } from './uint256.js'

/** Sequences per word of the settled-sequence bitmap (consensus SEQUENCES_PER_WORD; one storage slot of bits). */
const SEQUENCES_PER_WORD = 256n
/** The largest bitmap word index a sequence below VOUCHER_SEQUENCE_LIMIT can fall in. */
const MAX_FIRST_WORD = (VOUCHER_SEQUENCE_LIMIT - 1n) / SEQUENCES_PER_WORD

/** The summary fields a proposal and a certificate share (consensus BatchSummary, on the wire). */
export interface BatchSummaryFields {
  leafCount: number
  batchRef: Uint8Array<ArrayBuffer>
  tabs: TabChargeEntry[]
  validations: ValidationEntry[]
}

type Checked<T> = { bad: FieldViolation } | { ok: T }

function compareBytes (a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b)
}

function ruleCount (field: string, items: unknown, min: number, max: number): FieldViolation | undefined {
  if (!Array.isArray(items)) return violation('INVALID_FIELD', field, `expected a list, got ${typeof items}`)
  if (items.length > max) return violation('OVERSIZED', field, `has ${items.length} entries, at most ${max} allowed`)
  if (items.length < min) return violation('INVALID_FIELD', field, min === 1 ? 'must not be empty' : `has ${items.length} entries, at least ${min} required`)
  return undefined
}

/** Bytes fields of 32 bytes in a fixed-order list must ascend strictly (no duplicates). */
function ruleAscending (field: string, prev: Uint8Array | undefined, cur: Uint8Array, what: string): FieldViolation | undefined {
  if (prev === undefined) return undefined
  const order = compareBytes(prev, cur)
  if (order === 0) return violation('INVALID_FIELD', field, `repeats the previous entry's ${what}`)
  if (order > 0) return violation('INVALID_FIELD', field, `is out of order: entries ascend by ${what}`)
  return undefined
}

function popcount (word: bigint): number {
  let n = 0
  for (let w = word; w > 0n; w >>= 1n) if ((w & 1n) === 1n) n++
  return n
}

function highestBit (word: bigint): bigint {
  return BigInt(word.toString(2).length - 1)
}

/** Leaves: 1..MAX_BATCH_LEAVES of 32-byte hashes, strictly ascending by task id. */
export function checkLeaves (leaves: LeafEntry[]): FieldViolation | undefined {
  const bad = ruleCount('leaves', leaves, 1, MAX_BATCH_LEAVES)
  if (bad !== undefined) return bad
  for (let i = 0; i < leaves.length; i++) {
    const leaf = leaves[i]
    const at = `leaves[${i}]`
    const wrong = ruleExactBytes(`${at}.taskId`, leaf.taskId, TASK_ID_BYTES) ??
      ruleExactBytes(`${at}.resultHash`, leaf.resultHash, RESULT_HASH_BYTES) ??
      ruleExactBytes(`${at}.outputRef`, leaf.outputRef, OUTPUT_REF_BYTES) ??
      ruleAscending(`${at}.taskId`, leaves[i - 1]?.taskId, leaf.taskId, 'task id')
    if (wrong !== undefined) return wrong
  }
  return undefined
}

/** One requester's model charges; returns their total count. */
function checkModels (at: string, models: ModelChargeEntry[]): Checked<number> {
  const bad = ruleCount(`${at}.models`, models, 1, MAX_TAB_MODELS)
  if (bad !== undefined) return { bad }
  let count = 0
  for (let i = 0; i < models.length; i++) {
    const m = models[i]
    const here = `${at}.models[${i}]`
    const wrong = ruleExactBytes(`${here}.modelKey`, m.modelKey, BATCH_HASH_BYTES) ??
      ruleAscending(`${here}.modelKey`, models[i - 1]?.modelKey, m.modelKey, 'model key') ??
      ruleUint32(`${here}.count`, m.count, 1, MAX_BATCH_LEAVES) ??
      ruleUint256(`${here}.fees`, m.fees) ??
      ruleUint64(`${here}.firstDeadline`, m.firstDeadline, 1n) ??
      ruleUint64(`${here}.lastDeadline`, m.lastDeadline, m.firstDeadline)
    if (wrong !== undefined) return { bad: wrong }
    count += m.count
  }
  return { ok: count }
}

/**
 * One tab: a well-formed voucher, a canonical bitmap (first and last word non-zero) whose highest
 * sequence is the voucher's and which holds no sequence 0, and model counts adding up to its
 * bits. Returns the number of sequences it settles.
 */
function checkTab (at: string, tab: TabChargeEntry): Checked<number> {
  const bad = ruleExactBytes(`${at}.requester`, tab.requester, ADDRESS_BYTES) ??
    ruleUint256(`${at}.cumulative`, tab.cumulative) ??
    ruleUint64(`${at}.sequence`, tab.sequence, 1n) ??
    (tab.sequence >= VOUCHER_SEQUENCE_LIMIT ? violation('INVALID_FIELD', `${at}.sequence`, `${tab.sequence} is not a tab sequence (below 2^40)`) : undefined) ??
    ruleExactBytes(`${at}.signature`, tab.signature, VOUCHER_SIGNATURE_BYTES) ??
    ruleUint64(`${at}.firstWord`, tab.firstWord) ??
    (tab.firstWord > MAX_FIRST_WORD ? violation('INVALID_FIELD', `${at}.firstWord`, `${tab.firstWord} holds no tab sequence (at most ${MAX_FIRST_WORD})`) : undefined) ??
    ruleCount(`${at}.sequenceBits`, tab.sequenceBits, 1, MAX_TAB_SEQUENCE_WORDS)
  if (bad !== undefined) return { bad }
  let bits = 0
  const words: bigint[] = []
  for (let k = 0; k < tab.sequenceBits.length; k++) {
    const wrong = ruleUint256(`${at}.sequenceBits[${k}]`, tab.sequenceBits[k])
    if (wrong !== undefined) return { bad: wrong }
    const word = bytesToUint256(tab.sequenceBits[k])
    words.push(word)
    bits += popcount(word)
  }
  const first = words[0]
  const last = words[words.length - 1]
  if (first === 0n) return { bad: violation('NON_CANONICAL', `${at}.sequenceBits[0]`, 'the first bitmap word is empty (start at the first word with a sequence)') }
  if (last === 0n) return { bad: violation('NON_CANONICAL', `${at}.sequenceBits[${words.length - 1}]`, 'the last bitmap word is empty (end at the last word with a sequence)') }
  if (tab.firstWord === 0n && (first & 1n) === 1n) return { bad: violation('INVALID_FIELD', `${at}.sequenceBits[0]`, 'settles sequence 0, which is no tab sequence') }
  const highest = (tab.firstWord + BigInt(words.length - 1)) * SEQUENCES_PER_WORD + highestBit(last)
  if (highest !== tab.sequence) {
    return { bad: violation('INVALID_FIELD', `${at}.sequence`, `the voucher's sequence ${tab.sequence} is not the highest sequence the bitmap settles (${highest})`) }
  }
  const models = checkModels(at, tab.models)
  if ('bad' in models) return models
  if (models.ok !== bits) return { bad: violation('INVALID_FIELD', `${at}.models`, `model counts add up to ${models.ok}, the bitmap settles ${bits} sequences`) }
  return { ok: bits }
}

/** The settlement summary: leaf count, batch reference, tabs (their bits adding up to the leaf count) and validations. */
export function checkBatchSummary (summary: BatchSummaryFields): FieldViolation | undefined {
  const hasRef = summary.batchRef instanceof Uint8Array && summary.batchRef.length > 0
  const bad = ruleUint32('leafCount', summary.leafCount, 1, MAX_BATCH_LEAVES) ??
    (hasRef ? ruleExactBytes('batchRef', summary.batchRef, BATCH_REF_BYTES) : ruleBoundedBytes('batchRef', summary.batchRef, 0, 0)) ??
    // bytes32(0) means "none" on chain; on the wire that is the empty field (one spelling).
    (hasRef && isAllZero(summary.batchRef) ? violation('NON_CANONICAL', 'batchRef', 'must not be all zero bytes (leave it empty for none)') : undefined) ??
    ruleCount('tabs', summary.tabs, 1, MAX_BATCH_TABS) ??
    ruleCount('validations', summary.validations, 0, summary.leafCount)
  if (bad !== undefined) return bad
  let settled = 0
  for (let i = 0; i < summary.tabs.length; i++) {
    const tab = checkTab(`tabs[${i}]`, summary.tabs[i])
    if ('bad' in tab) return tab.bad
    const order = ruleAscending(`tabs[${i}].requester`, summary.tabs[i - 1]?.requester, summary.tabs[i].requester, 'requester')
    if (order !== undefined) return order
    settled += tab.ok
  }
  if (settled !== summary.leafCount) return violation('INVALID_FIELD', 'leafCount', `is ${summary.leafCount}, the tabs settle ${settled} sequences`)
  for (let i = 0; i < summary.validations.length; i++) {
    const v = summary.validations[i]
    const at = `validations[${i}]`
    const wrong = ruleExactBytes(`${at}.taskId`, v.taskId, TASK_ID_BYTES) ??
      ruleExactBytes(`${at}.requestHash`, v.requestHash, BATCH_HASH_BYTES) ??
      (isAllZero(v.requestHash) ? violation('INVALID_FIELD', `${at}.requestHash`, 'must not be all zero bytes') : undefined) ??
      ruleExactBytes(`${at}.resultHash`, v.resultHash, RESULT_HASH_BYTES) ??
      ruleAscending(`${at}.taskId`, summary.validations[i - 1]?.taskId, v.taskId, 'task id')
    if (wrong !== undefined) return wrong
  }
  return undefined
}

/** Every rule a BatchProposal obeys on the wire; returns the first broken one. */
export function checkBatchProposal (p: BatchProposal): FieldViolation | undefined {
  const bad = ruleVersion(p.version) ??
    ruleUint64('epoch', p.epoch) ??
    ruleUint64('seq', p.seq) ??
    checkLeaves(p.leaves) ??
    ruleExactBytes('root', p.root, BATCH_HASH_BYTES) ??
    checkBatchSummary(p) ??
    (p.leafCount !== p.leaves.length ? violation('INVALID_FIELD', 'leafCount', `is ${p.leafCount}, the proposal has ${p.leaves.length} leaves`) : undefined)
  if (bad !== undefined) return bad
  // Both lists ascend by task id: one walk finds each validation's leaf.
  let k = 0
  for (let i = 0; i < p.validations.length; i++) {
    const v = p.validations[i]
    while (k < p.leaves.length && compareBytes(p.leaves[k].taskId, v.taskId) < 0) k++
    const leaf = p.leaves[k]
    if (leaf === undefined || compareBytes(leaf.taskId, v.taskId) !== 0) return violation('INVALID_FIELD', `validations[${i}].taskId`, 'names no leaf of the batch')
    if (compareBytes(leaf.resultHash, v.resultHash) !== 0) return violation('INVALID_FIELD', `validations[${i}].resultHash`, 'differs from its leaf\'s result hash')
  }
  return undefined
}

/** Every rule a BatchSignature obeys on the wire; returns the first broken one. */
export function checkBatchSignature (s: BatchSignature): FieldViolation | undefined {
  return ruleVersion(s.version) ??
    ruleExactBytes('root', s.root, BATCH_HASH_BYTES) ??
    ruleUint64('epoch', s.epoch) ??
    ruleExactBytes('summaryHash', s.summaryHash, BATCH_HASH_BYTES) ??
    ruleUint32('operatorIndex', s.operatorIndex, 0, MAX_OPERATORS - 1) ??
    ruleExactBytes('signature', s.signature, BLS_SIGNATURE_BYTES)
}

/** Every rule a BatchCertificate obeys on the wire; returns the first broken one. */
export function checkBatchCertificate (c: BatchCertificate): FieldViolation | undefined {
  return ruleVersion(c.version) ??
    ruleExactBytes('root', c.root, BATCH_HASH_BYTES) ??
    ruleUint64('epoch', c.epoch) ??
    checkBatchSummary(c) ??
    // Non-empty with a non-zero last byte, as a task certificate's.
    ruleBoundedBytes('signerBitmap', c.signerBitmap, 1, MAX_SIGNER_BITMAP_BYTES) ??
    (c.signerBitmap[c.signerBitmap.length - 1] === 0 ? violation('NON_CANONICAL', 'signerBitmap', 'ends with a zero byte (trim trailing zero bytes)') : undefined) ??
    ruleExactBytes('signature', c.signature, BLS_SIGNATURE_BYTES)
}

/** The one message a batches gossip envelope carries. */
export type BatchGossipMessage =
  | { kind: 'proposal', proposal: BatchProposal }
  | { kind: 'signature', signature: BatchSignature }
  | { kind: 'certificate', certificate: BatchCertificate }

function prefixed (prefix: string, bad: FieldViolation | undefined): FieldViolation | undefined {
  return bad === undefined ? undefined : { ...bad, field: `${prefix}.${bad.field}` }
}

/** Exactly one of the three, valid. */
export function checkBatchGossip (g: BatchGossip): FieldViolation | undefined {
  const present = [g.proposal, g.signature, g.certificate].filter(m => m != null).length
  if (present !== 1) return violation('INVALID_FIELD', 'proposal', `a batches gossip message carries exactly one of proposal, signature, certificate; this one carries ${present}`)
  if (g.proposal != null) return prefixed('proposal', checkBatchProposal(g.proposal))
  if (g.signature != null) return prefixed('signature', checkBatchSignature(g.signature))
  return prefixed('certificate', checkBatchCertificate(g.certificate as BatchCertificate))
}

/**
 * Decode limits handed to protons: a repeated field stops growing at its bound (OVERSIZED)
 * instead of decoding, say, 200,000 empty leaves from a message within its byte bound.
 */
const TAB_LIMITS = { sequenceBits: MAX_TAB_SEQUENCE_WORDS, models: MAX_TAB_MODELS }
const SUMMARY_LIMITS = { tabs: MAX_BATCH_TABS, tabs$: TAB_LIMITS, validations: MAX_BATCH_LEAVES }
const PROPOSAL_LIMITS = { leaves: MAX_BATCH_LEAVES, ...SUMMARY_LIMITS }

const PROPOSAL_FIELDS = {
  version: [1, V], epoch: [2, V], seq: [3, V], leaves: [4, L, 'repeated'], root: [5, L], batchRef: [6, L], leafCount: [7, V],
  tabs: [8, L, 'repeated'], validations: [9, L, 'repeated']
} as const
const CERTIFICATE_FIELDS = {
  version: [1, V], root: [2, L], epoch: [3, V], leafCount: [4, V], batchRef: [5, L], tabs: [6, L, 'repeated'],
  validations: [7, L, 'repeated'], signerBitmap: [8, L], signature: [9, L]
} as const

const BATCH_PROPOSAL_CODEC = defineCodec<BatchProposal>({
  name: 'BatchProposal',
  maxBytes: MAX_BATCH_PROPOSAL_BYTES,
  fields: PROPOSAL_FIELDS,
  proto: { encode: BatchProposal.encode, decode: (bytes) => BatchProposal.decode(bytes, { limits: PROPOSAL_LIMITS }) },
  check: checkBatchProposal
})

const BATCH_SIGNATURE_CODEC = defineCodec<BatchSignature>({
  name: 'BatchSignature',
  maxBytes: MAX_BATCH_SIGNATURE_BYTES,
  fields: { version: [1, V], root: [2, L], epoch: [3, V], summaryHash: [4, L], operatorIndex: [5, V], signature: [6, L] },
  proto: BatchSignature,
  check: checkBatchSignature
})

const BATCH_CERTIFICATE_CODEC = defineCodec<BatchCertificate>({
  name: 'BatchCertificate',
  maxBytes: MAX_BATCH_CERTIFICATE_BYTES,
  fields: CERTIFICATE_FIELDS,
  proto: { encode: BatchCertificate.encode, decode: (bytes) => BatchCertificate.decode(bytes, { limits: SUMMARY_LIMITS }) },
  check: checkBatchCertificate
})

const BATCH_GOSSIP_CODEC = defineCodec<BatchGossip>({
  name: 'BatchGossip',
  maxBytes: MAX_BATCH_GOSSIP_BYTES,
  fields: { proposal: [1, L], signature: [2, L], certificate: [3, L] },
  proto: {
    encode: BatchGossip.encode,
    decode: (bytes) => BatchGossip.decode(bytes, { limits: { proposal: PROPOSAL_LIMITS, certificate: SUMMARY_LIMITS } })
  },
  check: checkBatchGossip
})

/** Decodes a batch proposal from untrusted bytes; throws DecodeError. Does not check the root against the leaves. */
export const decodeBatchProposal: (bytes: Uint8Array) => BatchProposal = BATCH_PROPOSAL_CODEC.decode
/** Canonical encoding of a batch proposal; throws EncodeError if peers would reject it. */
export const encodeBatchProposal: (proposal: BatchProposal) => Uint8Array<ArrayBuffer> = BATCH_PROPOSAL_CODEC.encode
/** Decodes an operator's batch signature; throws DecodeError. Does not check the BLS signature. */
export const decodeBatchSignature: (bytes: Uint8Array) => BatchSignature = BATCH_SIGNATURE_CODEC.decode
/** Canonical encoding of a batch signature; throws EncodeError if peers would reject it. */
export const encodeBatchSignature: (signature: BatchSignature) => Uint8Array<ArrayBuffer> = BATCH_SIGNATURE_CODEC.encode
/** Decodes a batch certificate; throws DecodeError. Does not check the aggregate signature or the quorum. */
export const decodeBatchCertificate: (bytes: Uint8Array) => BatchCertificate = BATCH_CERTIFICATE_CODEC.decode
/** Canonical encoding of a batch certificate; throws EncodeError if peers would reject it. */
export const encodeBatchCertificate: (certificate: BatchCertificate) => Uint8Array<ArrayBuffer> = BATCH_CERTIFICATE_CODEC.encode

/** Decodes a message of the batches gossip topic; throws DecodeError. */
export function decodeBatchGossip (bytes: Uint8Array): BatchGossipMessage {
  const g = BATCH_GOSSIP_CODEC.decode(bytes)
  if (g.proposal != null) return { kind: 'proposal', proposal: g.proposal }
  if (g.signature != null) return { kind: 'signature', signature: g.signature }
  return { kind: 'certificate', certificate: g.certificate as BatchCertificate }
}

/** The batches gossip topic's encoding of one message; throws EncodeError if peers would reject it. */
export function encodeBatchGossip (message: BatchGossipMessage): Uint8Array<ArrayBuffer> {
  switch (message.kind) {
    case 'proposal': return BATCH_GOSSIP_CODEC.encode({ proposal: message.proposal })
    case 'signature': return BATCH_GOSSIP_CODEC.encode({ signature: message.signature })
    case 'certificate': return BATCH_GOSSIP_CODEC.encode({ certificate: message.certificate })
  }
}
