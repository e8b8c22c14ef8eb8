import type { OperatorSet } from '../../consensus/index.js'
import { to0xHex, type QuorumCertificate } from '../../protocols/wire/index.js'
import { formatCanonicalOutput } from '../inference/index.js'
import type { RequestResult } from '../requester/index.js'

const BPS = 10_000n

function share (part: bigint, whole: bigint): string {
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
    `certificate verified: ${signers.length} of ${set.operators.length} operators signed, ${share(signedStake, set.totalStake)} of stake (epoch ${set.epoch})`
  ]
  for (const i of signers) {
    const op = set.operators[i]
    lines.push(`  signer ${i}  ${op.address}  stake share ${share(op.stake, set.totalStake)}`)
  }
  return lines
}

/** The short human summary `poi request` and `poi devnet` print for a certified task. */
export function formatSummary (r: RequestResult, set: OperatorSet, model: string): string {
  return [
    ...formatCertified(r.taskId, r.certificate, r.output, r.signers, set, model),
    `time from announcement to certificate: ${(r.certifiedAt - r.announcedAt).toFixed(1)} ms`
  ].join('\n')
}
