/**
 * Typed errors of the consensus layer. Verification functions that face the network
 * (`verifyCertificate`, `verifySignatureSets`, `verifyEquivocationEvidence`) never throw on bad
 * bytes: they return false or a reason. These errors are for local inputs (keys, config files,
 * caller mistakes) where the caller must stop and fix something.
 */
import { errorWithCode } from '../protocols/wire/index.js'

/** Bytes that are not a valid BLS public key (wrong length, not on the curve, the identity). */
export class InvalidPublicKeyError extends errorWithCode('ERR_INVALID_BLS_PUBLIC_KEY') {}

/** Bytes or hex that are not a valid BLS secret key. */
export class InvalidSecretKeyError extends errorWithCode('ERR_INVALID_BLS_SECRET_KEY') {}

/** A field given to attestationMessage / signAttestation has the wrong size or range. */
export class AttestationFieldError extends errorWithCode('ERR_ATTESTATION_FIELD') {
  readonly field: string

  constructor (field: string, message: string) {
    super(`attestation field ${field}: ${message}`)
    this.field = field
  }
}

/** A genesis (operator set) file or object is invalid; `field` and `operatorIndex` locate the problem. */
export class GenesisError extends errorWithCode('ERR_GENESIS') {
  readonly field: string
  readonly operatorIndex?: number
  readonly path?: string

  constructor (message: string, options: { field: string, operatorIndex?: number, path?: string, cause?: unknown }) {
    super(message, { cause: options.cause })
    this.field = options.field
    this.operatorIndex = options.operatorIndex
    this.path = options.path
  }
}

/** TaskAggregation was configured or used wrongly by its caller. */
export class AggregationError extends errorWithCode('ERR_AGGREGATION') {}

/** The BufferedVerifier was closed, or its worker died, before a set was verified. */
export class VerifierError extends errorWithCode('ERR_VERIFIER') {}

/** A batch (issue 15) given to BatchTree or its helpers is malformed: no leaves, leaves out of task id order or repeated, a bad tab sequence. */
export class BatchFormatError extends errorWithCode('ERR_BATCH_FORMAT') {}
