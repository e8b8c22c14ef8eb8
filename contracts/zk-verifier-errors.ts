/**
 * Errors of the on-chain zk verifier path (contracts/zk-verifier.ts), kept in their own file so
 * the lead can merge them with the other zk errors (spec 16: one errors file per helper).
 */
import { PoiError } from '../protocols/wire/index.js'

/** A verification key or contract name a Solidity verifier cannot be generated from, or a verifier solc refused. */
export class ZkVerifierBuildError extends PoiError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_ZK_VERIFIER_BUILD', message, options)
  }
}

/** A proof object (snarkjs's JSON) that cannot be turned into verifier calldata. */
export class ZkProofFormatError extends PoiError {
  constructor (message: string) {
    super('ERR_ZK_PROOF_FORMAT', message)
  }
}

/** The named errors the ModelRegistry's verifyZkProof (contracts/src/ZkProofs.sol) reverts with. */
export type ZkOnChainRejection = 'ZkVerifierNotRegistered' | 'ZkSignalOutOfField' | 'ZkCircuitMismatch' | 'ZkVerifierOutOfGas' | 'InvalidZkProof'

export const ZK_ON_CHAIN_REJECTIONS: ReadonlySet<string> = new Set<ZkOnChainRejection>([
  'ZkVerifierNotRegistered', 'ZkSignalOutOfField', 'ZkCircuitMismatch', 'ZkVerifierOutOfGas', 'InvalidZkProof'
])

/** The chain refused a proof for a model; `reason` is the contract's named error, `args` its arguments. */
export class ZkProofRejectedOnChainError extends PoiError {
  readonly reason: ZkOnChainRejection
  readonly args: readonly unknown[]

  constructor (reason: ZkOnChainRejection, args: readonly unknown[], message: string, options?: { cause?: unknown }) {
    super('ERR_ZK_PROOF_REJECTED_ON_CHAIN', message, options)
    this.reason = reason
    this.args = args
  }
}
