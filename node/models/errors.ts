/** Errors of publishing and fetching models; each names the model and what the user can do. */
import { errorWithCode } from '../../protocols/wire/index.js'

/** No peer on the DHT provides the model. */
export class ModelNotFoundError extends errorWithCode('ERR_MODEL_NOT_FOUND') {
  /** The request field at fault, for a gateway's 400 (see PoiClient's requestErrorField). */
  readonly field = 'model'
  constructor (readonly modelId: string, detail: string) {
    super(`model ${modelId}: no provider found on the DHT (${detail}); the id may be wrong, the model never published (\`poi model publish\`), or every holder offline`)
  }
}

/** The manifest block was fetched (its bytes match the id) but is not a valid manifest: the id names a bad document. */
export class ModelManifestError extends errorWithCode('ERR_MODEL_MANIFEST') {
  constructor (readonly modelId: string, reason: string, options?: { cause?: unknown }) {
    super(`model ${modelId}: its manifest ${reason}; this model id cannot be used, ask its publisher for a valid one`, options)
  }
}

/** Model bytes that do not match the manifest (size, whole-file hash or chunk CIDs). */
export class ModelIntegrityError extends errorWithCode('ERR_MODEL_INTEGRITY') {
  constructor (readonly modelId: string, reason: string) {
    super(`model ${modelId}: ${reason}`)
  }
}

/** A block of the model could not be had from any provider; `failures` says what each one did. */
export class ModelFetchError extends errorWithCode('ERR_MODEL_FETCH') {
  constructor (readonly modelId: string, readonly block: string, readonly failures: string[], options?: { cause?: unknown }) {
    super(`model ${modelId}: no provider could serve block ${block}${failures.length > 0 ? `: ${failures.join('; ')}` : ''}`, options)
  }
}
