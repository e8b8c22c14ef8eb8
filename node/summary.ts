import type { OperatorSet } from '../consensus/index.js'
import { formatCanonicalOutput } from './inference/index.js'
import type { RequestResult } from './requester.js'

const BPS = 10_000n

function share (part: bigint, whole: bigint): string {
  if (whole === 0n) return '0%'
  return `${(Number((part * BPS * 100n) / whole) / 100 / 100).toFixed(2)}%`
}

/** The short human summary `poi request` and `poi devnet` print for a certified task. */
export function formatSummary (r: RequestResult, set: OperatorSet, model: string): string {
  const lines = [
    `task        0x${Buffer.from(r.taskId).toString('hex')}`,
    `model       ${model}`,
    `output      ${formatCanonicalOutput(r.output)}`,
    `result hash 0x${Buffer.from(r.certificate.resultHash).toString('hex')}`,
    `certificate verified: ${r.signers.length} of ${set.operators.length} operators signed, ${share(r.signedStake, r.totalStake)} of stake (epoch ${set.epoch})`
  ]
  for (const i of r.signers) {
    const op = set.operators[i]
    lines.push(`  signer ${i}  ${op.address}  stake share ${share(op.stake, set.totalStake)}`)
  }
  lines.push(`time from announcement to certificate: ${(r.certifiedAt - r.announcedAt).toFixed(1)} ms`)
  return lines.join('\n')
}
