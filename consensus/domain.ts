/**
 * The signing domain binds every BLS signature to one chain and one TaskManager contract, so a
 * signature cannot be replayed on a fork, a testnet, or a redeployed contract (DESIGN §4).
 */
import { isAddress } from 'viem'
import { AttestationFieldError } from './errors.js'

export type SigningDomain = {
  chainId: bigint
  /** TaskManager contract address; the checksum case is not significant (ABI encoding ignores it). */
  taskManager: `0x${string}`
}

const UINT256_LIMIT = 1n << 256n

/** Throws AttestationFieldError when the domain cannot be ABI-encoded. */
export function assertSigningDomain (domain: SigningDomain): void {
  if (typeof domain.chainId !== 'bigint' || domain.chainId < 0n || domain.chainId >= UINT256_LIMIT) {
    throw new AttestationFieldError('chainId', `must be a uint256 bigint, got ${String(domain.chainId)}`)
  }
  if (!isAddress(domain.taskManager, { strict: false })) {
    throw new AttestationFieldError('taskManager', `must be a 20-byte 0x address, got ${String(domain.taskManager)}`)
  }
}
