#!/usr/bin/env node
/**
 * `poi`: the command line. This file only dispatches a command to its module and turns what
 * it throws into an exit code and a message (formatError).
 */
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { isPoiError } from '../../protocols/wire/index.js'
import { UsageError } from './args.js'
import { watchParentPipe } from './children.js'
import type { EventOf } from './events.js'
import { writeEvent } from './output.js'
import { USAGE } from './usage.js'

/**
 * Runs one command; resolves with its exit code, rejects with what it threw. A command's module
 * is loaded when it runs, so `poi keys` does not load libp2p, onnxruntime and viem first.
 */
export async function main (argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  switch (cmd) {
    case 'keys': await (await import('./key-commands.js')).runKeys(rest); return 0
    case 'genesis': await (await import('./key-commands.js')).runGenesis(rest); return 0
    case 'operator': {
      // `poi operator register|status|exit|withdraw` are lifecycle subcommands; `poi operator [node options]` starts the node.
      const chainCommands = await import('./chain-commands.js')
      const sub = chainCommands.OPERATOR_SUBCOMMANDS.find(s => s === rest[0])
      if (sub !== undefined) { await chainCommands.runOperatorCommand(sub, rest.slice(1)); return 0 }
      await (await import('./node-commands.js')).runRole(cmd, rest); return 0
    }
    case 'chain': await (await import('./chain-commands.js')).runChain(rest); return 0
    case 'epoch': await (await import('./chain-commands.js')).runEpoch(rest); return 0
    case 'aggregator':
    case 'bootstrap': await (await import('./node-commands.js')).runRole(cmd, rest); return 0
    case 'request': await (await import('./request-command.js')).runRequest(rest); return 0
    case 'result': await (await import('./result-command.js')).runResult(rest); return 0
    case 'deposit': await (await import('./payment-commands.js')).runDeposit(rest); return 0
    case 'withdraw': await (await import('./payment-commands.js')).runWithdraw(rest); return 0
    case 'rewards': await (await import('./payment-commands.js')).runRewards(rest); return 0
    case 'network': await (await import('./payment-commands.js')).runNetwork(rest); return 0
    case 'models': await (await import('./model-commands.js')).runModels(rest); return 0
    case 'model': await (await import('./model-commands.js')).runModel(rest); return 0
    case 'devnet': return await (await import('./devnet.js')).runDevnetCommand(rest)
    case undefined:
    case 'help':
    case '--help':
    case '-h': console.log(USAGE); return cmd === undefined ? 2 : 0
    default: throw new UsageError(`unknown command "${cmd}"`)
  }
}

/**
 * What `poi` prints for an error it exits on. poi's own errors (PoiError; until every error
 * extends it, anything with a string `code`) carry a message meant for the user and are
 * printed without a stack; anything else is a bug and keeps its stack.
 */
export function formatError (err: unknown): string {
  if (err instanceof UsageError) return `poi: ${err.message}\n(run \`poi help\` for usage)`
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
  const argv = process.argv.slice(2)
  main(argv).then((code) => { process.exitCode = code }, (err: unknown) => {
    console.error(formatError(err))
    // A script reading --json gets the failure on stdout too, as the last event line.
    if (argv.includes('--json')) writeEvent(errorEvent(err))
    process.exitCode = 1
  })
}
