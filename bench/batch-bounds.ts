/**
 * Sweeps the aggregator's batch bounds (issue 15: "batches close on a size or time bound, both
 * configurable; say which defaults you measured best"): for each setting of --batch-max-leaves ×
 * --batch-max-wait-ms, tab tasks arrive at a steady rate from one requester on a 4-operator
 * network on anvil, and every task is followed from its announcement to the on-chain settlement
 * of the batch that holds it.
 *
 *   npm run bench:batch-bounds -- [--rates 4] [--duration-s 30] [--grid 64x1000,8x5000,…] [--out file]
 *
 * `--grid` lists settings as `<max leaves>x<max wait ms>`. One network serves the whole sweep:
 * between settings only the aggregator is restarted with the new bounds (same keys, data and
 * chain), once every batch of the previous setting has settled. Per setting it reports the tasks
 * settled, the batches and their mean leaves, the share closed by the size bound, the gas per
 * task from the batches' receipts, announcement → settlement p50/p95 (the settlement time is the
 * aggregator's `batch` settled event; every process stamps performance.timeOrigin + now, which
 * is comparable on one machine), and the share of the announced tasks settled within their
 * settlement window (deadline + TaskManager.settlementWindow).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import type { Hex } from 'viem'
import { deposit, readTab } from '../contracts/index.js'
import { ChainClient } from '../node/chain-client.js'
import { resolveConfig } from '../node/config.js'
import { exampleInput, startLocalNetwork, type LocalNetwork } from '../node/cli/devnet.js'
import { ChildNode, prepareNodeDir, type EventOf } from '../node/cli/launcher.js'
import { readTaskFee } from '../node/cli/payment-setup.js'
import { loadModelDir, SHIPPED_MODEL_DIR } from '../node/inference/index.js'
import { PoiNode } from '../node/poi-node.js'
import { announceTask, RequesterTab, requestInference, waitForNetwork, type AnnouncedTask } from '../node/requester/index.js'
import { PoiError, to0xHex } from '../protocols/wire/index.js'

/** The sweep's network: the smallest with a quorum that tolerates one silent operator, as the settlement benchmark (bench/qc-latency --settlement). */
const OPERATORS = 4
/**
 * The default grid, trimmed to 7 settings so a sweep runs in about 8 minutes on the loaded 2-core
 * test machine (each setting: an aggregator restart, the arrival window, the last batch's wait
 * and settlement). At the default 2 tasks/s a batch fills to about min(leaves, 2 × wait s): the
 * settings kept are those where that differs (a leaves bound above 2 × wait behaves as the time
 * bound alone, so 128×10000 would repeat 64×10000), with 8 and 16 leaves where the size bound
 * closes first.
 */
const DEFAULT_GRID = '64x1000,64x2500,8x5000,64x5000,8x10000,16x10000,64x10000'
/**
 * Tasks per second from the requester: one the loaded 2-core machine sustains with 4 operators,
 * bootstrap, aggregator and anvil on it beside other engineers' builds (certificates stay at
 * about a second; at 4/s under a load average of 16 they queued for ten).
 */
const DEFAULT_RATES = '2'
/** Arrival window per setting: several batches even at the longest wait (10 s). */
const DEFAULT_DURATION_S = '30'
/** Single tasks before the sweep: the operators fetch the model on their first task. */
const WARMUP_TASKS = 3
/** A tab task's life: far beyond its certificate (well under a second); its settlement window counts from its deadline. */
const TASK_TIMEOUT_MS = 30_000
/** After the last certificate of a setting, how long its last batch may take past its time bound to settle (signatures, one transaction) before the setting's unsettled tasks are counted as such. */
const SETTLE_GRACE_MS = 60_000
/** How often the batch events are scanned while waiting for a setting's batches. */
const POLL_MS = 200
/** An aggregator restart on two busy cores: loading modules and meshing took ~10 s here. */
const READY_TIMEOUT_MS = 120_000
/** Meshing on the loaded machine (load average 13-16 from other engineers' builds) took over the launcher's default 15 s. */
const MESH_TIMEOUT_MS = 60_000
/** What the requester deposits per task it will send, as a multiple of the fee: tabs refuse a voucher above the deposit minus what is owed. */
const DEPOSIT_MARGIN = 2n

class SweepError extends PoiError {
  constructor (message: string) { super('ERR_BATCH_SWEEP', message) }
}

interface Setting { maxLeaves: number, maxWaitMs: number }

interface SettingResult extends Setting {
  ratePerS: number
  announced: number
  certified: number
  settled: number
  batches: number
  meanLeaves: number
  /** Batches that closed at the size bound (leaves == maxLeaves). */
  sizeClosedShare: number
  gasPerTask: number
  settleMs: { p50: number, p95: number, mean: number }
  withinWindowShare: number
  failedBatches: number
  /** Announcement → verified certificate at the requester: stays under a second while the machine keeps up with the rate. */
  certificateMs: { p50: number, p95: number }
  /** The machine's 1-minute load average at the setting's end (2 cores, shared with other work). */
  loadAverage: number
  /**
   * Where a task's time goes, means in ms: announcement → its batch proposed (certificate and the
   * wait for the batch to close), proposed → batch certificate (operators' checks and
   * signatures), batch certificate → settled (the transaction and its receipt, and any queue
   * behind earlier batches).
   */
  phasesMs: { toProposed: number, proposedToCertified: number, certifiedToSettled: number }
  /** Certified tasks in no settled batch by the setting's end, and whether the aggregator printed a certificate for each (without one it never had the task to batch). */
  unsettled: Array<{ taskId: string, aggregatorCertified: boolean }>
}

function quantile (xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))
  return s[i]
}
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0)
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, Math.max(0, ms)))

function parseGrid (grid: string): Setting[] {
  return grid.split(',').map(cell => {
    const m = /^(\d+)x(\d+)$/.exec(cell.trim())
    if (m == null) throw new SweepError(`--grid: "${cell}" is not <max leaves>x<max wait ms>, e.g. 64x5000`)
    return { maxLeaves: Number(m[1]), maxWaitMs: Number(m[2]) }
  })
}

/** The aggregator's command line with other batch bounds. */
function withBounds (args: readonly string[], s: Setting): string[] {
  const out: string[] = []
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--batch-max-leaves' || args[i] === '--batch-max-wait-ms') { i++; continue }
    out.push(args[i])
  }
  return [...out, '--batch-max-leaves', String(s.maxLeaves), '--batch-max-wait-ms', String(s.maxWaitMs)]
}

async function restartAggregator (net: LocalNetwork, current: ChildNode, s: Setting, n: number): Promise<ChildNode> {
  await current.stop()
  const next = new ChildNode('aggregator', withBounds(current.args, s), join(net.root, `aggregator-${n}.log`))
  await next.ready(READY_TIMEOUT_MS)
  await next.waitForEvent('mesh', e => e.tasks > 0 && e.certificates > 0 && e.attestations > 0, MESH_TIMEOUT_MS, 'gossip mesh')
  return next
}

interface Sweep {
  net: LocalNetwork
  requester: PoiNode
  account: Parameters<typeof requestInference>[1]
  tab: RequesterTab
  modelId: Uint8Array
  fee: bigint
  settlementWindowMs: number
  getGas: (txHash: Hex) => Promise<bigint>
}

/** One setting at one rate: tasks announced every 1000/rate ms for `durationS`, then followed until their batches settled. */
async function runSetting (sw: Sweep, aggregator: ChildNode, s: Setting, ratePerS: number, durationS: number, seed: number, log: (s: string) => void): Promise<SettingResult> {
  const count = Math.round(ratePerS * durationS)
  const intervalMs = 1000 / ratePerS
  const announced: AnnouncedTask[] = []
  const outcomes: Array<Promise<boolean>> = []
  const certificateMs: number[] = []
  const start = performance.now()
  for (let i = 0; i < count; i++) {
    await sleep(start + i * intervalMs - performance.now())
    // Not awaited in turn: a slow announcement must not delay the next one's arrival time.
    outcomes.push(announceTask(sw.requester, sw.account, { modelId: sw.modelId, input: exampleInput(seed + i), timeoutMs: TASK_TIMEOUT_MS, fee: sw.fee, tab: sw.tab })
      .then(async a => { announced.push(a); const r = await a.result; if ('certifiedAt' in r) certificateMs.push(r.certifiedAt - a.announcedAt); return true })
      .catch(() => false))
  }
  const certified = (await Promise.all(outcomes)).filter(Boolean).length
  const ids = new Map(announced.map(a => [to0xHex(a.taskId).toLowerCase(), a]))
  log(`    ${announced.length} announced, ${certified} certified; waiting for their batches`)

  const settledAt = new Map<string, number>()
  const batches = new Map<string, EventOf<'batch'>>()
  /** When each batch (by root) reached a state. */
  const stateAt = new Map<string, number>()
  let failedBatches = 0
  const scan = (): void => {
    failedBatches = 0
    for (const e of aggregator.events) {
      if (e.event !== 'batch') continue
      const ours = e.taskIds.filter(t => ids.has(t.toLowerCase()))
      if (ours.length === 0) continue
      stateAt.set(`${e.root}/${e.state}`, e.at)
      if (e.state === 'failed') failedBatches++
      if (e.state !== 'settled') continue
      batches.set(e.root, e)
      for (const t of ours) settledAt.set(t.toLowerCase(), e.at)
    }
  }
  const giveUp = performance.now() + s.maxWaitMs + SETTLE_GRACE_MS
  for (scan(); settledAt.size < certified && performance.now() < giveUp; scan()) await sleep(POLL_MS)
  const aggregatorCertified = new Set(aggregator.events.flatMap(e => e.event === 'certificate' ? [e.taskId.toLowerCase()] : []))
  const unsettled = [...ids.keys()].filter(id => !settledAt.has(id)).map(taskId => ({ taskId, aggregatorCertified: aggregatorCertified.has(taskId) }))
  if (settledAt.size < certified) log(`    ${certified - settledAt.size} certified tasks not settled within ${s.maxWaitMs + SETTLE_GRACE_MS} ms: ${unsettled.map(u => `${u.taskId} (${u.aggregatorCertified ? 'certified by the aggregator' : 'no certificate at the aggregator'})`).join(', ')}`)

  const gas = await Promise.all([...batches.values()].map(async b => {
    if (b.txHash === undefined) throw new SweepError(`batch ${b.root} settled with no transaction hash`)
    return await sw.getGas(b.txHash)
  }))
  const leaves = [...batches.values()].map(b => b.leaves)
  const latencies = [...settledAt].map(([id, at]) => at - ids.get(id)!.announcedAt)
  const bs = [...batches.values()]
  const phase = (from: string, to: string): number => sum(bs.map(b => (stateAt.get(`${b.root}/${to}`) ?? NaN) - (stateAt.get(`${b.root}/${from}`) ?? NaN))) / bs.length
  const toProposed = bs.flatMap(b => b.taskIds.filter(t => ids.has(t.toLowerCase())).map(t => (stateAt.get(`${b.root}/proposed`) ?? NaN) - ids.get(t.toLowerCase())!.announcedAt))
  const within = [...settledAt].filter(([id, at]) => at <= ids.get(id)!.deadline + sw.settlementWindowMs).length
  return {
    ...s,
    ratePerS,
    announced: count,
    certified,
    settled: settledAt.size,
    batches: batches.size,
    meanLeaves: leaves.length > 0 ? sum(leaves) / leaves.length : NaN,
    sizeClosedShare: leaves.length > 0 ? leaves.filter(n => n === s.maxLeaves).length / leaves.length : NaN,
    gasPerTask: leaves.length > 0 ? Number(gas.reduce((a, b) => a + b, 0n)) / sum(leaves) : NaN,
    settleMs: { p50: quantile(latencies, 0.5), p95: quantile(latencies, 0.95), mean: sum(latencies) / latencies.length },
    withinWindowShare: within / count,
    failedBatches,
    certificateMs: { p50: quantile(certificateMs, 0.5), p95: quantile(certificateMs, 0.95) },
    loadAverage: loadavg()[0],
    phasesMs: { toProposed: sum(toProposed) / toProposed.length, proposedToCertified: phase('proposed', 'certified'), certifiedToSettled: phase('certified', 'settled') },
    unsettled
  }
}

async function sweep (settings: Setting[], rates: number[], durationS: number, log: (s: string) => void): Promise<{ results: SettingResult[], settlementWindowS: number }> {
  const root = await mkdtemp(join(tmpdir(), 'poi-bench-bounds-'))
  const net = await startLocalNetwork({ root, operators: OPERATORS, chain: true, progress: (s) => log(`  ${s}`), aggregatorArgs: withBounds([], settings[0]), readyTimeoutMs: READY_TIMEOUT_MS, meshTimeoutMs: MESH_TIMEOUT_MS })
    .catch(async (err: unknown) => { await rm(root, { recursive: true, force: true }); throw err })
  let aggregator = net.aggregator
  let requester: PoiNode | undefined
  try {
    const chain = net.chain!
    const model = await loadModelDir(SHIPPED_MODEL_DIR)
    const dirs = await prepareNodeDir(root, 'requester')
    const { fee } = await readTaskFee(chain.client, model.modelId)
    const tasks = BigInt(settings.length * sum(rates.map(r => Math.round(r * durationS))) + WARMUP_TASKS)
    const amount = fee * tasks * DEPOSIT_MARGIN
    await chain.fund(dirs.keys.account.address, amount + 10n ** 19n)
    const client = await ChainClient.connect(chain.client.config, dirs.keys.account)
    await deposit(client.walletClient!, client.publicClient, chain.client.config.taskManager, amount)
    const config = resolveConfig({ keystore: dirs.keystore, dataDir: dirs.dataDir, genesis: net.genesisPath, bootstrap: [net.bootstrapAddr], listen: [], chain: chain.client.config })
    requester = await PoiNode.start({ operate: false, aggregate: false, light: true, keystore: dirs.keys, config, operatorSet: await chain.client.operatorSet() })
    await waitForNetwork(requester)
    log(`  warming up (${WARMUP_TASKS} single tasks)`)
    for (let i = 0; i < WARMUP_TASKS; i++) {
      const r = await requestInference(requester, dirs.keys.account, { modelId: model.modelId, input: exampleInput(2000 + i), timeoutMs: TASK_TIMEOUT_MS, fee })
      await chain.client.waitForAcceptance(r.taskId, 30_000)
    }
    const tab = await RequesterTab.open({
      dir: dirs.keystore, account: dirs.keys.account, chainId: BigInt(chain.anvil.chainId), taskManager: chain.deployment.taskManager,
      readTab: async (a) => await readTab(chain.client.publicClient, chain.deployment.taskManager, a)
    })
    const { settlementWindowMs } = await chain.client.paymentTerms()
    const sw: Sweep = {
      net, requester, account: dirs.keys.account, tab, modelId: model.modelId, fee, settlementWindowMs,
      getGas: async (hash) => (await chain.client.publicClient.getTransactionReceipt({ hash })).gasUsed
    }
    const results: SettingResult[] = []
    let running = settings[0]
    let restarts = 0
    let seed = 10_000
    for (const rate of rates) {
      for (const s of settings) {
        if (s.maxLeaves !== running.maxLeaves || s.maxWaitMs !== running.maxWaitMs) {
          log(`  restarting the aggregator with ${s.maxLeaves} leaves / ${s.maxWaitMs} ms`)
          aggregator = await restartAggregator(net, aggregator, s, ++restarts)
          running = s
        }
        log(`  ${rate} tasks/s for ${durationS} s, bounds ${s.maxLeaves} leaves / ${s.maxWaitMs} ms`)
        const r = await runSetting(sw, aggregator, s, rate, durationS, seed, log)
        seed += 1000
        log(`    ${r.settled} settled in ${r.batches} batches (mean ${r.meanLeaves.toFixed(1)} leaves), ${Math.round(r.gasPerTask)} gas per task, certificate p95 ${r.certificateMs.p95.toFixed(0)} ms, load ${r.loadAverage.toFixed(1)}, settled p50 ${r.settleMs.p50.toFixed(0)} ms, p95 ${r.settleMs.p95.toFixed(0)} ms; means: to proposal ${r.phasesMs.toProposed.toFixed(0)} ms, signatures ${r.phasesMs.proposedToCertified.toFixed(0)} ms, transaction ${r.phasesMs.certifiedToSettled.toFixed(0)} ms`)
        results.push(r)
      }
    }
    return { results, settlementWindowS: settlementWindowMs / 1000 }
  } finally {
    await requester?.stop()
    if (aggregator !== net.aggregator) await aggregator.stop()
    await net.stop()
    await rm(root, { recursive: true, force: true })
  }
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      rates: { type: 'string', default: DEFAULT_RATES },
      'duration-s': { type: 'string', default: DEFAULT_DURATION_S },
      grid: { type: 'string', default: DEFAULT_GRID },
      out: { type: 'string', default: 'bench/results/batch-bounds.json' }
    }
  })
  const settings = parseGrid(values.grid)
  const rates = values.rates.split(',').map(Number)
  const durationS = Number(values['duration-s'])
  if (rates.some(r => !(r > 0)) || !(durationS > 0)) throw new SweepError('--rates and --duration-s must be positive numbers')
  const log = (s: string): void => { console.error(s) }
  const startedAt = new Date()
  log(`batch bounds sweep: ${settings.length} settings × ${rates.length} rate(s), ${durationS} s each, ${OPERATORS} operators on anvil`)
  const { results, settlementWindowS } = await sweep(settings, rates, durationS, log)
  const head = ['tasks/s', 'max leaves', 'max wait ms', 'settled', 'batches', 'leaves/batch', 'size-closed', 'gas/task', 'p50 ms', 'p95 ms', 'in window', 'cert p50/p95', 'load', 'to proposal', 'signatures', 'transaction']
  const rows = results.map(r => [
    String(r.ratePerS), String(r.maxLeaves), String(r.maxWaitMs), `${r.settled}/${r.announced}`, String(r.batches), r.meanLeaves.toFixed(1),
    `${(r.sizeClosedShare * 100).toFixed(0)}%`, Math.round(r.gasPerTask).toLocaleString('en-US'), r.settleMs.p50.toFixed(0), r.settleMs.p95.toFixed(0),
    `${(r.withinWindowShare * 100).toFixed(1)}%`, `${r.certificateMs.p50.toFixed(0)}/${r.certificateMs.p95.toFixed(0)}`, r.loadAverage.toFixed(1), r.phasesMs.toProposed.toFixed(0), r.phasesMs.proposedToCertified.toFixed(0), r.phasesMs.certifiedToSettled.toFixed(0)
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i])).join('  ')
  console.log(`announcement → on-chain settlement of tab tasks, one requester, ${OPERATORS} operators on anvil; settlement window ${settlementWindowS} s after each task's deadline`)
  console.log(line(head))
  for (const r of rows) console.log(line(r))
  console.log('settled: of the tasks announced; size-closed: batches closed by the size bound; in window: announced tasks settled by deadline + settlement window; cert: announcement → certificate at the requester, ms; load: 1-min load average; last three: mean ms from announcement to the batch\'s proposal, proposal to batch certificate, certificate to settled receipt')
  const out = resolve(values.out)
  await mkdir(dirname(out), { recursive: true })
  await writeFile(out, JSON.stringify({
    benchmark: 'batch-bounds', date: startedAt.toISOString(), node: process.version, operators: OPERATORS, durationS, settlementWindowS, results
  }, null, 2) + '\n')
  console.log(`wrote ${out}`)
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
