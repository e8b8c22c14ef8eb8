/**
 * The ban metrics of node/p2p.ts (poi_peer_bans_total by reason, poi_peer_ban_lowest_score):
 * what the chaos suite's flood, and an operator, read on /metrics to see that a flooder was scored
 * down and cut off. A victim built by createPoiLibp2p with a metrics registry and a task
 * validator that rejects what does not decode (as a full node's does); the flooder is the same
 * stack on 127.0.0.1 publishing junk on the tasks topic.
 */
import { strict as assert } from 'node:assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { Registry } from 'prom-client'
import { createPoiLibp2p, type PoiLibp2p } from '../node/p2p.js'
import { GossipRouter, TOPICS } from '../protocols/gossip/index.js'
import { decodeTaskAnnouncement, PEER_DISCONNECT_SCORE } from '../protocols/wire/index.js'
import { until } from './helpers/wait.js'

/** Connections, a few heartbeats and a hang-up on a loaded 2-core machine. */
const TIMEOUT_MS = 30_000
/** Publishes between two looks at the connection: fast enough to cross the disconnect score within a heartbeat or two. */
const FLOOD_INTERVAL_MS = 20

async function metric (registry: Registry, name: string): Promise<Array<{ labels: Record<string, string | number>, value: number }>> {
  const m = registry.getSingleMetric(name)
  assert.ok(m !== undefined, `${name} is not registered`)
  return (await m.get()).values.map(v => ({ labels: v.labels as Record<string, string | number>, value: v.value }))
}

describe('peer ban metrics', function () {
  this.timeout(60_000)
  const nodes: PoiLibp2p[] = []

  after(async () => {
    await Promise.all(nodes.map(async n => { await n.stop() }))
  })

  it('counts a flooder banned for its gossip score once, with the score that cost it its connection', async () => {
    const registry = new Registry()
    const victim = await createPoiLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], dhtClientMode: false, metricsRegistry: registry })
    nodes.push(victim)
    const router = new GossipRouter(victim.services.pubsub)
    router.handle('tasks', {
      validate: async (data) => {
        try { decodeTaskAnnouncement(data) } catch { return 'reject' }
        return 'accept'
      }
    })
    victim.addEventListener('stop', () => { router.stop() }, { once: true })
    assert.deepEqual((await metric(registry, 'poi_peer_bans_total')).filter(v => v.value > 0), [], 'no ban before the flood')
    assert.equal((await metric(registry, 'poi_peer_ban_lowest_score'))[0]?.value ?? 0, 0)

    const flooder = await createPoiLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], dhtClientMode: false })
    nodes.push(flooder)
    flooder.services.pubsub.subscribe(TOPICS.tasks)
    await flooder.dial(victim.getMultiaddrs())
    await until(() => flooder.services.pubsub.getSubscribers(TOPICS.tasks).some(p => p.equals(victim.peerId)), TIMEOUT_MS, 'the victim subscribed to tasks, as the flooder sees it')

    let sent = 0
    const flood = setInterval(() => {
      flooder.services.pubsub.publish(TOPICS.tasks, new Uint8Array(64).fill(sent++ & 0xff)).catch(() => {})
    }, FLOOD_INTERVAL_MS)
    try {
      await until(() => victim.services.bans.isBanned(flooder.peerId), TIMEOUT_MS, 'the victim to ban the flooder')
    } finally {
      clearInterval(flood)
    }
    await until(() => victim.getConnections(flooder.peerId).length === 0, TIMEOUT_MS, 'the hang-up')
    // Heartbeats after the ban must not count it again.
    await new Promise<void>(resolve => {
      let beats = 3
      const onBeat = (): void => { if (--beats === 0) { victim.services.pubsub.removeEventListener('gossipsub:heartbeat', onBeat); resolve() } }
      victim.services.pubsub.addEventListener('gossipsub:heartbeat', onBeat)
    })
    const bans = (await metric(registry, 'poi_peer_bans_total')).filter(v => v.value > 0)
    assert.deepEqual(bans, [{ labels: { reason: 'gossip-score' }, value: 1 }])
    const lowest = (await metric(registry, 'poi_peer_ban_lowest_score'))[0].value
    assert.ok(lowest <= PEER_DISCONNECT_SCORE, `lowest banned score ${lowest} must be at or below the disconnect score ${PEER_DISCONNECT_SCORE}`)
    assert.ok(sent > 0)
  })
})
