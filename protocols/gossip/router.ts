import { createHash } from 'node:crypto'
import type { GossipSub, GossipsubMessage, GossipsubOpts } from '@chainsafe/libp2p-gossipsub'
import { createPeerScoreParams, createTopicScoreParams } from '@chainsafe/libp2p-gossipsub/score'
import { type Message, StrictNoSign, TopicValidatorResult } from '@libp2p/interface'
import { logger } from '@libp2p/logger'

const log = logger('poi:gossip')

/** Gossip topics, versioned in their names so a v2 network never mixes with v1. */
export const TOPICS = {
  tasks: '/poi/1/tasks/proto',
  attestations: '/poi/1/attestations/proto',
  certificates: '/poi/1/certificates/proto',
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
 * Topic scores: the invalid-message penalty grows with the square of the
 * count, so at -10 a peer is below the gossip threshold (-10) after one bad
 * message and graylisted (-80) after three; first deliveries earn a little.
 * Mesh-delivery penalties stay off: tasks are bursty and rare, so a quiet peer
 * is not a bad peer.
 */
const INVALID_MESSAGE_WEIGHT = -10
const TOPIC_WEIGHT = 1

function topicScore (): ReturnType<typeof createTopicScoreParams> {
  return createTopicScoreParams({
    topicWeight: TOPIC_WEIGHT,
    timeInMeshWeight: 0.01,
    timeInMeshQuantum: 1000,
    timeInMeshCap: 100,
    firstMessageDeliveriesWeight: 1,
    firstMessageDeliveriesDecay: 0.9,
    firstMessageDeliveriesCap: 20,
    meshMessageDeliveriesWeight: 0,
    meshFailurePenaltyWeight: 0,
    invalidMessageDeliveriesWeight: INVALID_MESSAGE_WEIGHT,
    invalidMessageDeliveriesDecay: 0.5
  })
}

export interface GossipOptions {
  /**
   * Addresses exempt from the same-IP penalty. A devnet runs every node on
   * 127.0.0.1, and gossipsub's default (-5 per peer above 10, squared) would
   * graylist them all.
   */
  colocationWhitelist?: string[]
}

export function gossipsubOptions (opts: GossipOptions = {}): Partial<GossipsubOpts> {
  const whitelist = opts.colocationWhitelist ?? ['127.0.0.1', '::1']
  return {
    globalSignaturePolicy: StrictNoSign,
    msgIdFn: messageId,
    asyncValidation: true,
    emitSelf: false,
    allowPublishToZeroTopicPeers: true,
    // Attestations come from every operator at once; flood publishing gets the
    // first hop to every subscribed peer instead of waiting for mesh repair.
    floodPublish: true,
    scoreParams: createPeerScoreParams({
      topics: {
        [TOPICS.tasks]: topicScore(),
        [TOPICS.attestations]: topicScore(),
        [TOPICS.certificates]: topicScore(),
        [TOPICS.probes]: topicScore()
      },
      IPColocationFactorWhitelist: new Set(whitelist)
    })
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

  constructor (pubsub: GossipSub) {
    this.pubsub = pubsub
    this.listener = (evt) => { void this.dispatch(evt.detail) }
    this.pubsub.addEventListener('gossipsub:message', this.listener)
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
    for (const topic of this.handlers.keys()) {
      try { this.pubsub.unsubscribe(topic) } catch {}
    }
    this.handlers.clear()
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
    if (verdict !== 'accept' || handler.onMessage == null) return
    try {
      await handler.onMessage(msg.data, from)
    } catch (err) {
      log.error('handler for %s failed on a message from %s: %e', msg.topic, from, err)
    }
  }
}
