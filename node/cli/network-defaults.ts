/**
 * The operator-set defaults of a network without a chain (`poi genesis create`, the devnet's
 * `--offchain` mode and the tests' networks).
 */

export const DEVNET_CHAIN_ID = 31337n
/** No chain yet: the signing domain names a fixed placeholder contract address. */
export const DEVNET_TASK_MANAGER = '0x00000000000000000000000000000000000005e1' as const
/** Each operator's stake: 32 ETH, as a validator's. */
export const STAKE_WEI = 32n * 10n ** 18n
