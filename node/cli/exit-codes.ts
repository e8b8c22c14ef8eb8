/**
 * The exit codes of `poi`, in one place: `poi --help` and the README list them from here.
 */

/** The command did what it was asked (for `poi devnet`: every task certified and checked). */
export const EXIT_OK = 0
/** The command ran and failed: the message on stderr (and with --json the `error` line on stdout) says why. */
export const EXIT_FAILED = 1
/**
 * The command line was refused before any command ran: an unknown command or option, a missing
 * argument or option value, an extra argument, mutually exclusive options, or `poi` alone. The
 * same convention as the shells' builtins and most Unix tools (misuse of a command).
 */
export const EXIT_USAGE = 2
/** 128 + the signal number: a devnet stopped by SIGHUP (129), SIGINT (130) or SIGTERM (143), as a shell reports a process killed by it. */
export const EXIT_SIGNAL_BASE = 128

/** What each exit code means, for `poi --help` and the README. */
export const EXIT_CODES: ReadonlyArray<{ code: string, meaning: string }> = [
  { code: String(EXIT_OK), meaning: 'success' },
  { code: String(EXIT_FAILED), meaning: 'the command failed, or refused the value of an option (the message says why; with --json also an `error` line on stdout)' },
  { code: String(EXIT_USAGE), meaning: 'usage error: unknown command or option, missing or extra argument, mutually exclusive options, `poi` alone' },
  { code: `${EXIT_SIGNAL_BASE}+n`, meaning: 'poi devnet stopped by signal n: 129 SIGHUP, 130 SIGINT (Ctrl-C), 143 SIGTERM' }
]

/** The exit-code table as help text lines. */
export function exitCodesHelp (): string {
  return EXIT_CODES.map(e => `  ${e.code.padEnd(7)} ${e.meaning}`).join('\n')
}
