/**
 * Every command that sends a transaction shows what it will send first (what it does, from which
 * account, to which contract, the value and the estimated gas) and asks on a terminal; `--yes`
 * sends without asking, and without a terminal and without `--yes` nothing is sent.
 */
import { createInterface } from 'node:readline/promises'
import { formatEther } from 'viem'
import { PoiError } from '../../protocols/wire/index.js'
import type { CliOutput } from './output.js'

/** No terminal to ask on and no --yes: the transaction is not sent. */
export class ConfirmationRequiredError extends PoiError {
  constructor (action: string) {
    super('ERR_CONFIRMATION_REQUIRED', `not sent: ${action} needs a confirmation and stdin is not a terminal; pass --yes to send it without asking`)
  }
}

/** The user answered no. */
export class ConfirmationDeclinedError extends PoiError {
  constructor (action: string) {
    super('ERR_CONFIRMATION_DECLINED', `not sent: ${action} was declined; nothing changed on the chain`)
  }
}

export interface TransactionPreview {
  /** What it does, e.g. `register as an operator with 2 ETH stake`. */
  action: string
  from: `0x${string}`
  /** The contract called; null for a deployment. */
  to: `0x${string}` | null
  /** Wei sent with it. */
  value: bigint
  /** Estimated gas of the transaction (for a deployment, the sum over its contracts: see `notes`). */
  gas: bigint
  /** More lines a person should read before saying yes. */
  notes: string[]
}

/** Shows `preview` (stderr, or a `transaction-preview` line with --json) and resolves once it may be sent. */
export async function confirmTransaction (preview: TransactionPreview, yes: boolean, out: CliOutput): Promise<void> {
  out.warning({ event: 'transaction-preview', action: preview.action, from: preview.from, to: preview.to, value: preview.value, gas: preview.gas, notes: preview.notes }, [
    `about to ${preview.action}`,
    `  from   ${preview.from}`,
    `  to     ${preview.to ?? '(new contracts)'}`,
    `  value  ${formatEther(preview.value)} ETH`,
    `  gas    ${preview.gas} (estimated)`,
    ...preview.notes.map(n => `  ${n}`)
  ].join('\n'))
  if (yes) return
  if (process.stdin.isTTY !== true) throw new ConfirmationRequiredError(preview.action)
  const rl = createInterface({ input: process.stdin, output: process.stderr })
  try {
    const answer = await rl.question('send it? [y/N] ')
    if (!/^y(es)?$/i.test(answer.trim())) throw new ConfirmationDeclinedError(preview.action)
  } finally {
    rl.close()
  }
}
