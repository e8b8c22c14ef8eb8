/**
 * `poi result <task id>`: a light peer asks full nodes over /poi/result/1/, verifies the
 * certificate against the operator set of its epoch and the output against the certified
 * result hash, and with a chain also checks the on-chain result. Nothing a node says is taken
 * on trust, and each failure says what failed: a full node without the certificate is not an
 * RPC that cannot be read. The work is the client library's (PoiClient.result); this command
 * turns flags into its options and prints what it returns.
 */
import { hexToBytes } from 'viem'
import { fromHex } from '../../protocols/wire/index.js'
import { formatCanonicalOutput } from '../inference/index.js'
import { OutputNotFoundError, describeSettlement, formatFailures } from '../requester/index.js'
import { PoiClient, type PoiResult } from '../client/index.js'
import { NODE_OPTIONS, UsageError, num, type OptionValues } from './args.js'
import { CliOutput } from './output.js'
import { requesterConfig } from './requester-setup.js'
import { certificateLineFields, resultLineFields } from './result-line.js'
import { formatCertified, formatShare } from './summary.js'

// The error lives in the client library now; existing imports of it from here keep working.
export { OnChainResultMismatchError } from '../client/index.js'

/** `poi result`'s flags (declared with their help in program.ts). */
const RESULT_OPTIONS = { ...NODE_OPTIONS, quorum: { type: 'string' } } as const

export async function runResult (values: OptionValues<typeof RESULT_OPTIONS>, positionals: string[]): Promise<void> {
  const taskId = /^(0x)?[0-9a-fA-F]{64}$/.test(positionals[0] ?? '') ? fromHex(positionals[0]) : undefined
  if (taskId === undefined) throw new UsageError('usage: poi result <task id: 32 bytes hex> --bootstrap <addr> (--rpc <url> | --chain <file> | --genesis <file>)')
  const out = new CliOutput(values.json === true)
  // Which contracts were accepted is said even with --json (on stderr): it is what the answer is trusted on.
  const config = await requesterConfig('result', values, (line) => out.notice(line))
  const quorumBps = num(values.quorum, 'quorum')
  const client = await PoiClient.connect({ bootstrap: config.bootstrap, config, keystore: values.keystore })
  try {
    const r = await client.result(taskId, { quorumBps })
    if (r.source === 'chain') {
      showSettled(r, out)
      return
    }
    out.event({
      event: 'result',
      ...resultLineFields(r),
      // The certificate does not name its model: only the settling transaction's task does.
      modelId: r.modelId ?? null,
      ...(r.onChain !== undefined ? { onChain: r.onChain } : {}),
      ...(r.fee !== undefined ? { fee: r.fee } : {})
    }, [
      ...formatCertified(taskId, r.certificate!, r.output!, r.signers!, r.operatorSet!),
      r.onChain === undefined ? 'on-chain    (no --chain given)' : r.onChain !== null ? `on-chain    settled, same result (epoch ${r.onChain.epoch}, outputRef ${r.onChain.outputRef})` : 'on-chain    not settled yet'
    ].join('\n'))
  } finally {
    await client.close()
  }
}

/**
 * Prints the task's result as the chain settled it (no full node showed its certificate), with
 * its output when a full node serves it; without the output it prints the result and throws
 * OutputNotFoundError.
 */
function showSettled (r: PoiResult, out: CliOutput): void {
  const settlement = r.settlement!
  out.event({
    event: 'result',
    source: 'chain',
    taskId: r.taskId,
    modelId: null,
    resultHash: r.resultHash,
    outputRef: r.outputRef,
    output: r.output ?? null,
    outputTensors: r.outputTensors,
    signers: null,
    ...certificateLineFields(undefined),
    epoch: r.epoch,
    signedStake: r.signedStake,
    totalStake: r.totalStake,
    onChain: { resultHash: r.resultHash, outputRef: r.outputRef, epoch: r.epoch, submitter: settlement.submitter, txHash: settlement.txHash }
  }, [
    `task        ${r.taskId}`,
    `output      ${r.output !== undefined ? formatCanonicalOutput(r.output) : `not available: no full node served it ${formatFailures(r.outputFailures ?? [])}`}`,
    `result hash ${r.resultHash}`,
    `no full node showed the certificate; the task was ${describeSettlement(settlement)}, signed by ${formatShare(r.signedStake, r.totalStake)} of stake`
  ].join('\n'))
  if (r.output === undefined) throw new OutputNotFoundError(hexToBytes(r.outputRef), r.outputFailures ?? [])
}

// Finding a result is the client library's; these stay importable from here.
export { settledTask, findResult, explainLookupFailure } from '../client/index.js'
export type { SettledTask, FindResultOptions } from '../client/index.js'
