#!/usr/bin/env node
/**
 * `poi`: the command line. program.ts declares and parses it; this file runs it and turns what
 * a command throws into an exit code (exit-codes.ts) and a message (formatError).
 */
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { isPoiError } from '../../protocols/wire/index.js'
import { watchParentPipe } from './children.js'
import type { EventOf } from './events.js'
import { EXIT_FAILED, EXIT_USAGE } from './exit-codes.js'
import { writeEvent } from './output.js'
import { runCommandLine } from './program.js'
import { CommandLineError, UsageError } from './usage-error.js'

/** The command being run (`operator register`), for the hint of a UsageError it throws. */
let runningCommand: string | undefined

/**
 * Runs one command line; resolves with its exit code, rejects with what the command (or the
 * parser, as a CommandLineError) threw. A command's module is loaded when it runs, so `poi keys`
 * does not load libp2p, onnxruntime and viem first.
 */
export async function main (argv: string[]): Promise<number> {
  return await runCommandLine(argv, (path) => { runningCommand = path })
}

/** The exit code of a failure: 2 when the parser refused the command line, 1 when a command failed. */
export function exitCodeOf (err: unknown): number {
  return err instanceof CommandLineError ? EXIT_USAGE : EXIT_FAILED
}

/**
 * What `poi` prints for an error it exits on. poi's own errors (PoiError; until every error
 * extends it, anything with a string `code`) carry a message meant for the user and are
 * printed without a stack; anything else is a bug and keeps its stack.
 */
export function formatError (err: unknown): string {
  if (err instanceof UsageError) {
    const command = err instanceof CommandLineError ? err.command : runningCommand
    return `poi: ${err.message}\n(run ${command !== undefined && command !== '' ? `\`poi ${command} --help\` for its options and an example, ` : ''}\`poi help\` for every command)`
  }
  if (isPoiError(err) || (err instanceof Error && typeof (err as { code?: unknown }).code === 'string')) return `poi: ${err.message}`
  return `poi: ${err instanceof Error ? err.stack ?? err.message : String(err)}`
}

/**
 * The `error` event line of a failure: poi's own code (ERR_…) and message, ERR_UNEXPECTED for
 * anything else (a bug: its stack stays on stderr).
 */
export function errorEvent (err: unknown): EventOf<'error'> {
  const code = (err as { code?: unknown } | null)?.code
  const known = isPoiError(err) || (err instanceof Error && typeof code === 'string')
  return {
    event: 'error',
    code: known ? String(code) : 'ERR_UNEXPECTED',
    message: err instanceof Error ? err.message : String(err)
  }
}

/**
 * `poi --help | head -1`: once the reader of stdout has gone (EPIPE), further output is dropped
 * instead of crashing with a stack trace. A command that keeps running (a node, a devnet: those
 * listen for SIGTERM) stops the way a SIGTERM stops it, as a process killed by SIGPIPE would;
 * any other command finishes with its own exit code.
 */
function stopWritingWhenReaderLeaves (): void {
  let gone = false
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err
    if (gone) return
    gone = true
    if (process.listenerCount('SIGTERM') > 0) process.kill(process.pid, 'SIGTERM')
  })
}

/** Files 0600, directories 0700. */
const PRIVATE_UMASK = 0o077

// Run when executed (directly or through the npm bin symlink), not when imported by tests.
const isMain = process.argv[1] != null && realpathSync(fileURLToPath(import.meta.url)) === realpathSync(process.argv[1])
if (isMain) {
  // Data directories hold task inputs and outputs, keystores hold secrets: whatever poi (and
  // LevelDB inside it) creates is private to its user unless a file says otherwise
  // (deployment files are made readable on purpose).
  process.umask(PRIVATE_UMASK)
  // A node started by a devnet or a test launcher stops when its launcher dies (node/cli/children.ts).
  watchParentPipe()
  stopWritingWhenReaderLeaves()
  // Through `npm run poi -- …` the process starts in the repository: relative paths are the user's, from where npm was run.
  if (process.env.npm_lifecycle_event === 'poi' && process.env.INIT_CWD !== undefined) process.chdir(process.env.INIT_CWD)
  const argv = process.argv.slice(2)
  main(argv).then((code) => { process.exitCode = code }, (err: unknown) => {
    console.error(formatError(err))
    // A script reading --json gets the failure on stdout too, as the last event line.
    if (argv.includes('--json')) writeEvent(errorEvent(err))
    process.exitCode = exitCodeOf(err)
  })
}
