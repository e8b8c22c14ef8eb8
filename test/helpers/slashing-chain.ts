/**
 * A chain for slashing tests: anvil with a known slash and reporter share, operators of equal
 * stake registered with the given BLS keys, and the sets of epochs 1 and 2 (evidence may name
 * two epochs). The reporter is anvil's last account, never an operator.
 */
import { signAttestation } from '../../consensus/index.js'
import { OperatorRegistryAbi, readOperatorSet, type OnChainOperatorSet } from '../../contracts/index.js'
import { ETHER, type TaskResult } from '../consensus-fixtures.js'
import { nextEpoch, registerAll, startPoiChain, type PoiChain, type Wallet } from './poi-chain.js'

/** Long enough that no epoch passes on its own while a test runs; tests advance epochs themselves. */
export const SLASHING_EPOCH_SECONDS = 100n
export const SLASH_BPS = 5000n
export const REPORTER_BPS = 1000n
export const SLASHING_STAKE = 10n * ETHER

export interface SlashingChain {
  chain: PoiChain
  reporter: Wallet
  set1: OnChainOperatorSet
  set2: OnChainOperatorSet
  /** Operator `index`'s stake now (operators are in registration order in every set). */
  liveStake: (index: number) => Promise<bigint>
  /** Operator `index`'s attestation of `result` in `set`'s epoch. */
  attestation: (set: OnChainOperatorSet, index: number, result: TaskResult) => ReturnType<typeof signAttestation>
  /** What a slash takes of `stake`. */
  slashedOf: (stake: bigint) => bigint
}

export async function startSlashingChain (keys: readonly Uint8Array[]): Promise<SlashingChain> {
  const chain = await startPoiChain({ epochDuration: SLASHING_EPOCH_SECONDS, slashBps: Number(SLASH_BPS), reporterBps: Number(REPORTER_BPS) })
  try {
    await registerAll(chain, keys, keys.map(() => SLASHING_STAKE))
    await nextEpoch(chain)
    const set1 = await readOperatorSet(chain.publicClient, chain.deployment, 1n)
    await nextEpoch(chain)
    const set2 = await readOperatorSet(chain.publicClient, chain.deployment, 2n)
    return {
      chain, reporter: chain.wallets[9], set1, set2,
      liveStake: async (index) =>
        (await chain.publicClient.readContract({ address: chain.deployment.registry, abi: OperatorRegistryAbi, functionName: 'operators', args: [set1.operators[index].address] })).stake,
      attestation: (set, index, result) => signAttestation(keys[index], set.domain, { ...result, epoch: set.epoch, operatorIndex: index }),
      slashedOf: (stake) => stake * SLASH_BPS / 10_000n
    }
  } catch (err) {
    await chain.stop()
    throw err
  }
}
