import { hexToBytes } from 'viem'
import type { OperatorSet } from '../../consensus/index.js'
import { to0xHex, type QuorumCertificate } from '../../protocols/wire/index.js'
import { formatCanonicalOutput } from '../inference/index.js'
import { formatFailures, type RequestResult, type SettledResult } from '../requester/index.js'
import type { PoiResult } from '../client/index.js'

const BPS = 10_000n

/** `part` as a percentage of `whole`, two decimals: `75.00%`. */
export function formatShare (part: bigint, whole: bigint): string {
  if (whole === 0n) return '0%'
  return `${(Number((part * BPS * 100n) / whole) / 100 / 100).toFixed(2)}%`
}

/** A certified result: task, output, result hash and who signed it, against the set of its epoch. */
export function formatCertified (taskId: Uint8Array, certificate: QuorumCertificate, output: Uint8Array, signers: number[], set: OperatorSet, model?: string): string[] {
  const signedStake = signers.reduce((sum, i) => sum + set.operators[i].stake, 0n)
  const lines = [
    `task        ${to0xHex(taskId)}`,
    ...(model !== undefined ? [`model       ${model}`] : []),
    `output      ${formatCanonicalOutput(output)}`,
    `result hash ${to0xHex(certificate.resultHash)}`,
    `certificate verified: ${signers.length} of ${set.operators.length} operators signed, ${formatShare(signedStake, set.totalStake)} of stake (epoch ${set.epoch})`
  ]
  for (const i of signers) {
    const op = set.operators[i]
    lines.push(`  signer ${i}  ${op.address}  stake share ${formatShare(op.stake, set.totalStake)}`)
  }
  return lines
}

/**
 * The short human summary `poi request` and `poi devnet` print for a certified task. A
 * certificate is shown against the operator set of its epoch (the one it verified against);
 * `set` is the one loaded at start, used when the result does not carry its own.
 */
export function formatSummary (r: RequestResult | SettledResult, set: OperatorSet, model: string): string {
  if (r.source === 'chain') return formatSettled(r, model)
  return [
    ...formatCertified(r.taskId, r.certificate, r.output, r.signers, r.set ?? set, model),
    ...(r.source === 'full-node' ? ['certificate from a full node asked after the deadline (gossip did not bring it)'] : []),
    `time from announcement to certificate: ${(r.certifiedAt - r.announcedAt).toFixed(1)} ms`
  ].join('\n')
}

/** A result known only from the chain: what the contract accepted, and the output if a full node served it. */
function formatSettled (r: SettledResult, model: string): string {
  const s = r.settlement
  return [
    `task        ${to0xHex(r.taskId)}`,
    `model       ${model}`,
    `output      ${r.output !== undefined ? formatCanonicalOutput(r.output) : `not available: no full node served it ${formatFailures(r.outputFailures)}`}`,
    `result hash ${to0xHex(r.resultHash)}`,
    `settled on-chain: no full node showed the certificate; the TaskManager accepted one in epoch ${r.epoch} signed by ${formatShare(r.signedStake, r.totalStake)} of stake`,
    `  tx        ${s.txHash}`,
    `  posted by ${s.submitter}`,
    `time from announcement to the settled result: ${(r.certifiedAt - r.announcedAt).toFixed(1)} ms`
  ].join('\n')
}

/**
 * The same summary for a PoiResult (the client library's result): a certificate against the
 * operator set it verified against (`set` when it carries none), a chain-settled result as the
 * contract accepted it.
 */
export function formatPoiResult (r: PoiResult, set: OperatorSet, model: string): string {
  const latency = `${(r.latencyMs ?? 0).toFixed(1)} ms`
  const taskId = hexToBytes(r.taskId)
  if (r.certificate === undefined || r.output === undefined || r.signers === undefined) {
    return [
      `task        ${r.taskId}`,
      `model       ${model}`,
      `output      ${r.output !== undefined ? formatCanonicalOutput(r.output) : `not available: no full node served it ${formatFailures(r.outputFailures ?? [])}`}`,
      `result hash ${r.resultHash}`,
      `settled on-chain: no full node showed the certificate; the TaskManager accepted one in epoch ${r.epoch} signed by ${formatShare(r.signedStake, r.totalStake)} of stake`,
      ...(r.settlement !== undefined ? [`  tx        ${r.settlement.txHash}`, `  posted by ${r.settlement.submitter}`] : []),
      `time from announcement to the settled result: ${latency}`
    ].join('\n')
  }
  return [
    ...formatCertified(taskId, r.certificate, r.output, r.signers, r.operatorSet ?? set, model),
    ...(r.source === 'full-node' ? ['certificate from a full node asked after the deadline (gossip did not bring it)'] : []),
    `time from announcement to certificate: ${latency}`
  ].join('\n')
}
