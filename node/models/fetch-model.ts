/**
 * Fetch a model this node lacks from the peers that provide it (DESIGN §7).
 *
 * Trust boundary: the model id is trusted (it comes from a signed task or the on-chain
 * registry); every byte from a provider is not. The manifest block must hash to the id,
 * each chunk to the CID the manifest lists for it, and the whole to the manifest's hash.
 * Nothing is stored until all of that holds, and then everything is stored in one write,
 * so a bad chunk is never stored and a partial model is never loadable.
 *
 * Providers come from `contentRouting.findProviders(modelId)`; since holders store a model
 * whole, the manifest's providers are asked for its chunks too. Chunks are spread over the
 * providers, a few in flight per provider, pipelined on one /poi/shard/1/ stream each
 * (ShardSession): a stream per chunk cost more CPU than the chunk's bytes on loopback. A provider that sends a corrupt or oversized block,
 * or fails to answer, is dropped for the rest of this fetch and its chunk asked of another;
 * corrupt and oversized blocks also tag the peer in the peer store (BAD_SHARD_TAG) so later
 * fetches use it last.
 */
import type { AbortOptions, Libp2p, PeerId } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import { createHash } from 'node:crypto'
import { type ModelManifest } from '../inference/index.js'
import { type BlockStore } from '../../storage/index.js'
import { MAX_BLOCK_BYTES } from '../../protocols/wire/index.js'
import { FETCH_BLOCK_TIMEOUT_MS, ShardError, ShardSession } from '../../protocols/shard/index.js'
import { ModelFetchError, ModelIntegrityError, ModelNotFoundError } from './errors.js'
import { decodeManifestBlock, loadModel, manifestBlock, modelCidOf, type ModelIdInput } from './model-blocks.js'
import { provideModel, type ProvideReport } from './provide.js'

const log = logger('poi:models:fetch')

/**
 * Requests in flight per provider, pipelined on its stream. One 1 MiB request at a time leaves
 * the link idle between a response and the next request; a few keep the provider busy.
 */
export const DEFAULT_PER_PROVIDER_IN_FLIGHT = 4
/** Requests in flight in total, which bounds the memory a fetch holds in partial responses (16 × 1 MiB). */
export const DEFAULT_FETCH_CONCURRENCY = 16
/**
 * How long to look for providers before declaring a model unknown. A DHT lookup on a small
 * network ends in well under a second once every peer has answered; 30 s allows a large one.
 */
export const FIND_PROVIDERS_TIMEOUT_MS = 30_000
/** Peer store tag on a provider that served a corrupt or oversized block. */
export const BAD_SHARD_TAG = 'poi-bad-shard'
/**
 * How long the tag lasts. Tag values are 0..100 and count toward keeping a connection, so the
 * tag carries 0 and its presence is the penalty; an hour lets a peer with a one-off disk fault recover.
 */
export const BAD_SHARD_TAG_TTL_MS = 60 * 60 * 1000

export type FetchPhase = 'finding' | 'manifest' | 'chunks' | 'storing' | 'providing' | 'done'

export interface FetchProgress {
  phase: FetchPhase
  bytesDone: number
  /** 0 until the manifest is known. */
  bytesTotal: number
  chunksDone: number
  chunksTotal: number
  /** Providers known and not dropped. */
  providers: number
  /** Providers dropped during this fetch. */
  dropped: number
}

export interface FetchModelOptions extends AbortOptions {
  onProgress?: (progress: FetchProgress) => void
  /** Requests in flight in total (default DEFAULT_FETCH_CONCURRENCY). */
  concurrency?: number
  /** Requests in flight per provider (default DEFAULT_PER_PROVIDER_IN_FLIGHT). */
  perProvider?: number
  /** Announce every CID once stored (default true). Pass false to announce later with provideModel. */
  provide?: boolean
  /** Peers to ask besides those the DHT names (e.g. the peer that announced the task). */
  providers?: PeerId[]
  /** Bound on finding a first provider (default FIND_PROVIDERS_TIMEOUT_MS). */
  findProvidersTimeoutMs?: number
}

export interface FetchedModel {
  modelId: Uint8Array
  manifest: ModelManifest
  modelBytes: Uint8Array
  /** True when this node already held the model and nothing was fetched. */
  fromStore: boolean
  /** Peers that served blocks, with how many. */
  servedBy: Array<{ peer: string, blocks: number }>
  /** Providers dropped during this fetch and why. */
  dropped: Array<{ peer: string, reason: string }>
  /** Result of announcing the CIDs; absent if `provide` was false or the model came from the store. */
  provided?: ProvideReport
}

export type FetchLibp2p = Pick<Libp2p, 'contentRouting' | 'dialProtocol' | 'peerStore' | 'peerId' | 'getPeers'>

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

interface Provider {
  id: PeerId
  key: string
  /** Opened on the first request to this provider; closed when it is dropped or the fetch ends. */
  session?: ShardSession
  inFlight: number
  served: number
  /** Tagged BAD_SHARD_TAG before this fetch: asked only when no one else can serve a block. */
  suspect: boolean
  dropped?: string
}

interface BlockRequest {
  cid: CID
  maxBytes: number
  /** Providers that failed this block (not found, or dropped), with what they did. */
  failedAt: Map<string, string>
  /** A provider search was started for this block's own CID. */
  searched: boolean
}

class ModelFetch {
  private readonly id: string
  private readonly providers = new Map<string, Provider>()
  private readonly closer = new AbortController()
  private readonly signal: AbortSignal
  private readonly progress: FetchProgress = { phase: 'finding', bytesDone: 0, bytesTotal: 0, chunksDone: 0, chunksTotal: 0, providers: 0, dropped: 0 }
  private searches = 0
  private searchErrors: string[] = []
  private wake: (() => void) | undefined
  private readonly droppedList: Array<{ peer: string, reason: string }> = []

  constructor (private readonly libp2p: FetchLibp2p, private readonly cid: CID, private readonly options: FetchModelOptions) {
    this.id = cid.toString()
    this.signal = options.signal == null ? this.closer.signal : AbortSignal.any([options.signal, this.closer.signal])
  }

  close (): void {
    // ends provider searches and requests still running after success or failure
    this.closer.abort(new Error('model fetch finished'))
    for (const p of this.providers.values()) p.session?.close()
  }

  /** Finds providers and fetches the manifest block, checked against the model id. */
  async manifest (): Promise<ModelManifest> {
    for (const peer of this.options.providers ?? []) await this.addProvider(peer)
    this.search(this.cid)
    this.report()

    this.setPhase('manifest')
    let manifestBytes = new Uint8Array(0)
    await this.fetchBlocks([{ cid: this.cid, maxBytes: MAX_BLOCK_BYTES }], (_, parts) => {
      manifestBytes = new Uint8Array(Buffer.concat(parts))
    })
    return decodeManifestBlock(this.cid, manifestBytes)
  }

  async run (blockStore: BlockStore): Promise<FetchedModel> {
    const manifest = await this.manifest()
    this.progress.bytesTotal = manifest.size
    this.progress.chunksTotal = manifest.chunks.length

    this.setPhase('chunks')
    const chunkCids = manifest.chunks.map(c => CID.parse(c))
    const { chunkSize, size } = manifest
    // Chunks are copied into place as they arrive (each verified against its CID first), and
    // the whole-file hash runs over the longest prefix received so far, overlapping the transfer.
    const modelBytes = new Uint8Array(size)
    const chunkAt = (i: number): Uint8Array => modelBytes.subarray(i * chunkSize, Math.min(size, (i + 1) * chunkSize))
    const arrived = new Array<boolean>(chunkCids.length).fill(false)
    const whole = createHash('sha256')
    let hashedUpTo = 0
    await this.fetchBlocks(chunkCids.map((c, i) => ({
      cid: c,
      // exact sizes: a provider cannot make us buffer a byte more than the chunk
      maxBytes: chunkAt(i).length
    })), (i, parts) => {
      let offset = i * chunkSize
      for (const part of parts) {
        modelBytes.set(part, offset)
        offset += part.length
      }
      arrived[i] = true
      while (hashedUpTo < arrived.length && arrived[hashedUpTo]) whole.update(chunkAt(hashedUpTo++))
      this.progress.bytesDone += offset - i * chunkSize
      this.progress.chunksDone++
      this.report()
    })
    const hash = `0x${whole.digest('hex')}`
    if (hash !== manifest.modelHash) {
      // every chunk matched its CID, so the manifest itself lists chunks of another file
      throw new ModelIntegrityError(this.id, `its chunks assemble to ${size} bytes hashing to ${hash}, not the manifest's ${manifest.modelHash}; the manifest is inconsistent`)
    }

    this.setPhase('storing')
    const mBlock = manifestBlock(manifest)
    await blockStore.putMany([...chunkCids.map((c, i) => ({ cid: c, bytes: chunkAt(i) })), mBlock])

    let provided: ProvideReport | undefined
    if (this.options.provide !== false) {
      this.setPhase('providing')
      provided = await provideModel(this.libp2p, [mBlock.cid, ...chunkCids], { signal: this.options.signal })
    }
    this.setPhase('done')
    const servedBy = [...this.providers.values()].filter(p => p.served > 0).map(p => ({ peer: p.key, blocks: p.served }))
    log('model %s: %d bytes from %d providers, %d dropped', this.id, manifest.size, servedBy.length, this.droppedList.length)
    return { modelId: this.cid.bytes, manifest, modelBytes, fromStore: false, servedBy, dropped: this.droppedList, provided }
  }

  private setPhase (phase: FetchPhase): void {
    this.progress.phase = phase
    this.report()
  }

  private report (): void {
    if (this.options.onProgress == null) return
    this.progress.providers = [...this.providers.values()].filter(p => p.dropped === undefined).length
    this.progress.dropped = this.droppedList.length
    try {
      this.options.onProgress({ ...this.progress })
    } catch (err) {
      log.error('progress callback threw: %s', (err as Error).message)
    }
  }

  private notify (): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  /** Resolves at the next event (block done, provider found, search ended) or rejects on abort. */
  private async nextEvent (): Promise<void> {
    this.signal.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => { reject(this.signal.reason) }
      this.signal.addEventListener('abort', onAbort, { once: true })
      this.wake = () => {
        this.signal.removeEventListener('abort', onAbort)
        resolve()
      }
    })
  }

  private async addProvider (peer: PeerId): Promise<void> {
    if (peer.equals(this.libp2p.peerId)) return
    const key = peer.toString()
    if (this.providers.has(key)) return
    let suspect = false
    try {
      suspect = (await this.libp2p.peerStore.get(peer)).tags.has(BAD_SHARD_TAG)
    } catch {
      // not in the peer store yet: nothing known against it
    }
    if (this.providers.has(key)) return
    this.providers.set(key, { id: peer, key, inFlight: 0, served: 0, suspect })
    log('model %s: provider %s%s', this.id, key, suspect ? ' (served bad blocks before)' : '')
    this.report()
    this.notify()
  }

  /** Look up providers of `cid` in the background; found peers join the pool. */
  private search (cid: CID): void {
    this.searches++
    const timeout = this.options.findProvidersTimeoutMs ?? FIND_PROVIDERS_TIMEOUT_MS
    const signal = AbortSignal.any([this.signal, AbortSignal.timeout(timeout)])
    void (async () => {
      try {
        for await (const info of this.libp2p.contentRouting.findProviders(cid, { signal })) {
          await this.addProvider(info.id)
        }
      } catch (err) {
        if (!this.closer.signal.aborted) {
          const reason = signal.aborted && this.options.signal?.aborted !== true ? `searched for ${timeout} ms` : (err as Error).message
          this.searchErrors.push(reason)
          log('provider search for %s ended: %s', cid, reason)
        }
      } finally {
        this.searches--
        this.notify()
      }
    })()
  }

  private drop (p: Provider, reason: string, misbehaved: boolean): void {
    if (p.dropped !== undefined) return
    p.dropped = reason
    // its other requests fail with the session and go to other providers
    p.session?.close()
    this.droppedList.push({ peer: p.key, reason })
    log('model %s: dropping provider %s: %s', this.id, p.key, reason)
    if (misbehaved) {
      this.libp2p.peerStore.merge(p.id, { tags: { [BAD_SHARD_TAG]: { value: 0, ttl: BAD_SHARD_TAG_TTL_MS } } })
        .catch((err: Error) => { log.error('cannot tag %s: %s', p.key, err.message) })
    }
    this.report()
  }

  /** The least busy provider that may still serve `req`; suspects only when no one else is left for it. */
  private pick (req: BlockRequest, perProvider: number): Provider | undefined {
    const candidates = [...this.providers.values()].filter(p => p.dropped === undefined && !req.failedAt.has(p.key))
    const trusted = candidates.filter(p => !p.suspect)
    const pool = trusted.length > 0 ? trusted : candidates
    let best: Provider | undefined
    for (const p of pool) {
      if (p.inFlight >= perProvider) continue
      if (best === undefined || p.inFlight < best.inFlight) best = p
    }
    return best
  }

  /**
   * Fetch every block from the provider pool, each verified against its CID and size bound.
   * Fails when some block has no provider left to ask and no search is still running.
   */
  private async fetchBlocks (items: Array<{ cid: CID, maxBytes: number }>, onBlock: (index: number, parts: Uint8Array[]) => void): Promise<void> {
    const perProvider = Math.max(1, this.options.perProvider ?? DEFAULT_PER_PROVIDER_IN_FLIGHT)
    const concurrency = Math.max(1, this.options.concurrency ?? DEFAULT_FETCH_CONCURRENCY)
    const requests: BlockRequest[] = items.map(i => ({ ...i, failedAt: new Map(), searched: false }))
    const received = new Array<boolean>(items.length).fill(false)
    const pending: number[] = requests.map((_, i) => i)
    let active = 0
    let done = 0

    const start = (index: number, p: Provider): void => {
      const req = requests[index]
      active++
      p.inFlight++
      const signal = AbortSignal.any([this.signal, AbortSignal.timeout(FETCH_BLOCK_TIMEOUT_MS)])
      p.session ??= new ShardSession(this.libp2p, p.id)
      p.session.fetch(req.cid, { signal, maxBytes: req.maxBytes })
        .then((parts) => {
          if (received[index] || this.signal.aborted) return
          received[index] = true
          done++
          p.served++
          onBlock(index, parts)
        }, (err: unknown) => {
          if (this.signal.aborted) return
          if (p.dropped !== undefined) {
            // failed with the provider's session when it was dropped: the drop's reason stands for it
            pending.unshift(index)
            return
          }
          const reason = err instanceof Error ? err.message : String(err)
          req.failedAt.set(p.key, reason)
          if (err instanceof ShardError) {
            if (err.kind === 'bad-block' || err.kind === 'too-large') this.drop(p, reason, true)
            else if (err.kind !== 'not-found') this.drop(p, reason, false)
          } else {
            this.drop(p, reason, false)
          }
          pending.unshift(index)
        })
        .finally(() => {
          active--
          p.inFlight--
          this.notify()
        })
    }

    while (done < items.length) {
      this.signal.throwIfAborted()
      // hand out work: each pending block to the least busy provider that has not failed it
      for (let qi = 0; qi < pending.length && active < concurrency;) {
        const p = this.pick(requests[pending[qi]], perProvider)
        if (p === undefined) { qi++; continue }
        const [index] = pending.splice(qi, 1)
        start(index, p)
      }
      if (done === items.length) break
      if (active === 0 && pending.length > 0) {
        // nobody is working and nobody can take a pending block: look further or give up
        const req = requests[pending[0]]
        if (this.searches === 0 && !req.searched && req.cid !== this.cid && req.failedAt.size > 0) {
          req.searched = true
          this.search(req.cid)
        } else if (this.searches === 0) {
          this.fail(req)
        }
      }
      await this.nextEvent()
    }
  }

  private fail (req: BlockRequest): never {
    if (this.providers.size === 0) {
      const detail = this.searchErrors.length > 0 ? `the search ended: ${this.searchErrors.join('; ')}` : 'the DHT search ended without one'
      throw new ModelNotFoundError(this.id, detail)
    }
    const failures = [...req.failedAt.entries()].map(([peer, reason]) => reason.includes(peer) ? reason : `${peer}: ${reason}`)
    for (const p of this.providers.values()) {
      if (p.dropped !== undefined && !req.failedAt.has(p.key)) failures.push(`${p.key} dropped earlier: ${p.dropped}`)
    }
    throw new ModelFetchError(this.id, req.cid.toString(), failures)
  }
}
