/**
 * Models as content-addressed shards (DESIGN §7), as a node serves and needs them: it puts
 * the models it was given into its block store and announces everything there on the DHT
 * (again before provider records expire), fetches a model a task names from providers found
 * through the DHT (one fetch per model, however many tasks wait), and prefetches models
 * before any task needs them.
 */
import type { Libp2p, Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import { PoiError, toHex } from '../../protocols/wire/index.js'
import type { BlockStore } from '../../storage/index.js'
import {
  checkZkCircuit, modelIdOf, modelIdToString, verificationKeyOf, zkArtifactsOf, zkFilesOf,
  type ModelDir as LoadedModel, type ModelManifest, type ZkArtifacts, type ZkFiles
} from '../inference/index.js'
import type { VerificationKey } from '../inference/zk/index.js'
import {
  ModelIntegrityError, ModelManifestError, ModelNotFoundError, decodeManifestBlock, fetchModel, fetchVerificationKey, importModel, listModels, modelCidOf, modelCids,
  provideModel, type FetchLibp2p
} from '../models/index.js'
import type { NodeEvents } from './events.js'

const log = logger('poi:models')

/** Announcing a model's blocks on the DHT is given this long. */
const MODEL_PROVIDE_TIMEOUT_MS = 60_000
/** How soon a node looks for a model's providers again when none were found. */
const MODEL_SEARCH_RETRY_MS = 500
/** A failed announcement (no DHT peers yet, say) is retried after 1, 2, 4 … s. */
const PROVIDE_RETRY_MS = 1_000
const MAX_PROVIDE_RETRIES = 8
/** kad-dht provider records live 48 h; re-announce well before. */
const REPROVIDE_INTERVAL_MS = 12 * 60 * 60_000
/** A prefetch (a registered model fetched at start, before any task needs it) may take this long. */
export const PREFETCH_TIMEOUT_MS = 10 * 60_000

/** A light node has no block store: it cannot fetch or serve models. */
export class NoBlockStoreError extends PoiError {
  constructor () {
    super('ERR_NO_BLOCK_STORE', 'a light node cannot fetch models')
  }
}

/** A proof was asked to be checked against a model whose manifest has no `zk` section: it has no circuit. */
export class NotZkModelError extends PoiError {
  readonly field = 'model'
  constructor (readonly modelId: string) {
    super('ERR_NOT_ZK_MODEL', `model ${modelId} has no zk circuit (its manifest has no \`zk\` section), so no proof can be checked for it; attach one with \`poi model zk-attach\` (a new model id) or use the replicated tier`)
  }
}

/** What checking a proof of a model needs: its circuit id and verification key, and the manifest they came from. */
export interface ZkVerifier {
  circuitId: bigint
  verificationKey: VerificationKey
  manifest: ModelManifest
}

export interface ModelServiceComponents {
  libp2p: FetchLibp2p & Pick<Libp2p, 'getConnections' | 'addEventListener'>
  /** A full node's block store; undefined on a light requester. */
  blocks?: BlockStore
  events: NodeEvents
}

export interface ModelServiceInit {
  /** Models this node was given (model directories), already hash-checked. */
  models: LoadedModel[]
}

export class ModelService implements Startable {
  private readonly models = new Map<string, LoadedModel>()
  /** Models being fetched from the network, by model id hex (one fetch per model). */
  private readonly fetching = new Map<string, Promise<LoadedModel>>()
  /**
   * Verification keys of models this node checks proofs for without holding them, by model id
   * hex. A manifest never changes under its id, so a key (or the absence of a circuit) is cached
   * for good; a failed fetch is forgotten so the next proof tries again.
   */
  private readonly verifiers = new Map<string, Promise<ZkVerifier>>()
  /** Every model in the block store (model directories, published, fetched): what this node announces, as CID strings. */
  private readonly stored = new Set<string>()
  private reprovider: NodeJS.Timeout | undefined
  private stopped = false

  constructor (private readonly components: ModelServiceComponents, init: ModelServiceInit) {
    for (const m of init.models) this.models.set(toHex(m.modelId), m)
  }

  /**
   * Puts the given models into the block store and everything in the store on the DHT, so
   * others can fetch them. Announcing runs in the background: the DHT may take a while.
   */
  async start (): Promise<void> {
    this.stopped = false
    const { blocks, libp2p } = this.components
    if (blocks == null) return
    for (const m of this.models.values()) await importModel(blocks, m.manifest, m.modelBytes, zkFilesOf(m.zk))
    for (const m of await listModels(blocks)) this.stored.add(m.modelId)
    if (this.stored.size === 0) return
    // Provider records need DHT peers: announce once connected, retry what failed, and
    // re-announce before records expire.
    const announce = (): void => { void this.announce(0) }
    if (libp2p.getConnections().length > 0) announce()
    else libp2p.addEventListener('peer:connect', announce, { once: true })
    this.reprovideLater()
  }

  stop (): void {
    this.stopped = true
    clearInterval(this.reprovider)
    this.reprovider = undefined
  }

  /** Re-announces the store before provider records expire (once there is something to announce). */
  private reprovideLater (): void {
    if (this.reprovider != null) return
    this.reprovider = setInterval(() => { void this.announce(0) }, REPROVIDE_INTERVAL_MS)
    this.reprovider.unref()
  }

  /**
   * Every model this node announces on the DHT: those of its model directories and every other
   * model in its block store (published to it, or fetched earlier), as CID strings.
   */
  get announcedIds (): string[] {
    return [...this.stored]
  }

  /**
   * A model published to this running node (`poi model publish` over the control channel):
   * its bytes are checked against the manifest and stored in one write, the model is held
   * (ready for tasks), and its blocks are announced on the DHT now, so other nodes can fetch it
   * without a restart. Blocks that cannot be announced yet (no DHT peers) are retried in the
   * background and reported in `unannounced`. A manifest with a `zk` section needs its files in
   * `zk` (checked against it, and its circuit id against the model), stored and announced too.
   */
  async publish (manifest: ModelManifest, modelBytes: Uint8Array, onProgress: (line: string) => void = () => {}, zk?: ZkFiles): Promise<{ modelId: string, chunks: number, provided: number, unannounced: number }> {
    const { blocks, libp2p } = this.components
    if (blocks == null) throw new NoBlockStoreError()
    const artifacts = zkOf(manifest, modelBytes, zk)
    const published = await importModel(blocks, manifest, modelBytes, zk)
    const modelId = modelIdToString(published.modelId)
    const model: LoadedModel = { manifest, modelBytes, modelId: published.modelId }
    if (artifacts !== undefined) model.zk = artifacts
    this.models.set(toHex(published.modelId), model)
    this.stored.add(modelId)
    onProgress(`stored ${published.cids.length - 1} chunks${artifacts !== undefined ? ' (the model and its zk circuit files)' : ''} and the manifest of ${modelId} in the node's block store`)
    let lastTenth = -1
    const report = await provideModel(libp2p, published.cids, {
      signal: AbortSignal.timeout(MODEL_PROVIDE_TIMEOUT_MS),
      onProvided: (done, total) => {
        const tenth = Math.floor(10 * done / total)
        if (tenth !== lastTenth) { lastTenth = tenth; onProgress(`announcing on the DHT: ${done}/${total} blocks`) }
      }
    })
    log('model %s published to this node: %d blocks announced, %d failed', modelId, report.provided, report.failed.length)
    if (report.failed.length > 0) {
      const retry = (): void => { void this.announce(1) }
      if (libp2p.getConnections().length > 0) retry()
      else libp2p.addEventListener('peer:connect', retry, { once: true })
    }
    this.reprovideLater()
    return { modelId, chunks: published.cids.length - 1, provided: report.provided, unannounced: report.failed.length }
  }

  /**
   * The circuit id and verification key of `modelId`'s circuit, to check proofs with: from a
   * model held here, else from this node's block store, else by fetching only the manifest
   * block and the verification key's chunks from the model's providers (a relay or aggregator
   * that does not run the model still checks proofs; the wasm and proving key are not fetched).
   * Cached per model. Throws NotZkModelError for a model without a `zk` section, and like
   * `obtain` when the model cannot be had (ModelNotFoundError, ModelFetchError, …).
   */
  async zkVerifier (modelId: Uint8Array, deadline: number): Promise<ZkVerifier> {
    const id = toHex(modelId)
    const held = this.models.get(id)
    if (held != null) {
      if (held.zk === undefined) throw new NotZkModelError(displayModelId(modelId))
      return { circuitId: held.zk.circuitId, verificationKey: held.zk.verificationKey, manifest: held.manifest }
    }
    let pending = this.verifiers.get(id)
    if (pending == null) {
      pending = this.fetchVerifier(modelId, deadline)
      this.verifiers.set(id, pending)
      pending.catch((err: unknown) => { if (!(err instanceof NotZkModelError)) this.verifiers.delete(id) })
    }
    return await pending
  }

  private async fetchVerifier (modelId: Uint8Array, deadline: number): Promise<ZkVerifier> {
    const { blocks, libp2p } = this.components
    const display = displayModelId(modelId)
    const cid = modelCidOf(modelId)
    let found = blocks == null ? undefined : await verifierFromStore(blocks, cid)
    while (found == null) {
      try {
        found = await fetchVerificationKey(libp2p, modelId, { signal: AbortSignal.timeout(Math.max(1_000, deadline - Date.now())) })
      } catch (err) {
        // as in fetch: a model published moments ago may not be findable yet
        if (!(err instanceof ModelNotFoundError) || Date.now() + MODEL_SEARCH_RETRY_MS >= deadline || this.stopped) throw err
        await new Promise(resolve => setTimeout(resolve, MODEL_SEARCH_RETRY_MS))
      }
    }
    const { manifest, vkey } = found
    if (manifest.zk === undefined || vkey === undefined) throw new NotZkModelError(display)
    let verificationKey: VerificationKey
    try {
      verificationKey = verificationKeyOf(manifest.zk, vkey)
    } catch (err) {
      // the id names a manifest whose key is not poi's: nothing to check proofs against
      throw new ModelManifestError(display, `names a verification key that is unusable: ${(err as Error).message}`, { cause: err })
    }
    log('model %s: verification key of circuit %s ready (%d bytes)', display, manifest.zk.circuitId, vkey.length)
    return { circuitId: BigInt(manifest.zk.circuitId), verificationKey, manifest }
  }

  /** The models this node holds now, as CID strings. */
  get ids (): string[] {
    return [...this.models.values()].map(m => modelIdToString(m.modelId))
  }

  /** A model this node holds (given, or fetched earlier), without fetching. */
  held (modelId: Uint8Array): LoadedModel | undefined {
    return this.models.get(toHex(modelId))
  }

  /** The models this node was given or has fetched. */
  all (): LoadedModel[] {
    return [...this.models.values()]
  }

  /** Whether a task's model id could name a model: one held here, or a CID this node could try to fetch. */
  isModelId (modelId: Uint8Array): boolean {
    return this.models.has(toHex(modelId)) || isCid(modelId)
  }

  /**
   * A model this node does not have: from its block store, or fetched from providers found
   * through the DHT, verified chunk by chunk and as a whole, stored and announced in turn.
   */
  async obtain (modelId: Uint8Array, deadline: number): Promise<LoadedModel> {
    const id = toHex(modelId)
    const known = this.models.get(id)
    if (known != null) return known
    let pending = this.fetching.get(id)
    if (pending == null) {
      pending = this.fetch(modelId, deadline)
      this.fetching.set(id, pending)
      pending.catch(() => {}).finally(() => this.fetching.delete(id))
    }
    return await pending
  }

  /**
   * Fetches models before any task needs them (operators prefetch the registry's active
   * models at start), in the background: each model's 'model' or 'prefetch-failed' event
   * tells how it went; `ready` runs on each model fetched (an operator loads its session).
   */
  prefetch (modelIds: Uint8Array[], ready: (model: LoadedModel) => Promise<void> = async () => {}): void {
    if (this.components.blocks == null) return
    for (const modelId of modelIds) {
      if (this.models.has(toHex(modelId)) || this.fetching.has(toHex(modelId))) continue
      this.obtain(modelId, Date.now() + PREFETCH_TIMEOUT_MS)
        .then(ready)
        .catch((err: Error) => {
          if (this.stopped) return
          log.error('prefetching model %s failed: %s', displayModelId(modelId), err.message)
          this.components.events.safeDispatchEvent('prefetch-failed', { detail: { modelId, reason: err.message } })
        })
    }
  }

  private async fetch (modelId: Uint8Array, deadline: number): Promise<LoadedModel> {
    const { blocks, libp2p, events } = this.components
    if (blocks == null) throw new NoBlockStoreError()
    const started = Date.now()
    let fetched
    while (true) {
      try {
        fetched = await fetchModel(libp2p, blocks, modelId, {
          signal: AbortSignal.timeout(Math.max(1_000, deadline - Date.now())),
          provide: false,
          onProgress: (progress) => { events.safeDispatchEvent('model-progress', { detail: { modelId, progress } }) }
        })
        break
      } catch (err) {
        // A model published moments ago may not be findable yet: its provider records are
        // still spreading. Keep looking until the deadline.
        if (!(err instanceof ModelNotFoundError) || Date.now() + MODEL_SEARCH_RETRY_MS >= deadline || this.stopped) throw err
        await new Promise(resolve => setTimeout(resolve, MODEL_SEARCH_RETRY_MS))
      }
    }
    // Announcing the fetched blocks happens in the background: the task should not wait on the DHT.
    void provideModel(libp2p, modelCids(fetched.manifest), { signal: AbortSignal.timeout(MODEL_PROVIDE_TIMEOUT_MS) })
      .catch((err) => { log('announcing fetched model failed: %s', (err as Error).message) })
    const model: LoadedModel = { manifest: fetched.manifest, modelBytes: fetched.modelBytes, modelId: fetched.modelId }
    const zk = zkOf(fetched.manifest, fetched.modelBytes, fetched.zk)
    if (zk !== undefined) model.zk = zk
    this.models.set(toHex(modelId), model)
    this.stored.add(modelIdToString(fetched.modelId))
    this.reprovideLater()
    log('model %s fetched (%d bytes from %d peers) in %d ms', displayModelId(modelId), fetched.modelBytes.length, fetched.servedBy.length, Date.now() - started)
    events.safeDispatchEvent('model', { detail: { modelId, bytes: fetched.modelBytes.length, fromStore: fetched.fromStore, ms: Date.now() - started } })
    return model
  }

  private async announce (attempt: number): Promise<void> {
    const { blocks, libp2p } = this.components
    if (blocks == null || this.stopped) return
    let failed = 0
    try {
      for (const summary of await listModels(blocks)) {
        if (this.stopped) return
        const report = await provideModel(libp2p, modelCids(summary.manifest), { signal: AbortSignal.timeout(MODEL_PROVIDE_TIMEOUT_MS) })
        failed += report.failed.length
        log('model %s announced on the DHT: %d blocks, %d failed', summary.modelId, report.provided, report.failed.length)
      }
    } catch (err) {
      failed++
      if (!this.stopped) log.error('announcing models failed: %s', (err as Error).message)
    }
    if (failed > 0 && attempt < MAX_PROVIDE_RETRIES && !this.stopped) {
      const timer = setTimeout(() => { void this.announce(attempt + 1) }, PROVIDE_RETRY_MS * 2 ** attempt)
      timer.unref()
    }
  }
}

export function createModelService (components: ModelServiceComponents, init: ModelServiceInit): ModelService {
  return new ModelService(components, init)
}

/**
 * A model's zk files as artifacts, checked against its manifest (sizes, hashes: a ZkFileError; a
 * verification key for poi's four public signals: a VerificationKeyError) and its circuit id
 * against the model bytes (a ManifestError naming zk.circuitId); undefined for a model without a
 * `zk` section.
 */
function zkOf (manifest: ModelManifest, modelBytes: Uint8Array, files: ZkFiles | undefined): ZkArtifacts | undefined {
  if (manifest.zk === undefined) return undefined
  if (files === undefined) throw new ModelIntegrityError(displayModelId(modelIdOf(manifest)), 'the manifest names zk files (a circuit and its keys) but none were given')
  checkZkCircuit(manifest, modelBytes)
  return zkArtifactsOf(manifest.zk, files)
}

/** The manifest and verification key of a model this node's block store holds (whole, or at least those blocks). */
async function verifierFromStore (blocks: BlockStore, cid: CID): Promise<{ manifest: ModelManifest, vkey?: Uint8Array } | undefined> {
  const bytes = await blocks.get(cid)
  if (bytes === undefined) return undefined
  const manifest = decodeManifestBlock(cid, bytes)
  if (manifest.zk === undefined) return { manifest }
  const parts: Uint8Array[] = []
  for (const chunk of manifest.zk.vkey.chunks) {
    const part = await blocks.get(CID.parse(chunk))
    if (part === undefined) return undefined
    parts.push(part)
  }
  return { manifest, vkey: new Uint8Array(Buffer.concat(parts)) }
}

/** Whether bytes are a model id (a CID) this node could try to fetch. */
function isCid (id: Uint8Array): boolean {
  try {
    modelIdToString(id)
    return true
  } catch {
    return false
  }
}

/** A model id for a log line: its CID string, or hex when the bytes are not a CID. */
export function displayModelId (id: Uint8Array): string {
  try {
    return modelIdToString(id)
  } catch {
    return `0x${toHex(id)} (not a CID)`
  }
}
