/**
 * The network's payment asset (ETH or the deployment's ERC-20, with its symbol and decimals),
 * amounts as a person reads them, and the least fee of a task, read from the chain.
 */
import { erc20Abi, formatUnits, isAddressEqual, zeroAddress } from 'viem'
import { TaskManagerAbi, readModel, readPaymentAsset, requiredTaskFee } from '../../contracts/index.js'
import type { ChainClient } from '../chain-client.js'
import { readChain } from './chain-read.js'

/** ETH and most ERC-20s count in 10^-18 units. */
const ETHER_DECIMALS = 18

/** The network's payment asset as the CLI shows it. */
export interface PaymentAsset {
  /** Zero address: ETH. */
  address: `0x${string}`
  symbol: string
  decimals: number
}

export function isEth (asset: PaymentAsset): boolean {
  return isAddressEqual(asset.address, zeroAddress)
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

