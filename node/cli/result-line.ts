/**
 * The parts of a `result` event line (node/cli/events.ts) that `poi request` and `poi result`
 * both print: the certificate's fields as on the wire, and the canonical output decoded, so a
 * script can check the result again on its own (verifyCertificate against the epoch's
 * operator set, keccak256 of the output against the result hash) and read the output without
 * the canonical format's decoder.
 */
import type { QuorumCertificate } from '../../protocols/wire/index.js'
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
