import type { AbortOptions } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { peerIdentityOf } from '../peer-identity.js'
import type { PoiNode } from '../poi-node.js'
import { sleep, throwIfAborted } from './abort.js'
import { DEFAULT_CONNECT_TIMEOUT_MS, NETWORK_POLL_MS } from './constants.js'
import { NotConnectedError } from './errors.js'

export interface WaitForNetworkOptions extends AbortOptions {
  /** For both waits together; default DEFAULT_CONNECT_TIMEOUT_MS. */
  timeoutMs?: number
}

/** Distinct peers `node` has a connection to (a peer may have several connections). */
export function connectedPeerIds (node: Pick<PoiNode, 'libp2p'>): string[] {
  return [...new Set(node.libp2p.getConnections().map(c => c.remotePeer.toString()))]
}

/**
 * Up to `max` connected peers that said (identify) they serve `protocol`, in connection order:
 * whom a requester asks a question only full nodes answer.
 */
export async function connectedPeersServing (node: Pick<PoiNode, 'libp2p'>, protocol: string, max: number): Promise<string[]> {
  const peers: string[] = []
  for (const id of connectedPeerIds(node)) {
    if (peers.length >= max) break
    const peer = await node.libp2p.peerStore.get(peerIdFromString(id)).catch(() => undefined)
    if (peer?.protocols.includes(protocol) === true) peers.push(id)
  }
  return peers
}

/**
 * Waits until the node can both announce a task (a peer subscribes to `tasks`) and hear its
 * certificate (a mesh peer on `certificates`), within one time limit. Throws
 * NotConnectedError naming what it waited for and how long, PeerIdentityMismatchError (at
 * once) when every bootstrap address was answered by a node with another peer id, or
 * RequestAbortedError.
 */
export async function waitForNetwork (node: PoiNode, options: WaitForNetworkOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
  const end = Date.now() + timeoutMs
  const waits: Array<{ what: string, ready: () => boolean }> = [
    { what: 'a peer subscribed to the tasks topic', ready: () => node.topicPeers('tasks') > 0 },
    { what: 'a mesh peer on the certificates topic', ready: () => node.meshPeers('certificates') > 0 }
  ]
  for (const { what, ready } of waits) {
    while (!ready()) {
      throwIfAborted(options.signal, `waiting for ${what}`)
      // Every bootstrap address was answered by a node with another key: no peer will come.
      const refused = node.libp2p.getConnections().length === 0 ? peerIdentityOf(node.libp2p)?.bootstrapRefusals() : undefined
      if (refused !== undefined) throw refused[refused.length - 1]
      if (Date.now() >= end) throw new NotConnectedError(timeoutMs, what, connectedPeerIds(node).length)
      await sleep(Math.min(NETWORK_POLL_MS, Math.max(0, end - Date.now())), options.signal)
    }
  }
}
