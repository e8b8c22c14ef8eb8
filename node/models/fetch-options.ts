/** Bounds and options of fetching a model (fetch-model.ts), and what a fetch reports. */
import type { AbortOptions, Libp2p, PeerId } from '@libp2p/interface'
import type { ModelManifest, ZkFiles } from '../inference/index.js'
import type { ProvideReport } from './provide.js'

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
  /** The zk files' bytes (checked against the manifest's `zk` section); absent without one. */
  zk?: ZkFiles
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
