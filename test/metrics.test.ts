/**
 * Prometheus metrics (node/api/metrics.ts): a real network in this process runs a certified
 * task (its operators fetch the model from the bootstrap node first), then each node's own
 * registry is read as text and parsed strictly (test/helpers/prom-text.ts): poi's series with the
 * role, peer_id and poi_version labels, model bytes fetched and served, the stream store's
 * holdings, process and libp2p series, separate values per node, refusals by reason, and
 * GET /metrics through a bare fastify server.
 */
import { strict as assert } from 'node:assert'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import Fastify from 'fastify'
import { MAX_REASON_LABEL_CHARS, metricsRoutes, reasonLabel, type NodeMetrics } from '../node/api/index.js'
import { exampleInput } from '../node/cli/devnet.js'
import { SHIPPED_MODEL_DIR, loadModelDir, type ModelDir } from '../node/inference/index.js'
import { loadKeystore } from '../node/keys.js'
import type { PoiNode } from '../node/poi-node.js'
import { requestInference } from '../node/requester/index.js'
import { TOPICS } from '../protocols/gossip/index.js'
import { startTestNetwork, until, type TestNetwork } from './helpers/network.js'
import { parsePromText, samples, total, type Family } from './helpers/prom-text.js'

/** A task's deadline: the shipped model runs in milliseconds, the rest is gossip on a loaded machine. */
const TASK_TIMEOUT_MS = 20_000
/** Gossip or an event that follows another at once; generous for a loaded machine. */
const FOLLOW_UP_TIMEOUT_MS = 10_000

const POI_SERIES = [
  'poi_tasks_seen_total', 'poi_tasks_attested_total', 'poi_tasks_certified_total', 'poi_tasks_no_quorum_total',
  'poi_task_certificate_seconds', 'poi_attestation_verify_seconds', 'poi_attestation_verify_batch_size', 'poi_gossip_messages_total', 'poi_model_bytes_fetched_total',
  'poi_chain_submissions_total', 'poi_chain_gas_used_total', 'poi_model_bytes_served_total', 'poi_stream_messages_held', 'poi_stream_bytes_held'
]

function metricsOf (node: PoiNode): NodeMetrics {
  assert.ok(node.metrics !== undefined, 'the node has metrics (on by default)')
  return node.metrics
}

async function scrape (node: PoiNode): Promise<Map<string, Family>> {
  return parsePromText(await metricsOf(node).text())
}

describe('metrics: a Prometheus registry per node', function () {
  this.timeout(90_000)
  let net: TestNetwork
  let model: ModelDir
  let version: string

  before(async () => {
    version = (JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version
    model = await loadModelDir(SHIPPED_MODEL_DIR)
    // Quorum is 2 of 3; the grace lets the aggregator wait for the third signature. No backup
    // aggregation: the aggregator forms the certificate (and times its verification) on a slow machine too.
    // The operators start without the model: they fetch it from the bootstrap node, which serves it.
    net = await startTestNetwork({ operators: 3, graceMs: TASK_TIMEOUT_MS / 4, backupAggregation: false, operatorsWithoutModels: true })
    await requestInference(net.requester, net.requesterKeys.account, { modelId: model.modelId, input: exampleInput(), timeoutMs: TASK_TIMEOUT_MS })
    // Every operator ran the task and saw its certificate (gossiped after the aggregator formed it).
    await until(async () => {
      for (const op of net.operators) {
        const f = await scrape(op!)
        if (total(f, 'poi_tasks_attested_total') < 1 || total(f, 'poi_tasks_certified_total') < 1) return false
      }
      return true
    }, FOLLOW_UP_TIMEOUT_MS, 'every operator counting its attestation and the certificate')
  })
  after(async () => { await net?.stop() })

  it("after a certified task the aggregator's registry has poi's series, with the role, peer id and version on every sample", async () => {
    const f = await scrape(net.aggregator)
    const labels = { role: 'aggregator', peer_id: net.aggregator.libp2p.peerId.toString(), poi_version: version }
    for (const name of POI_SERIES) assert.ok(f.has(name), `${name} is exposed`)
    assert.equal(f.get('poi_tasks_certified_total')?.type, 'counter')
    assert.equal(f.get('poi_task_certificate_seconds')?.type, 'histogram')
    assert.ok(total(f, 'poi_tasks_certified_total', labels) >= 1, 'the certificate it formed is counted')
    assert.ok(total(f, 'poi_tasks_seen_total', labels) >= 1)
    assert.ok(total(f, 'poi_task_certificate_seconds_count', labels) >= 1, 'the time to the certificate is observed')
    const inf = samples(f, 'poi_task_certificate_seconds_bucket', { ...labels, le: '+Inf' })
    assert.equal(inf.length, 1)
    assert.equal(inf[0].value, total(f, 'poi_task_certificate_seconds_count', labels), 'the +Inf bucket holds every observation')
    assert.ok(total(f, 'poi_task_certificate_seconds_sum', labels) > 0)
    assert.ok(total(f, 'poi_attestation_verify_seconds_count', labels) >= 1, 'the certificate formed here reports its verification time')
    const batches = total(f, 'poi_attestation_verify_batch_size_count', labels)
    assert.ok(batches >= 1, 'the attestations it verified went to the verifier in batches')
    assert.ok(total(f, 'poi_attestation_verify_batch_size_sum', labels) >= batches, 'every batch holds at least one set')
    assert.ok(total(f, 'poi_gossip_messages_total', { ...labels, topic: 'attestations', result: 'accepted' }) >= 2, 'the operators\' attestations were accepted')
    assert.equal(total(f, 'poi_tasks_no_quorum_total'), 0)
    for (const family of f.values()) {
      for (const s of family.samples) assert.deepEqual({ role: s.labels.role, peer_id: s.labels.peer_id, poi_version: s.labels.poi_version }, labels, `${s.name} carries the node's labels`)
      // Only prom-client's nodejs_version_info has a `version` label: Node's, beside ours.
      if (family.name !== 'nodejs_version_info') for (const s of family.samples) assert.equal(s.labels.version, undefined, `${s.name} has no version label`)
    }
    assert.equal(samples(f, 'nodejs_version_info')[0]?.labels.version, process.version, "nodejs_version_info keeps Node's version")
  })

  it('model bytes: the operators count what they fetched, the nodes that served it count what they served', async () => {
    let fetched = 0
    for (const op of net.operators) fetched += total(await scrape(op!), 'poi_model_bytes_fetched_total')
    assert.ok(fetched >= 3, `every operator fetched the model: ${fetched} bytes`)
    let served = 0
    for (const node of [net.bootstrap, net.aggregator, ...net.operators.map(o => o!)]) served += total(await scrape(node), 'poi_model_bytes_served_total')
    // Served blocks include the manifest, and a block may be served twice (a retried fetch): never less than fetched.
    assert.ok(served >= fetched, `served ${served} bytes, fetched ${fetched}`)
    assert.ok(total(await scrape(net.bootstrap), 'poi_model_bytes_served_total') > 0, 'the bootstrap node, which held the model, served it')
    assert.equal(total(await scrape(net.requester), 'poi_model_bytes_served_total'), 0, 'a light requester serves no models')
    const light = await scrape(net.requester)
    assert.ok(!light.has('poi_stream_messages_held') && !light.has('poi_stream_bytes_held'), 'a light requester has no stream store: no holdings gauges')
    assert.ok(!light.has('poi_rewards_claimable') && !(await scrape(net.aggregator)).has('poi_rewards_claimable'), 'no chain, no operator on one: no rewards gauge')
  })

  it("the stream store's holdings are read on scrape: a message stored is one more message and its bytes more", async () => {
    const node = net.aggregator
    const streams = node.streams!
    const read = async (): Promise<{ messages: number, bytes: number }> => {
      const f = await scrape(node)
      return { messages: total(f, 'poi_stream_messages_held'), bytes: total(f, 'poi_stream_bytes_held') }
    }
    const before = await streams.holdings()
    await until(async () => { const r = await read(); return r.messages === before.messages && r.bytes === before.bytes }, FOLLOW_UP_TIMEOUT_MS, 'the gauges showing the store')
    const keys = await loadKeystore(join(net.root, 'aggregator', 'keys'))
    const { message } = await streams.append(keys.privateKey, 'metrics-test', new Uint8Array(100).fill(7))
    const after = await streams.holdings()
    assert.equal(after.messages, before.messages + 1)
    assert.ok(after.bytes > before.bytes + 100, `${after.bytes} > ${before.bytes} + the payload`)
    await until(async () => { const r = await read(); return r.messages === after.messages && r.bytes === after.bytes }, FOLLOW_UP_TIMEOUT_MS, () => `the gauges showing ${after.messages} messages, ${after.bytes} bytes`)
    assert.equal(message.seq, 0n)
  })

  it('process metrics and libp2p\'s own metrics are in each node\'s registry, once', async () => {
    for (const node of [net.aggregator, net.operators[0]!, net.requester]) {
      const f = await scrape(node)
      for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
        assert.ok(f.has(name), `${name} on ${node.roles().join('+')}`)
      }
      const libp2p = [...f.keys()].filter(n => n.startsWith('libp2p_'))
      assert.ok(libp2p.length > 0, `libp2p series on ${node.roles().join('+')}`)
      const connections = samples(f, 'libp2p_connection_manager_connections')
      assert.ok(connections.length > 0, `libp2p_connection_manager_connections on ${node.roles().join('+')}: ${libp2p.join(', ')}`)
      assert.ok(connections.some(s => s.value > 0), 'the node counts its own connections')
    }
  })

  it('two nodes in one process keep separate values', async () => {
    const op = await scrape(net.operators[0]!)
    const agg = await scrape(net.aggregator)
    const req = await scrape(net.requester)
    const opId = net.operators[0]!.libp2p.peerId.toString()
    assert.ok(total(op, 'poi_tasks_attested_total', { role: 'operator', peer_id: opId }) >= 1, 'the operator counts its attestation')
    assert.equal(total(agg, 'poi_tasks_attested_total'), 0, 'the aggregator attests nothing')
    assert.equal(total(req, 'poi_tasks_attested_total'), 0, 'the requester attests nothing')
    assert.equal(total(op, 'poi_attestation_verify_seconds_count'), 0, 'only the node that formed the certificate timed its verification')
    assert.equal(samples(req, 'poi_tasks_seen_total')[0]?.labels.role, 'requester')
    // libp2p's series too: each registry's carry its own node's peer id.
    for (const [node, f] of [[net.operators[0]!, op], [net.aggregator, agg]] as const) {
      const ids = new Set(samples(f, 'libp2p_connection_manager_connections').map(s => s.labels.peer_id))
      assert.deepEqual([...ids], [node.libp2p.peerId.toString()])
    }
  })

  it('a refused gossip message is counted by topic, verdict and a bounded reason', async () => {
    const op = net.operators[1]!
    const before = total(await scrape(op), 'poi_gossip_messages_total', { topic: 'tasks', result: 'rejected' })
    // Not a task announcement: every full node rejects it (and lowers the sender's score).
    await net.bootstrap.libp2p.services.pubsub.publish(TOPICS.tasks, new Uint8Array([0xff, 0x01, 0x02, 0x03]))
    await until(async () => total(await scrape(op), 'poi_gossip_messages_total', { topic: 'tasks', result: 'rejected' }) > before, FOLLOW_UP_TIMEOUT_MS, 'the operator counting the rejected task')
    const rejected = samples(await scrape(op), 'poi_gossip_messages_total', { topic: 'tasks', result: 'rejected' })
    assert.ok(rejected.every(s => s.labels.reason.length > 0 && s.labels.reason.length <= MAX_REASON_LABEL_CHARS && !/\d/.test(s.labels.reason)), JSON.stringify(rejected))
  })

  it('reasonLabel folds task ids and numbers into one label and bounds its length', () => {
    const a = reasonLabel('attestation for task 0xabc123 by operator 2: epoch 7 unknown')
    assert.equal(a, reasonLabel('attestation for task 0xdef456 by operator 13: epoch 9 unknown'))
    assert.equal(a, 'attestation for task 0x… by operator N: epoch N unknown')
    assert.equal(reasonLabel('x'.repeat(500)).length, MAX_REASON_LABEL_CHARS)
    // The gossip validators name tasks without 0x (toHex): still one series for every task.
    const bare = (id: string): string => reasonLabel(`attestation for task ${id} by operator 1: bad BLS signature for operator 1`)
    assert.equal(bare('5fb2eecd1c0ebf9d4a2ee8dff6b1e4cc'.repeat(2)), bare('a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5'.repeat(2)))
    assert.equal(bare('ab'.repeat(32)), 'attestation for task … by operator N: bad BLS signature for operator N')
  })

  it('GET /metrics through a fastify server answers the registry\'s text with its content type', async () => {
    const app = Fastify()
    await app.register(metricsRoutes(metricsOf(net.aggregator)))
    const address = await app.listen({ host: '127.0.0.1', port: 0 })
    try {
      const res = await fetch(`${address}/metrics`)
      assert.equal(res.status, 200)
      assert.equal(res.headers.get('content-type'), metricsOf(net.aggregator).contentType)
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
      const f = parsePromText(await res.text())
      assert.ok(total(f, 'poi_tasks_certified_total') >= 1)
      assert.equal((await fetch(`${address}/metrics`, { method: 'POST' })).status, 405, 'only GET is served: another method is 405 with Allow')
    } finally {
      await app.close()
    }
  })
})
