/**
 * Typed errors of the consensus layer. Verification functions that face the network
 * (`verifyCertificate`, `verifySignatureSets`, `verifyEquivocationEvidence`) never throw on bad
 * bytes: they return false or a reason. These errors are for local inputs (keys, config files,
 * caller mistakes) where the caller must stop and fix something.
 */

export class InvalidPublicKeyError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'InvalidPublicKeyError'
  }
}

export class InvalidSecretKeyError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'InvalidSecretKeyError'
  }
}

/** A field given to attestationMessage / signAttestation has the wrong size or range. */
export class AttestationFieldError extends Error {
  readonly field: string

  constructor (field: string, message: string) {
    super(`attestation field ${field}: ${message}`)
    this.name = 'AttestationFieldError'
    this.field = field
  }
}

/** A genesis (operator set) file or object is invalid; `field` and `operatorIndex` locate the problem. */
export class GenesisError extends Error {
  readonly field: string
  readonly operatorIndex?: number
  readonly path?: string

  constructor (message: string, options: { field: string, operatorIndex?: number, path?: string }) {
    super(message)
    this.name = 'GenesisError'
    this.field = options.field
    this.operatorIndex = options.operatorIndex
    this.path = options.path
  }
}

/** TaskAggregation was configured or used wrongly by its caller. */
export class AggregationError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'AggregationError'
  }
}

/** The BufferedVerifier was closed, or its worker died, before a set was verified. */
export class VerifierError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'VerifierError'
  }
}
