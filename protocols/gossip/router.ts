import { createHash } from 'node:crypto'
import type { GossipSub, GossipsubMessage, GossipsubOpts } from '@chainsafe/libp2p-gossipsub'
import { type Message, type PeerId, StrictNoSign, TopicValidatorResult } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import {
  GOSSIP_MAX_OUTBOUND_BUFFER_BYTES, GOSSIP_MAX_RPC_BYTES, GOSSIP_MAX_RPC_CONTROL_ENTRIES, GOSSIP_MAX_RPC_IDONTWANT_IDS,
  GOSSIP_MAX_RPC_MESSAGES, GOSSIP_MAX_RPC_PEER_INFOS, GOSSIP_MAX_RPC_SUBSCRIPTIONS,
  MAX_ATTESTATION_BYTES, MAX_BATCH_GOSSIP_BYTES, MAX_QUORUM_CERTIFICATE_BYTES, MAX_TASK_ANNOUNCEMENT_BYTES, MAX_ZK_PROOF_ANNOUNCEMENT_BYTES
} from '../wire/index.js'
import { LOOPBACK_ADDRESSES, peerScoreParams, peerScoreThresholds } from './scoring.js'

const log = logger('poi:gossip')

/** Gossip topics, versioned in their names so a v2 network never mixes with v1. */
export const TOPICS = {
  tasks: '/poi/1/tasks/proto',
  attestations: '/poi/1/attestations/proto',
  certificates: '/poi/1/certificates/proto',
  /** Batches (issue 15): aggregators' proposals, operators' signatures of them, formed batch certificates (one BatchGossip each). */
  batches: '/poi/1/batches/proto',
  /**
   * Zero-knowledge proofs (issue 16): a prover's Groth16 proof of a zk or both task, with the
   * output it proves (one ZkProofAnnouncement each). Full nodes check and relay them; light
   * requesters follow them, as certificates.
   */
  proofs: '/poi/1/proofs/proto',
  /**
   * Latency probes: small opaque payloads that nodes started with `--probe`
   * relay and timestamp, to measure how long one gossip message takes to
   * reach every node (the floor under task → attestation → certificate).
   */
  probes: '/poi/1/probes/raw'
} as const

/** A probe is an id and a send time; anything larger is not a probe. */
export const MAX_PROBE_BYTES = 64

export type TopicName = keyof typeof TOPICS

/**
 * Message id = sha256(topic ‖ payload), truncated to 20 bytes like Ethereum's
 * gossip: every payload carries its own signature, so the same attestation
 * relayed by two peers is one message, whoever sent it.
 */
const MESSAGE_ID_BYTES = 20

export function messageId (msg: Message): Uint8Array {
  const h = createHash('sha256')
  h.update(msg.topic)
  h.update(msg.data)
  return new Uint8Array(h.digest().subarray(0, MESSAGE_ID_BYTES))
}

/**
 * Largest payload each topic carries, checked when a message arrives, before gossipsub caches it
 * or our validator decodes it; the strict codecs check the same limits again.
 */
const MAX_TOPIC_PAYLOAD_BYTES: Record<string, number> = {
  [TOPICS.tasks]: MAX_TASK_ANNOUNCEMENT_BYTES,
  [TOPICS.attestations]: MAX_ATTESTATION_BYTES,
  [TOPICS.certificates]: MAX_QUORUM_CERTIFICATE_BYTES,
  [TOPICS.batches]: MAX_BATCH_GOSSIP_BYTES,
  [TOPICS.proofs]: MAX_ZK_PROOF_ANNOUNCEMENT_BYTES,
  [TOPICS.probes]: MAX_PROBE_BYTES
}

export interface GossipOptions {
  /**
   * Addresses exempt from the same-IP penalty (default: loopback). A devnet runs every node on
   * 127.0.0.1, where the penalty (IP_COLOCATION_WEIGHT) would cut all of them off.
   */
  colocationWhitelist?: string[]
  /**
   * Offer peers when pruning one from a full mesh (gossipsub's peer exchange): bootstrap nodes,
   * which everyone meshes with first. Without it, nodes that joined a 64-operator network after
   * the bootstrap node's meshes were full stayed outside every task mesh for minutes.
   */
  peerExchange?: boolean
  /** Peer ids of this node's bootstrap nodes, whose peer exchange it accepts (BOOTSTRAP_APP_SCORE). */
  bootstrapPeers?: string[]
}

/**
 * gossipsub's options for poi. What each bound does in gossipsub 14 (read from its source):
 * - `allowedTopics`: subscriptions to any other topic are dropped before gossipsub records them,
 *   and messages on any other topic before they are hashed or cached (without a penalty:
 *   gossipsub has no hook there). So gossipsub's topic map holds at most poi's 6 topics and a
 *   peer at most 6 subscriptions.
 * - `decodeRpcLimits`: an RPC with more entries of one kind than allowed fails to decode and is
 *   dropped whole; the stream stays open.
 * - `maxInboundDataLength`: an RPC whose length prefix is larger is not read; gossipsub then
 *   drops that peer's gossip streams.
 * - `maxOutboundBufferSize`: past it, RPCs to that peer are dropped instead of queued.
 * Messages on poi topics this node does not subscribe to, and messages larger than their topic
 * allows, are rejected by GossipRouter's admission check (see there).
 */
export function gossipsubOptions (opts: GossipOptions = {}): Partial<GossipsubOpts> {
  return {
    globalSignaturePolicy: StrictNoSign,
    msgIdFn: messageId,
    asyncValidation: true,
    emitSelf: false,
    allowPublishToZeroTopicPeers: true,
    // Attestations come from every operator at once; flood publishing gets the first hop to
    // every subscribed peer instead of waiting for mesh repair.
    floodPublish: true,
    allowedTopics: Object.values(TOPICS),
    decodeRpcLimits: {
      maxSubscriptions: GOSSIP_MAX_RPC_SUBSCRIPTIONS,
      maxMessages: GOSSIP_MAX_RPC_MESSAGES,
      maxIhaveMessageIDs: GOSSIP_MAX_RPC_CONTROL_ENTRIES,
      maxIwantMessageIDs: GOSSIP_MAX_RPC_CONTROL_ENTRIES,
      maxIdontwantMessageIDs: GOSSIP_MAX_RPC_IDONTWANT_IDS,
      maxControlMessages: GOSSIP_MAX_RPC_CONTROL_ENTRIES,
      maxPeerInfos: GOSSIP_MAX_RPC_PEER_INFOS
    },
    maxInboundDataLength: GOSSIP_MAX_RPC_BYTES,
    maxOutboundBufferSize: GOSSIP_MAX_OUTBOUND_BUFFER_BYTES,
    doPX: opts.peerExchange === true,
    scoreParams: peerScoreParams(Object.values(TOPICS), opts.colocationWhitelist ?? LOOPBACK_ADDRESSES, opts.bootstrapPeers ?? []),
    scoreThresholds: peerScoreThresholds()
  }
}

export type Verdict = 'accept' | 'reject' | 'ignore'

export interface TopicHandler {
  /**
   * Decides what happens to a message from the network: `reject` lowers the
   * sender's score (malformed, bad signature, unknown operator, wrong epoch),
   * `ignore` drops it silently (duplicate, late). Called once per message id.
   * Only accepted messages are relayed and handed to `onMessage`.
   */
  validate: (data: Uint8Array, from: string) => Promise<Verdict>
  onMessage?: (data: Uint8Array, from: string) => void | Promise<void>
}

const VERDICTS: Record<Verdict, TopicValidatorResult> = {
  accept: TopicValidatorResult.Accept,
  reject: TopicValidatorResult.Reject,
  ignore: TopicValidatorResult.Ignore
}

/**
 * Drives the application from `gossipsub:message` with asynchronous
 * validation: the message is forwarded only after we report a verdict.
 */
export class GossipRouter {
  private readonly pubsub: GossipSub
  private readonly handlers = new Map<string, TopicHandler>()
  private readonly listener: (evt: CustomEvent<GossipsubMessage>) => void

  private readonly admission = (_from: PeerId, msg: Message): TopicValidatorResult => this.admit(msg)

  /** `onVerdict`: told every verdict of a topic validator (metrics: node/api/metrics.ts). */
  constructor (pubsub: GossipSub, private readonly onVerdict?: (topic: string, verdict: Verdict) => void) {
    this.pubsub = pubsub
    this.listener = (evt) => { void this.dispatch(evt.detail) }
    this.pubsub.addEventListener('gossipsub:message', this.listener)
    for (const topic of Object.values(TOPICS)) this.pubsub.topicValidators.set(topic, this.admission)
  }

  handle (topic: TopicName, handler: TopicHandler): void {
    const name = TOPICS[topic]
    this.handlers.set(name, handler)
    this.pubsub.subscribe(name)
  }

  async publish (topic: TopicName, data: Uint8Array): Promise<number> {
    try {
      const res = await this.pubsub.publish(TOPICS[topic], data)
      return res.recipients.length
    } catch (err: any) {
      // Publishing bytes we already published (a re-sent attestation after a
      // restart) is not an error for us: the network already has them.
      if (err?.message?.includes('Duplicate') === true || err?.code === 'ERR_DUPLICATE_MESSAGE') return 0
      throw err
    }
  }

  /** Peers we know to be subscribed to a topic. */
  subscribers (topic: TopicName): number {
    return this.pubsub.getSubscribers(TOPICS[topic]).length
  }

  /** Peers in our mesh for a topic: messages published there reach us without waiting for gossip. */
  meshPeers (topic: TopicName): number {
    return this.pubsub.getMeshPeers(TOPICS[topic]).length
  }

  stop (): void {
    this.pubsub.removeEventListener('gossipsub:message', this.listener)
    for (const topic of Object.values(TOPICS)) {
      if (this.pubsub.topicValidators.get(topic) === this.admission) this.pubsub.topicValidators.delete(topic)
    }
    for (const topic of this.handlers.keys()) {
      try { this.pubsub.unsubscribe(topic) } catch {}
    }
    this.handlers.clear()
  }

  /**
   * gossipsub's synchronous topic validator, run on every message on a poi topic after its id is
   * computed and before it is cached: a message on a topic we do not subscribe to, or larger
   * than its topic allows, is rejected at once, so gossipsub neither keeps it (it would sit in
   * the message cache, unvalidated, for 5 heartbeats) nor hands it to a validator, and the
   * sender loses score for it. An honest peer sends a topic's messages only to its subscribers,
   * and never larger than the wire limits (the encoders check them). Everything else goes on to
   * the topic's asynchronous validator.
   */
  private admit (msg: Message): TopicValidatorResult {
    if (!this.handlers.has(msg.topic)) return TopicValidatorResult.Reject
    const max = MAX_TOPIC_PAYLOAD_BYTES[msg.topic]
    if (max !== undefined && msg.data.length > max) return TopicValidatorResult.Reject
    return TopicValidatorResult.Accept
  }

  private async dispatch ({ msg, msgId, propagationSource }: GossipsubMessage): Promise<void> {
    const handler = this.handlers.get(msg.topic)
    const from = propagationSource.toString()
    if (handler == null) {
      this.pubsub.reportMessageValidationResult(msgId, from, TopicValidatorResult.Ignore)
      return
    }
    let verdict: Verdict
    try {
      verdict = await handler.validate(msg.data, from)
    } catch (err) {
      log.error('validator for %s threw, ignoring message from %s: %e', msg.topic, from, err)
      verdict = 'ignore'
    }
    this.pubsub.reportMessageValidationResult(msgId, from, VERDICTS[verdict])
    this.onVerdict?.(msg.topic, verdict)
    if (verdict !== 'accept' || handler.onMessage == null) return
    try {
      await handler.onMessage(msg.data, from)
    } catch (err) {
      log.error('handler for %s failed on a message from %s: %e', msg.topic, from, err)
    }
  }
}
