/**
 * Typed errors of the consensus layer. Verification functions that face the network
 * (`verifyCertificate`, `verifySignatureSets`, `verifyEquivocationEvidence`) never throw on bad
 * bytes: they return false or a reason. These errors are for local inputs (keys, config files,
 * caller mistakes) where the caller must stop and fix something.
 */
import { PoiError } from '../protocols/wire/index.js'

/** Bytes that are not a valid BLS public key (wrong length, not on the curve, the identity). */
export class InvalidPublicKeyError extends PoiError {
  static readonly code = 'ERR_INVALID_BLS_PUBLIC_KEY'
  declare readonly code: typeof InvalidPublicKeyError.code
  constructor (message: string) {
    super(InvalidPublicKeyError.code, message)
  }
}

/** Bytes or hex that are not a valid BLS secret key. */
export class InvalidSecretKeyError extends PoiError {
  static readonly code = 'ERR_INVALID_BLS_SECRET_KEY'
  declare readonly code: typeof InvalidSecretKeyError.code
  constructor (message: string) {
    super(InvalidSecretKeyError.code, message)
  }
}

/** A field given to attestationMessage / signAttestation has the wrong size or range. */
export class AttestationFieldError extends PoiError {
  static readonly code = 'ERR_ATTESTATION_FIELD'
  declare readonly code: typeof AttestationFieldError.code
  readonly field: string

  constructor (field: string, message: string) {
    super(AttestationFieldError.code, `attestation field ${field}: ${message}`)
    this.field = field
  }
}

/** A genesis (operator set) file or object is invalid; `field` and `operatorIndex` locate the problem. */
export class GenesisError extends PoiError {
  static readonly code = 'ERR_GENESIS'
  declare readonly code: typeof GenesisError.code
  readonly field: string
  readonly operatorIndex?: number
  readonly path?: string

  constructor (message: string, options: { field: string, operatorIndex?: number, path?: string, cause?: unknown }) {
    super(GenesisError.code, message, { cause: options.cause })
    this.field = options.field
    this.operatorIndex = options.operatorIndex
    this.path = options.path
  }
}

/** TaskAggregation was configured or used wrongly by its caller. */
export class AggregationError extends PoiError {
  static readonly code = 'ERR_AGGREGATION'
  declare readonly code: typeof AggregationError.code
  constructor (message: string) {
    super(AggregationError.code, message)
  }
}

/** The BufferedVerifier was closed, or its worker died, before a set was verified. */
export class VerifierError extends PoiError {
  static readonly code = 'ERR_VERIFIER'
  declare readonly code: typeof VerifierError.code
  constructor (message: string, options?: { cause?: unknown }) {
    super(VerifierError.code, message, options)
  }
}
