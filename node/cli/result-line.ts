/**
 * The parts of a `result` event line (node/cli/events.ts) that `poi request` and `poi result`
 * both print: the certificate's fields as on the wire, and the canonical output decoded, so a
 * script can check the result again on its own (verifyCertificate against the epoch's
 * operator set, keccak256 of the output against the result hash) and read the output without
 * the canonical format's decoder.
 */
import type { QuorumCertificate } from '../../protocols/wire/index.js'
import { CanonicalOutputError, decodeCanonicalOutput } from '../inference/index.js'
import type { OutputTensorLine } from './events.js'

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
 * The canonical output as tensors (see OutputTensorLine); null when there is no output, or when
 * it does not decode (a certified output that a newer format wrote: the raw hex still stands).
 */
export function outputTensorLines (output: Uint8Array | undefined | null): OutputTensorLine[] | null {
  if (output == null) return null
  let decoded
  try {
    decoded = decodeCanonicalOutput(output)
  } catch (err) {
    if (err instanceof CanonicalOutputError) return null
    throw err
  }
  return decoded.outputs.map((t): OutputTensorLine => {
    const base = { name: t.name, dtype: t.dtype, shape: [...t.dims] }
    switch (t.encoding) {
      case 'exact':
      case 'grid': return { ...base, encoding: t.encoding, values: t.values.map(jsonNumber) }
      case 'argmax': return { ...base, encoding: 'argmax', values: [...t.labels] }
      case 'topk': return { ...base, encoding: 'topk', values: t.labels.flat() }
    }
    throw new CanonicalOutputError(`unknown encoding of output ${base.name}`)
  })
}

/** A value JSON can hold exactly: finite floats as numbers, the rest as strings. */
function jsonNumber (v: number | bigint): number | string {
  if (typeof v === 'bigint') return v.toString()
  return Number.isFinite(v) ? v : String(v)
}
