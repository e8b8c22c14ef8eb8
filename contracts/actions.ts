/**
 * The transactions a node sends, one function each (viem style: client first, plain parameters).
 * Each simulates first, so a revert surfaces as viem's ContractFunctionExecutionError carrying the
 * custom error (contractErrorName) without spending gas, then sends and waits for the receipt.
 */
import type { Account, Chain, PublicClient, TransactionReceipt, Transport, WalletClient } from 'viem'
import type { EquivocationEvidence } from '../consensus/index.js'
import type { Attestation, QuorumCertificate, TaskAnnouncement } from '../protocols/wire/index.js'
import {
  batchLeafAndAttestationCalldata, certificateAndAttestationCalldata, certificateCalldata, conflictingCertificatesCalldata, evidenceCalldata, registrationCalldata, type SignedBatchLeaf
} from './calldata.js'
import { OperatorRegistryAbi, SlashingManagerAbi, TaskManagerAbi } from './generated/artifacts.js'
import type { OnChainOperatorSet } from './operator-tree.js'
import { PoiError } from '../protocols/wire/index.js'

type Wallet = WalletClient<Transport, Chain, Account>

export class TransactionFailedError extends PoiError {
  readonly hash: `0x${string}`

  constructor (what: string, hash: `0x${string}`) {
    super('ERR_TRANSACTION_FAILED', `${what}: transaction ${hash} was mined but reverted`)
    this.hash = hash
  }
}

/**
 * The receipt of `hash`, which must have succeeded. `timeout` and `signal` bound the wait (viem's
 * default timeout is 180 s); a replaced transaction resolves with its replacement's receipt.
 */
export async function mined (
  publicClient: PublicClient, hash: `0x${string}`, what: string, options: { timeout?: number, signal?: AbortSignal } = {}
): Promise<TransactionReceipt> {
  const receipt = await publicClient.waitForTransactionReceipt({ hash, ...options })
  if (receipt.status !== 'success') throw new TransactionFailedError(what, hash)
  return receipt
}

/**
 * Gas one ERC-5805 checkpoint may cost beyond an estimate: the registry's vote checkpoints are
 * keyed by block timestamp, and an estimate run in the latest block's second updates that
 * second's checkpoint in place where the mined transaction, in a later second, pushes a fresh
 * one (a new slot, 22,100 gas, and the array's length, 2,900); slashing pays it inside a call
 * from the SlashingManager, which passes on only 63/64 of what is left. Registration, exit and
 * slashing move votes (the mover's delegate and the total: two checkpoints each).
 */
export const VOTE_CHECKPOINT_GAS = 30_000n

/** `request` with a gas limit of its estimate plus `checkpoints` × VOTE_CHECKPOINT_GAS. */
async function withCheckpointHeadroom<R extends object> (publicClient: PublicClient, request: R, checkpoints: number): Promise<R & { gas: bigint }> {
  // a simulateContract request is what estimateContractGas takes; its generic types do not line up
  const estimate = await publicClient.estimateContractGas(request as unknown as Parameters<PublicClient['estimateContractGas']>[0])
  return { ...request, gas: estimate + VOTE_CHECKPOINT_GAS * BigInt(checkpoints) }
}

/** Registers the wallet's account as an operator with BLS key `secretKey`, staking `stake` wei. */
export async function registerOperator (
  walletClient: Wallet, publicClient: PublicClient, registry: `0x${string}`, secretKey: Uint8Array, stake: bigint
): Promise<TransactionReceipt> {
  const { pubkey, proofOfPossession } = registrationCalldata(secretKey, walletClient.account.address)
  const { request } = await publicClient.simulateContract({
    account: walletClient.account, address: registry, abi: OperatorRegistryAbi, functionName: 'register', args: [pubkey, proofOfPossession], value: stake
  })
  return await mined(publicClient, await walletClient.writeContract(await withCheckpointHeadroom(publicClient, request, 2)), 'OperatorRegistry.register')
}

/** Starts the next epoch; returns its number. */
export async function advanceEpoch (walletClient: Wallet, publicClient: PublicClient, registry: `0x${string}`): Promise<{ epoch: bigint, receipt: TransactionReceipt }> {
  const { request, result } = await publicClient.simulateContract({
    account: walletClient.account, address: registry, abi: OperatorRegistryAbi, functionName: 'advanceEpoch'
  })
  return { epoch: result, receipt: await mined(publicClient, await walletClient.writeContract(request), 'OperatorRegistry.advanceEpoch') }
}

/**
 * Posts `qc` (of epoch `set.epoch`) for `task`, the signed task it certifies: the contract checks
 * the task against the QC's id and charges the task's fee. accepted = false when another
 * aggregator's QC for the task landed first (the contract then changes nothing and does not revert).
 */
export async function submitCertificate (
  walletClient: Wallet, publicClient: PublicClient, taskManager: `0x${string}`, qc: QuorumCertificate, set: OnChainOperatorSet,
  task: TaskAnnouncement
): Promise<{ accepted: boolean, receipt: TransactionReceipt }> {
  const { request, result } = await simulateCertificate(publicClient, walletClient.account, taskManager, qc, set, task)
  return { accepted: result, receipt: await mined(publicClient, await walletClient.writeContract(request), 'TaskManager.submitCertificate') }
}

/**
 * The simulated TaskManager.submitCertificate of `qc` from `account`, without sending it: `request`
 * is what to send, `result` false when the task is already settled. For senders that choose the
 * nonce and fees themselves (the node's ChainClient).
 */
export async function simulateCertificate (
  publicClient: PublicClient, account: Account, taskManager: `0x${string}`, qc: QuorumCertificate, set: OnChainOperatorSet,
  task: TaskAnnouncement
) {
  return await publicClient.simulateContract({
    account, address: taskManager, abi: TaskManagerAbi, functionName: 'submitCertificate', args: certificateCalldata(qc, set, task)
  })
}

/**
 * Posts equivocation evidence; `slashed` is the stake taken (0 if the operator had already withdrawn).
 * `set` is the set of `evidence.a`'s epoch, `setB` that of `evidence.b`'s (default `set`).
 */
export async function submitEvidence (
  walletClient: Wallet, publicClient: PublicClient, slashing: `0x${string}`, evidence: EquivocationEvidence, set: OnChainOperatorSet,
  setB: OnChainOperatorSet = set
): Promise<{ slashed: bigint, receipt: TransactionReceipt }> {
  const { request, result } = await simulateEvidence(publicClient, walletClient.account, slashing, evidence, set, setB)
  return { slashed: result, receipt: await mined(publicClient, await walletClient.writeContract(await withCheckpointHeadroom(publicClient, request, 2)), 'SlashingManager.submitEvidence') }
}

/** The simulated SlashingManager.submitEvidence from `account`, without sending it (see simulateCertificate). */
export async function simulateEvidence (
  publicClient: PublicClient, account: Account, slashing: `0x${string}`, evidence: EquivocationEvidence, set: OnChainOperatorSet,
  setB: OnChainOperatorSet = set
) {
  return await publicClient.simulateContract({
    account, address: slashing, abi: SlashingManagerAbi, functionName: 'submitEvidence', args: [evidenceCalldata(evidence, set, setB)]
  })
}

/**
 * Posts two valid certificates for one task with different results (`a` of `setA`'s epoch, `b` of
 * `setB`'s); every operator named as a signer in both is slashed. `slashed` is the total taken.
 */
export async function submitConflictingCertificates (
  walletClient: Wallet, publicClient: PublicClient, slashing: `0x${string}`,
  a: QuorumCertificate, setA: OnChainOperatorSet, b: QuorumCertificate, setB: OnChainOperatorSet
): Promise<{ slashed: bigint, receipt: TransactionReceipt }> {
  const { request, result } = await simulateConflictingCertificates(publicClient, walletClient.account, slashing, a, setA, b, setB)
  const checkpoints = 1 + request.args[4].length
  return { slashed: result, receipt: await mined(publicClient, await walletClient.writeContract(await withCheckpointHeadroom(publicClient, request, checkpoints)), 'SlashingManager.submitConflictingCertificates') }
}

/** The simulated SlashingManager.submitConflictingCertificates from `account`, without sending it (see simulateCertificate). */
export async function simulateConflictingCertificates (
  publicClient: PublicClient, account: Account, slashing: `0x${string}`,
  a: QuorumCertificate, setA: OnChainOperatorSet, b: QuorumCertificate, setB: OnChainOperatorSet
) {
  return await publicClient.simulateContract({
    account, address: slashing, abi: SlashingManagerAbi, functionName: 'submitConflictingCertificates',
    args: conflictingCertificatesCalldata(a, setA, b, setB)
  })
}

/**
 * Posts certificate `qc` (of `set`'s epoch) and an attestation for its task with another result by
 * an operator `qc` names (proven against `attestationSet`, default `set`); the attester is slashed.
 */
export async function submitCertificateAndAttestation (
  walletClient: Wallet, publicClient: PublicClient, slashing: `0x${string}`,
  qc: QuorumCertificate, set: OnChainOperatorSet, attestation: Attestation, attestationSet: OnChainOperatorSet = set
): Promise<{ slashed: bigint, receipt: TransactionReceipt }> {
  const { request, result } = await simulateCertificateAndAttestation(publicClient, walletClient.account, slashing, qc, set, attestation, attestationSet)
  return { slashed: result, receipt: await mined(publicClient, await walletClient.writeContract(await withCheckpointHeadroom(publicClient, request, 2)), 'SlashingManager.submitCertificateAndAttestation') }
}

/** The simulated SlashingManager.submitCertificateAndAttestation from `account`, without sending it (see simulateCertificate). */
export async function simulateCertificateAndAttestation (
  publicClient: PublicClient, account: Account, slashing: `0x${string}`,
  qc: QuorumCertificate, set: OnChainOperatorSet, attestation: Attestation, attestationSet: OnChainOperatorSet = set
) {
  return await publicClient.simulateContract({
    account, address: slashing, abi: SlashingManagerAbi, functionName: 'submitCertificateAndAttestation',
    args: certificateAndAttestationCalldata(qc, set, attestation, attestationSet)
  })
}

/**
 * Posts an operator's signed batch (of `set`'s epoch) whose leaf for a task differs from that
 * operator's attestation for the task (proven against `attestationSet`, default `set`); the operator is slashed.
 */
export async function submitBatchLeafAndAttestation (
  walletClient: Wallet, publicClient: PublicClient, slashing: `0x${string}`,
  batch: SignedBatchLeaf, set: OnChainOperatorSet, attestation: Attestation, attestationSet: OnChainOperatorSet = set
): Promise<{ slashed: bigint, receipt: TransactionReceipt }> {
  const { request, result } = await simulateBatchLeafAndAttestation(publicClient, walletClient.account, slashing, batch, set, attestation, attestationSet)
  return { slashed: result, receipt: await mined(publicClient, await walletClient.writeContract(await withCheckpointHeadroom(publicClient, request, 2)), 'SlashingManager.submitBatchLeafAndAttestation') }
}

/** The simulated SlashingManager.submitBatchLeafAndAttestation from `account`, without sending it (see simulateCertificate). */
export async function simulateBatchLeafAndAttestation (
  publicClient: PublicClient, account: Account, slashing: `0x${string}`,
  batch: SignedBatchLeaf, set: OnChainOperatorSet, attestation: Attestation, attestationSet: OnChainOperatorSet = set
) {
  return await publicClient.simulateContract({
    account, address: slashing, abi: SlashingManagerAbi, functionName: 'submitBatchLeafAndAttestation',
    args: batchLeafAndAttestationCalldata(batch, set, attestation, attestationSet)
  })
}

/** Asks to leave the operator set from the next epoch (OperatorRegistry.requestExit). */
export async function requestExit (walletClient: Wallet, publicClient: PublicClient, registry: `0x${string}`): Promise<TransactionReceipt> {
  const { request } = await publicClient.simulateContract({
    account: walletClient.account, address: registry, abi: OperatorRegistryAbi, functionName: 'requestExit'
  })
  return await mined(publicClient, await walletClient.writeContract(await withCheckpointHeadroom(publicClient, request, 2)), 'OperatorRegistry.requestExit')
}

/**
 * Pays an exited operator's stake back (OperatorRegistry.withdraw); `amount` is the stake paid,
 * read from the Withdrawn event. Reverts ExitNotReady(readyAt) or StakeStillCertifiable(epoch)
 * when it is too early (simulated first, so nothing is spent then).
 */
export async function withdrawStake (walletClient: Wallet, publicClient: PublicClient, registry: `0x${string}`): Promise<{ amount: bigint, receipt: TransactionReceipt }> {
  const account = walletClient.account.address
  const { stake } = await publicClient.readContract({ address: registry, abi: OperatorRegistryAbi, functionName: 'operators', args: [account] })
  const { request } = await publicClient.simulateContract({
    account: walletClient.account, address: registry, abi: OperatorRegistryAbi, functionName: 'withdraw'
  })
  return { amount: stake, receipt: await mined(publicClient, await walletClient.writeContract(request), 'OperatorRegistry.withdraw') }
}
