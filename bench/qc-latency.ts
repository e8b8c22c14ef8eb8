/**
 * Time from task announcement to a verified quorum certificate at the
 * requester, for networks of 4, 8 and 16 operators running as separate
 * processes on this machine, with the gossip floor measured in the same run.
 *
 *   npm run bench:qc -- [--operators 4,8,16] [--tasks 50] [--probes 30] [--out file]
 *
 * With `--settlement` (issue 15) it measures instead, on an anvil chain with 4 operators, the time
 * from announcement to ON-CHAIN settlement: single paid tasks (each certificate posted alone; the
 * requester polls the chain every 200 ms, so single times are up to ~200 ms late) beside tab tasks
 * settled in one batch of `--batch-size` (announced together; the time is the aggregator's
 * batch-settled event, stamped in its process).
 *
 *   npm run bench:qc -- --settlement [--tasks 10] [--batch-size 16] [--out file]
 *
 * Every node timestamps with performance.timeOrigin + performance.now(), which
 * is comparable across processes on one machine.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { verifyCertificate } from '../consensus/index.js'
import { to0xHex } from '../protocols/wire/index.js'
import { resolveConfig } from '../node/config.js'
import { exampleInput, startLocalNetwork, type LocalNetwork } from '../node/cli/devnet.js'
import { loadModelDir, SHIPPED_MODEL_DIR } from '../node/inference/index.js'
import { prepareNodeDir, type ChildNode, type EventOf } from '../node/cli/launcher.js'
import { PoiNode } from '../node/poi-node.js'
import { RequesterTab, requestInference, waitForNetwork } from '../node/requester/index.js'
import { deposit, readTab } from '../contracts/index.js'
import { ChainClient } from '../node/chain-client.js'
import { readTaskFee } from '../node/cli/payment-setup.js'

const WARMUP_TASKS = 3
/** --tasks' default for the QC latency runs. */
const DEFAULT_TASKS = '50'
/** Single tasks settled one by one with --settlement when --tasks is not given: each waits for its own transaction, so fewer suffice. */
const SETTLEMENT_SINGLE_TASKS = 10
const EVENT_TIMEOUT_MS = 10_000

interface TaskSample {
  latencyMs: number
  taskGossipMs: number
  inferenceMs: number
  signMs: number
  aggregatorVerifyMs: number
  attestationGossipMs: number
  certificateGossipMs: number
  requesterVerifyMs: number
}

interface SizeResult {
  operators: number
  tasks: number
  qcMs: { median: number, p95: number, mean: number }
  floorMs: { median: number, p95: number }
  /** Median QC time over three gossip floors: the goal is at most 1.5. */
  qcOverThreeFloors: number
  shares: { inference: number, bls: number, gossip: number, other: number }
  phasesMedianMs: Omit<TaskSample, 'latencyMs'>
}

function quantile (xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))
  return s[i]
}
const median = (xs: number[]): number => quantile(xs, 0.5)
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0)

async function eventFor<K extends 'task' | 'attested' | 'certificate'> (child: ChildNode, name: K, taskId: string): Promise<EventOf<K>> {
  return await child.waitForEvent(name, e => (e as { taskId: string }).taskId === taskId, EVENT_TIMEOUT_MS, `${name} for ${taskId}`)
}

/** One plain gossip message from the requester to every node: the time until the last one has it. */
async function measureFloor (net: LocalNetwork, requester: PoiNode, probes: number): Promise<number[]> {
  const children = [net.bootstrap, ...net.operators, net.aggregator]
  const floors: number[] = []
  for (let i = 0; i < probes; i++) {
    const sent = await requester.sendProbe()
    const arrivals = await Promise.all(children.map(async c => await c.waitForEvent('probe', e => e.id === sent.id, EVENT_TIMEOUT_MS, 'probe')))
    floors.push(Math.max(...arrivals.map(e => e.at)) - sent.at)
  }
  return floors
}

async function runSize (n: number, tasks: number, probes: number, log: (s: string) => void): Promise<SizeResult> {
  const root = await mkdtemp(join(tmpdir(), `poi-bench-${n}-`))
  const net = await startLocalNetwork({ root, operators: n, nodeArgs: ['--probe'], progress: (s) => log(`  ${s}`) })
  let requester: PoiNode | undefined
  try {
    const model = await loadModelDir(SHIPPED_MODEL_DIR)
    const keys = (await prepareNodeDir(root, 'requester')).keys
    const config = resolveConfig({ keystore: keys.dir, dataDir: join(root, 'requester', 'data'), genesis: net.genesisPath, bootstrap: [net.bootstrapAddr], listen: [] })
    requester = await PoiNode.start({ operate: false, aggregate: false, light: true, keystore: keys, config, operatorSet: net.operatorSet, probe: true })
    await waitForNetwork(requester)
    const deadline = Date.now() + 15_000
    while (requester.meshPeers('probes') === 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))

    log(`  ${n} operators: warming up`)
    for (let i = 0; i < WARMUP_TASKS; i++) await requestInference(requester, keys.account, { modelId: model.modelId, input: exampleInput(1000 + i), timeoutMs: 20_000 })
    log(`  ${n} operators: measuring the gossip floor (${probes} probes)`)
    const floors = await measureFloor(net, requester, probes)

    log(`  ${n} operators: ${tasks} tasks`)
    const samples: TaskSample[] = []
    for (let i = 0; i < tasks; i++) {
      const r = await requestInference(requester, keys.account, { modelId: model.modelId, input: exampleInput(i), timeoutMs: 20_000 })
      const id = to0xHex(r.taskId)
      const verifyStart = performance.now()
      verifyCertificate(r.certificate, net.operatorSet)
      const requesterVerifyMs = performance.now() - verifyStart
      const cert = await eventFor(net.aggregator, 'certificate', id)
      const signers = r.signers.map(s => net.operators[s])
      const taskEvents = await Promise.all(signers.map(async c => await eventFor(c, 'task', id)))
      const attested = await Promise.all(signers.map(async c => await eventFor(c, 'attested', id)))
      const latencyMs = r.certifiedAt - r.announcedAt
      const taskGossipMs = median(taskEvents.map(e => (e.at) - r.announcedAt))
      const inferenceMs = median(attested.map(e => e.inferenceMs))
      const signMs = median(attested.map(e => e.signMs))
      const aggregatorVerifyMs = cert.verifyMs ?? 0
      const lastAttested = Math.max(...attested.map(e => e.at))
      const attestationGossipMs = Math.max(0, cert.at - lastAttested - aggregatorVerifyMs)
      const certificateGossipMs = Math.max(0, r.certifiedAt - cert.at - requesterVerifyMs)
      samples.push({ latencyMs, taskGossipMs, inferenceMs, signMs, aggregatorVerifyMs, attestationGossipMs, certificateGossipMs, requesterVerifyMs })
      if ((i + 1) % 10 === 0) log(`    ${i + 1}/${tasks} (median so far ${median(samples.map(s => s.latencyMs)).toFixed(1)} ms)`)
    }
    const lat = samples.map(s => s.latencyMs)
    const total = sum(lat)
    const inference = sum(samples.map(s => s.inferenceMs)) / total
    const bls = sum(samples.map(s => s.signMs + s.aggregatorVerifyMs + s.requesterVerifyMs)) / total
    const gossip = sum(samples.map(s => s.taskGossipMs + s.attestationGossipMs + s.certificateGossipMs)) / total
    const floorMedian = median(floors)
    const phase = (k: keyof Omit<TaskSample, 'latencyMs'>): number => median(samples.map(s => s[k]))
    return {
      operators: n,
      tasks,
      qcMs: { median: median(lat), p95: quantile(lat, 0.95), mean: total / lat.length },
      floorMs: { median: floorMedian, p95: quantile(floors, 0.95) },
      qcOverThreeFloors: median(lat) / (3 * floorMedian),
      shares: { inference, bls, gossip, other: Math.max(0, 1 - inference - bls - gossip) },
      phasesMedianMs: {
        taskGossipMs: phase('taskGossipMs'),
        inferenceMs: phase('inferenceMs'),
        signMs: phase('signMs'),
        aggregatorVerifyMs: phase('aggregatorVerifyMs'),
        attestationGossipMs: phase('attestationGossipMs'),
        certificateGossipMs: phase('certificateGossipMs'),
        requesterVerifyMs: phase('requesterVerifyMs')
      }
    }
  } finally {
    await requester?.stop()
    await net.stop()
    await rm(root, { recursive: true, force: true })
  }
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`

interface SettlementResult {
  operators: number
  single: { tasks: number, medianMs: number, p95Ms: number }
  batch: { tasks: number, medianMs: number, p95Ms: number, gasUsed: string | undefined, gasPerTask: string | undefined }
}

/**
 * Announcement → on-chain settlement, single certificates beside one batch (issue 15). The batch's
 * size bound is exactly its tasks (they settle together), and its time bound is large: the wait
 * measured is the batch's own (the last certificate, signatures, one transaction), not a timer's.
 */
async function runSettlement (singles: number, batchSize: number, log: (s: string) => void): Promise<SettlementResult> {
  const root = await mkdtemp(join(tmpdir(), 'poi-bench-settle-'))
  const net = await startLocalNetwork({ root, operators: 4, chain: true, progress: (s) => log(`  ${s}`), aggregatorArgs: ['--batch-max-leaves', String(batchSize), '--batch-max-wait-ms', '120000'] })
  let requester: PoiNode | undefined
  try {
    const chain = net.chain!
    const model = await loadModelDir(SHIPPED_MODEL_DIR)
    const dirs = await prepareNodeDir(root, 'requester')
    await chain.fund(dirs.keys.account.address, 10n ** 19n)
    const client = await ChainClient.connect(chain.client.config, dirs.keys.account)
    await deposit(client.walletClient!, client.publicClient, chain.client.config.taskManager, 10n ** 18n)
    const config = resolveConfig({ keystore: dirs.keystore, dataDir: dirs.dataDir, genesis: net.genesisPath, bootstrap: [net.bootstrapAddr], listen: [], chain: chain.client.config })
    requester = await PoiNode.start({ operate: false, aggregate: false, light: true, keystore: dirs.keys, config, operatorSet: await chain.client.operatorSet() })
    await waitForNetwork(requester)
    const { fee } = await readTaskFee(chain.client, model.modelId)
    log(`  warming up (${WARMUP_TASKS} single tasks)`)
    for (let i = 0; i < WARMUP_TASKS; i++) {
      const r = await requestInference(requester, dirs.keys.account, { modelId: model.modelId, input: exampleInput(2000 + i), timeoutMs: 20_000, fee })
      await chain.client.waitForAcceptance(r.taskId, 30_000)
    }
    log(`  ${singles} single tasks, each settled alone`)
    const single: number[] = []
    for (let i = 0; i < singles; i++) {
      const r = await requestInference(requester, dirs.keys.account, { modelId: model.modelId, input: exampleInput(3000 + i), timeoutMs: 20_000, fee })
      await chain.client.waitForAcceptance(r.taskId, 30_000)
      single.push(performance.timeOrigin + performance.now() - r.announcedAt)
    }
    log(`  ${batchSize} tab tasks announced together, settled in one batch`)
    const tab = await RequesterTab.open({
      dir: dirs.keystore, account: dirs.keys.account, chainId: BigInt(chain.anvil.chainId), taskManager: chain.deployment.taskManager,
      readTab: async (a) => await readTab(chain.client.publicClient, chain.deployment.taskManager, a)
    })
    const results = await Promise.all(Array.from({ length: batchSize }, async (_, i) =>
      await requestInference(requester!, dirs.keys.account, { modelId: model.modelId, input: exampleInput(4000 + i), timeoutMs: 30_000, fee, tab })))
    const ids = new Set<string>(results.map(r => to0xHex(r.taskId)))
    const settled = await net.aggregator.waitForEvent('batch', e => e.state === 'settled' && [...ids].every(id => e.taskIds.some(t => t.toLowerCase() === id)), 120_000, 'the batch settled')
    const batch = results.map(r => settled.at - r.announcedAt)
    const gasPerTask = settled.gasUsed !== undefined ? (BigInt(settled.gasUsed) / BigInt(batchSize)).toString() : undefined
    return {
      operators: 4,
      single: { tasks: singles, medianMs: median(single), p95Ms: quantile(single, 0.95) },
      batch: { tasks: batchSize, medianMs: median(batch), p95Ms: quantile(batch, 0.95), gasUsed: settled.gasUsed, gasPerTask }
    }
  } finally {
    await requester?.stop()
    await net.stop()
    await rm(root, { recursive: true, force: true })
  }
}

async function mainSettlement (singles: number, batchSize: number, outFile: string, log: (s: string) => void): Promise<void> {
  const r = await runSettlement(singles, batchSize, log)
  console.log('announcement → on-chain settlement, 4 operators on anvil (ms)')
  console.log(`  single certificates  ${r.single.tasks} tasks   median ${r.single.medianMs.toFixed(0)}   p95 ${r.single.p95Ms.toFixed(0)}   (requester polls every 200 ms)`)
  console.log(`  one batch            ${r.batch.tasks} tasks   median ${r.batch.medianMs.toFixed(0)}   p95 ${r.batch.p95Ms.toFixed(0)}   gas ${r.batch.gasUsed ?? '?'} (${r.batch.gasPerTask ?? '?'} per task)`)
  const out = resolve(outFile.replace(/qc-latency\.json$/, 'qc-settlement.json'))
  await mkdir(dirname(out), { recursive: true })
  await writeFile(out, JSON.stringify({ benchmark: 'qc-settlement', date: new Date().toISOString(), node: process.version, result: r }, null, 2) + '\n')
  console.log(`wrote ${out}`)
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      operators: { type: 'string', default: '4,8,16' },
      tasks: { type: 'string', default: DEFAULT_TASKS },
      probes: { type: 'string', default: '30' },
      out: { type: 'string', default: 'bench/results/qc-latency.json' },
      settlement: { type: 'boolean', default: false },
      'batch-size': { type: 'string', default: '16' }
    }
  })
  if (values.settlement) {
    await mainSettlement(values.tasks === DEFAULT_TASKS ? SETTLEMENT_SINGLE_TASKS : Number(values.tasks), Number(values['batch-size']), values.out, (s) => { console.error(s) })
    return
  }
  const sizes = values.operators.split(',').map(Number)
  const tasks = Number(values.tasks)
  const probes = Number(values.probes)
  const log = (s: string): void => { console.error(s) }
  const results: SizeResult[] = []
  for (const n of sizes) {
    log(`network of ${n} operators`)
    results.push(await runSize(n, tasks, probes, log))
  }
  const rows = results.map(r => [
    String(r.operators), r.qcMs.median.toFixed(1), r.qcMs.p95.toFixed(1), r.floorMs.median.toFixed(1),
    r.qcOverThreeFloors.toFixed(2), pct(r.shares.inference), pct(r.shares.bls), pct(r.shares.gossip), pct(r.shares.other)
  ])
  const head = ['operators', 'QC median ms', 'QC p95 ms', 'floor ms', 'QC/(3×floor)', 'inference', 'BLS', 'gossip', 'other']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i])).join('  ')
  console.log(line(head))
  for (const r of rows) console.log(line(r))
  console.log('goal: QC/(3×floor) ≤ 1.5; "other" is validation, scheduling and event-loop time not in the measured phases')
  const out = resolve(values.out)
  await mkdir(dirname(out), { recursive: true })
  await writeFile(out, JSON.stringify({ benchmark: 'qc-latency', date: new Date().toISOString(), node: process.version, results }, null, 2) + '\n')
  console.log(`wrote ${out}`)
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
