/**
 * Peer scoring for poi's gossip (DESIGN §4, issue 9): what a peer earns by delivering messages
 * first and loses by sending invalid ones, and the scores at which we stop gossiping with it,
 * stop publishing to it, stop reading it, and hang up (the last enforced by node/p2p.ts, since
 * gossipsub never disconnects anyone itself). The numbers that bound what a peer can make us do
 * are in protocols/wire/bounds.ts ("peer scoring") with their reasons; this file turns them into
 * gossipsub's parameter objects.
 *
 * What one invalid message costs, with these numbers: 10 points, forgotten after 22 s. A peer
 * below 0 leaves our meshes at the next heartbeat (its messages are still read and relayed); at
 * PEER_DISCONNECT_SCORE (7 invalid messages in a few seconds, or a sustained 1 a second for 10 s)
 * it is disconnected and banned.
 */
import {
  createPeerScoreParams, createPeerScoreThresholds, createTopicScoreParams,
  type PeerScoreParams, type PeerScoreThresholds, type TopicScoreParams
} from '@chainsafe/libp2p-gossipsub/score'
import {
  GOSSIP_GOSSIP_SCORE, GOSSIP_GRAYLIST_SCORE, GOSSIP_INVALID_MESSAGE_DECAY, GOSSIP_INVALID_MESSAGE_WEIGHT,
  GOSSIP_PUBLISH_SCORE, GOSSIP_SCORE_RETAIN_MS, GOSSIP_TOPIC_SCORE_CAP, IP_COLOCATION_THRESHOLD,
  IP_COLOCATION_WEIGHT, PEER_DISCONNECT_SCORE
} from '../wire/index.js'

/** Every topic counts the same: an invalid task is as bad as an invalid attestation. */
const TOPIC_WEIGHT = 1

/**
 * Time in a mesh earns at most 1 point (0.01 a second for 100 s): a little preference for
 * long-standing mesh peers, never enough to offset one invalid message.
 */
const TIME_IN_MESH_WEIGHT = 0.01
const TIME_IN_MESH_QUANTUM_MS = 1000
const TIME_IN_MESH_CAP = 100

/**
 * Delivering a message first earns 1 point, up to 20 a topic, decaying by a tenth a second: a
 * relay that brings news early is preferred in the mesh. GOSSIP_TOPIC_SCORE_CAP caps the sum.
 */
const FIRST_DELIVERIES_WEIGHT = 1
const FIRST_DELIVERIES_DECAY = 0.9
const FIRST_DELIVERIES_CAP = 20

/** Addresses exempt from the IP colocation penalty by default: a devnet runs every node on loopback. */
export const LOOPBACK_ADDRESSES: readonly string[] = ['127.0.0.1', '::1']

/**
 * One topic's parameters. Mesh-delivery penalties stay off: tasks are bursty and rare, so a
 * quiet mesh peer is not a bad one.
 */
export function topicScoreParams (): TopicScoreParams {
  return createTopicScoreParams({
    topicWeight: TOPIC_WEIGHT,
    timeInMeshWeight: TIME_IN_MESH_WEIGHT,
    timeInMeshQuantum: TIME_IN_MESH_QUANTUM_MS,
    timeInMeshCap: TIME_IN_MESH_CAP,
    firstMessageDeliveriesWeight: FIRST_DELIVERIES_WEIGHT,
    firstMessageDeliveriesDecay: FIRST_DELIVERIES_DECAY,
    firstMessageDeliveriesCap: FIRST_DELIVERIES_CAP,
    meshMessageDeliveriesWeight: 0,
    meshFailurePenaltyWeight: 0,
    invalidMessageDeliveriesWeight: GOSSIP_INVALID_MESSAGE_WEIGHT,
    invalidMessageDeliveriesDecay: GOSSIP_INVALID_MESSAGE_DECAY
  })
}

/**
 * Peer score parameters for `topics`, every one scored alike. `colocationWhitelist` lists the
 * addresses exempt from the IP colocation penalty (loopback by default, see
 * IP_COLOCATION_WEIGHT). Behaviour penalties (GRAFT while backed off, IWANT promises broken)
 * keep gossipsub's defaults: -10 × excess², decaying to a fifth each second.
 */
export function peerScoreParams (topics: readonly string[], colocationWhitelist: readonly string[] = LOOPBACK_ADDRESSES, bootstrapPeers: readonly string[] = []): PeerScoreParams {
  const bootstrap = new Set(bootstrapPeers)
  return createPeerScoreParams({
    // The node's own bootstrap nodes score above gossipsub's acceptPXThreshold (10), so the
    // peers they offer when they prune this node from a full mesh are dialed (the gossipsub
    // spec's advice for bootstrappers); anyone else's peer exchange is still ignored.
    appSpecificScore: (peer) => bootstrap.has(peer) ? BOOTSTRAP_APP_SCORE : 0,
    topics: Object.fromEntries(topics.map(topic => [topic, topicScoreParams()])),
    topicScoreCap: GOSSIP_TOPIC_SCORE_CAP,
    IPColocationFactorWeight: IP_COLOCATION_WEIGHT,
    IPColocationFactorThreshold: IP_COLOCATION_THRESHOLD,
    IPColocationFactorWhitelist: new Set(colocationWhitelist),
    retainScore: GOSSIP_SCORE_RETAIN_MS
  })
}

/**
 * The application-specific score of a node's own bootstrap nodes: times gossipsub's
 * appSpecificWeight (10) it is 20, over the acceptPXThreshold of 10 that a peer's exchange
 * offers must reach, and small beside the penalties that cut a misbehaving peer off.
 */
export const BOOTSTRAP_APP_SCORE = 2

/** The scores at which gossipsub stops gossiping with, publishing to and reading a peer. */
export function peerScoreThresholds (): PeerScoreThresholds {
  return createPeerScoreThresholds({
    gossipThreshold: GOSSIP_GOSSIP_SCORE,
    publishThreshold: GOSSIP_PUBLISH_SCORE,
    graylistThreshold: GOSSIP_GRAYLIST_SCORE
  })
}

/** Whether a peer with this gossip score is to be disconnected and banned (node/p2p.ts enforces it). */
export function mustDisconnect (score: number): boolean {
  return score <= PEER_DISCONNECT_SCORE
}
