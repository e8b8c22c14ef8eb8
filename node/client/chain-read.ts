/**
 * Where a command gets its operator sets: the chain's registry when a chain is configured (then
 * certificates can also be settled there), else the genesis file. A failed chain read is
 * reported as what it is ("cannot read … from <rpc>: <reason>"), never taken for an answer.
 */
import { loadGenesis, type OperatorSet } from '../../consensus/index.js'
import { PoiError, isPoiError } from '../../protocols/wire/index.js'
import { ChainClient } from '../chain-client.js'
import type { NodeConfig } from '../config.js'
import type { Keystore } from '../keys.js'

/** Reading the chain failed (RPC unreachable, erroring, or answering inconsistently). */
export class ChainReadError extends PoiError {
  /** What could not be read, e.g. `the operator set of epoch 3`. */
  readonly what: string
  readonly rpcUrl: string

  /** `consequence`: what the failed read prevents, appended to the message. */
  constructor (what: string, rpcUrl: string, cause: unknown, consequence?: string) {
    super('ERR_CHAIN_READ', `cannot read ${what} from ${rpcUrl}: ${firstLine(cause)}${consequence !== undefined ? `; ${consequence}` : ''}`, { cause })
    this.what = what
    this.rpcUrl = rpcUrl
  }
}

/** viem's messages run over many lines (request body, docs link); the first says what happened. */
function firstLine (err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]
}

function hasCode (err: unknown): boolean {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string'
}

/** `read()`, with a failure turned into a ChainReadError naming `what` and the RPC URL. */
export async function readChain<T> (what: string, rpcUrl: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read()
  } catch (err) {
    throw new ChainReadError(what, rpcUrl, err)
  }
}

export interface OperatorSource {
  /** The current operator set. */
  operatorSet: OperatorSet
  /** With a chain: the client the set was read through. */
  chain?: ChainClient
}

export async function operatorSource (config: NodeConfig, keystore: Keystore): Promise<OperatorSource> {
  if (config.chain == null) return { operatorSet: await loadGenesis(config.genesis) }
  const rpcUrl = config.chain.rpcUrl
  const chain = await ChainClient.connect(config.chain, keystore.account).catch((err: unknown) => {
    // Its own typed errors already say that the chain cannot be reached; anything else is said here.
    throw isPoiError(err) || hasCode(err) ? err : new ChainReadError('the chain id', rpcUrl, err)
  })
  const operatorSet = await readChain('the current operator set', rpcUrl, async () => await chain.operatorSet())
  return { operatorSet, chain }
}

/**
 * The operator set of each epoch a certificate names, read from the chain. Every failed read is
 * kept in `failures` (and thrown to the caller): `poi result` reports it as the RPC failure it
 * is, rather than as "no node has a certificate".
 */
export function chainOperatorSets (chain: { operatorSet: (epoch: bigint) => Promise<OperatorSet> }, rpcUrl: string): { setOf: (epoch: bigint) => Promise<OperatorSet>, failures: ChainReadError[] } {
  const failures: ChainReadError[] = []
  const setOf = async (epoch: bigint): Promise<OperatorSet> => {
    try {
      return await readChain(`the operator set of epoch ${epoch}`, rpcUrl, async () => await chain.operatorSet(epoch))
    } catch (err) {
      failures.push(err as ChainReadError)
      throw err
    }
  }
  return { setOf, failures }
}
