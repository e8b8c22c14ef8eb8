/**
 * The farthest deadline the network's nodes accept (their maximum task TTL), as the requester's
 * connected full nodes report it over /poi/network/1/, so a longer timeout is refused before the
 * task is announced rather than by every node after.
 *
 * Trust: a node's answer is untrusted; at worst a node that under-reports makes the requester
 * refuse a timeout others would accept (the user sees which node said so), and one that
 * over-reports lets a task through that the nodes then refuse (the refusal watch reports it).
 * The smallest limit reported is used. A node older than the field does not report one (it
 * refuses the question, and fetchNetworkInfo asks again without it): when no
 * connected node does, the built-in default applies (DEFAULT_MAX_TASK_TTL_MS, what every node
 * runs with unless its operator configured another).
 */
import type { AbortOptions } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { NETWORK_PROTOCOL, fetchNetworkInfo } from '../../protocols/network/index.js'
import { DEFAULT_MAX_TASK_TTL_MS } from '../config.js'
import { maxTaskTtlMsOf } from '../network-info.js'
import type { PoiNode } from '../poi-node.js'
import { TASK_TTL_LOOKUP_PEERS, TASK_TTL_LOOKUP_TIMEOUT_MS } from './constants.js'
import { connectedPeersServing } from './network-wait.js'
import type { RequestLimits } from './params.js'

const log = logger('poi:requester')

/** The network's maximum task TTL and who said so. */
export type NetworkTaskTtl = Required<RequestLimits> & {
  /** The node whose limit it is; undefined when no connected node reported one (the default applies). */
  peer: string | undefined
}

/**
 * Asks up to TASK_TTL_LOOKUP_PEERS connected nodes that serve /poi/network/1/ for their maximum
 * task TTL; resolves with the smallest reported, or the default when none reports one. Never
 * rejects for a node's failure (it is logged and skipped); an abort of `options.signal` ends
 * the asks early.
 */
export async function readNetworkTaskTtl (node: Pick<PoiNode, 'libp2p'>, options: AbortOptions = {}): Promise<NetworkTaskTtl> {
  const peers = await connectedPeersServing(node, NETWORK_PROTOCOL, TASK_TTL_LOOKUP_PEERS)
  const reports = await Promise.all(peers.map(async (peer) => {
    try {
      const info = await fetchNetworkInfo(node.libp2p, peerIdFromString(peer), { signal: options.signal, timeoutMs: TASK_TTL_LOOKUP_TIMEOUT_MS })
      const maxTaskTtlMs = maxTaskTtlMsOf(info)
      if (maxTaskTtlMs === undefined) log('%s does not report its maximum task TTL (a node older than the field)', peer)
      return maxTaskTtlMs === undefined ? undefined : { peer, maxTaskTtlMs }
    } catch (err) {
      log('asking %s for its maximum task TTL: %s', peer, (err as Error).message)
      return undefined
    }
  }))
  const smallest = reports.reduce<{ peer: string, maxTaskTtlMs: number } | undefined>(
    (min, r) => r !== undefined && (min === undefined || r.maxTaskTtlMs < min.maxTaskTtlMs) ? r : min, undefined)
  if (smallest === undefined) {
    return { maxTaskTtlMs: DEFAULT_MAX_TASK_TTL_MS, source: `the default: none of the ${peers.length} connected nodes asked over ${NETWORK_PROTOCOL} reported theirs`, peer: undefined }
  }
  return { ...smallest, source: `reported by ${smallest.peer} over ${NETWORK_PROTOCOL}` }
}
