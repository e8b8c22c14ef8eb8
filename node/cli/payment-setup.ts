/**
 * What the payment commands (`poi deposit`, `poi withdraw`, `poi rewards`, `poi network`) and
 * `poi request --fee` share: the chain and wallet from `--chain` and `--keystore`, the payment
 * asset (ETH or the deployment's ERC-20, with its symbol and decimals), amounts as a person
 * types and reads them, and a task's default fee.
 */
import { erc20Abi, formatUnits, isAddressEqual, parseUnits, zeroAddress, type Account, type Chain, type Transport, type WalletClient } from 'viem'
import { TaskManagerAbi, readModel, readPaymentAsset, requiredTaskFee } from '../../contracts/index.js'
import { PoiError } from '../../protocols/wire/index.js'
import { ChainClient } from '../chain-client.js'
import { loadKeystore, type Keystore } from '../keys.js'
import { UsageError, nodeConfig } from './args.js'
import { readChain } from './operator-source.js'

/** ETH and most ERC-20s count in 10^-18 units. */
const ETHER_DECIMALS = 18

/** The network's payment asset as the CLI shows it. */
export interface PaymentAsset {
  /** Zero address: ETH. */
  address: `0x${string}`
  symbol: string
  decimals: number
}

/** An amount the command line cannot use: not a number, too many decimals, or zero. */
export class AmountError extends UsageError {}

/** `--token` names another token than the one the network takes. */
export class WrongAssetError extends PoiError {
  constructor (given: string, asset: PaymentAsset) {
    super('ERR_WRONG_ASSET', `--token ${given} is not this network's payment asset: the TaskManager takes ${isEth(asset) ? 'ETH (leave out --token)' : `${asset.symbol} at ${asset.address} (pass --token ${asset.address} or leave it out)`}`)
  }
}

export function isEth (asset: PaymentAsset): boolean {
  return isAddressEqual(asset.address, zeroAddress)
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

/** `0.5 ETH (500000000000000000 wei)`: both forms, so a figure can be checked to the wei. */
export function formatAmount (amount: bigint, asset: Pick<PaymentAsset, 'decimals' | 'symbol'>): string {
  return `${formatUnits(amount, asset.decimals)} ${asset.symbol} (${amount} wei)`
}

/** The payment asset of the TaskManager, with the ERC-20's symbol and decimals read from it. */
export async function readAsset (chain: ChainClient): Promise<PaymentAsset> {
  return await readChain('the payment asset of the TaskManager', chain.config.rpcUrl, async () => {
    const address = chain.config.paymentAsset ?? await readPaymentAsset(chain.publicClient, chain.config.taskManager)
    if (isAddressEqual(address, zeroAddress)) return { address: zeroAddress, symbol: 'ETH', decimals: ETHER_DECIMALS }
    const [symbol, decimals] = await Promise.all([
      chain.publicClient.readContract({ address, abi: erc20Abi, functionName: 'symbol' }).catch(() => 'tokens'),
      chain.publicClient.readContract({ address, abi: erc20Abi, functionName: 'decimals' }).catch(() => ETHER_DECIMALS)
    ])
    return { address, symbol, decimals }
  })
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

/** The least fee a network node and the TaskManager accept for a task of `modelId`. */
export interface TaskFeeTerms {
  /** The model owner's fee (ModelRegistry; 0 without a registry or an entry). */
  modelFee: bigint
  /** The network's minimum on top (TaskManager.minTaskFee). */
  minTaskFee: bigint
  /** requiredTaskFee(modelFee, minTaskFee). */
  fee: bigint
}

/** The default fee of a task for `modelId`: the model's fee plus the network's minimum, read from the chain. */
export async function readTaskFee (chain: ChainClient, modelId: Uint8Array): Promise<TaskFeeTerms> {
  return await readChain('the model fee and the network\'s minimum task fee', chain.config.rpcUrl, async () => {
    const [model, minTaskFee] = await Promise.all([
      chain.config.modelRegistry != null ? readModel(chain.publicClient, chain.config.modelRegistry, modelId) : undefined,
      chain.publicClient.readContract({ address: chain.config.taskManager, abi: TaskManagerAbi, functionName: 'minTaskFee' })
    ])
    const modelFee = model?.fee ?? 0n
    return { modelFee, minTaskFee, fee: requiredTaskFee(modelFee, minTaskFee) }
  })
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
