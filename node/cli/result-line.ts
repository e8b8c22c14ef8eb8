/**
 * The parts of a `result` event line (node/cli/events.ts) that `poi request` and `poi result`
 * both print: the certificate's fields as on the wire, and the canonical output decoded, so a
 * script can check the result again on its own (verifyCertificate against the epoch's
 * operator set, keccak256 of the output against the result hash) and read the output without
 * the canonical format's decoder.
 */
import type { QuorumCertificate } from '../../protocols/wire/index.js'
import type { PoiResult } from '../client/index.js'
// The output's decoding is the client library's; the CLI's imports of it stay as they were.
export { outputTensorLines } from '../client/index.js'

/** The certificate fields a result line carries beside its task, result hash, epoch and stakes. */
export interface CertificateLineFields {
  signerBitmap: Uint8Array | null
  aggregateSig: Uint8Array | null
  certificateVersion: number | null
}

/** The wire fields of `certificate`; all null for a result known only from the chain. */
export function certificateLineFields (certificate: QuorumCertificate | undefined): CertificateLineFields {
  if (certificate === undefined) return { signerBitmap: null, aggregateSig: null, certificateVersion: null }
  return { signerBitmap: certificate.signerBitmap, aggregateSig: certificate.aggregateSig, certificateVersion: certificate.version }
}

/**
 * What every `result` line says of a verified result, whichever command prints it: the task,
 * the result and its output (raw and decoded), who signed, the certificate's wire fields, the
 * epoch and the stakes. Each command adds its own fields (model, latency, fee, on-chain state).
 */
export function resultLineFields (r: PoiResult): {
  taskId: PoiResult['taskId'], resultHash: PoiResult['resultHash'], outputRef: PoiResult['outputRef'], output: Uint8Array | null,
  outputTensors: PoiResult['outputTensors'], signers: number[] | null, epoch: bigint, signedStake: bigint, totalStake: bigint
} & CertificateLineFields {
  return {
    taskId: r.taskId,
    resultHash: r.resultHash,
    outputRef: r.outputRef,
    output: r.output ?? null,
    outputTensors: r.outputTensors,
    signers: r.signers ?? null,
    ...certificateLineFields(r.certificate),
    epoch: r.epoch,
    signedStake: r.signedStake,
    totalStake: r.totalStake
  }
}
