/**
 * Rebuilds an epoch's operator set from the chain: the ordered list comes from the registry's
 * EpochStarted event, and is checked against the epoch's stored root and total stake before it is
 * returned (chain data is untrusted input: a wrong RPC answer must not become a trusted set).
 * Keys are validated by createOperatorSet; their proofs of possession were checked by the
 * registry at registration.
 */
import type { PublicClient } from 'viem'
import { createOperatorSet, g1FromEip2537 } from '../consensus/index.js'
import { OperatorRegistryAbi, TaskManagerAbi } from './generated/artifacts.js'
import { operatorLeaf, merkleRoot, type OnChainOperatorSet } from './operator-tree.js'
import type { Deployment } from './deployment.js'
import { PoiError } from '../protocols/wire/index.js'

/**
 * What readOperatorSet needs of a deployment: the registry, the TaskManager (the signing domain's
 * contract: attestations are signed for it) and where event scans start (default block 0).
 */
export type RegistryContracts = Pick<Deployment, 'registry' | 'taskManager'> & Partial<Pick<Deployment, 'deployedAtBlock'>>

export class RegistryReadError extends PoiError {
  constructor (message: string) {
    super('ERR_REGISTRY_READ', message)
  }
}

export async function readCurrentEpoch (publicClient: PublicClient, registry: `0x${string}`): Promise<bigint> {
  return await publicClient.readContract({ address: registry, abi: OperatorRegistryAbi, functionName: 'currentEpoch' })
}

export async function readQuorumBps (publicClient: PublicClient, taskManager: `0x${string}`): Promise<number> {
  return await publicClient.readContract({ address: taskManager, abi: TaskManagerAbi, functionName: 'quorumBps' })
}

/** The operator set of `epoch`, with domain {chain id, taskManager}, its leaves and root. */
export async function readOperatorSet (publicClient: PublicClient, contracts: RegistryContracts, epoch: bigint): Promise<OnChainOperatorSet> {
  const { registry, taskManager } = contracts
  const [stored, chainId] = await Promise.all([
    publicClient.readContract({ address: registry, abi: OperatorRegistryAbi, functionName: 'getEpoch', args: [epoch] }),
    publicClient.getChainId()
  ])
  if (stored.startedAt === 0n) {
    const current = await readCurrentEpoch(publicClient, registry)
    throw new RegistryReadError(`epoch ${epoch} has not started on registry ${registry} (current epoch ${current}); anyone can start the next one with advanceEpoch() once epochDuration has passed`)
  }

  const events = await publicClient.getContractEvents({
    address: registry,
    abi: OperatorRegistryAbi,
    eventName: 'EpochStarted',
    args: { epoch },
    fromBlock: contracts.deployedAtBlock ?? 0n,
    toBlock: 'latest',
    strict: true
  })
  if (events.length !== 1) {
    throw new RegistryReadError(`expected one EpochStarted event for epoch ${epoch} on registry ${registry}, found ${events.length}; is deployedAtBlock right and does the RPC serve logs that far back?`)
  }
  const { operators: addresses, pubkeys, stakes, root, totalStake } = events[0].args
  if (addresses.length !== pubkeys.length || addresses.length !== stakes.length || addresses.length !== stored.count) {
    throw new RegistryReadError(`EpochStarted for epoch ${epoch} lists ${addresses.length} operators, ${pubkeys.length} keys and ${stakes.length} stakes; the registry stored ${stored.count}`)
  }

  const set = createOperatorSet({
    epoch,
    domain: { chainId: BigInt(chainId), taskManager },
    operators: addresses.map((address, i) => ({ address, blsPublicKey: g1FromEip2537(pubkeys[i]), stake: stakes[i] }))
  })
  const leaves = addresses.map((address, i) => operatorLeaf(i, address, pubkeys[i], stakes[i]))
  const rebuilt = merkleRoot(leaves)
  if (rebuilt !== stored.root || root !== stored.root || totalStake !== stored.totalStake || set.totalStake !== stored.totalStake) {
    throw new RegistryReadError(`EpochStarted for epoch ${epoch} does not match the stored commitment (root ${rebuilt} vs ${stored.root}, total stake ${set.totalStake} vs ${stored.totalStake}); the RPC answered inconsistently`)
  }
  return { ...set, leaves, root: stored.root }
}

/** An account's record in the OperatorRegistry (zeros when it never registered). */
export type OperatorRecord = {
  registered: boolean
  /** Live stake, wei. */
  stake: bigint
  /** The first epoch that counts this registration (0: never registered). */
  firstEpoch: bigint
  /** Unix seconds of requestExit (0: not exiting). */
  exitRequestedAt: bigint
  /** The first epoch without this operator (0: not exiting). */
  exitEpoch: bigint
  slashings: number
}

/** The registry's fixed parameters and epoch clock. */
export type RegistryState = {
  minStake: bigint
  exitDelay: bigint
  epochDuration: bigint
  maxCertificateAge: bigint
  currentEpoch: bigint
  /** Unix seconds the current epoch started (0 before the first). */
  lastEpochStart: bigint
}

export async function readOperatorRecord (publicClient: PublicClient, registry: `0x${string}`, account: `0x${string}`): Promise<OperatorRecord> {
  const op = await publicClient.readContract({ address: registry, abi: OperatorRegistryAbi, functionName: 'operators', args: [account] })
  return {
    registered: op.registered,
    stake: op.stake,
    firstEpoch: BigInt(op.firstEpoch),
    exitRequestedAt: BigInt(op.exitRequestedAt),
    exitEpoch: BigInt(op.exitEpoch),
    slashings: Number(op.slashings)
  }
}

export async function readRegistryState (publicClient: PublicClient, registry: `0x${string}`): Promise<RegistryState> {
  const read = async (functionName: 'minStake' | 'exitDelay' | 'epochDuration' | 'maxCertificateAge' | 'currentEpoch' | 'lastEpochStart'): Promise<bigint> =>
    BigInt(await publicClient.readContract({ address: registry, abi: OperatorRegistryAbi, functionName }))
  const [minStake, exitDelay, epochDuration, maxCertificateAge, currentEpoch, lastEpochStart] = await Promise.all(
    (['minStake', 'exitDelay', 'epochDuration', 'maxCertificateAge', 'currentEpoch', 'lastEpochStart'] as const).map(read))
  return { minStake, exitDelay, epochDuration, maxCertificateAge, currentEpoch, lastEpochStart }
}

/**
 * When an exiting operator's stake may be withdrawn, by the registry's rule (OperatorRegistry.withdraw):
 * exitDelay after requestExit, epoch exitEpoch + maxCertificateAge started, and exitDelay after
 * that epoch's start. `at` is the earliest unix time; when that epoch has not started yet it is
 * the earliest it can (each epoch lasting epochDuration), so `epochsToGo` more epochs must be advanced.
 */
export async function readWithdrawableAt (
  publicClient: PublicClient, registry: `0x${string}`, op: OperatorRecord, state: RegistryState
): Promise<{ at: bigint, epoch: bigint, epochsToGo: bigint }> {
  const epoch = op.exitEpoch + state.maxCertificateAge
  const afterRequest = op.exitRequestedAt + state.exitDelay
  if (state.currentEpoch >= epoch) {
    const { startedAt } = await publicClient.readContract({ address: registry, abi: OperatorRegistryAbi, functionName: 'getEpoch', args: [epoch] })
    const evidenceCloses = BigInt(startedAt) + state.exitDelay
    return { at: afterRequest > evidenceCloses ? afterRequest : evidenceCloses, epoch, epochsToGo: 0n }
  }
  const epochsToGo = epoch - state.currentEpoch
  const earliestStart = state.lastEpochStart + epochsToGo * state.epochDuration
  const evidenceCloses = earliestStart + state.exitDelay
  return { at: afterRequest > evidenceCloses ? afterRequest : evidenceCloses, epoch, epochsToGo }
}
