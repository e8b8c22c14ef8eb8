/** Errors of publishing and fetching models; each names the model and what the user can do. */

/** No peer on the DHT provides the model. */
export class ModelNotFoundError extends Error {
  static readonly code = 'ERR_MODEL_NOT_FOUND'
  readonly code = ModelNotFoundError.code
  constructor (readonly modelId: string, detail: string) {
    super(`model ${modelId}: no provider found on the DHT (${detail}); the id may be wrong, the model never published (\`poi model publish\`), or every holder offline`)
    this.name = 'ModelNotFoundError'
  }
}

/** The manifest block was fetched (its bytes match the id) but is not a valid manifest: the id names a bad document. */
export class ModelManifestError extends Error {
  static readonly code = 'ERR_MODEL_MANIFEST'
  readonly code = ModelManifestError.code
  constructor (readonly modelId: string, reason: string, options?: { cause?: unknown }) {
    super(`model ${modelId}: its manifest ${reason}; this model id cannot be used, ask its publisher for a valid one`, options)
    this.name = 'ModelManifestError'
  }
}

/** Model bytes that do not match the manifest (size, whole-file hash or chunk CIDs). */
export class ModelIntegrityError extends Error {
  static readonly code = 'ERR_MODEL_INTEGRITY'
  readonly code = ModelIntegrityError.code
  constructor (readonly modelId: string, reason: string) {
    super(`model ${modelId}: ${reason}`)
    this.name = 'ModelIntegrityError'
  }
}

/** A block of the model could not be had from any provider; `failures` says what each one did. */
export class ModelFetchError extends Error {
  static readonly code = 'ERR_MODEL_FETCH'
  readonly code = ModelFetchError.code
  constructor (readonly modelId: string, readonly block: string, readonly failures: string[], options?: { cause?: unknown }) {
    super(`model ${modelId}: no provider could serve block ${block}${failures.length > 0 ? `: ${failures.join('; ')}` : ''}`, options)
    this.name = 'ModelFetchError'
  }
}
