/**
 * Fetch a model this node lacks from the peers that provide it (DESIGN §7).
 *
 * Trust boundary: the model id is trusted (it comes from a signed task or the on-chain
 * registry); every byte from a provider is not. The manifest block must hash to the id,
 * each chunk to the CID the manifest lists for it, and the whole to the manifest's hash.
 * Nothing is stored until all of that holds, and then everything is stored in one write,
 * so a bad chunk is never stored and a partial model is never loadable.
 *
 * How providers are found, asked and dropped is model-fetch.ts's; the bounds and options are
 * in fetch-options.ts.
 */
import type { ModelManifest } from '../inference/index.js'
import type { BlockStore } from '../../storage/index.js'
import type { FetchedModel, FetchLibp2p, FetchModelOptions } from './fetch-options.js'
import { loadModel, modelCidOf, type ModelIdInput } from './model-blocks.js'
import { ModelFetch } from './model-fetch.js'

/**
 * The model `modelId`, from this node's store or fetched from its providers. Resolves with
 * bytes that match the manifest, already stored; rejects with ModelNotFoundError (nobody
 * provides it), ModelManifestError (the id names a document that is not a valid manifest),
 * ModelFetchError (some block could not be had from any provider; the message lists what
 * each one did, e.g. a chunk larger than its bound) or ModelIntegrityError.
 */
export async function fetchModel (libp2p: FetchLibp2p, blockStore: BlockStore, modelId: ModelIdInput, options: FetchModelOptions = {}): Promise<FetchedModel> {
  const cid = modelCidOf(modelId)
  const local = await loadModel(blockStore, cid)
  if (local !== undefined) {
    return { ...local, fromStore: true, servedBy: [], dropped: [] }
  }
  const fetch = new ModelFetch(libp2p, cid, options)
  try {
    return await fetch.run(blockStore)
  } finally {
    fetch.close()
  }
}

/**
 * Only the manifest of `modelId`, from its providers: what a light requester needs to check
 * an input against the model's input spec before announcing a task. Rejects like fetchModel
 * (ModelNotFoundError, ModelManifestError, ModelFetchError).
 */
export async function fetchManifest (libp2p: FetchLibp2p, modelId: ModelIdInput, options: FetchModelOptions = {}): Promise<ModelManifest> {
  const fetch = new ModelFetch(libp2p, modelCidOf(modelId), options)
  try {
    return await fetch.manifest()
  } finally {
    fetch.close()
  }
}

/**
 * The manifest of `modelId` and, when it has a `zk` section, its verification key file (checked
 * against the section), and nothing else: what a node that checks proofs of a model it does not
 * run needs (the wasm and the proving key, up to hundreds of MiB, are not fetched). `vkey` is
 * undefined for a model without a `zk` section. Rejects like fetchModel.
 */
export async function fetchVerificationKey (libp2p: FetchLibp2p, modelId: ModelIdInput, options: FetchModelOptions = {}): Promise<{ manifest: ModelManifest, vkey?: Uint8Array }> {
  const fetch = new ModelFetch(libp2p, modelCidOf(modelId), options)
  try {
    const manifest = await fetch.manifest()
    if (manifest.zk === undefined) return { manifest }
    const { vkey } = await fetch.zkFiles(manifest, ['vkey'])
    return { manifest, vkey }
  } finally {
    fetch.close()
  }
}
