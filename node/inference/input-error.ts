/**
 * What every task-input reader shares: the size bound and the error. Its own module so the JSON
 * reader (json-input.ts), the tensor-file reader (tensor-file.ts) and the dispatcher above them
 * (task-input.ts) all import it without importing each other.
 */
import { PoiError } from '../../protocols/wire/index.js'

/** Largest task input we parse: the gossip inline limit is 64 KiB, stream-referenced inputs may be larger. */
export const MAX_INPUT_BYTES = 16 * 1024 * 1024

/** The task input is not valid for this model; the message says what is wrong. */
export class InputError extends PoiError {
  static readonly code = 'ERR_INFERENCE_INPUT'
  declare readonly code: typeof InputError.code
  constructor (message: string, options?: { cause?: unknown }) {
    super(InputError.code, `invalid task input: ${message}`, options)
  }
}
