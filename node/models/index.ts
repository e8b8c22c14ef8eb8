/**
 * Models as content-addressed shards found through the DHT (DESIGN §7).
 *
 * Publish (`poi model publish`):
 *   const published = await publishModel(blockStore, bytes, fields)   // or importModel(blockStore, manifest, bytes)
 *   await provideModel(libp2p, published.cids)
 * Fetch a missing model (a task arrives): `await fetchModel(libp2p, blockStore, modelId, { signal, onProgress })`.
 * Serve blocks: `shardServer(libp2p, blockStore)` from protocols/shard, started with the node.
 */
export {
  ModelFetchError,
  ModelIntegrityError,
  ModelManifestError,
  ModelNotFoundError
} from './errors.js'
export {
  buildManifest,
  chunkModel,
  decodeManifestBlock,
  hasModel,
  importModel,
  listModels,
  loadModel,
  manifestBlock,
  modelBlocks,
  modelCidOf,
  modelCids,
  zkCids,
  publishModel,
  storeModel
} from './model-blocks.js'
export type { ModelFields, ModelIdInput, ModelSummary, PublishedModel, StoredModel } from './model-blocks.js'
export { PROVIDE_CONCURRENCY, PROVIDE_TIMEOUT_MS, provideModel } from './provide.js'
export type { ProvideModelOptions, ProvideReport } from './provide.js'
export { fetchManifest, fetchModel, fetchVerificationKey } from './fetch-model.js'
export {
  BAD_SHARD_TAG,
  BAD_SHARD_TAG_TTL_MS,
  DEFAULT_FETCH_CONCURRENCY,
  DEFAULT_PER_PROVIDER_IN_FLIGHT,
  FIND_PROVIDERS_TIMEOUT_MS
} from './fetch-options.js'
export type { FetchedModel, FetchLibp2p, FetchModelOptions, FetchPhase, FetchProgress } from './fetch-options.js'
