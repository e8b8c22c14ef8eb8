/**
 * `poi deposit`, `poi withdraw`, `poi rewards`, `poi network`: a requester's deposit in the
 * TaskManager's vault, an operator's rewards and reputation, and the whole current operator set
 * (DESIGN §9). Every figure is read from the chain; every transaction is simulated first, so a
 * refusal is the contract's named error, said here in words a person can act on.
 */
import { formatEther, isAddressEqual } from 'viem'
import {
  claimRewards, contractErrorName, deposit, nonSignerArgs, readCredit, readReputation, readVault, requestWithdrawal, rewardClaims, TaskManagerAbi,
  withdraw, withdrawCredit, type ClaimArgs, type Reputation
} from '../../contracts/index.js'
import { PoiError } from '../../protocols/wire/index.js'
import { ChainClient } from '../chain-client.js'
import { DEFAULT_MAX_TASK_TTL_MS } from '../config.js'
import { UsageError, nodeConfig, type OptionValues } from './args.js'
import type { NetworkOperatorLine, RewardEpochLine } from './events.js'
import { readChain } from './operator-source.js'
import { CliOutput } from './output.js'
import { WrongAssetError, formatAmount, formatUnlock, isEth, paymentContext, parseAmount, readAsset, type PaymentContext } from './payment-setup.js'

/** The flags every payment command takes. */
const CHAIN_OPTIONS = {
  chain: { type: 'string' },
  keystore: { type: 'string' },
  rpc: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' }
} as const

type ChainValues = OptionValues<typeof CHAIN_OPTIONS>

/** The vault refused a withdrawal: nothing requested, or not unlocked yet. */
export class WithdrawalError extends PoiError {
  constructor (message: string) {
    super('ERR_WITHDRAWAL', message)
  }
}

/** Nothing to claim or withdraw: no rewards pending, no credit. */
export class NothingToPayError extends PoiError {
  constructor (message: string) {
    super('ERR_NOTHING_TO_PAY', message)
  }
}

/** The chain refused a payment transaction with a named error this command does not expect. */
export class PaymentRefusedError extends PoiError {
  constructor (what: string, cause: unknown) {
    const name = contractErrorName(cause)
    super('ERR_PAYMENT_REFUSED', `the TaskManager refused ${what}${name !== undefined ? ` (${name})` : `: ${(cause as Error).message.split('\n')[0]}`}`, { cause })
  }
}

async function sending<T> (what: string, send: () => Promise<T>): Promise<T> {
  try {
    return await send()
  } catch (err) {
    if (err instanceof PoiError) throw err
    throw new PaymentRefusedError(what, err)
  }
}

/** `poi deposit <amount> [--token <address>]`: adds to the account's deposit and prints the balance after. */
export async function runDeposit (values: ChainValues & { token?: string }, positionals: string[]): Promise<void> {
  if (positionals[0] === undefined) throw new UsageError('usage: poi deposit <amount: e.g. 0.5 or 123wei> --chain <deployment.json> [--keystore <dir>] [--token <address>]')
  const ctx = await paymentContext('deposit', values)
  const { chain, asset, wallet } = ctx
  if (values.token !== undefined && (!/^0x[0-9a-fA-F]{40}$/.test(values.token) || !isAddressEqual(values.token as `0x${string}`, asset.address))) {
    throw new WrongAssetError(values.token, asset)
  }
  const amount = parseAmount(positionals[0], asset, 'the deposit')
  const out = new CliOutput(values.json === true)
  const account = wallet.account.address
  out.progress(`depositing ${formatAmount(amount, asset)} from ${account} into TaskManager ${chain.config.taskManager} …`)
  const receipt = await sending(`the deposit of ${formatAmount(amount, asset)} from ${account}`, async () => await deposit(wallet, chain.publicClient, chain.config.taskManager, amount))
  const vault = await readVault(chain.publicClient, chain.config.taskManager, account)
  out.event({ event: 'deposit', account, asset: asset.address, amount, balance: vault.balance, available: vault.available, txHash: receipt.transactionHash }, [
    `deposited   ${formatAmount(amount, asset)} (tx ${receipt.transactionHash})`,
    `balance     ${formatAmount(vault.balance, asset)}`,
    ...(vault.pending.amount > 0n ? [`available   ${formatAmount(vault.available, asset)} (a withdrawal of ${formatAmount(vault.pending.amount, asset)} is pending)`] : [])
  ].join('\n'))
}

/**
 * `poi withdraw <amount>` asks to take `amount` out and says when it unlocks; `poi withdraw`
 * completes the pending withdrawal once unlocked, and before that fails saying when.
 */
export async function runWithdraw (values: ChainValues, positionals: string[]): Promise<void> {
  const ctx = await paymentContext('withdraw', values)
  const out = new CliOutput(values.json === true)
  if (positionals[0] !== undefined) await requestOne(ctx, parseAmount(positionals[0], ctx.asset, 'the withdrawal'), out)
  else await completeOne(ctx, out)
}

async function requestOne ({ chain, asset, wallet }: PaymentContext, amount: bigint, out: CliOutput): Promise<void> {
  const account = wallet.account.address
  const before = await readVault(chain.publicClient, chain.config.taskManager, account)
  if (amount > before.balance) throw new WithdrawalError(`cannot withdraw ${formatAmount(amount, asset)}: the deposit of ${account} is ${formatAmount(before.balance, asset)}`)
  const { unlocksAt, receipt } = await sending(`the withdrawal request of ${formatAmount(amount, asset)}`, async () => await requestWithdrawal(wallet, chain.publicClient, chain.config.taskManager, amount))
  const block = await chain.publicClient.getBlock({ blockNumber: receipt.blockNumber })
  out.event({ event: 'withdrawal', account, asset: asset.address, action: 'requested', amount, unlocksAt: Number(unlocksAt), balance: before.balance, txHash: receipt.transactionHash }, [
    `requested   withdrawal of ${formatAmount(amount, asset)} (tx ${receipt.transactionHash})${before.pending.amount > 0n ? `, replacing the pending ${formatAmount(before.pending.amount, asset)}` : ''}`,
    `unlocks     ${formatUnlock(unlocksAt, block.timestamp)}: then run \`poi withdraw\` to receive it`,
    'until then the whole deposit still pays for tasks already signed, and nodes count only what is not being withdrawn'
  ].join('\n'))
}

async function completeOne ({ chain, asset, wallet }: PaymentContext, out: CliOutput): Promise<void> {
  const account = wallet.account.address
  const vault = await readVault(chain.publicClient, chain.config.taskManager, account)
  if (vault.pending.amount === 0n) throw new WithdrawalError(`${account} has no withdrawal pending: request one with \`poi withdraw <amount>\` (balance ${formatAmount(vault.balance, asset)})`)
  const now = (await chain.publicClient.getBlock()).timestamp
  if (now < vault.pending.unlocksAt) {
    throw new WithdrawalError(`the withdrawal of ${formatAmount(vault.pending.amount, asset)} is still locked: it unlocks at ${formatUnlock(vault.pending.unlocksAt, now)}; run \`poi withdraw\` again then`)
  }
  const { amount, receipt } = await sending('the withdrawal', async () => await withdraw(wallet, chain.publicClient, chain.config.taskManager))
  const after = await readVault(chain.publicClient, chain.config.taskManager, account)
  out.event({ event: 'withdrawal', account, asset: asset.address, action: 'withdrawn', amount, unlocksAt: null, balance: after.balance, txHash: receipt.transactionHash }, [
    `withdrawn   ${formatAmount(amount, asset)} to ${account} (tx ${receipt.transactionHash})`,
    `balance     ${formatAmount(after.balance, asset)}`
  ].join('\n'))
}

/** One epoch an operator was in, with its claim (its leaf) and what it may claim there now. */
interface EpochReward { claim: ClaimArgs, pending: bigint }

/** Every epoch since the first in which `operator` was in the set (from the EpochStarted events), with what it may claim in each. */
async function epochRewards (chain: ChainClient, operator: `0x${string}`): Promise<EpochReward[]> {
  const current = await chain.currentEpoch()
  const epochs = Array.from({ length: Number(current) }, (_, i) => BigInt(i + 1))
  const claims = await rewardClaims(chain.publicClient, chain.config, operator, epochs)
  return await Promise.all(claims.map(async claim => ({
    claim,
    pending: await chain.publicClient.readContract({ address: chain.config.taskManager, abi: TaskManagerAbi, functionName: 'pendingRewards', args: [operator, [claim]] })
  })))
}

/** Everything `operator` can claim now, summed over its epochs: the node's poi_rewards_claimable gauge. */
export async function claimableRewards (chain: ChainClient, operator: `0x${string}`): Promise<bigint> {
  return (await epochRewards(chain, operator)).reduce((sum, e) => sum + e.pending, 0n)
}

function formatReputation (r: Reputation): string {
  return `signed ${r.signed} certificates, missed ${r.missed}, slashed ${r.slashings} time${r.slashings === 1 ? '' : 's'}`
}

/**
 * `poi rewards [--claim] [--withdraw-credit]`: the account's rewards as an operator (per epoch
 * it was in), its reputation, and its credit as a model owner or the treasury; `--claim` and
 * `--withdraw-credit` pay them out.
 */
export async function runRewards (values: ChainValues & { claim?: boolean, 'withdraw-credit'?: boolean }): Promise<void> {
  const { chain, asset, wallet } = await paymentContext('rewards', values)
  const out = new CliOutput(values.json === true)
  const account = wallet.account.address
  const rpc = chain.config.rpcUrl
  const [epochs, reputation, credit] = await Promise.all([
    readChain(`the rewards of ${account}`, rpc, async () => await epochRewards(chain, account)),
    readChain(`the reputation of ${account}`, rpc, async () => await readReputation(chain.publicClient, chain.config.taskManager, account)),
    readChain(`the credit of ${account}`, rpc, async () => await readCredit(chain.publicClient, chain.config.taskManager, account))
  ])
  const pending = epochs.reduce((sum, e) => sum + e.pending, 0n)
  if (values.claim === true && pending === 0n) {
    throw new NothingToPayError(`${account} has no rewards to claim${epochs.length === 0 ? ': it was in no epoch\'s operator set' : ` in epochs ${epochs.map(e => e.claim.epoch).join(', ')}`}`)
  }
  if (values['withdraw-credit'] === true && credit === 0n) throw new NothingToPayError(`${account} has no credit to withdraw (credit is what model owners and the treasury earn from fees)`)
  let claimed: { amount: bigint, txHash: `0x${string}` } | null = null
  if (values.claim === true) {
    const owed = epochs.filter(e => e.pending > 0n).map(e => e.claim.epoch)
    const r = await sending(`the claim of ${account}`, async () => await claimRewards(wallet, chain.publicClient, chain.config, owed))
    claimed = { amount: r.amount, txHash: r.receipt.transactionHash }
  }
  let creditWithdrawn: { amount: bigint, txHash: `0x${string}` } | null = null
  if (values['withdraw-credit'] === true) {
    const r = await sending(`the credit withdrawal of ${account}`, async () => await withdrawCredit(wallet, chain.publicClient, chain.config.taskManager))
    creditWithdrawn = { amount: r.amount, txHash: r.receipt.transactionHash }
  }
  const epochLines: RewardEpochLine[] = epochs.map(e => ({ epoch: `${e.claim.epoch}`, pending: `${e.pending}` }))
  out.event({
    event: 'rewards', account, asset: asset.address, epochs: epochLines, pending, credit,
    reputation: { signed: `${reputation.signed}`, missed: `${reputation.missed}`, slashings: reputation.slashings },
    claimed: claimed === null ? null : { amount: `${claimed.amount}`, txHash: claimed.txHash },
    creditWithdrawn: creditWithdrawn === null ? null : { amount: `${creditWithdrawn.amount}`, txHash: creditWithdrawn.txHash }
  }, [
    `account     ${account}`,
    epochs.length === 0
      ? 'rewards     none: this account was in no epoch\'s operator set'
      : `rewards     ${formatAmount(pending, asset)} to claim${claimed !== null ? ' (before this claim)' : ''}`,
    ...epochs.map(e => `  epoch ${e.claim.epoch}  ${formatAmount(e.pending, asset)}`),
    `reputation  ${formatReputation(reputation)}`,
    `credit      ${formatAmount(credit, asset)} as model owner or treasury${creditWithdrawn !== null ? ' (before this withdrawal)' : ''}`,
    ...(claimed !== null ? [`claimed     ${formatAmount(claimed.amount, asset)} (tx ${claimed.txHash})`] : []),
    ...(creditWithdrawn !== null ? [`withdrawn   credit of ${formatAmount(creditWithdrawn.amount, asset)} (tx ${creditWithdrawn.txHash})`] : []),
    ...(claimed === null && pending > 0n ? ['(run with --claim to receive the rewards)'] : []),
    ...(creditWithdrawn === null && credit > 0n ? ['(run with --withdraw-credit to receive the credit)'] : [])
  ].join('\n'))
}

/**
 * `poi network --chain <deployment.json>`: every operator of the current epoch with its stake,
 * reputation and the rewards it may claim for that epoch. Needs no keystore.
 */
export async function runNetwork (values: ChainValues): Promise<void> {
  if (typeof values.chain !== 'string') throw new UsageError('poi network needs --chain <deployment.json>: the network\'s contracts and RPC URL')
  const config = await nodeConfig(values)
  const chain = await ChainClient.connect(config.chain!)
  const out = new CliOutput(values.json === true)
  const rpc = chain.config.rpcUrl
  const asset = await readAsset(chain)
  const maxTaskLife = await readChain('the TaskManager\'s maximum task life', rpc, async () =>
    await chain.publicClient.readContract({ address: chain.config.taskManager, abi: TaskManagerAbi, functionName: 'maxTaskLife' }))
  const set = await readChain('the current operator set', rpc, async () => await chain.operatorSet())
  const operators: NetworkOperatorLine[] = await readChain(`the reputation and rewards of epoch ${set.epoch}'s operators`, rpc, async () => await Promise.all(set.operators.map(async (op, index) => {
    const { operator: _, ...leaf } = nonSignerArgs(set, index)
    const [reputation, pendingRewards] = await Promise.all([
      readReputation(chain.publicClient, chain.config.taskManager, op.address),
      chain.publicClient.readContract({ address: chain.config.taskManager, abi: TaskManagerAbi, functionName: 'pendingRewards', args: [op.address, [{ epoch: set.epoch, ...leaf }]] })
    ])
    return { index, address: op.address, stake: `${op.stake}`, signed: `${reputation.signed}`, missed: `${reputation.missed}`, slashings: reputation.slashings, pendingRewards: `${pendingRewards}` }
  })))
  const { identityRegistry, validationRegistry } = chain.config
  out.event({
    event: 'network',
    epoch: set.epoch,
    totalStake: set.totalStake,
    asset: asset.address,
    maxTaskLife,
    identityRegistry: identityRegistry ?? null,
    validationRegistry: validationRegistry ?? null,
    operators
  }, [
    `epoch ${set.epoch}: ${set.operators.length} operators, total stake ${`${formatEther(set.totalStake)} ETH`}`,
    '  index  address                                     stake (ETH)  signed  missed  slashed  rewards to claim in this epoch',
    ...operators.map(o => `  ${String(o.index).padEnd(5)}  ${o.address}  ${formatEther(BigInt(o.stake)).padStart(11)}  ${o.signed.padStart(6)}  ${o.missed.padStart(6)}  ${String(o.slashings).padStart(7)}  ${formatAmount(BigInt(o.pendingRewards), asset)}`),
    `payment asset  ${isEth(asset) ? 'ETH' : `${asset.symbol} at ${asset.address}`}`,
    `task life      deadlines up to ${maxTaskLife} s ahead settle on-chain (TaskManager.maxTaskLife); each node accepts up to its own maximum task TTL (default ${DEFAULT_MAX_TASK_TTL_MS / 1000} s), which it reports over /poi/network/1/`,
    `ERC-8004       ${identityRegistry !== undefined ? `IdentityRegistry ${identityRegistry}, ValidationRegistry ${validationRegistry ?? '(none)'}` : 'no registries in this deployment file'}`
  ].join('\n'))
}
