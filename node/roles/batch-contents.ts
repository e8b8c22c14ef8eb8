/**
 * What a batch contains (issue 15, spec15): its leaves in ascending task id order, the Merkle
 * tree over them, and the settlement summary the leaves imply — per requester its highest tab
 * voucher, the tab sequences settled (bitmap words) and its charges per model; the ERC-8004
 * responses the leaves ask for. The aggregator builds a batch with buildBatch(); an operator
 * recomputes the same from the tasks and certificates it holds and signs only if both agree
 * (batch-signer.ts), so a summary can never say more than its leaves.
 */
import { bytesToHex, getAddress, hexToBigInt, keccak256, type Hex } from 'viem'
import {
  BatchTree, batchSummaryHash, sequenceWords,
  type BatchLeaf, type BatchSummary, type BatchValidation, type ModelCharge, type TabCharge
} from '../../consensus/index.js'
import { bytesToUint256, type TaskAnnouncement } from '../../protocols/wire/index.js'

/** The stream reference of a batch whose leaves are published nowhere (spec15: 0 = none). */
export const NO_BATCH_REF: Hex = `0x${'00'.repeat(32)}`
const MS_PER_SECOND = 1000n

/** A tab task's voucher, as the announcement carries it (its requester and TaskManager are the task's). */
export interface TaskVoucher {
  cumulative: bigint
  /** Equals the task's nonce. */
  sequence: bigint
  /** 65-byte EIP-712 signature by the task's requester. */
  signature: Hex
}

/** One certified tab task: what a batch needs to know of it. */
export interface BatchItem {
  taskId: Hex
  task: TaskAnnouncement
  voucher: TaskVoucher
  /** From the task's certificate. */
  resultHash: Hex
  outputRef: Hex
  epoch: bigint
}

export interface BuiltBatch {
  epoch: bigint
  leaves: BatchLeaf[]
  tree: BatchTree
  root: Hex
  summary: BatchSummary
  summaryHash: Hex
  /** The items in leaf order. */
  items: BatchItem[]
}

/** keccak256 of the model id bytes: how the ModelRegistry (and ModelCharge.modelKey) keys models. */
export function modelKeyOf (modelId: Uint8Array): Hex {
  return keccak256(modelId)
}

/** The requester's address, checksummed. */
export function requesterOf (task: TaskAnnouncement): Hex {
  return getAddress(bytesToHex(task.requester))
}

/** Leaves ascend by task id as uint256 (spec15). */
export function compareTaskIds (a: Hex, b: Hex): number {
  const x = hexToBigInt(a)
  const y = hexToBigInt(b)
  return x < y ? -1 : x > y ? 1 : 0
}

/** The highest voucher among `items` of one requester: the voucher of its highest sequence. */
export function highestVoucher (items: readonly BatchItem[]): TaskVoucher {
  let best = items[0]!.voucher
  for (const item of items) if (item.voucher.sequence > best.sequence) best = item.voucher
  return best
}

/**
 * The batch of `items` (all of one epoch): leaves sorted by task id, the tree and the summary.
 * Throws BatchFormatError (from BatchTree / sequenceWords) for an empty batch, a task twice, or
 * a tab sequence twice.
 */
export function buildBatch (items: readonly BatchItem[], batchRef: Hex = NO_BATCH_REF): BuiltBatch {
  const sorted = [...items].sort((a, b) => compareTaskIds(a.taskId, b.taskId))
  const leaves = sorted.map(i => ({ taskId: i.taskId, resultHash: i.resultHash, outputRef: i.outputRef }))
  const tree = new BatchTree(leaves)
  const summary = summarize(sorted, batchRef)
  return { epoch: sorted[0]!.epoch, leaves, tree, root: tree.root, summary, summaryHash: batchSummaryHash(summary), items: sorted }
}

/** The summary `items` (in leaf order) imply. */
export function summarize (items: readonly BatchItem[], batchRef: Hex = NO_BATCH_REF): BatchSummary {
  const byRequester = new Map<string, BatchItem[]>()
  for (const item of items) {
    const key = requesterOf(item.task)
    const list = byRequester.get(key) ?? []
    list.push(item)
    byRequester.set(key, list)
  }
  const tabs: TabCharge[] = [...byRequester.entries()]
    .sort(([a], [b]) => compareTaskIds(a as Hex, b as Hex))
    .map(([requester, list]) => {
      const voucher = highestVoucher(list)
      const { firstWord, sequenceBits } = sequenceWords(list.map(i => i.task.nonce))
      return { requester: requester as Hex, cumulative: voucher.cumulative, sequence: voucher.sequence, signature: voucher.signature, firstWord, sequenceBits, models: modelCharges(list) }
    })
  const validations: BatchValidation[] = items
    .filter(i => i.task.validationRequest.length > 0 && i.task.validationRequest.some(b => b !== 0))
    .map(i => ({ taskId: i.taskId, requestHash: bytesToHex(i.task.validationRequest), resultHash: i.resultHash }))
  return { leafCount: items.length, batchRef, tabs, validations }
}

function modelCharges (items: readonly BatchItem[]): ModelCharge[] {
  const byModel = new Map<Hex, ModelCharge>()
  for (const { task } of items) {
    const modelKey = modelKeyOf(task.modelId)
    const seconds = task.deadline / MS_PER_SECOND
    const fee = bytesToUint256(task.fee)
    const charge = byModel.get(modelKey)
    if (charge === undefined) {
      byModel.set(modelKey, { modelKey, count: 1, fees: fee, firstDeadline: seconds, lastDeadline: seconds })
      continue
    }
    charge.count++
    charge.fees += fee
    if (seconds < charge.firstDeadline) charge.firstDeadline = seconds
    if (seconds > charge.lastDeadline) charge.lastDeadline = seconds
  }
  return [...byModel.values()].sort((a, b) => compareTaskIds(a.modelKey, b.modelKey))
}
