/**
 * `poi result <task id>`: a light peer asks full nodes over /poi/result/1/, verifies the
 * certificate against the operator set of its epoch and the output against the certified
 * result hash, and with a chain also checks the on-chain result. Nothing a node says is taken
 * on trust, and each failure says what failed: a full node without the certificate is not an
 * RPC that cannot be read.
 */
import { verifyCertificate, type OperatorSet } from '../../consensus/index.js'
import { PoiError, fromHex, to0xHex } from '../../protocols/wire/index.js'
import type { ChainClient } from '../chain-client.js'
import { PoiNode } from '../poi-node.js'
import {
  CertificateRejectedError, OutputNotFoundError, ResultNotFoundError, describeSettlement, fetchOutput, formatFailures, lookupResult, readSettlement,
  waitForNetwork, type FoundResult, type PeerFailure
} from '../requester/index.js'
import { NODE_OPTIONS, UsageError, num, type OptionValues } from './args.js'
import { ChainReadError, chainOperatorSets, operatorSource, readChain } from './operator-source.js'
import { CliOutput } from './output.js'
import { requesterConfig, requesterKeystore } from './requester-setup.js'
import { certificateLineFields, outputTensorLines } from './result-line.js'
import { formatCertified, formatShare } from './summary.js'
import { decodeFunctionData, hexToBytes } from 'viem'
import { TaskManagerAbi } from '../../contracts/index.js'
import { formatCanonicalOutput, modelIdToString } from '../inference/index.js'

/** The chain settled the task with another result than the certificate the network showed. */
export class OnChainResultMismatchError extends PoiError {
  constructor (taskId: Uint8Array, onChain: string, certified: string) {
    super('ERR_ONCHAIN_RESULT_MISMATCH', `the chain settled task ${to0xHex(taskId)} with result ${onChain}, not the certified ${certified}`)
  }
}

/** `poi result`'s flags (declared with their help in program.ts). */
const RESULT_OPTIONS = { ...NODE_OPTIONS, quorum: { type: 'string' } } as const

export async function runResult (values: OptionValues<typeof RESULT_OPTIONS>, positionals: string[]): Promise<void> {
  const taskId = /^(0x)?[0-9a-fA-F]{64}$/.test(positionals[0] ?? '') ? fromHex(positionals[0]) : undefined
  if (taskId === undefined) throw new UsageError('usage: poi result <task id: 32 bytes hex> --bootstrap <addr> (--rpc <url> | --chain <file> | --genesis <file>)')
  const out = new CliOutput(values.json === true)
  // Which contracts were accepted is said even with --json (on stderr): it is what the answer is trusted on.
  const config = await requesterConfig('result', values, (line) => out.notice(line))
  const keystore = await requesterKeystore(values, config)
  const { operatorSet, chain } = await operatorSource(config, keystore)
  const quorumBps = num(values.quorum, 'quorum')
  const node = await PoiNode.start({ operate: false, aggregate: false, light: true, keystore, config, operatorSet })
  try {
    await waitForNetwork(node)
    let found: FoundResult
    try {
      found = await findResult(node, taskId, { quorumBps, operatorSet, chain })
    } catch (err) {
      // No full node shows a certificate (a relay may hide it): the chain may still have settled the task.
      if (chain == null || !(err instanceof ResultNotFoundError)) throw err
      if (!await showSettled(node, chain, taskId, out)) throw err
      return
    }
    const verdict = verifyCertificate(found.certificate, found.set, { quorumBps })
    if (!verdict.ok) throw new CertificateRejectedError(taskId, verdict.reason)
    const onChain = chain != null
      ? await readChain(`the on-chain result of task ${to0xHex(taskId)}`, chain.config.rpcUrl, async () => await chain.result(taskId))
      : undefined
    const certified = to0xHex(found.certificate.resultHash)
    if (onChain != null && onChain.resultHash.toLowerCase() !== certified) {
      throw new OnChainResultMismatchError(taskId, onChain.resultHash, certified)
    }
    const task = chain != null && onChain != null
      ? await readChain(`the settling transaction of task ${to0xHex(taskId)}`, chain.config.rpcUrl, async () => await settledTask(chain, taskId))
      : undefined
    out.event({
      event: 'result',
      taskId,
      // The certificate does not name its model: only the settling transaction's task does.
      modelId: task?.modelId ?? null,
      resultHash: found.certificate.resultHash,
      outputRef: found.certificate.outputRef,
      output: found.output,
      outputTensors: outputTensorLines(found.output),
      signers: verdict.signers,
      ...certificateLineFields(found.certificate),
      epoch: found.certificate.epoch,
      signedStake: verdict.signedStake,
      totalStake: found.set.totalStake,
      ...(chain != null ? { onChain: onChain != null ? { ...onChain, ...(task !== undefined ? { submitter: task.submitter, txHash: task.txHash } : {}) } : null } : {}),
      ...(task !== undefined ? { fee: task.fee } : {})
    }, [
      ...formatCertified(taskId, found.certificate, found.output, verdict.signers, found.set),
      chain == null ? 'on-chain    (no --chain given)' : onChain != null ? `on-chain    settled, same result (epoch ${onChain.epoch}, outputRef ${onChain.outputRef})` : 'on-chain    not settled yet'
    ].join('\n'))
  } finally {
    await node.stop()
  }
}

/**
 * Prints the task's result as the chain settled it, with its output when a full node serves it
 * (then returns true; without the output it prints the result and throws OutputNotFoundError).
 * False: the chain holds no result for the task either.
 */
async function showSettled (node: PoiNode, chain: ChainClient, taskId: Uint8Array, out: CliOutput): Promise<boolean> {
  const settlement = await readChain(`the on-chain result of task ${to0xHex(taskId)}`, chain.config.rpcUrl, async () => await readSettlement(chain, taskId))
  if (settlement === undefined) return false
  let output: Uint8Array | undefined
  let failures: PeerFailure[] = []
  try {
    output = await fetchOutput(node, settlement.outputRef, settlement.resultHash)
  } catch (err) {
    if (!(err instanceof OutputNotFoundError)) throw err
    failures = err.failures
  }
  out.event({
    event: 'result',
    source: 'chain',
    taskId,
    modelId: null,
    resultHash: settlement.resultHash,
    outputRef: settlement.outputRef,
    output: output ?? null,
    outputTensors: outputTensorLines(output),
    signers: null,
    ...certificateLineFields(undefined),
    epoch: settlement.epoch,
    signedStake: settlement.signedStake,
    totalStake: settlement.totalStake,
    onChain: { resultHash: settlement.resultHash, outputRef: settlement.outputRef, epoch: settlement.epoch, submitter: settlement.submitter, txHash: settlement.txHash }
  }, [
    `task        ${to0xHex(taskId)}`,
    `output      ${output !== undefined ? formatCanonicalOutput(output) : `not available: no full node served it ${formatFailures(failures)}`}`,
    `result hash ${to0xHex(settlement.resultHash)}`,
    `no full node showed the certificate; the task was ${describeSettlement(settlement)}, signed by ${formatShare(settlement.signedStake, settlement.totalStake)} of stake`
  ].join('\n'))
  if (output === undefined) throw new OutputNotFoundError(settlement.outputRef, failures)
  return true
}

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
  const { quorumBps, operatorSet, chain } = options
  if (chain == null) {
    return await lookupResult(node, taskId, { quorumBps, setOf: async (epoch) => epoch === operatorSet.epoch ? operatorSet : undefined })
  }
  const sets = chainOperatorSets(chain, chain.config.rpcUrl)
  try {
    return await lookupResult(node, taskId, { quorumBps, setOf: sets.setOf })
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
