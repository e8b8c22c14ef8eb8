/**
 * One fetch of one model from its providers (fetch-model.ts states what is checked).
 *
 * Providers come from `contentRouting.findProviders(modelId)`; since holders store a model
 * whole, the manifest's providers are asked for its chunks too. Chunks are spread over the
 * providers, a few in flight per provider, pipelined on one /poi/shard/1/ stream each
 * (ShardSession): a stream per chunk cost more CPU than the chunk's bytes on loopback. A
 * provider that sends a corrupt or oversized block, or fails to answer, is dropped for the rest
 * of this fetch and its chunk asked of another; corrupt and oversized blocks also tag the peer
 * in the peer store (BAD_SHARD_TAG) so later fetches use it last.
 */
import type { PeerId } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import { createHash } from 'node:crypto'
import { ZK_FILES, checkZkCircuit, type ModelManifest, type ZkFileKey, type ZkFileRef, type ZkFiles } from '../inference/index.js'
import { type BlockStore } from '../../storage/index.js'
import { MAX_BLOCK_BYTES } from '../../protocols/wire/index.js'
import { FETCH_BLOCK_TIMEOUT_MS, ShardError, ShardSession } from '../../protocols/shard/index.js'
import { ModelFetchError, ModelIntegrityError, ModelNotFoundError } from './errors.js'
import {
  BAD_SHARD_TAG, BAD_SHARD_TAG_TTL_MS, DEFAULT_FETCH_CONCURRENCY, DEFAULT_PER_PROVIDER_IN_FLIGHT, FIND_PROVIDERS_TIMEOUT_MS,
  type FetchedModel, type FetchLibp2p, type FetchModelOptions, type FetchPhase, type FetchProgress
} from './fetch-options.js'
import { decodeManifestBlock, manifestBlock, zkCids } from './model-blocks.js'
import { provideModel, type ProvideReport } from './provide.js'

const log = logger('poi:models:fetch')

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

/** Finds providers, fetches and checks blocks, drops misbehaving providers; `close()` ends whatever still runs. */
export class ModelFetch {
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
    const zkRefs = manifest.zk === undefined ? [] : ZK_FILES.map(({ key }) => (manifest.zk as NonNullable<ModelManifest['zk']>)[key])
    this.progress.bytesTotal = manifest.size + zkRefs.reduce((sum, ref) => sum + ref.size, 0)
    this.progress.chunksTotal = manifest.chunks.length + zkRefs.reduce((sum, ref) => sum + ref.chunks.length, 0)

    this.setPhase('chunks')
    const chunkCids = manifest.chunks.map(c => CID.parse(c))
    const modelBytes = await this.file({ size: manifest.size, sha256: manifest.modelHash, chunks: manifest.chunks }, manifest.chunkSize, (hash) =>
      // every chunk matched its CID, so the manifest itself lists chunks of another file
      `its chunks assemble to ${manifest.size} bytes hashing to ${hash}, not the manifest's ${manifest.modelHash}; the manifest is inconsistent`)
    let zk: ZkFiles | undefined
    if (manifest.zk !== undefined) {
      // before the proving key (the largest file) is fetched: a circuit that is not the model's is a ManifestError naming zk.circuitId
      checkZkCircuit(manifest, modelBytes)
      zk = await this.zkFiles(manifest, ZK_FILES.map(f => f.key))
    }

    this.setPhase('storing')
    const mBlock = manifestBlock(manifest)
    const chunkSize = manifest.chunkSize
    const blocksOf = (cids: CID[], bytes: Uint8Array): Array<{ cid: CID, bytes: Uint8Array }> => cids.map((c, i) => ({ cid: c, bytes: bytes.subarray(i * chunkSize, (i + 1) * chunkSize) }))
    const zkBlocks = ZK_FILES.flatMap(({ key }, i) => zk === undefined ? [] : blocksOf(zkRefs[i].chunks.map(c => CID.parse(c)), zk[key]))
    await blockStore.putMany([...blocksOf(chunkCids, modelBytes), ...zkBlocks, mBlock])

    let provided: ProvideReport | undefined
    if (this.options.provide !== false) {
      this.setPhase('providing')
      provided = await provideModel(this.libp2p, [mBlock.cid, ...chunkCids, ...zkCids(manifest)], { signal: this.options.signal })
    }
    this.setPhase('done')
    const servedBy = [...this.providers.values()].filter(p => p.served > 0).map(p => ({ peer: p.key, blocks: p.served }))
    log('model %s: %d bytes from %d providers, %d dropped', this.id, manifest.size, servedBy.length, this.droppedList.length)
    const fetched: FetchedModel = { modelId: this.cid.bytes, manifest, modelBytes, fromStore: false, servedBy, dropped: this.droppedList, provided }
    if (zk !== undefined) fetched.zk = zk
    return fetched
  }

  /**
   * Some of the files of the manifest's `zk` section, each chunk checked against its CID and the
   * whole against the section's sha256 (a node that only checks proofs fetches the vkey alone).
   */
  async zkFiles<K extends ZkFileKey> (manifest: ModelManifest, keys: readonly K[]): Promise<Pick<ZkFiles, K>> {
    const zk = manifest.zk
    if (zk === undefined) throw new ModelIntegrityError(this.id, 'the manifest has no zk section')
    const out: Partial<ZkFiles> = {}
    for (const key of keys) {
      const ref = zk[key]
      out[key] = await this.file(ref, manifest.chunkSize, (hash) => `the chunks of zk.${key} assemble to ${ref.size} bytes hashing to ${hash}, not the manifest's ${ref.sha256}; the manifest is inconsistent`)
    }
    return out as Pick<ZkFiles, K>
  }

  /**
   * One file's chunks from the provider pool, each checked against its CID; the whole-file hash
   * runs over the longest prefix received so far, overlapping the transfer.
   */
  private async file (ref: ZkFileRef, chunkSize: number, mismatch: (hash: string) => string): Promise<Uint8Array> {
    const { size } = ref
    const chunkCids = ref.chunks.map(c => CID.parse(c))
    const bytes = new Uint8Array(size)
    const chunkAt = (i: number): Uint8Array => bytes.subarray(i * chunkSize, Math.min(size, (i + 1) * chunkSize))
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
        bytes.set(part, offset)
        offset += part.length
      }
      arrived[i] = true
      while (hashedUpTo < arrived.length && arrived[hashedUpTo]) whole.update(chunkAt(hashedUpTo++))
      this.progress.bytesDone += offset - i * chunkSize
      this.progress.chunksDone++
      this.report()
    })
    const hash = `0x${whole.digest('hex')}`
    if (hash !== ref.sha256) throw new ModelIntegrityError(this.id, mismatch(hash))
    return bytes
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
