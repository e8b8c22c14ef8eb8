/**
 * The one base class of poi's errors. Every error poi throws on purpose extends PoiError: it
 * has a stable `code` a program can branch on and a message a person can act on (what failed,
 * and what to do about it), and keeps what caused it in `cause`. The CLI prints a PoiError as
 * its message alone; anything else is a bug and is printed with its stack.
 */
export class PoiError extends Error {
  /** Stable and machine-readable, e.g. `ERR_NO_QUORUM`; subclasses narrow it to their own codes. */
  readonly code: string

  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** A PoiError class with one fixed code (what errorWithCode returns). */
export interface PoiErrorClass<C extends string> {
  new (message: string, options?: { cause?: unknown }): PoiError & { readonly code: C }
  readonly code: C
}

/**
 * The base of an error class with one fixed code, which it carries twice: static, to compare
 * with (`err.code === GenesisError.code`), and narrowed on its instances. A class that only
 * needs a message is then one line: `class VerifierError extends errorWithCode('ERR_VERIFIER') {}`;
 * one with its own fields writes only its constructor, `super(message, options)`.
 */
export function errorWithCode<C extends string> (code: C): PoiErrorClass<C> {
  return class extends PoiError {
    static readonly code: C = code
    declare readonly code: C

    constructor (message: string, options?: { cause?: unknown }) {
      super(code, message, options)
    }
  }
}

/** Whether `err` is one of poi's own errors (as opposed to a bug or a library's error). */
export function isPoiError (err: unknown): err is PoiError {
  return err instanceof PoiError
}
