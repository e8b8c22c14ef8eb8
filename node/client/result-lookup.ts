/**
 * Finding the certified result of a task announced earlier (by anyone): the first full node
 * whose certificate verifies against the operator set of its epoch, and with a chain the task
 * behind a settled certificate, read from the transaction that settled it.
 */
import { decodeFunctionData, hexToBytes } from 'viem'
import type { OperatorSet } from '../../consensus/index.js'
import { TaskManagerAbi } from '../../contracts/index.js'
import { to0xHex } from '../../protocols/wire/index.js'
import type { ChainClient } from '../chain-client.js'
import { modelIdToString } from '../inference/index.js'
import type { PoiNode } from '../poi-node.js'
import { ResultNotFoundError, formatFailures, lookupResult, type FoundResult } from '../requester/index.js'
import { ChainReadError, chainOperatorSets } from './chain-read.js'

/** The task a certificate settled on-chain was for, read from the transaction that settled it. */
export interface SettledTask { modelId: string, fee: bigint, submitter: `0x${string}`, txHash: `0x${string}` }

/**
 * The task behind a settled certificate, decoded from the calldata of the transaction whose
 * CertificateAccepted event settled it. The TaskManager accepted it only if the task's digest is
 * the certificate's task id, so the model and fee read here are the task's. Undefined when the
 * transaction is not a direct TaskManager.submitCertificate (a contract called it).
 */
export async function settledTask (chain: Pick<ChainClient, 'waitForAcceptance' | 'publicClient' | 'config'>, taskId: Uint8Array): Promise<SettledTask | undefined> {
  const accepted = await chain.waitForAcceptance(taskId, 0)
  const tx = await chain.publicClient.getTransaction({ hash: accepted.txHash })
  if (tx.to?.toLowerCase() !== chain.config.taskManager.toLowerCase()) return undefined
  let call
  try {
    call = decodeFunctionData({ abi: TaskManagerAbi, data: tx.input })
  } catch {
    return undefined
  }
  if (call.functionName !== 'submitCertificate') return undefined
  const [qc, , task] = call.args
  if (qc.taskId.toLowerCase() !== to0xHex(taskId)) return undefined
  return { modelId: modelIdToString(hexToBytes(task.modelId)), fee: task.fee, submitter: accepted.submitter, txHash: accepted.txHash }
}

export interface FindResultOptions {
  quorumBps?: number
  signal?: AbortSignal
  /** The current operator set: without a chain, the only one a certificate can be checked against. */
  operatorSet: OperatorSet
  /** With a chain, a certificate of any epoch is checked against that epoch's on-chain set. */
  chain?: Pick<ChainClient, 'operatorSet' | 'config'>
}

/**
 * The task's certificate and output from the first full node whose answer verifies. When none
 * does and reading an epoch's operator set from the chain failed, that failure is what is
 * reported (ChainReadError): the certificates shown could not be checked, which is not the
 * same as no node having one (ResultNotFoundError, listing every peer asked and why).
 */
export async function findResult (node: PoiNode, taskId: Uint8Array, options: FindResultOptions): Promise<FoundResult> {
  const { quorumBps, operatorSet, chain, signal } = options
  if (chain == null) {
    return await lookupResult(node, taskId, { quorumBps, signal, setOf: async (epoch) => epoch === operatorSet.epoch ? operatorSet : undefined })
  }
  const sets = chainOperatorSets(chain, chain.config.rpcUrl)
  try {
    return await lookupResult(node, taskId, { quorumBps, signal, setOf: sets.setOf })
  } catch (err) {
    throw explainLookupFailure(err, taskId, sets.failures)
  }
}

/** A lookup that found nothing because chain reads failed is reported as the first such failure. */
export function explainLookupFailure (err: unknown, taskId: Uint8Array, chainFailures: readonly ChainReadError[]): unknown {
  if (!(err instanceof ResultNotFoundError) || chainFailures.length === 0) return err
  const first = chainFailures[0]
  const shown = chainFailures.length === 1 ? 'the certificate a full node showed' : `the certificates ${chainFailures.length} full nodes showed`
  return new ChainReadError(first.what, first.rpcUrl, first.cause, `${shown} for task ${to0xHex(taskId)} cannot be checked without it ${formatFailures(err.failures)}`)
}
