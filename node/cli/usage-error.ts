/**
 * The command line is wrong. Kept apart from args.ts (which reads config files and so loads
 * the model runtime) so that `poi`'s entry point can name it without loading anything heavy.
 */
import { PoiError } from '../../protocols/wire/index.js'

/** The command line is wrong: the CLI adds a hint to `poi <command> --help`. */
export class UsageError extends PoiError {
  constructor (message: string) {
    super('ERR_USAGE', message)
  }
}

/**
 * The parser refused the command line before any command ran (unknown command or option,
 * missing or extra argument, mutually exclusive options): exit code 2 (exit-codes.ts).
 */
export class CommandLineError extends UsageError {
  /** The command whose line was refused (`operator register`; '' for `poi` itself): the hint names its help. */
  readonly command: string

  constructor (message: string, command: string) {
    super(message)
    this.command = command
  }
}
