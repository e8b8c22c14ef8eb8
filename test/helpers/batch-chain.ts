/**
 * Batches of tab tasks for anvil tests and the gas benchmark: the settlement summary an
 * aggregator would build from its tasks (consensus/batch.ts types, vouchers signed by each
 * requester's key) and the quorum's certificate over it (each signer BLS-signs consensus
 * batchDigest; the signatures are aggregated as operators' are).
 */
import { hexToBigInt, keccak256, type Hex, type LocalAccount } from 'viem'
import bls from '../../consensus/bls.js'
import {
  BatchTree, batchDigest, batchSummaryHash, blsSign, encodeSignerBitmap, sequenceWords,
  type BatchLeaf, type BatchSummary, type ModelCharge, type SigningDomain, type TabCharge
} from '../../consensus/index.js'
import type { BatchQuorumCertificate } from '../../contracts/index.js'
import { signVoucher } from '../../protocols/wire/index.js'

/** A tab task as a requester made it: its leaf, its model and fee, and what its voucher authorised with it. */
export interface TabTask {
  account: LocalAccount
  sequence: bigint
  modelId: Uint8Array
  fee: bigint
  deadlineMs: bigint
  leaf: BatchLeaf
  /** The requester's cumulative authorisation with this task (its voucher's `cumulative`). */
  cumulative: bigint
}

const ascending = (x: Hex, y: Hex): number => hexToBigInt(x) < hexToBigInt(y) ? -1 : 1

/** The batch's tree and summary from its tasks: leaves by task id, tabs by requester, each with its highest voucher. */
export async function tabBatch (tasks: readonly TabTask[], domain: SigningDomain, batchRef: Hex): Promise<{ tree: BatchTree, summary: BatchSummary }> {
  const tree = new BatchTree([...tasks].sort((x, y) => ascending(x.leaf.taskId, y.leaf.taskId)).map(t => t.leaf))
  const byRequester = new Map<Hex, TabTask[]>()
  for (const t of tasks) byRequester.set(t.account.address, [...(byRequester.get(t.account.address) ?? []), t])
  const tabs: TabCharge[] = []
  for (const [requester, own] of byRequester) {
    const highest = own.reduce((a, b) => b.sequence > a.sequence ? b : a)
    const signature = await signVoucher(highest.account, domain.chainId, { requester, taskManager: domain.taskManager, cumulative: highest.cumulative, sequence: highest.sequence })
    const models = new Map<Hex, ModelCharge>()
    for (const t of own) {
      const modelKey = keccak256(t.modelId)
      const seconds = t.deadlineMs / 1000n
      const m = models.get(modelKey)
      models.set(modelKey, m === undefined
        ? { modelKey, count: 1, fees: t.fee, firstDeadline: seconds, lastDeadline: seconds }
        : { modelKey, count: m.count + 1, fees: m.fees + t.fee, firstDeadline: seconds < m.firstDeadline ? seconds : m.firstDeadline, lastDeadline: seconds > m.lastDeadline ? seconds : m.lastDeadline })
    }
    tabs.push({
      requester, cumulative: highest.cumulative, sequence: highest.sequence, signature,
      ...sequenceWords(own.map(t => t.sequence)),
      models: [...models.values()].sort((x, y) => ascending(x.modelKey, y.modelKey))
    })
  }
  tabs.sort((x, y) => ascending(x.requester, y.requester))
  return { tree, summary: { leafCount: tasks.length, batchRef, tabs, validations: [] } }
}

/** The certificate of `signers` (indices into `secretKeys`, the epoch's operators in order) over `root` and `summary`. */
export function signBatch (
  domain: SigningDomain, epoch: bigint, secretKeys: readonly Uint8Array[], signers: readonly number[], root: Hex, summary: BatchSummary
): BatchQuorumCertificate {
  const digest = batchDigest(domain, root, epoch, batchSummaryHash(summary))
  return {
    root,
    epoch,
    signerBitmap: encodeSignerBitmap([...signers]),
    aggregateSig: bls.aggregateSignatures(signers.map(i => blsSign(secretKeys[i], digest)))
  }
}
