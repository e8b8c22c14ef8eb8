/**
 * `poi devnet --batch` (issue 15): tab tasks from two requesters over the devnet's models, each
 * certified over gossip as before, then settled on chain in ONE batch by the aggregator
 * (node/roles/batcher.ts), and every leaf proved on chain with its Merkle proof
 * (TaskManager.hasResult(taskId, result, proof)). Prints the batch's gas per task beside the
 * single certificate's. Loaded only with --batch; the batch test (test/batch-chain) runs the same.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { bytesToHex, type Hex } from 'viem'
import type { PrivateKeyAccount } from 'viem/accounts'
import { hasBatchResult, readTab } from '../../contracts/index.js'
import { BatchTree } from '../../consensus/index.js'
import { PoiError, to0xHex } from '../../protocols/wire/index.js'
import { compareTaskIds } from '../roles/index.js'
import type { PoiNode } from '../poi-node.js'
import { RequesterTab, requestInference, type RequestResult } from '../requester/index.js'
import type { EventOf } from './events.js'
import type { LocalNetwork } from './local-network.js'
import { readTaskFee } from './payment-setup.js'

/** Tab tasks each requester sends: 3 each from 2 requesters makes a 6-leaf batch across the devnet's models. */
export const DEVNET_BATCH_TASKS_PER_REQUESTER = 3
export const DEVNET_BATCH_REQUESTERS = 2
/**
 * The devnet's aggregator closes its batch on the size bound (exactly the devnet's tab tasks),
 * and this time bound only catches a task that never certifies: tasks certify within seconds.
 */
export const DEVNET_BATCH_MAX_WAIT_MS = 60_000
/** How long the devnet waits for the batch on chain once every task is certified (signatures, then one transaction). */
const BATCH_SETTLEMENT_TIMEOUT_MS = 60_000
const TASK_TIMEOUT_MS = 30_000

/** The batch went wrong: failed on chain, or a leaf the chain does not prove. */
export class DevnetBatchError extends PoiError {
  constructor (message: string) {
    super('ERR_DEVNET_BATCH', message)
  }
}

/** A model the batch's tasks use, with an input for it. */
export interface BatchDemoModel { modelId: Uint8Array, input: Uint8Array, name: string }

export interface BatchDemoResult {
  root: Hex
  txHash: Hex | undefined
  gasUsed: bigint | undefined
  results: RequestResult[]
  requesters: number
  models: number
  /** Leaves whose (taskId, result, proof) TaskManager.hasResult accepted. */
  proved: number
  /** hasResult for a leaf with a changed result hash: must be false. */
  forgedAccepted: boolean
}

/**
 * Sends DEVNET_BATCH_TASKS_PER_REQUESTER tab tasks per requester (the models taken in turn), all
 * at once; waits for the aggregator's batch of them to settle on chain; proves every leaf on chain.
 * The aggregator must close its batch at `accounts.length * DEVNET_BATCH_TASKS_PER_REQUESTER`
 * leaves (its --batch-max-leaves), so they land in one batch.
 */
export async function runBatchDemo (
  net: LocalNetwork, requester: PoiNode, accounts: PrivateKeyAccount[], models: BatchDemoModel[], progress: (line: string) => void
): Promise<BatchDemoResult> {
  const chain = net.chain
  if (chain == null) throw new DevnetBatchError('--batch needs the devnet\'s chain (leave out --offchain): batches settle on chain')
  const { taskManager } = chain.deployment
  const publicClient = chain.client.publicClient
  const chainId = BigInt(chain.anvil.chainId)
  const fees = await Promise.all(models.map(async m => (await readTaskFee(chain.client, m.modelId)).fee))
  const tabs = await Promise.all(accounts.map(async account => await RequesterTab.open({
    dir: await mkdir(join(net.root, 'tabs', account.address), { recursive: true }).then(() => join(net.root, 'tabs', account.address)), account, chainId, taskManager, readTab: async (r) => await readTab(publicClient, taskManager, r)
  })))
  const total = accounts.length * DEVNET_BATCH_TASKS_PER_REQUESTER
  progress(`sending ${total} tab tasks (${DEVNET_BATCH_TASKS_PER_REQUESTER} from each of ${accounts.length} requesters, over ${models.map(m => m.name).join(' and ')}), paid from credit tabs: each certified over gossip, then settled together in one batch`)
  const sends = accounts.flatMap((account, r) => Array.from({ length: DEVNET_BATCH_TASKS_PER_REQUESTER }, async (_, k) => {
    const m = (r + k) % models.length
    return await requestInference(requester, account, { modelId: models[m]!.modelId, input: models[m]!.input, timeoutMs: TASK_TIMEOUT_MS, fee: fees[m], tab: tabs[r] })
  }))
  const results = await Promise.all(sends)
  progress(`all ${total} tab tasks certified; waiting for the aggregator's batch on chain`)
  const ids = new Set<string>(results.map(r => to0xHex(r.taskId)))
  const covers = (e: EventOf<'batch'>): boolean => [...ids].every(id => e.taskIds.some(t => t.toLowerCase() === id))
  const ended = await net.aggregator.waitForEvent('batch',
    e => (e.state === 'settled' && covers(e)) || (e.state === 'failed' && e.taskIds.some(t => ids.has(t.toLowerCase()))),
    BATCH_SETTLEMENT_TIMEOUT_MS, 'the batch of the tab tasks settled on chain')
  if (ended.state === 'failed') throw new DevnetBatchError(`the batch ${ended.root} failed on chain: ${ended.reason ?? 'no reason given'}`)
  const settled = ended
  if (settled.leaves !== total) throw new DevnetBatchError(`the batch ${settled.root} holds ${settled.leaves} leaves, expected the ${total} tab tasks`)

  // Anyone holding the leaves rebuilds the tree and proves each result against the stored root.
  const leaves = results.map(r => ({ taskId: to0xHex(r.taskId), resultHash: to0xHex(r.resultHash), outputRef: to0xHex(r.outputRef) }))
    .sort((a, b) => compareTaskIds(a.taskId, b.taskId))
  const tree = new BatchTree(leaves)
  if (tree.root.toLowerCase() !== settled.root.toLowerCase()) throw new DevnetBatchError(`the batch's root ${settled.root} is not the root ${tree.root} of the certified results`)
  const epoch = results[0]!.epoch
  let proved = 0
  for (const [k, leaf] of leaves.entries()) {
    if (await hasBatchResult(publicClient, taskManager, leaf.taskId, { resultHash: leaf.resultHash, outputRef: leaf.outputRef, epoch }, tree.proof(k))) proved++
  }
  const forged = leaves[0]!
  const forgedAccepted = await hasBatchResult(publicClient, taskManager, forged.taskId, { resultHash: bytesToHex(new Uint8Array(32).fill(0xee)), outputRef: forged.outputRef, epoch }, tree.proof(0))
  return {
    root: settled.root,
    txHash: settled.txHash,
    gasUsed: settled.gasUsed !== undefined ? BigInt(settled.gasUsed) : undefined,
    results,
    requesters: accounts.length,
    models: models.length,
    proved,
    forgedAccepted
  }
}

/** The devnet's lines for a settled batch: tx, gas per task beside the single certificate's, the proofs. */
export function formatBatchDemo (r: BatchDemoResult, taskManager: Hex, singleGas: bigint | undefined): string {
  const n = BigInt(r.results.length)
  const perTask = r.gasUsed !== undefined ? r.gasUsed / n : undefined
  return [
    '',
    `batch       TaskManager ${taskManager}.submitBatch: ${r.results.length} tab tasks from ${r.requesters} requesters over ${r.models} model${r.models === 1 ? '' : 's'}, one certificate`,
    `  root      ${r.root}`,
    `  tx        ${r.txHash ?? '(sent by another aggregator)'}`,
    `  gas used  ${r.gasUsed ?? 'unknown'}${perTask !== undefined ? `: ${perTask} gas per task` : ''}` +
      (singleGas !== undefined && perTask !== undefined ? ` (a single certificate above: ${singleGas}, ${(Number(singleGas) / Number(perTask)).toFixed(1)}x as much per task)` : ''),
    `  proofs    ${r.proved} of ${r.results.length} leaves proved on chain by hasResult(taskId, result, Merkle proof); a forged result ${r.forgedAccepted ? 'WAS ACCEPTED' : 'is refused'}`,
    ''
  ].join('\n')
}
