/**
 * Announce a model's blocks on the DHT (DESIGN §7), so fetchers find this node as a provider.
 * Announcing is best effort: the blocks are stored and served whether or not it succeeds.
 */
import type { AbortOptions, Libp2p } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import type { CID } from 'multiformats/cid'

const log = logger('poi:models:provide')

/**
 * Bound on announcing one CID: a DHT query for the closest peers plus ADD_PROVIDER to each.
 * On a small network this takes well under a second; 30 s allows a slow or large one.
 */
export const PROVIDE_TIMEOUT_MS = 30_000

/**
 * CIDs announced at once. Each announcement is a DHT query of its own; a few in parallel
 * keep a 50-chunk model from taking 50 sequential queries without flooding the DHT.
 */
export const PROVIDE_CONCURRENCY = 4

const NO_PEERS = 'no peers connected, so no DHT node to announce to; the blocks are stored and served, announce again once connected'

export interface ProvideModelOptions extends AbortOptions {
  concurrency?: number
  /** Called after each CID, announced or not. */
  onProvided?: (done: number, total: number) => void
}

export interface ProvideReport {
  provided: number
  failed: Array<{ cid: string, error: string }>
}

/**
 * Announce every CID on the DHT with `contentRouting.provide`. A CID that cannot be announced
 * (no DHT peers yet, timeout) is reported, not thrown: the blocks are stored and served either
 * way, and the node can announce again later. Throws only if `signal` aborts.
 */
export async function provideModel (libp2p: Pick<Libp2p, 'contentRouting' | 'getPeers'>, cids: readonly CID[], options: ProvideModelOptions = {}): Promise<ProvideReport> {
  const report: ProvideReport = { provided: 0, failed: [] }
  // kad-dht waits out the whole timeout when it has nobody to ask; say so at once instead
  const isolated = (): boolean => libp2p.getPeers().length === 0
  const concurrency = Math.max(1, options.concurrency ?? PROVIDE_CONCURRENCY)
  let next = 0
  let done = 0
  const worker = async (): Promise<void> => {
    while (next < cids.length) {
      options.signal?.throwIfAborted()
      const cid = cids[next++]
      if (isolated()) {
        report.failed.push({ cid: cid.toString(), error: NO_PEERS })
        done++
        options.onProvided?.(done, cids.length)
        continue
      }
      const signal = options.signal == null ? AbortSignal.timeout(PROVIDE_TIMEOUT_MS) : AbortSignal.any([options.signal, AbortSignal.timeout(PROVIDE_TIMEOUT_MS)])
      try {
        await libp2p.contentRouting.provide(cid, { signal })
        report.provided++
      } catch (err) {
        options.signal?.throwIfAborted()
        log('providing %s failed: %s', cid, (err as Error).message)
        report.failed.push({ cid: cid.toString(), error: (err as Error).message })
      }
      done++
      options.onProvided?.(done, cids.length)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, cids.length) }, worker))
  return report
}
