/**
 * How a paid task's fee was split, read back from the chain (`poi devnet` prints it): the
 * TaskCharged event of its certificate, and what the requester's deposit, the model owner's
 * and the treasury's credits and each operator's claimable rewards in the certificate's epoch
 * moved by between a snapshot taken before the task and one after it settled.
 */
import { bytesToHex, isAddressEqual, zeroAddress } from 'viem'
import { TaskManagerAbi, nonSignerArgs, readCredit, readModel, readVault, type OnChainOperatorSet } from '../../contracts/index.js'
import { PoiError } from '../../protocols/wire/index.js'
import type { ChainClient } from '../chain-client.js'
import { formatAmount, type PaymentAsset } from './payment-setup.js'
import { formatShare } from './summary.js'

/** The chain's figures disagree with each other (a share the event names did not reach its payee, …). */
export class FeeSplitError extends PoiError {
  constructor (message: string) {
    super('ERR_FEE_SPLIT', message)
  }
}

/** What the payees of a task hold at one moment. */
export interface PayeeSnapshot {
  requesterBalance: bigint
  ownerCredit: bigint
  treasuryCredit: bigint
  /** Claimable rewards of each operator of the epoch, by index. */
  operatorRewards: bigint[]
}

export interface Payees {
  requester: `0x${string}`
  modelOwner: `0x${string}`
  treasury: `0x${string}`
  /** The operator set of the epoch the task's certificate will name. */
  set: OnChainOperatorSet
}

/** The model owner and the treasury of a task for `modelId` on this deployment, read from the chain. */
export async function readPayees (chain: ChainClient, modelId: Uint8Array, requester: `0x${string}`, set: OnChainOperatorSet): Promise<Payees> {
  const registry = chain.config.modelRegistry
  const model = registry != null ? await readModel(chain.publicClient, registry, modelId) : undefined
  // An unregistered model has no owner: its fee is 0 and the credit to the zero address stays 0.
  const modelOwner = model?.owner ?? zeroAddress
  const treasury = await chain.publicClient.readContract({ address: chain.config.taskManager, abi: TaskManagerAbi, functionName: 'treasury' })
  return { requester, modelOwner, treasury, set }
}

/** The payees' holdings now. */
export async function snapshotPayees (chain: ChainClient, p: Payees): Promise<PayeeSnapshot> {
  const tm = chain.config.taskManager
  const [vault, ownerCredit, treasuryCredit, operatorRewards] = await Promise.all([
    readVault(chain.publicClient, tm, p.requester),
    readCredit(chain.publicClient, tm, p.modelOwner),
    readCredit(chain.publicClient, tm, p.treasury),
    Promise.all(p.set.operators.map(async (op, index) => {
      const { operator: _, ...leaf } = nonSignerArgs(p.set, index)
      return await chain.publicClient.readContract({ address: tm, abi: TaskManagerAbi, functionName: 'pendingRewards', args: [op.address, [{ epoch: p.set.epoch, ...leaf }]] })
    }))
  ])
  return { requesterBalance: vault.balance, ownerCredit, treasuryCredit, operatorRewards }
}

/** A settled paid task's split: the event's shares and what each payee received. */
export interface FeeSplit {
  fee: bigint
  /** What left the requester's deposit (TaskCharged.charged; the fee unless it defaulted). */
  charged: bigint
  /** How far the requester's deposit fell. */
  requesterPaid: bigint
  ownerShare: bigint
  protocolShare: bigint
  signersShare: bigint
  ownerReceived: bigint
  treasuryReceived: bigint
  /** What each operator of the epoch can now claim more than before, by index. */
  operatorReceived: bigint[]
  /** charged − everything received: rounding left in the vault by the reward index. */
  remainder: bigint
}

/**
 * Reads the task's TaskCharged event and the payees' holdings after it, and checks them against
 * each other: every share the event names reached its payee (credits exactly, signers up to the
 * index's rounding), and the requester paid what was charged.
 */
export async function readFeeSplit (chain: ChainClient, taskId: Uint8Array, fee: bigint, p: Payees, before: PayeeSnapshot): Promise<FeeSplit> {
  const [ev] = await chain.publicClient.getContractEvents({
    address: chain.config.taskManager, abi: TaskManagerAbi, eventName: 'TaskCharged', args: { taskId: bytesToHex(taskId) },
    fromBlock: chain.config.deployedAtBlock ?? 0n, toBlock: 'latest', strict: true
  })
  if (ev == null) throw new FeeSplitError(`no TaskCharged event for task ${bytesToHex(taskId)} on TaskManager ${chain.config.taskManager}`)
  const after = await snapshotPayees(chain, p)
  const { charged, ownerShare, protocolShare, signersShare } = ev.args
  const operatorReceived = after.operatorRewards.map((r, i) => r - before.operatorRewards[i])
  const split: FeeSplit = {
    fee,
    charged,
    requesterPaid: before.requesterBalance - after.requesterBalance,
    ownerShare,
    protocolShare,
    signersShare,
    ownerReceived: after.ownerCredit - before.ownerCredit,
    treasuryReceived: after.treasuryCredit - before.treasuryCredit,
    operatorReceived,
    remainder: 0n
  }
  const signersReceived = operatorReceived.reduce((a, b) => a + b, 0n)
  split.remainder = charged - split.ownerReceived - split.treasuryReceived - signersReceived
  const shared = isAddressEqual(p.modelOwner, p.treasury)
  const problems = [
    split.requesterPaid !== charged && `the requester's deposit fell by ${split.requesterPaid} wei, but ${charged} wei was charged`,
    ownerShare + protocolShare + signersShare !== charged && `the shares (${ownerShare} + ${protocolShare} + ${signersShare} wei) do not add up to the ${charged} wei charged`,
    !shared && split.ownerReceived !== ownerShare && `the model owner's credit grew by ${split.ownerReceived} wei, not the ${ownerShare} wei share`,
    !shared && split.treasuryReceived !== protocolShare && `the treasury's credit grew by ${split.treasuryReceived} wei, not the ${protocolShare} wei share`,
    (signersReceived > signersShare || split.remainder < 0n) && `the operators can claim ${signersReceived} wei more, above the ${signersShare} wei signers' share`
  ].filter((x): x is string => typeof x === 'string')
  if (problems.length > 0) throw new FeeSplitError(`the split of task ${bytesToHex(taskId)} does not add up: ${problems.join('; ')}`)
  return split
}

/** The lines `poi devnet` prints for a split; `signers` are the certificate's signer indices. */
export function formatFeeSplit (s: FeeSplit, p: Payees, signers: readonly number[], gasUsed: bigint, asset: PaymentAsset): string[] {
  const signedStake = signers.reduce((sum, i) => sum + p.set.operators[i].stake, 0n)
  const signersReceived = s.operatorReceived.reduce((a, b) => a + b, 0n)
  return [
    `fee split   (TaskCharged event and the vault's views, before and after the task)`,
    `  requester   ${p.requester} paid ${formatAmount(s.requesterPaid, asset)} from its deposit (fee ${formatAmount(s.fee, asset)})`,
    ...p.set.operators.map((op, i) => signers.includes(i)
      ? `  signer ${i}    ${op.address} earned ${formatAmount(s.operatorReceived[i], asset)}, claimable (${formatShare(op.stake, signedStake)} of the signed stake)`
      : `  operator ${i}  ${op.address} earned ${formatAmount(s.operatorReceived[i], asset)} (did not sign)`),
    `  model owner ${p.modelOwner} earned ${formatAmount(s.ownerReceived, asset)}, credit`,
    `  treasury    ${p.treasury} earned ${formatAmount(s.treasuryReceived, asset)}, credit`,
    `  gas         ${gasUsed} for the certificate transaction (paid by the aggregator)`,
    `  adds up     owner ${s.ownerReceived} + treasury ${s.treasuryReceived} + signers ${signersReceived} = ${s.charged - s.remainder} wei of the ${s.charged} wei charged` +
      (s.remainder === 0n ? ', nothing left over' : ` (${s.remainder} wei of rounding stays in the vault)`)
  ]
}
