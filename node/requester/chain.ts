/**
 * What a requester reads from the chain: whether its task was settled there, with which result,
 * and the operator set of an epoch. ChainClient (node/chain-client.ts) has these methods; tests
 * and the CLI pass it as is.
 *
 * Trust boundary: the RPC endpoint is trusted as far as the chain is. The contract accepted the
 * certificate after one pairing check against the epoch's operator set, and `result` checks
 * the CertificateAccepted values against the commitment the contract stores. The output is not
 * on the chain: it is fetched from full nodes and checked against the settled result hash.
 */
import { hexToBytes } from 'viem'
import type { OperatorSet } from '../../consensus/index.js'
import { to0xHex } from '../../protocols/wire/index.js'

type Hex = `0x${string}`

export interface RequesterChain {
  /** The settled result of a task, checked against the stored commitment; undefined when not settled. */
  result: (taskId: Uint8Array) => Promise<{ resultHash: Hex, outputRef: Hex, epoch: bigint } | undefined>
  /** The CertificateAccepted event of a settled task (`timeoutMs` 0: it must be there already). */
  waitForAcceptance: (taskId: Uint8Array, timeoutMs: number) => Promise<{ submitter: Hex, signedStake: bigint, txHash: Hex }>
  /** The operator set of an epoch, checked against the registry's stored root. */
  operatorSet: (epoch: bigint) => Promise<OperatorSet>
}

/** A task's result as the chain settled it. */
export interface Settlement {
  resultHash: Uint8Array
  outputRef: Uint8Array
  epoch: bigint
  /** The stake that signed, as the contract counted it. */
  signedStake: bigint
  /** The epoch's total stake. */
  totalStake: bigint
  /** The account that posted the certificate, and its transaction. */
  submitter: Hex
  txHash: Hex
}

/** The settlement of `taskId`, or undefined when the chain holds no result for it; a failed read throws. */
export async function readSettlement (chain: RequesterChain, taskId: Uint8Array): Promise<Settlement | undefined> {
  const settled = await chain.result(taskId)
  if (settled === undefined) return undefined
  const [accepted, set] = await Promise.all([chain.waitForAcceptance(taskId, 0), chain.operatorSet(settled.epoch)])
  return {
    resultHash: hexToBytes(settled.resultHash),
    outputRef: hexToBytes(settled.outputRef),
    epoch: settled.epoch,
    signedStake: accepted.signedStake,
    totalStake: set.totalStake,
    submitter: accepted.submitter,
    txHash: accepted.txHash
  }
}

/** `settled on-chain in epoch 2 (tx 0x…, posted by 0x…)`, for progress lines and errors. */
export function describeSettlement (s: Settlement): string {
  return `settled on-chain with result ${to0xHex(s.resultHash)} in epoch ${s.epoch} (tx ${s.txHash}, posted by ${s.submitter})`
}
