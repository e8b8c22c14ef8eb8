/**
 * Settling zk-tier tasks on chain (issue 16, point 4): TaskManager.submitZkResult for a task of
 * tier zk (a Groth16 proof alone; its prover is paid the signers' share a certificate would
 * get) and TaskManager.submitCertificateWithProof for a task of tier both (a quorum certificate
 * and a proof that agree on the result; the signers' share is split half and half). Both run in
 * the linked ZkSettlement library (contracts/src/ZkSettlement.sol).
 *
 * Each transaction is simulated first, so a revert surfaces as a typed error without spending
 * gas: ZkProofRejectedOnChainError (contracts/zk-verifier.ts) for the proof (InvalidZkProof,
 * ZkCircuitMismatch, ...), ZkSettlementRejectedError for the task (TaskNotZkTier,
 * ZkResultMismatch, InvalidRequesterSignature, ...). Nothing is pre-judged here: a proof for
 * another input, output or prover is sent to the simulation, and the chain names what is wrong.
 */
import { bytesToHex, type Account, type Chain, type Hex, type PublicClient, type TransactionReceipt, type Transport, type WalletClient } from 'viem'
import { PoiError, type QuorumCertificate, type TaskAnnouncement } from '../protocols/wire/index.js'
import { mined } from './actions.js'
import { qcCalldata, taskArgs, type CertificateArgs, type NonSignerArgs, type TaskArgs } from './calldata.js'
import { TaskManagerAbi } from './generated/artifacts.js'
import type { OnChainOperatorSet } from './operator-tree.js'
import { contractErrorArgs, contractErrorName } from './revert.js'
import { ZK_PROOF_ERRORS_ABI, ZK_SIGNAL_INDEX, proofCalldata, zkRejection, type ZkProof } from './zk-verifier.js'
import type { ZkProofRejectedOnChainError } from './zk-verifier-errors.js'

type Wallet = WalletClient<Transport, Chain, Account>

/**
 * The TaskManager's ABI with ZkProofs' errors, which its zk entry points re-raise from the
 * ModelRegistry without declaring them: decode their reverts with this.
 */
export const TASK_MANAGER_ZK_ABI = [...TaskManagerAbi, ...ZK_PROOF_ERRORS_ABI] as const

/** TaskManager.ZkResult. */
export type ZkResultArgs = {
  a: readonly [bigint, bigint]
  b: readonly [readonly [bigint, bigint], readonly [bigint, bigint]]
  c: readonly [bigint, bigint]
  circuitId: bigint
  outputCommitment: bigint
  outputRef: Hex
  prover: `0x${string}`
}

/** What a zk result carries besides the proof: where the output is and who is paid. */
export type ZkResultOptions = {
  /** Stream reference of the output (bytes32), as a certificate's outputRef. */
  outputRef: Hex | Uint8Array
  /** The payee the proof was made for (its 4th public signal); the TaskManager credits it. */
  prover: `0x${string}`
}

/** The TaskManager's named reverts of the zk entry points that are about the task, not the proof. */
export type ZkSettlementRejection = string

/** The TaskManager refused a zk result or a certificate with a proof for a reason other than the proof (see `reason`). */
export class ZkSettlementRejectedError extends PoiError {
  readonly reason: ZkSettlementRejection
  readonly args: readonly unknown[]

  constructor (reason: ZkSettlementRejection, args: readonly unknown[], message: string, options?: { cause?: unknown }) {
    super('ERR_ZK_SETTLEMENT_REJECTED', message, options)
    this.reason = reason
    this.args = args
  }
}

/** What the transaction did: false when the task already had a result (another submitter won the race). */
export type ZkSettlementOutcome = { accepted: boolean, receipt: TransactionReceipt }

/**
 * TaskManager.ZkResult for `zkProof` (snarkjs's JSON): a, b, c and the circuit id and output
 * commitment of its public signals, with `outputRef` and `prover` from `options`. The task
 * supplies the input commitment on chain; r.prover must be the proof's prover signal, or the
 * verifier refuses it. Throws ZkProofFormatError for a proof that cannot be encoded.
 */
export function zkResultArgs (zkProof: ZkProof, options: ZkResultOptions): ZkResultArgs {
  const [a, b, c, signals] = proofCalldata(zkProof)
  const outputRef = typeof options.outputRef === 'string' ? options.outputRef : bytesToHex(options.outputRef)
  return { a, b, c, circuitId: signals[ZK_SIGNAL_INDEX.circuitId], outputCommitment: signals[ZK_SIGNAL_INDEX.outputCommitment], outputRef, prover: options.prover }
}

/** The result hash a zk result stores (and a certificate of a task of tier both must carry): bytes32 of the output commitment. */
export function zkResultHash (outputCommitment: bigint): Hex {
  return `0x${outputCommitment.toString(16).padStart(64, '0')}`
}

/**
 * Submits `zkProof` as the result of the zk-tier `task` (signed by its requester), crediting
 * options.prover. Resolves { accepted: false } when the task already has a result; throws
 * ZkProofRejectedOnChainError or ZkSettlementRejectedError (simulated, no gas spent) otherwise.
 */
export async function submitZkResult (
  walletClient: Wallet, publicClient: PublicClient, taskManager: `0x${string}`, task: TaskAnnouncement, zkProof: ZkProof, options: ZkResultOptions
): Promise<ZkSettlementOutcome> {
  const args = [taskArgs(task), bytesToHex(task.requesterSig), zkResultArgs(zkProof, options)] as const
  return await submit(walletClient, publicClient, taskManager, task, 'submitZkResult', args)
}

/**
 * Submits `qc` (by operators of `set`) with `zkProof` for the task of tier both, crediting
 * options.prover with half the signers' share. The certificate's result hash must be
 * zkResultHash of the proof's output commitment (else ZkResultMismatch).
 */
export async function submitCertificateWithProof (
  walletClient: Wallet, publicClient: PublicClient, taskManager: `0x${string}`, qc: QuorumCertificate, set: OnChainOperatorSet,
  task: TaskAnnouncement, zkProof: ZkProof, options: ZkResultOptions
): Promise<ZkSettlementOutcome> {
  const [certificate, nonSigners] = qcCalldata(qc, set)
  const args = [certificate, nonSigners, taskArgs(task), bytesToHex(task.requesterSig), zkResultArgs(zkProof, options)] as const
  return await submit(walletClient, publicClient, taskManager, task, 'submitCertificateWithProof', args)
}

type ZkCall =
  | { name: 'submitZkResult', args: readonly [TaskArgs, Hex, ZkResultArgs] }
  | { name: 'submitCertificateWithProof', args: readonly [CertificateArgs, NonSignerArgs[], TaskArgs, Hex, ZkResultArgs] }

async function submit<N extends ZkCall['name']> (
  walletClient: Wallet, publicClient: PublicClient, taskManager: `0x${string}`, task: TaskAnnouncement, functionName: N,
  args: Extract<ZkCall, { name: N }>['args']
): Promise<ZkSettlementOutcome> {
  let simulated
  try {
    simulated = await publicClient.simulateContract({
      account: walletClient.account, address: taskManager, abi: TASK_MANAGER_ZK_ABI, functionName, args
    } as Parameters<typeof publicClient.simulateContract>[0])
  } catch (err) {
    throw await zkSettlementError(err, publicClient, taskManager, task)
  }
  const receipt = await mined(publicClient, await walletClient.writeContract(simulated.request), `TaskManager.${functionName}`)
  return { accepted: simulated.result as boolean, receipt }
}

/** A typed error for a revert of the zk entry points, or `err` itself when it is not a named revert. */
export async function zkSettlementError (
  err: unknown, publicClient: PublicClient, taskManager: `0x${string}`, task: TaskAnnouncement
): Promise<ZkProofRejectedOnChainError | ZkSettlementRejectedError | unknown> {
  const name = contractErrorName(err)
  if (name === undefined) return err
  // the registry's address only names it in the message
  const registry = await publicClient.readContract({ address: taskManager, abi: TaskManagerAbi, functionName: 'models' }).catch(() => taskManager)
  const proofRejection = zkRejection(err, registry, task.modelId)
  if (proofRejection !== undefined) return proofRejection
  const args = contractErrorArgs(err) ?? []
  const hints: Record<string, string> = {
    TaskNotZkTier: 'the task is replicated: it settles on a certificate (submitCertificate)',
    WrongProofTier: `the task's tier is ${String(args[1])}: tier zk settles with submitZkResult, tier both with submitCertificateWithProof`,
    ZkResultMismatch: `the certificate's result ${String(args[0])} is not the proof's output commitment ${String(args[1])}: the quorum and the prover disagree`,
    ZeroAddress: 'the zk result names no prover (address 0): name the address the proof was made for'
  }
  return new ZkSettlementRejectedError(name, args, `TaskManager ${taskManager} refused the zk result with ${name}${args.length > 0 ? `(${args.map(String).join(', ')})` : ''}${hints[name] !== undefined ? `: ${hints[name]}` : ''}`, { cause: err })
}
