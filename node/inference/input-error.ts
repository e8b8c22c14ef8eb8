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
  /**
   * Which part of the input is wrong, as a request field: `input.<name>` for one input tensor,
   * `input` for the whole (not JSON, too large, a tensor file that does not parse).
   */
  readonly field: string

  /** `options.input`: the name of the input tensor at fault, when there is one. */
  constructor (message: string, options?: { cause?: unknown, input?: string }) {
    super(InputError.code, `invalid task input: ${message}`, options?.cause !== undefined ? { cause: options.cause } : undefined)
    this.field = options?.input !== undefined ? `input.${options.input}` : 'input'
  }
}
