/**
 * Batches (issue 15, DESIGN §14): many certified results under one quorum certificate on chain.
 *
 * A batch is a Merkle tree over its leaves (taskId, resultHash, outputRef), in ascending task id
 * order, plus a settlement summary (per requester: its highest tab voucher, the tab sequences the
 * batch settles and its charges per model). Operators BLS-sign
 *
 *   keccak256(abi.encode("POI_BATCH_V1", chainId, taskManager, root, epoch, summaryHash))
 *
 * and one pairing on chain checks the aggregate, as for a task certificate. Nothing is written
 * or emitted per leaf on chain: the root is stored, and any leaf is proved against it.
 *
 * The tree is OpenZeppelin's (StandardMerkleTree with `sortLeaves: false`, leaf encoding
 * `['bytes32','bytes32','bytes32']`): leaves double-hashed, internal nodes commutative keccak,
 * a complete binary tree in one array. So `MerkleProof.verifyCalldata` checks our proofs on chain
 * and the library itself serves as the reference in tests.
 */
import { concat, encodeAbiParameters, hexToBigInt, keccak256, type Hex } from 'viem'
import { VOUCHER_SEQUENCE_LIMIT } from '../protocols/wire/index.js'
import { assertSigningDomain, type SigningDomain } from './domain.js'
import { BatchFormatError } from './errors.js'

/** DESIGN §14: the tag that separates batch signatures from attestations and proofs of possession. */
export const BATCH_DOMAIN_TAG = 'POI_BATCH_V1'
/**
 * Tab tasks carry their tab sequence as their nonce, below this bound; other tasks' nonces are at
 * or above it (the requester library sets a high bit on its random nonces). Tab tasks settle only
 * in batches, other tasks only singly, so no task settles twice (TaskManager.TAB_SEQUENCE_LIMIT).
 */
export const TAB_SEQUENCE_LIMIT = VOUCHER_SEQUENCE_LIMIT
/** Sequences per word of the on-chain settled-sequence bitmap (one storage slot). */
export const SEQUENCES_PER_WORD = 256n

export interface BatchLeaf {
  taskId: Hex
  resultHash: Hex
  outputRef: Hex
}

/** One requester's charges for one model in a batch (TaskManager.ModelCharge). */
export interface ModelCharge {
  /** keccak256 of the model id bytes, as the ModelRegistry keys models. */
  modelKey: Hex
  count: number
  /** Sum of the task fees, wei. */
  fees: bigint
  /** Earliest and latest task deadline among them, unix seconds (the task's ms deadline / 1000, floored). */
  firstDeadline: bigint
  lastDeadline: bigint
}

/** One requester's part of a batch (TaskManager.TabCharge): its highest voucher and what the batch settles for it. */
export interface TabCharge {
  requester: Hex
  cumulative: bigint
  sequence: bigint
  /** The voucher's 65-byte EIP-712 signature. */
  signature: Hex
  firstWord: bigint
  sequenceBits: bigint[]
  /** Ascending by modelKey. */
  models: ModelCharge[]
}

/** An ERC-8004 response a leaf asks for (TaskManager.Validation). */
export interface BatchValidation {
  taskId: Hex
  requestHash: Hex
  resultHash: Hex
}

export interface BatchSummary {
  leafCount: number
  /** Stream reference of the batch's leaves; zero hash when none. */
  batchRef: Hex
  /** Ascending by requester address. */
  tabs: TabCharge[]
  validations: BatchValidation[]
}

const LEAF_TYPES = [{ type: 'bytes32' }, { type: 'bytes32' }, { type: 'bytes32' }] as const

const MODEL_CHARGE_COMPONENTS = [
  { name: 'modelKey', type: 'bytes32' },
  { name: 'count', type: 'uint32' },
  { name: 'fees', type: 'uint256' },
  { name: 'firstDeadline', type: 'uint64' },
  { name: 'lastDeadline', type: 'uint64' }
] as const

/** ABI tuple of TaskManager.TabCharge. */
export const TAB_CHARGE_COMPONENTS = [
  { name: 'requester', type: 'address' },
  { name: 'cumulative', type: 'uint256' },
  { name: 'sequence', type: 'uint64' },
  { name: 'signature', type: 'bytes' },
  { name: 'firstWord', type: 'uint64' },
  { name: 'sequenceBits', type: 'uint256[]' },
  { name: 'models', type: 'tuple[]', components: MODEL_CHARGE_COMPONENTS }
] as const

/** ABI tuple of TaskManager.Validation. */
export const VALIDATION_COMPONENTS = [
  { name: 'taskId', type: 'bytes32' },
  { name: 'requestHash', type: 'bytes32' },
  { name: 'resultHash', type: 'bytes32' }
] as const

const SUMMARY_TYPES = [
  { type: 'uint32' },
  { type: 'bytes32' },
  { type: 'tuple[]', components: TAB_CHARGE_COMPONENTS },
  { type: 'tuple[]', components: VALIDATION_COMPONENTS }
] as const

const DIGEST_TYPES = [
  { type: 'string' }, { type: 'uint256' }, { type: 'address' }, { type: 'bytes32' }, { type: 'uint64' }, { type: 'bytes32' }
] as const

/** keccak256(bytes.concat(keccak256(abi.encode(taskId, resultHash, outputRef)))): OpenZeppelin's standard leaf. */
export function batchLeafHash (leaf: BatchLeaf): Hex {
  return keccak256(keccak256(encodeAbiParameters(LEAF_TYPES, [leaf.taskId, leaf.resultHash, leaf.outputRef])))
}

/** OpenZeppelin's Hashes.commutativeKeccak256: the smaller word first. */
function nodeHash (a: Hex, b: Hex): Hex {
  return hexToBigInt(a) <= hexToBigInt(b) ? keccak256(concat([a, b])) : keccak256(concat([b, a]))
}

/** A batch's Merkle tree: its root and a proof for any leaf. */
export class BatchTree {
  /** Complete binary tree in one array: the root at 0, node i's children at 2i+1 and 2i+2, leaf k at length-1-k. */
  private readonly nodes: Hex[]
  readonly leaves: readonly BatchLeaf[]

  /** Leaves must already be in batch order: ascending task id, no duplicates (BatchFormatError otherwise). */
  constructor (leaves: readonly BatchLeaf[]) {
    assertBatchOrder(leaves)
    this.leaves = leaves
    const nodes = new Array<Hex>(2 * leaves.length - 1)
    leaves.forEach((leaf, k) => { nodes[nodes.length - 1 - k] = batchLeafHash(leaf) })
    for (let i = nodes.length - 1 - leaves.length; i >= 0; i--) nodes[i] = nodeHash(nodes[2 * i + 1]!, nodes[2 * i + 2]!)
    this.nodes = nodes
  }

  get root (): Hex { return this.nodes[0]! }

  /** The sibling path of leaf `k` (index in batch order), leaf to root. */
  proof (k: number): Hex[] {
    if (!Number.isInteger(k) || k < 0 || k >= this.leaves.length) throw new BatchFormatError(`leaf index ${k} is outside a batch of ${this.leaves.length}`)
    const proof: Hex[] = []
    for (let i = this.nodes.length - 1 - k; i > 0; i = (i - 1) >> 1) proof.push(this.nodes[i % 2 === 1 ? i + 1 : i - 1]!)
    return proof
  }

  /** The index of `taskId`'s leaf, or -1. */
  indexOf (taskId: Hex): number {
    const id = hexToBigInt(taskId)
    return this.leaves.findIndex(l => hexToBigInt(l.taskId) === id)
  }
}

/** Whether `proof` takes `leaf` to `root` (OpenZeppelin MerkleProof.processProof). */
export function verifyBatchProof (root: Hex, leaf: BatchLeaf, proof: readonly Hex[]): boolean {
  let node = batchLeafHash(leaf)
  for (const sibling of proof) node = nodeHash(node, sibling)
  return hexToBigInt(node) === hexToBigInt(root)
}

/** Throws BatchFormatError unless the leaves are non-empty and strictly ascending by task id. */
export function assertBatchOrder (leaves: readonly BatchLeaf[]): void {
  if (leaves.length === 0) throw new BatchFormatError('a batch needs at least one leaf')
  for (let k = 1; k < leaves.length; k++) {
    const prev = hexToBigInt(leaves[k - 1]!.taskId)
    const cur = hexToBigInt(leaves[k]!.taskId)
    if (cur === prev) throw new BatchFormatError(`task ${leaves[k]!.taskId} appears twice in the batch (leaves ${k - 1} and ${k})`)
    if (cur < prev) throw new BatchFormatError(`leaf ${k} (task ${leaves[k]!.taskId}) is out of order: leaves ascend by task id`)
  }
}

/** keccak256(abi.encode(leafCount, batchRef, tabs, validations)), as TaskManager hashes its calldata. */
export function batchSummaryHash (summary: BatchSummary): Hex {
  return keccak256(encodeAbiParameters(SUMMARY_TYPES, [
    summary.leafCount,
    summary.batchRef,
    summary.tabs.map(t => ({ ...t, models: t.models.map(m => ({ ...m })) })),
    summary.validations
  ]))
}

/** The 32 bytes operators BLS-sign for a batch (hashed to G2 as attestations are). */
export function batchDigest (domain: SigningDomain, root: Hex, epoch: bigint, summaryHash: Hex): Uint8Array {
  assertSigningDomain(domain)
  const hash = keccak256(encodeAbiParameters(DIGEST_TYPES, [BATCH_DOMAIN_TAG, domain.chainId, domain.taskManager, root, epoch, summaryHash]), 'bytes')
  return hash
}

/** The settled-sequence bitmap words (TabCharge.firstWord, sequenceBits) covering `sequences`. */
export function sequenceWords (sequences: readonly bigint[]): { firstWord: bigint, sequenceBits: bigint[] } {
  if (sequences.length === 0) throw new BatchFormatError('a tab in a batch settles at least one sequence')
  let low = sequences[0]!
  let high = sequences[0]!
  for (const s of sequences) {
    if (s <= 0n || s >= TAB_SEQUENCE_LIMIT) throw new BatchFormatError(`tab sequence ${s} is outside 1..${TAB_SEQUENCE_LIMIT - 1n}`)
    if (s < low) low = s
    if (s > high) high = s
  }
  const firstWord = low / SEQUENCES_PER_WORD
  const bits = new Array<bigint>(Number(high / SEQUENCES_PER_WORD - firstWord) + 1).fill(0n)
  for (const s of sequences) {
    const k = Number(s / SEQUENCES_PER_WORD - firstWord)
    const bit = 1n << (s % SEQUENCES_PER_WORD)
    if ((bits[k]! & bit) !== 0n) throw new BatchFormatError(`tab sequence ${s} appears twice`)
    bits[k] = bits[k]! | bit
  }
  return { firstWord, sequenceBits: bits }
}

