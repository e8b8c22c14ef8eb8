/**
 * What the payment commands (`poi deposit`, `poi withdraw`, `poi rewards`, `poi network`) and
 * `poi request --fee` share: the chain and wallet from `--chain` and `--keystore`, the payment
 * asset (ETH or the deployment's ERC-20, with its symbol and decimals), amounts as a person
 * types and reads them, and a task's default fee.
 */
import { parseUnits, type Account, type Chain, type Transport, type WalletClient } from 'viem'
import { isEth, readAsset, type PaymentAsset } from '../client/index.js'
import { PoiError } from '../../protocols/wire/index.js'
import { ChainClient } from '../chain-client.js'
import { loadKeystore, type Keystore } from '../keys.js'
import { UsageError, nodeConfig } from './args.js'

// The asset, its amounts and a task's least fee are the client library's; the commands import them from here as before.
export { isEth, readAsset, formatAmount, readTaskFee } from '../client/index.js'
export type { PaymentAsset, TaskFeeTerms } from '../client/index.js'

/** An amount the command line cannot use: not a number, too many decimals, or zero. */
export class AmountError extends UsageError {}

/** `--token` names another token than the one the network takes. */
export class WrongAssetError extends PoiError {
  constructor (given: string, asset: PaymentAsset) {
    super('ERR_WRONG_ASSET', `--token ${given} is not this network's payment asset: the TaskManager takes ${isEth(asset) ? 'ETH (leave out --token)' : `${asset.symbol} at ${asset.address} (pass --token ${asset.address} or leave it out)`}`)
  }
}

/**
 * `0.5` (units of the asset, up to its decimals) or `123wei` (its smallest unit). `what` names
 * the argument in the error, e.g. `--fee`.
 */
export function parseAmount (text: string, asset: Pick<PaymentAsset, 'decimals' | 'symbol'>, what: string, allowZero = false): bigint {
  const t = text.trim()
  let amount: bigint
  const wei = /^(\d+)\s*wei$/i.exec(t)
  if (wei !== null) {
    amount = BigInt(wei[1])
  } else {
    const m = /^(\d+)(?:\.(\d+))?$/.exec(t)
    if (m === null) throw new AmountError(`${what} must be an amount like 0.5 (${asset.symbol}) or 123wei, got ${JSON.stringify(text)}`)
    if ((m[2]?.length ?? 0) > asset.decimals) throw new AmountError(`${what} ${text} has more than the ${asset.decimals} decimals ${asset.symbol} has; write it in wei (e.g. 123wei)`)
    amount = parseUnits(t, asset.decimals)
  }
  if (amount === 0n && !allowZero) throw new AmountError(`${what} must be more than zero, got ${JSON.stringify(text)}`)
  return amount
}

export type Wallet = WalletClient<Transport, Chain, Account>

/** A chain command's chain (from `--chain`) and, when it sends transactions, its wallet (from `--keystore`). */
export interface PaymentContext {
  chain: ChainClient
  keystore: Keystore
  wallet: Wallet
  asset: PaymentAsset
}

/** `--chain <deployment.json>` (required) and `--keystore <dir>` (default ~/.poi/keys): the chain client with the keystore's account. */
export async function paymentContext (command: string, values: Record<string, unknown>): Promise<PaymentContext> {
  if (typeof values.chain !== 'string') throw new UsageError(`poi ${command} needs --chain <deployment.json>: the network's contracts and RPC URL (poi devnet writes one as deployment.json)`)
  const config = await nodeConfig(values)
  const keystore = await loadKeystore(config.keystore)
  const chain = await ChainClient.connect(config.chain!, keystore.account)
  return { chain, keystore, wallet: chain.walletClient!, asset: await readAsset(chain) }
}

/** "2026-11-30 01:13:46 UTC (in 2 h 59 min)": an unlock time and how far off it is. */
export function formatUnlock (unlocksAt: bigint, nowSeconds: bigint): string {
  const date = new Date(Number(unlocksAt) * 1000).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC')
  const left = unlocksAt - nowSeconds
  if (left <= 0n) return `${date} (unlocked)`
  const h = left / 3600n
  const min = (left % 3600n) / 60n
  const s = left % 60n
  const parts = h > 0n ? `${h} h ${min} min` : min > 0n ? `${min} min ${s} s` : `${s} s`
  return `${date} (in ${parts})`
}
