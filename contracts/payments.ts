/**
 * Payments (DESIGN §9): the TaskManager's vault of requester deposits, the credits of model owners
 * and the treasury, the signers' rewards and the operators' reputation. One function per
 * transaction or read, viem style (client first); each transaction simulates first, so a revert
 * surfaces as its named custom error (contractErrorName) without spending gas.
 *
 * Amounts are in wei of the deployment's payment asset (TaskManager.asset(): the zero address is
 * ETH, else an ERC-20 whose deposit needs an allowance, which `deposit` grants).
 */
import { erc20Abi, getAddress, isAddressEqual, zeroAddress, type Account, type Chain, type PublicClient, type TransactionReceipt, type Transport, type WalletClient } from 'viem'
import { PoiError } from '../protocols/wire/index.js'
import { mined } from './actions.js'
import { nonSignerArgs, type NonSignerArgs } from './calldata.js'
import { TaskManagerAbi } from './generated/artifacts.js'
import { readOperatorSet, type RegistryContracts } from './registry-reader.js'

type Wallet = WalletClient<Transport, Chain, Account>

/** TaskManager.Claim: the claimer's leaf in one epoch. */
export type ClaimArgs = Omit<NonSignerArgs, 'operator'> & { epoch: bigint }

/** A requester's account in the vault. */
export type VaultAccount = {
  /** The payment asset (zero address = ETH). */
  asset: `0x${string}`
  /** Chargeable now, including any pending withdrawal. */
  balance: bigint
  pending: { amount: bigint, unlocksAt: bigint }
  /** balance − pending: what full nodes count when they admit the account's tasks. */
  available: bigint
  /** Fees accepted certificates could not charge (0 = never in default). */
  shortfall: bigint
}

/** Certificates signed and missed over the epochs counted, and slashings over the operator's life. */
export type Reputation = { signed: bigint, missed: bigint, slashings: number }

/** Payment arguments that cannot be sent (a negative amount, an operator in none of the epochs). */
export class PaymentError extends PoiError {
  constructor (message: string) {
    super('ERR_PAYMENT', message)
  }
}

/**
 * The least fee a task for a model may carry: the model owner's fee (ModelRegistry) plus the
 * network's minimum (TaskManager.minTaskFee). The TaskManager refuses a certificate whose task
 * pays less (FeeBelowMinimum), so full nodes refuse such a task before running it and
 * `poi request` offers this sum by default: one rule, written once off-chain.
 */
export function requiredTaskFee (modelFee: bigint, minTaskFee: bigint): bigint {
  return modelFee + minTaskFee
}

function checkAmount (amount: bigint, what: string): void {
  if (amount <= 0n) throw new PaymentError(`${what} must be a positive amount of wei, got ${amount}`)
}

/** The vault's payment asset: the zero address for ETH. */
export async function readPaymentAsset (publicClient: PublicClient, taskManager: `0x${string}`): Promise<`0x${string}`> {
  return await publicClient.readContract({ address: taskManager, abi: TaskManagerAbi, functionName: 'asset' })
}

/**
 * Deposits `amount` wei of the payment asset for the wallet's account. For an ERC-20, first
 * approves the TaskManager for `amount` if the allowance is short.
 */
export async function deposit (walletClient: Wallet, publicClient: PublicClient, taskManager: `0x${string}`, amount: bigint): Promise<TransactionReceipt> {
  checkAmount(amount, 'deposit')
  const asset = await readPaymentAsset(publicClient, taskManager)
  const account = walletClient.account
  const eth = isAddressEqual(asset, zeroAddress)
  if (!eth) {
    const allowance = await publicClient.readContract({ address: asset, abi: erc20Abi, functionName: 'allowance', args: [account.address, taskManager] })
    if (allowance < amount) {
      const { request } = await publicClient.simulateContract({ account, address: asset, abi: erc20Abi, functionName: 'approve', args: [taskManager, amount] })
      await mined(publicClient, await walletClient.writeContract(request), 'ERC20.approve')
    }
  }
  const { request } = await publicClient.simulateContract({
    account, address: taskManager, abi: TaskManagerAbi, functionName: 'deposit', args: [amount], value: eth ? amount : 0n
  })
  return await mined(publicClient, await walletClient.writeContract(request), 'TaskManager.deposit')
}

/** Asks to withdraw `amount` (replacing any earlier request; 0 cancels); returns when it unlocks (unix seconds). */
export async function requestWithdrawal (
  walletClient: Wallet, publicClient: PublicClient, taskManager: `0x${string}`, amount: bigint
): Promise<{ unlocksAt: bigint, receipt: TransactionReceipt }> {
  if (amount < 0n) throw new PaymentError(`withdrawal must be a non-negative amount of wei, got ${amount}`)
  const { request } = await publicClient.simulateContract({
    account: walletClient.account, address: taskManager, abi: TaskManagerAbi, functionName: 'requestWithdrawal', args: [amount]
  })
  const receipt = await mined(publicClient, await walletClient.writeContract(request), 'TaskManager.requestWithdrawal')
  const [, unlocksAt] = await publicClient.readContract({ address: taskManager, abi: TaskManagerAbi, functionName: 'pendingWithdrawal', args: [walletClient.account.address], blockNumber: receipt.blockNumber })
  return { unlocksAt, receipt }
}

/** Completes the unlocked withdrawal; `amount` is what was paid (the pending amount, capped at the balance). */
export async function withdraw (walletClient: Wallet, publicClient: PublicClient, taskManager: `0x${string}`): Promise<{ amount: bigint, receipt: TransactionReceipt }> {
  const { request, result } = await publicClient.simulateContract({
    account: walletClient.account, address: taskManager, abi: TaskManagerAbi, functionName: 'withdraw'
  })
  return { amount: result, receipt: await mined(publicClient, await walletClient.writeContract(request), 'TaskManager.withdraw') }
}

/** Pays the wallet's credit (model owner or treasury earnings). */
export async function withdrawCredit (walletClient: Wallet, publicClient: PublicClient, taskManager: `0x${string}`): Promise<{ amount: bigint, receipt: TransactionReceipt }> {
  const { request, result } = await publicClient.simulateContract({
    account: walletClient.account, address: taskManager, abi: TaskManagerAbi, functionName: 'withdrawCredit'
  })
  return { amount: result, receipt: await mined(publicClient, await walletClient.writeContract(request), 'TaskManager.withdrawCredit') }
}

/** `account`'s deposit, pending withdrawal, available balance and recorded shortfall. */
export async function readVault (publicClient: PublicClient, taskManager: `0x${string}`, account: `0x${string}`): Promise<VaultAccount> {
  const read = async (functionName: 'balanceOf' | 'availableBalance' | 'shortfallOf'): Promise<bigint> =>
    await publicClient.readContract({ address: taskManager, abi: TaskManagerAbi, functionName, args: [account] }) as bigint
  const [asset, balance, [amount, unlocksAt], available, shortfall] = await Promise.all([
    readPaymentAsset(publicClient, taskManager),
    read('balanceOf'),
    publicClient.readContract({ address: taskManager, abi: TaskManagerAbi, functionName: 'pendingWithdrawal', args: [account] }),
    read('availableBalance'),
    read('shortfallOf')
  ])
  return { asset, balance, pending: { amount, unlocksAt: BigInt(unlocksAt) }, available, shortfall }
}

/** Model owner or treasury credit of `account`, not yet withdrawn. */
export async function readCredit (publicClient: PublicClient, taskManager: `0x${string}`, account: `0x${string}`): Promise<bigint> {
  return await publicClient.readContract({ address: taskManager, abi: TaskManagerAbi, functionName: 'creditOf', args: [account] })
}

/**
 * `operator`'s claims for `epochs`: its leaf in each epoch's set (read and checked against the
 * chain by readOperatorSet). Epochs whose set does not hold the operator are skipped.
 */
export async function rewardClaims (publicClient: PublicClient, contracts: RegistryContracts, operator: `0x${string}`, epochs: readonly bigint[]): Promise<ClaimArgs[]> {
  const claims: ClaimArgs[] = []
  for (const epoch of [...new Set(epochs)]) {
    const set = await readOperatorSet(publicClient, contracts, epoch)
    const index = set.operators.findIndex(op => isAddressEqual(op.address, operator))
    if (index < 0) continue
    const { operator: _, ...leaf } = nonSignerArgs(set, index)
    claims.push({ epoch, ...leaf })
  }
  return claims
}

/** What claimRewards would pay `operator` now for `epochs` (0 for epochs it was not in). */
export async function readPendingRewards (publicClient: PublicClient, contracts: RegistryContracts, operator: `0x${string}`, epochs: readonly bigint[]): Promise<bigint> {
  const claims = await rewardClaims(publicClient, contracts, operator, epochs)
  if (claims.length === 0) return 0n
  return await publicClient.readContract({ address: contracts.taskManager, abi: TaskManagerAbi, functionName: 'pendingRewards', args: [getAddress(operator), claims] })
}

/**
 * Claims the wallet's rewards for `epochs`; `amount` is what was paid. Throws PaymentError if the
 * account is in none of the epochs; the contract reverts NothingToClaim if nothing is new.
 */
export async function claimRewards (
  walletClient: Wallet, publicClient: PublicClient, contracts: RegistryContracts, epochs: readonly bigint[]
): Promise<{ amount: bigint, receipt: TransactionReceipt }> {
  const operator = walletClient.account.address
  const claims = await rewardClaims(publicClient, contracts, operator, epochs)
  if (claims.length === 0) throw new PaymentError(`${operator} is in none of epochs ${epochs.join(', ')}: nothing to claim`)
  const { request, result } = await publicClient.simulateContract({
    account: walletClient.account, address: contracts.taskManager, abi: TaskManagerAbi, functionName: 'claimRewards', args: [claims]
  })
  return { amount: result, receipt: await mined(publicClient, await walletClient.writeContract(request), 'TaskManager.claimRewards') }
}

/**
 * `operator`'s reputation: over epochs `range.from..range.to` (inclusive; epochs the caller knows
 * it was in), or by default over its current registration.
 */
export async function readReputation (
  publicClient: PublicClient, taskManager: `0x${string}`, operator: `0x${string}`, range?: { from: bigint, to: bigint }
): Promise<Reputation> {
  const [signed, missed, slashings] = range === undefined
    ? await publicClient.readContract({ address: taskManager, abi: TaskManagerAbi, functionName: 'reputationOf', args: [operator] })
    : await publicClient.readContract({ address: taskManager, abi: TaskManagerAbi, functionName: 'reputation', args: [operator, range.from, range.to] })
  return { signed: BigInt(signed), missed: BigInt(missed), slashings: Number(slashings) }
}
