/**
 * Hangs up on peers that keep sending gossip on topics that are not poi's (issue 9: 182,000
 * junk-topic subscriptions cost every node 150–175 MB). gossipsub's `allowedTopics` already
 * drops such subscriptions and messages before it records anything, but silently: the sender
 * loses no score and may go on forever ("TODO: Should apply behaviour penalties?" in
 * gossipsub 14). This counts, per connected peer, the distinct foreign topics it subscribed to
 * or sent messages on; past MAX_FOREIGN_TOPICS_PER_PEER the caller bans it.
 *
 * A few are tolerated: a node of a later poi version subscribes to its own topics beside ours
 * during an upgrade. Messages on a topic we do not subscribe to never come from an honest
 * gossipsub peer (it sends only to subscribers), but they are counted the same way.
 */
import type { PeerId } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { MAX_FOREIGN_TOPICS_PER_PEER } from '../protocols/wire/index.js'

const log = logger('poi:gossip-guard')

/** The part of an RPC the guard reads. */
interface RpcTopics {
  subscriptions?: Array<{ topic?: string }>
  messages?: Array<{ topic?: string }>
}

/** gossipsub 14's public RPC entry point (every decoded RPC passes through it). */
export interface GuardedGossip {
  handleReceivedRpc: (from: PeerId, rpc: RpcTopics) => Promise<void>
}

export interface ForeignTopicGuard {
  /** Forgets a peer's count (call when its last connection closes). */
  forget: (peer: PeerId) => void
  /** Peers counted now (bounded by the connected peers). */
  readonly size: number
}

export function guardForeignTopics (gossip: GuardedGossip, allowed: readonly string[], onViolation: (peer: PeerId, topics: number) => void): ForeignTopicGuard {
  const poiTopics = new Set(allowed)
  /** Peer id → the distinct foreign topics it used, at most MAX_FOREIGN_TOPICS_PER_PEER + 1 kept. */
  const seen = new Map<string, Set<string>>()
  const handle = gossip.handleReceivedRpc.bind(gossip)
  gossip.handleReceivedRpc = async (from, rpc) => {
    let foreign: Set<string> | undefined
    for (const entry of [...(rpc.subscriptions ?? []), ...(rpc.messages ?? [])]) {
      const topic = entry.topic
      if (topic == null || poiTopics.has(topic)) continue
      const id = from.toString()
      foreign ??= seen.get(id) ?? new Set<string>()
      seen.set(id, foreign)
      foreign.add(topic)
      if (foreign.size > MAX_FOREIGN_TOPICS_PER_PEER) {
        log('%p used %d topics that are not poi\'s', from, foreign.size)
        onViolation(from, foreign.size)
        // Its RPC is not handled: the peer is being cut off.
        return
      }
    }
    await handle(from, rpc)
  }
  return {
    forget: (peer) => { seen.delete(peer.toString()) },
    get size () { return seen.size }
  }
}
