/**
 * Tab vouchers (issue 15, DESIGN §14): a requester signs, with each tab task, the cumulative
 * amount it authorises its tab to be charged, under the tasks' EIP-712 domain. A batch carries
 * per requester only its highest voucher; the TaskManager checks that one signature and charges
 * the batch's fees for that requester against it (contracts/src/TaskManager.sol spells the type).
 */
import { hashTypedData, isAddress, isAddressEqual, recoverAddress, type Address, type Hex, type LocalAccount } from 'viem'
import { EncodeError } from './codec.js'
import { VOUCHER_SEQUENCE_LIMIT } from './constants.js'
import { taskDomain } from './task.js'

/** The signed struct; `taskManager` repeats the domain's verifying contract, as the issue asks. */
export const VOUCHER_TYPED_DATA_TYPES = {
  TabVoucher: [
    { name: 'requester', type: 'address' },
    { name: 'taskManager', type: 'address' },
    { name: 'cumulative', type: 'uint256' },
    { name: 'sequence', type: 'uint64' }
  ]
} as const

// Defined with the other wire limits (constants.ts), so the codecs check it without importing this file.
export { VOUCHER_SEQUENCE_LIMIT }
const UINT256_LIMIT = 1n << 256n

export interface TabVoucher {
  requester: Address
  taskManager: Address
  /** wei the requester authorises its tab to be charged in total, over its life. */
  cumulative: bigint
  /** The tab task's nonce. */
  sequence: bigint
}

function typedVoucher (chainId: bigint, voucher: TabVoucher) {
  return {
    domain: taskDomain(chainId, voucher.taskManager),
    types: VOUCHER_TYPED_DATA_TYPES,
    primaryType: 'TabVoucher',
    message: voucher
  } as const
}

function checkVoucher (voucher: TabVoucher): void {
  const bad = (field: string, why: string): never => { throw new EncodeError('TabVoucher', 'INVALID_FIELD', field, why) }
  if (!isAddress(voucher.requester, { strict: false })) bad('requester', `${String(voucher.requester)} is not a 20-byte hex address`)
  if (!isAddress(voucher.taskManager, { strict: false })) bad('taskManager', `${String(voucher.taskManager)} is not a 20-byte hex address`)
  if (voucher.cumulative < 0n || voucher.cumulative >= UINT256_LIMIT) bad('cumulative', `${voucher.cumulative} is not a uint256`)
  if (voucher.sequence <= 0n || voucher.sequence >= VOUCHER_SEQUENCE_LIMIT) bad('sequence', `${voucher.sequence} is outside 1..${VOUCHER_SEQUENCE_LIMIT - 1n}`)
}

/** The voucher's EIP-712 digest on `chainId`. Throws EncodeError for a malformed voucher. */
export function voucherDigest (chainId: bigint, voucher: TabVoucher): Hex {
  checkVoucher(voucher)
  return hashTypedData(typedVoucher(chainId, voucher))
}

/** Signs a voucher with the requester's account (which must be `voucher.requester`). */
export async function signVoucher (account: LocalAccount, chainId: bigint, voucher: TabVoucher): Promise<Hex> {
  checkVoucher(voucher)
  if (!isAddressEqual(account.address, voucher.requester)) {
    throw new EncodeError('TabVoucher', 'INVALID_FIELD', 'requester', `the voucher names ${voucher.requester} but the signing account is ${account.address}`)
  }
  return await account.signTypedData(typedVoucher(chainId, voucher))
}

/** Whether `signature` is `voucher.requester`'s signature of the voucher; any bad bytes give false. */
export async function verifyVoucherSignature (chainId: bigint, voucher: TabVoucher, signature: Hex): Promise<boolean> {
  try {
    const signer = await recoverAddress({ hash: voucherDigest(chainId, voucher), signature })
    return isAddressEqual(signer, voucher.requester)
  } catch {
    return false
  }
}
