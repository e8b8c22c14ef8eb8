/**
 * Custom-error names out of viem's errors: callers branch on `InvalidSignature`, `StaleEpoch`, …
 * rather than on message text.
 */
import { BaseError, ContractFunctionRevertedError } from 'viem'

/** The custom error a contract call reverted with (e.g. 'InsufficientStake'), or undefined. */
export function contractErrorName (err: unknown): string | undefined {
  if (!(err instanceof BaseError)) return undefined
  const reverted = err.walk(e => e instanceof ContractFunctionRevertedError)
  return reverted instanceof ContractFunctionRevertedError ? reverted.data?.errorName : undefined
}

/** The decoded arguments of that custom error, or undefined. */
export function contractErrorArgs (err: unknown): readonly unknown[] | undefined {
  if (!(err instanceof BaseError)) return undefined
  const reverted = err.walk(e => e instanceof ContractFunctionRevertedError)
  return reverted instanceof ContractFunctionRevertedError ? reverted.data?.args : undefined
}
