/**
 * A zk-capable model on a poi chain (test/helpers/poi-chain.ts): registered by its owner, a
 * Groth16 verifier generated for its verification key deployed, and named in the ModelRegistry
 * with the circuit id. What the zk settlement tests (zk-settlement, zk-e2e) share.
 */
import { deployVerifier, registerModel, setModelZkVerifier, type Groth16VerificationKey } from '../../contracts/index.js'
import { ownedManifest, type OwnedManifest } from './model-manifests.js'
import type { PoiChain } from './poi-chain.js'

export interface ZkModelOnChain {
  model: OwnedManifest
  /** The deployed Groth16 verifier of the model's circuit. */
  verifier: `0x${string}`
}

export interface ZkModelOptions {
  /** anvil account index of the model's owner (registers it, deploys and sets its verifier). */
  owner: number
  /** Names the model's manifest (a fresh model id each call). */
  name: string
  /** The model's fee per task, in wei. */
  fee: bigint
  vkey: Groth16VerificationKey
  circuitId: bigint
}

/** Registers a fresh model owned by wallets[owner], deploys a verifier for `vkey` and sets it with `circuitId` in the ModelRegistry. */
export async function registerZkModel (chain: PoiChain, options: ZkModelOptions): Promise<ZkModelOnChain> {
  const wallet = chain.wallets[options.owner]
  const model = await ownedManifest(wallet.account.address, options.name)
  await registerModel(wallet, chain.publicClient, chain.deployment.modelRegistry, model.modelId, model.block, options.fee)
  const verifier = await deployVerifier(wallet, chain.publicClient, options.vkey)
  await setModelZkVerifier(wallet, chain.publicClient, chain.deployment.modelRegistry, model.modelId, verifier, options.circuitId)
  return { model, verifier }
}
