/**
 * Chaos scenario `flood`: a rogue peer in this process (createPoiLibp2p, the nodes' own libp2p
 * and gossipsub configuration, so it meshes like a node) connects to every node of a
 * 4-operator network and publishes FLOOD_MESSAGES malformed gossip messages (random bytes on
 * the tasks topic) interleaved with FLOOD_MESSAGES valid-looking attestations with bad BLS
 * signatures (a real G2 point from another key, for tasks being sent, every operator index),
 * as fast as it can, while real tasks are sent. Expected: no node dies, every task sent during
 * the flood (and one right after it) certifies, every node scores the rogue down and bans it (poi_peer_bans_total,
 * poi_peer_ban_lowest_score on /metrics; the rogue ends with no connection), and every node's
 * RSS returns to within RSS_SETTLE_MARGIN_BYTES of its pre-flood baseline.
 */
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { generateBlsSecretKey, signAttestation } from '../../consensus/index.js'
import { startLocalNetwork, type LocalNetwork } from '../../node/cli/devnet.js'
import { prepareNodeDir, type ChildNode } from '../../node/cli/launcher.js'
import { PoiClient } from '../../node/client/index.js'
import { reasonLabel } from '../../node/api/index.js'
import { loadModelDir, modelIdToString, SHIPPED_MODEL_DIR } from '../../node/inference/index.js'
import { createPoiLibp2p, type PoiLibp2p } from '../../node/p2p.js'
import { TOPICS } from '../../protocols/gossip/index.js'
import { encodeAttestation, fromHex, type Attestation } from '../../protocols/wire/index.js'
import type { Scenario, ScenarioContext, ScenarioResult } from './scenario.js'
import { conclude, endedEarly, inMiB, MiB, type Outcome, RssSampler, sendTask, sleep, tally } from './tally.js'

/** The flood: 10,000 malformed messages and 10,000 attestations with bad signatures. */
const FLOOD_MESSAGES = 10_000
const OPERATORS = 4
/** Tasks sent while the flood runs, one every TASK_INTERVAL_MS from just before it starts. */
const FLOOD_TASKS = 6
const TASK_INTERVAL_MS = 500
const TASK_TIMEOUT_MS = 60_000
/** Publishes between two yields to the event loop, so the tasks sent meanwhile make progress. */
const PUBLISH_BATCH = 200
/** The rogue reaches every node directly; a busy machine takes seconds to connect and mesh. */
const MESH_TIMEOUT_MS = 30_000
/**
 * How far above its pre-flood RSS a node may settle. The flood allocates in the node (decoding,
 * rejected events, gossipsub's seen-cache of message ids, kept 2 minutes); V8 returns freed pages
 * lazily, so "back to baseline" means the growth stops and shrinks to a small margin, not zero.
 */
const RSS_SETTLE_MARGIN_BYTES = 48 * MiB
/** How long after the flood the RSS may take to settle (several GCs and gossipsub's cache sweeps). */
const SETTLE_TIMEOUT_MS = 45_000

/** One counter of a node's Prometheus exposition, summed over the series whose labels contain `labels`. */
function metricValue (text: string, name: string, labels = ''): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue
    if (!line.includes(labels)) continue
    sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

async function metricsOf (node: ChildNode): Promise<string> {
  const res = await fetch(`${node.httpUrl!}/metrics`, { signal: AbortSignal.timeout(10_000) })
  return await res.text()
}

/** The rogue: the nodes' libp2p stack with a fresh identity, connected to each node and subscribed to every topic. */
async function startRogue (net: LocalNetwork, nodes: ChildNode[]): Promise<PoiLibp2p> {
  const rogue = await createPoiLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [net.bootstrapAddr], dhtClientMode: true })
  for (const topic of [TOPICS.tasks, TOPICS.attestations, TOPICS.certificates]) rogue.services.pubsub.subscribe(topic)
  await Promise.all(nodes.map(async n => {
    const ready = n.events.find(e => e.event === 'ready')
    const addr = ready?.event === 'ready' ? ready.addrs.find(a => a.includes('/tcp/')) : undefined
    if (addr !== undefined) await rogue.dial(multiaddr(addr)).catch(() => {})
  }))
  const deadline = Date.now() + MESH_TIMEOUT_MS
  while (rogue.services.pubsub.getSubscribers(TOPICS.tasks).length < nodes.length && Date.now() < deadline) await sleep(200)
  return rogue
}

export const flood: Scenario = {
  name: 'flood',
  run: async (ctx: ScenarioContext): Promise<ScenarioResult> => {
    const expectation = `a peer floods ${FLOOD_MESSAGES} malformed messages and ${FLOOD_MESSAGES} bad-signature attestations: no node dies, tasks sent meanwhile certify, every node bans the flooder for its score, RSS settles within ${RSS_SETTLE_MARGIN_BYTES / MiB} MiB of baseline`
    const result: ScenarioResult = { name: 'flood', expectation, sent: 0, certified: 0, noQuorum: 0, refused: 0, lost: 0, recoverMs: null, passed: false, details: {} }
    let net: LocalNetwork | undefined
    let client: PoiClient | undefined
    let rogue: PoiLibp2p | undefined
    let sampler: RssSampler | undefined
    try {
      net = await startLocalNetwork({ root: ctx.root, operators: OPERATORS, progress: ctx.progress })
      const nodes = [net.bootstrap, ...net.operators, net.aggregator]
      const model = modelIdToString((await loadModelDir(SHIPPED_MODEL_DIR)).modelId)
      client = await PoiClient.connect({ keystore: (await prepareNodeDir(ctx.root, 'requester')).keystore, bootstrap: [net.bootstrapAddr], genesis: net.genesisPath })
      ctx.progress('warm-up task (operators fetch the model)')
      const warm = await sendTask(client, model, 1, TASK_TIMEOUT_MS)
      if (warm.kind !== 'certified') throw new Error(`the warm-up task did not certify (${warm.kind})`)
      sampler = new RssSampler(new Map(nodes.map(n => [n.name, n.proc.pid!])))
      const baseline = sampler.sample()

      ctx.progress('starting the rogue peer')
      rogue = await startRogue(net, nodes)
      const rogueId = rogue.peerId.toString()
      const meshedWith = rogue.services.pubsub.getSubscribers(TOPICS.tasks).length
      ctx.progress(`rogue ${rogueId} reaches ${meshedWith} of ${nodes.length} nodes on the tasks topic`)

      // Valid-looking attestations for the tasks being sent: a real signature by a key that is no
      // operator's, one per task and operator (signing 10,000 would be the bench's own load); each
      // message then gets a fresh result hash (a distinct message id), so no signature matches.
      const wrongKey = generateBlsSecretKey()
      const taskIds: string[] = [warm.taskId]
      const templates = new Map<string, Attestation>()
      const badAttestation = (i: number): Uint8Array => {
        const taskId = taskIds[i % taskIds.length]
        const operatorIndex = i % OPERATORS
        const key = `${taskId}/${operatorIndex}`
        let template = templates.get(key)
        if (template === undefined) {
          const hash = new Uint8Array(32)
          template = signAttestation(wrongKey, net!.operatorSet.domain, { taskId: fromHex(taskId)!, resultHash: hash, outputRef: hash, epoch: net!.operatorSet.epoch, operatorIndex, output: new Uint8Array(0) })
          templates.set(key, template)
        }
        const resultHash = new Uint8Array(randomBytes(32))
        return encodeAttestation({ ...template, resultHash, outputRef: resultHash })
      }

      ctx.progress(`flooding: ${FLOOD_MESSAGES} malformed messages and ${FLOOD_MESSAGES} bad-signature attestations, with ${FLOOD_TASKS} tasks sent meanwhile`)
      const pending: Array<Promise<Outcome>> = []
      let tasksSent = 0
      const sendOne = (): void => {
        const seed = 2_000 + tasksSent++
        pending.push(sendTask(client!, model, seed, TASK_TIMEOUT_MS, (id) => { taskIds.push(id) }))
      }
      sendOne()
      const taskTimer = setInterval(() => { if (tasksSent < FLOOD_TASKS) sendOne() }, TASK_INTERVAL_MS)
      const floodStart = performance.now()
      // When each node hung up on the rogue, as the rogue saw it.
      const cutOffAfterMs = new Map<string, number>()
      const nodeIds = new Map(nodes.map(n => {
        const ready = n.events.find(e => e.event === 'ready')
        return [ready?.event === 'ready' ? ready.peerId : n.name, n.name]
      }))
      rogue.addEventListener('peer:disconnect', (evt) => {
        const name = nodeIds.get(evt.detail.toString())
        if (name !== undefined && !cutOffAfterMs.has(name)) cutOffAfterMs.set(name, Math.round(performance.now() - floodStart))
      })
      let published = 0
      let deliveries = 0
      let publishErrors = 0
      for (let i = 0; i < FLOOD_MESSAGES; i++) {
        for (const [topic, data] of [[TOPICS.tasks, new Uint8Array(randomBytes(64 + (i % 64)))], [TOPICS.attestations, badAttestation(i)]] as const) {
          try {
            const { recipients } = await rogue.services.pubsub.publish(topic, data)
            deliveries += recipients.length
          } catch {
            publishErrors++
          }
          published++
        }
        if (i % PUBLISH_BATCH === 0) await sleep(0)
      }
      const floodMs = performance.now() - floodStart
      ctx.progress(`flood published in ${(floodMs / 1000).toFixed(1)} s (${deliveries} deliveries to peers); waiting for the tasks`)
      while (tasksSent < FLOOD_TASKS) await sleep(TASK_INTERVAL_MS)
      clearInterval(taskTimer)
      const duringFlood = await Promise.all(pending)
      // One more task once the flood is over: how soon the network serves a new task.
      const floodEnd = Date.now()
      const afterFlood = await sendTask(client, model, 3_000, TASK_TIMEOUT_MS)
      result.recoverMs = afterFlood.kind === 'certified' ? afterFlood.at - floodEnd : null
      const outcomes = [...duringFlood, afterFlood]
      const t = tally(outcomes)
      Object.assign(result, { sent: t.sent, certified: t.certified, noQuorum: t.noQuorum, refused: t.refused, lost: t.lost })

      // Memory: wait until every node is back within the margin (or the timeout), sampling.
      ctx.progress('waiting for memory to settle')
      let settled = sampler.sample()
      const settleDeadline = Date.now() + SETTLE_TIMEOUT_MS
      const over = (m: Map<string, number>): string[] => [...m].filter(([name, rss]) => rss - (baseline.get(name) ?? rss) > RSS_SETTLE_MARGIN_BYTES).map(([name]) => name)
      while (over(settled).length > 0 && Date.now() < settleDeadline) {
        await sleep(1_000)
        settled = sampler.sample()
      }
      sampler.stop()

      // What the nodes saw of the rogue: refusals of its messages (their `rejected` lines) and bans on /metrics.
      const perNode: Record<string, unknown> = {}
      const notBanned: string[] = []
      for (const n of nodes) {
        const refusals = n.events.flatMap(e => e.event === 'rejected' && e.from === rogueId ? [e] : [])
        const rejected = refusals.filter(e => e.verdict === 'reject').length
        const ignored = refusals.length - rejected
        // Why, counted: undecodable, bad signature, or the node's metric label of any other reason.
        const why: Record<string, number> = {}
        for (const e of refusals) {
          const kind = /cannot decode/.test(e.reason) ? 'malformed' : /bad BLS signature/.test(e.reason) ? 'bad signature' : `${e.verdict}: ${reasonLabel(e.reason)}`
          why[kind] = (why[kind] ?? 0) + 1
        }
        const text = n.running ? await metricsOf(n) : ''
        const bans = metricValue(text, 'poi_peer_bans_total', 'reason="gossip-score"')
        const lowest = metricValue(text, 'poi_peer_ban_lowest_score')
        if (bans < 1) notBanned.push(n.name)
        perNode[n.name] = { rejectedFromRogue: rejected, ignoredFromRogue: ignored, reasons: why, scoreBans: bans, lowestBannedScore: Math.round(lowest), cutOffAfterMs: cutOffAfterMs.get(n.name) ?? null }
      }
      const rogueConnections = rogue.getConnections().length
      result.details = {
        published,
        deliveriesToPeers: deliveries,
        publishErrors,
        floodSeconds: Math.round(floodMs / 100) / 10,
        rogueMeshedWith: meshedWith,
        rogueConnectionsAfter: rogueConnections,
        nodes: perNode,
        baselineRssMiB: inMiB(baseline),
        peakRssMiB: inMiB(sampler.peak),
        settledRssMiB: inMiB(settled),
        settleMarginMiB: RSS_SETTLE_MARGIN_BYTES / MiB,
        reasons: t.reasons
      }
      const failures: string[] = []
      const dead = nodes.filter(n => !n.running).map(n => n.name)
      if (dead.length > 0) failures.push(`${dead.join(', ')} died`)
      if (t.certified !== t.sent) failures.push(`${t.sent - t.certified} of ${t.sent} tasks sent during and after the flood did not certify`)
      if (notBanned.length > 0) failures.push(`${notBanned.join(', ')} did not ban the flooder for its score`)
      if (rogueConnections > 0) failures.push(`the flooder still has ${rogueConnections} connections`)
      const high = over(settled)
      if (high.length > 0) failures.push(`RSS of ${high.join(', ')} did not settle within ${RSS_SETTLE_MARGIN_BYTES / MiB} MiB of baseline`)
      conclude(result, failures)
    } catch (err) {
      endedEarly(result, err)
    } finally {
      sampler?.stop()
      await rogue?.stop()
      await client?.close()
      await net?.stop()
    }
    return result
  }
}
