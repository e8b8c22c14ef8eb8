/**
 * Batches on chain (issue 15): TaskManager.submitBatch and the batch views, viem style (client
 * first, plain parameters), from consensus/batch.ts's types.
 *
 * API (stable; the node and the requester side call these):
 *
 *   batchCalldata(qc, summary, set)                  → [BatchCertificateArgs, NonSignerArgs[], TabChargeArgs[], ValidationArgs[]]
 *   simulateBatch(publicClient, account, taskManager, qc, summary, set)   → viem's { request, result } (result false = root already stored)
 *   submitBatch(walletClient, publicClient, taskManager, qc, summary, set) → { accepted, receipt }
 *   estimateBatchGas(publicClient, account, taskManager, qc, summary, set) → bigint
 *   readTab(publicClient, taskManager, requester)     → { settled, lastSequence }
 *   isTabSequenceSettled(publicClient, taskManager, requester, sequence) → boolean
 *   readBatchEpoch(publicClient, taskManager, root)   → bigint (0n = no such batch)
 *   hasBatchResult(publicClient, taskManager, taskId, result, proof) → boolean
 *
 * `qc` is a BatchQuorumCertificate: the root, the epoch, the signer bitmap and the aggregate BLS
 * signature (G2, 96 or 192 bytes as the node has it) over consensus batchDigest(domain, root, epoch,
 * batchSummaryHash(summary)). leafCount and batchRef are taken from `summary`, so the certificate
 * posted is exactly the one the summary hash covers. `set` is the operator set of `qc.epoch`
 * (readOperatorSet): the non-signers are proven against it as for task certificates.
 *
 * Like contracts/calldata.ts these translate and do not judge: a bad voucher or bitmap still
 * becomes calldata, and the contract answers with a named error (contractErrorName): the
 * TaskManager's InvalidVoucherSignature, StaleVoucher, VoucherSequenceMismatch, VoucherExceeded,
 * InsufficientDeposit, TaskAlreadySettled, LeafCountMismatch, TabsOutOfOrder, ModelsOutOfOrder,
 * MalformedTab, InvalidSignature (a reordered, duplicated or changed leaf or summary), the
 * epoch, access and fee errors of certificates.
 */
import { bytesToHex, type Account, type Chain, type Hex, type PublicClient, type TransactionReceipt, type Transport, type WalletClient } from 'viem'
import { g2ToEip2537, type BatchSummary } from '../consensus/index.js'
import { mined } from './actions.js'
import { CalldataError, nonSignerIndices, nonSignerArgs, type NonSignerArgs } from './calldata.js'
import { TaskManagerAbi } from './generated/artifacts.js'
import type { G2Point, OnChainOperatorSet } from './operator-tree.js'

type Wallet = WalletClient<Transport, Chain, Account>

/** A batch's quorum certificate as the aggregator holds it (what operators signed: consensus batchDigest). */
export interface BatchQuorumCertificate {
  root: Hex
  epoch: bigint
  signerBitmap: Uint8Array
  /** The aggregate BLS signature (G2, compressed or not). */
  aggregateSig: Uint8Array
}

/** TaskManager.BatchCertificate */
export type BatchCertificateArgs = {
  root: Hex
  epoch: bigint
  leafCount: number
  batchRef: Hex
  signerBitmap: Hex
  signature: G2Point
}

/** TaskManager.ModelCharge */
export type ModelChargeArgs = { modelKey: Hex, count: number, fees: bigint, firstDeadline: bigint, lastDeadline: bigint }

/** TaskManager.TabCharge */
export type TabChargeArgs = {
  requester: `0x${string}`
  cumulative: bigint
  sequence: bigint
  signature: Hex
  firstWord: bigint
  sequenceBits: readonly bigint[]
  models: readonly ModelChargeArgs[]
}

/** TaskManager.Validation */
export type ValidationArgs = { taskId: Hex, requestHash: Hex, resultHash: Hex }

/** Arguments of TaskManager.submitBatch(qc, nonSigners, tabs, validations). */
export type BatchCalldata = readonly [BatchCertificateArgs, NonSignerArgs[], TabChargeArgs[], ValidationArgs[]]

/** A requester's tab on chain: wei charged under its vouchers in total, and the last settled voucher's sequence. */
export type OnChainTab = { settled: bigint, lastSequence: bigint }

/** The claimed result of a batch leaf (TaskManager.Result): epoch is the batch certificate's. */
export type BatchResultArgs = { resultHash: Hex, outputRef: Hex, epoch: bigint }

/**
 * Arguments of TaskManager.submitBatch for `qc` of `set`'s epoch settling `summary`. Throws
 * CalldataError only for what cannot be expressed on chain (a QC of another epoch than `set`, a
 * signature that is no G2 point, a leaf count beyond uint32).
 */
export function batchCalldata (qc: BatchQuorumCertificate, summary: BatchSummary, set: OnChainOperatorSet): BatchCalldata {
  if (qc.epoch !== set.epoch) {
    throw new CalldataError(`batch certificate is for epoch ${qc.epoch} but the operator set is epoch ${set.epoch}; read the set of the certificate's epoch (readOperatorSet)`)
  }
  if (!Number.isInteger(summary.leafCount) || summary.leafCount < 0 || summary.leafCount >= 2 ** 32) {
    throw new CalldataError(`batch leafCount must be a uint32, got ${summary.leafCount}`)
  }
  let signature: G2Point
  try {
    signature = g2ToEip2537(qc.aggregateSig)
  } catch (err) {
    throw new CalldataError(`aggregateSig cannot be sent on-chain: ${(err as Error).message}`)
  }
  const certificate: BatchCertificateArgs = {
    root: qc.root,
    epoch: qc.epoch,
    leafCount: summary.leafCount,
    batchRef: summary.batchRef,
    signerBitmap: bytesToHex(qc.signerBitmap),
    signature
  }
  const nonSigners = nonSignerIndices(qc.signerBitmap, set.operators.length).map(index => nonSignerArgs(set, index))
  const tabs: TabChargeArgs[] = summary.tabs.map(t => ({
    requester: t.requester,
    cumulative: t.cumulative,
    sequence: t.sequence,
    signature: t.signature,
    firstWord: t.firstWord,
    sequenceBits: [...t.sequenceBits],
    models: t.models.map(m => ({ modelKey: m.modelKey, count: m.count, fees: m.fees, firstDeadline: m.firstDeadline, lastDeadline: m.lastDeadline }))
  }))
  const validations: ValidationArgs[] = summary.validations.map(v => ({ taskId: v.taskId, requestHash: v.requestHash, resultHash: v.resultHash }))
  return [certificate, nonSigners, tabs, validations]
}

/**
 * The simulated TaskManager.submitBatch from `account`, without sending it: `request` is what to
 * send, `result` false when the root is already stored (another aggregator's batch landed first).
 * A bad batch rejects with viem's ContractFunctionExecutionError carrying the named error.
 */
export async function simulateBatch (
  publicClient: PublicClient, account: Account, taskManager: `0x${string}`, qc: BatchQuorumCertificate, summary: BatchSummary, set: OnChainOperatorSet
) {
  return await publicClient.simulateContract({
    account, address: taskManager, abi: TaskManagerAbi, functionName: 'submitBatch', args: batchCalldata(qc, summary, set)
  })
}

/** Posts the batch; accepted = false when the same root was stored first (the contract then changes nothing). */
export async function submitBatch (
  walletClient: Wallet, publicClient: PublicClient, taskManager: `0x${string}`, qc: BatchQuorumCertificate, summary: BatchSummary, set: OnChainOperatorSet
): Promise<{ accepted: boolean, receipt: TransactionReceipt }> {
  const { request, result } = await simulateBatch(publicClient, walletClient.account, taskManager, qc, summary, set)
  return { accepted: result, receipt: await mined(publicClient, await walletClient.writeContract(request), 'TaskManager.submitBatch') }
}

/** The gas TaskManager.submitBatch of this batch would take from `account` now (rejects as simulateBatch does). */
export async function estimateBatchGas (
  publicClient: PublicClient, account: Account | `0x${string}`, taskManager: `0x${string}`, qc: BatchQuorumCertificate, summary: BatchSummary, set: OnChainOperatorSet
): Promise<bigint> {
  return await publicClient.estimateContractGas({
    account, address: taskManager, abi: TaskManagerAbi, functionName: 'submitBatch', args: batchCalldata(qc, summary, set)
  })
}

/** `requester`'s tab: what its vouchers have been charged in total and its last settled sequence (0n, 0n before any batch). */
export async function readTab (publicClient: PublicClient, taskManager: `0x${string}`, requester: `0x${string}`): Promise<OnChainTab> {
  const [settled, lastSequence] = await publicClient.readContract({ address: taskManager, abi: TaskManagerAbi, functionName: 'tabOf', args: [requester] })
  return { settled, lastSequence }
}

/** Whether `requester`'s tab task of nonce `sequence` is settled (in some batch). */
export async function isTabSequenceSettled (
  publicClient: PublicClient, taskManager: `0x${string}`, requester: `0x${string}`, sequence: bigint
): Promise<boolean> {
  return await publicClient.readContract({ address: taskManager, abi: TaskManagerAbi, functionName: 'isTabSequenceSettled', args: [requester, sequence] })
}

/** The epoch of the batch certificate that stored `root`; 0n when no batch has that root. */
export async function readBatchEpoch (publicClient: PublicClient, taskManager: `0x${string}`, root: Hex): Promise<bigint> {
  return await publicClient.readContract({ address: taskManager, abi: TaskManagerAbi, functionName: 'batchEpoch', args: [root] })
}

/**
 * Whether `result` is certified for `taskId` by a stored batch: `proof` (BatchTree.proof) takes
 * the leaf to a stored root whose certificate's epoch is result.epoch.
 */
export async function hasBatchResult (
  publicClient: PublicClient, taskManager: `0x${string}`, taskId: Hex, result: BatchResultArgs, proof: readonly Hex[]
): Promise<boolean> {
  return await publicClient.readContract({ address: taskManager, abi: TaskManagerAbi, functionName: 'hasResult', args: [taskId, result, proof] })
}
