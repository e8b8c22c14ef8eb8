/**
 * How large a network this machine holds with every node its own process: for each size, a
 * bootstrap node, `size` operators and an aggregator on 127.0.0.1 (node/cli/local-network.ts,
 * off-chain with a genesis operator set), and per size the start-up time, each operator's idle
 * memory (RSS, and PSS: its share of pages it shares with the others, which is what n of them
 * cost the machine), idle CPU, then a few tasks: time to certificate, CPU seconds and peak RSS.
 *
 *   npm run bench:scale -- [--sizes 16,32,64,100] [--tasks 8] [--wave 8] [--out file] [--compare] [--fetch-model]
 *
 * Before each size it checks MemAvailable and stops with the figure it would need rather than
 * push the machine (shared with others) into swap or the OOM killer. `--compare` runs one
 * network whose operators alternate between V8's default heap settings, poi's
 * (node/cli/heap-flags.ts) and a larger cap, so the memory cut and its CPU and latency cost are
 * read side by side in one run (use a size that is a multiple of 4).
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, tmpdir, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { exampleInput, startLocalNetwork } from '../node/cli/devnet.js'
import { MAX_SEMI_SPACE_MIB } from '../node/cli/heap-flags.js'
import { prepareNodeDir, type ChildNode } from '../node/cli/launcher.js'
import { PoiClient } from '../node/client/index.js'
import { loadModelDir, modelIdToString, SHIPPED_MODEL_DIR } from '../node/inference/index.js'

const MIB = 1024 * 1024
/** The first task of a size is tried this many times (on a loaded machine the operators' first model load can outlast a deadline). */
const WARMUP_ATTEMPTS = 3
/** The requester's connect: its default 20 s ran out at 32 operators with the shared machine at load 50 (its dials of the bootstrap node timed out). */
const CONNECT_TIMEOUT_MS = 120_000
/** Per task; larger networks gather more attestations on the same two cores. */
const TASK_TIMEOUT_MS = 120_000
/** After the meshes form, nodes still dial, fill their DHT tables and exchange peers: wait before sampling "idle". */
const SETTLE_MS = 15_000
/** Idle CPU is measured over this window (gossipsub heartbeats every second, the DHT refreshes less often). */
const IDLE_WINDOW_MS = 20_000
/**
 * Memory left for the other engineers on this shared machine: a size whose estimate would leave
 * less than this available is not started.
 */
const MEMORY_RESERVE_BYTES = 4 * 1024 * MIB
/**
 * Before any size is measured: a node's idle PSS with the young-generation cap (98-114 MiB at 6
 * operators, npm run bench:scale -- --compare) times ESTIMATE_MARGIN.
 */
const FIRST_ESTIMATE_PER_NODE_BYTES = 150 * MIB
/** A size's estimate per node is the last measured peak PSS times this (larger networks hold more peers and connections). */
const ESTIMATE_MARGIN = 1.3
/**
 * Ready and mesh timeouts grow with the processes starting together (a wave) and with the size:
 * a wave of 8 took 75 s to be ready with the shared machine at load 50, and at 64 operators the
 * last wave's meshes took over 192 s (2 s per node) with other work on the machine.
 */
const READY_S_PER_NODE = 15
const MESH_S_PER_NODE = 4

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())

interface Sample {
  rss: number
  rssAnon: number
  rssFile: number
  pss: number
  hwm: number
  threads: number
  fds: number
  /** utime + stime in seconds. */
  cpuS: number
}

/** One process as /proc shows it now (byte figures); undefined once it is gone. */
function sample (pid: number): Sample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN) * 1024
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
    const pss = Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? NaN) * 1024
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // Fields 14 and 15 of /proc/<pid>/stat (utime, stime) are the 12th and 13th after "(comm) ".
    const cpuS = (Number(fields[11]) + Number(fields[12])) / CLK_TCK
    return {
      rss: kb('VmRSS'),
      rssAnon: kb('RssAnon'),
      rssFile: kb('RssFile'),
      pss,
      hwm: kb('VmHWM'),
      threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? NaN),
      fds: readdirSync(`/proc/${pid}/fd`).length,
      cpuS
    }
  } catch {
    return undefined
  }
}

function machine (): { cores: number, totalMemBytes: number, availableMemBytes: number, loadAverage: number[] } {
  const meminfo = readFileSync('/proc/meminfo', 'utf8')
  const available = Number(/^MemAvailable:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0) * 1024
  const loadAverage = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number)
  return { cores: cpus().length, totalMemBytes: totalmem(), availableMemBytes: available, loadAverage }
}

function quantile (xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]
}
const median = (xs: number[]): number => quantile(xs, 0.5)
const max = (xs: number[]): number => xs.reduce((a, b) => Math.max(a, b), -Infinity)
const mib = (b: number): number => Math.round(b / MIB * 10) / 10
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

interface Figures { median: number, max: number }
const figures = (xs: number[]): Figures => ({ median: median(xs), max: max(xs) })

/** Operator figures of one group (all operators, or one variant of --compare). */
interface GroupFigures {
  operators: number
  idleRssMiB: Figures
  idlePssMiB: Figures
  idleAnonMiB: Figures
  idleCpuPercent: Figures
  taskCpuS: Figures
  peakRssMiB: Figures
  fds: Figures
  /** Each operator's inference + signing time per task, from its attested events. */
  attestMs: { p50: number, p95: number }
}

interface SizeResult {
  size: number
  nodes: number
  startupS: number
  startWave: number
  machineBefore: ReturnType<typeof machine>
  machineAfter: ReturnType<typeof machine>
  operators: GroupFigures
  variants?: Record<string, GroupFigures>
  bootstrap: { idleRssMiB: number, idlePssMiB: number, idleCpuPercent: number, fds: number }
  aggregator: { idleRssMiB: number, idlePssMiB: number, idleCpuPercent: number, fds: number }
  firstTaskMs: number
  /** First tasks that ended without a certificate before one did (at most WARMUP_ATTEMPTS - 1). */
  warmupFailures: string[]
  tasks: number
  certified: number
  failed: string[]
  certificateMs: { p50: number, p95: number, max: number }
  /** Sum of every node's PSS while idle: what the whole network costs the machine. */
  networkPssGiB: number
}

/**
 * The variants of --compare, by operator index: poi's defaults, and the process settings that
 * could cut an idle operator's memory further, side by side in one network: V8's own
 * young-generation sizing (what poi's cap, node/cli/heap-flags.ts, saves), glibc with two malloc
 * arenas instead of one per thread (MALLOC_ARENA_MAX), and one V8 platform worker thread
 * instead of four (--v8-pool-size: fewer threads, fewer arenas and stacks, GC helped by fewer).
 */
const VARIANTS: Array<{ name: string, env: NodeJS.ProcessEnv }> = [
  { name: `poi (semi ${MAX_SEMI_SPACE_MIB} MiB)`, env: {} },
  // 0 is V8's "size it yourself"; an explicit flag keeps the launcher from adding its own.
  { name: 'v8-default', env: { NODE_OPTIONS: '--max-semi-space-size=0' } },
  { name: 'malloc arenas 2', env: { MALLOC_ARENA_MAX: '2' } },
  { name: 'v8 pool 1', env: { NODE_OPTIONS: `--max-semi-space-size=${MAX_SEMI_SPACE_MIB} --v8-pool-size=1` } }
]

async function measureSize (size: number, tasks: number, wave: number, compare: boolean, fetchModel: boolean, log: (s: string) => void): Promise<SizeResult> {
  const root = await mkdtemp(join(tmpdir(), `poi-bench-scale-${size}-`))
  const machineBefore = machine()
  const nodes = size + 2
  const started = performance.now()
  let net: Awaited<ReturnType<typeof startLocalNetwork>>
  try {
    net = await startLocalNetwork({
      root,
      operators: size,
      progress: (s) => log(`  ${s}`),
      startWave: wave,
      readyTimeoutMs: 60_000 + READY_S_PER_NODE * 1000 * Math.min(wave, nodes),
      meshTimeoutMs: 60_000 + MESH_S_PER_NODE * 1000 * nodes,
    operatorEnv: compare ? (i) => VARIANTS[i % VARIANTS.length].env : undefined,
      // Operators hold the shipped model themselves (their default model directory) unless
      // --fetch-model: then each fetches it from the bootstrap node through the DHT on the first task.
      operatorArgs: fetchModel ? undefined : () => []
    })
  } catch (err) {
    // The nodes' logs say why (which node, what it printed): kept.
    log(`  the nodes' logs are kept in ${root}`)
    throw err
  }
  const startupS = (performance.now() - started) / 1000
  log(`  ${nodes} nodes up and meshed in ${startupS.toFixed(1)} s; settling ${SETTLE_MS / 1000} s`)
  let client: PoiClient | undefined
  let keep = false
  try {
    await sleep(SETTLE_MS)
    const all: ChildNode[] = [net.bootstrap, ...net.operators, net.aggregator]
    const idle0 = all.map(c => sample(c.proc.pid!))
    await sleep(IDLE_WINDOW_MS)
    const idle1 = all.map(c => sample(c.proc.pid!))
    const idleCpu = idle1.map((s, i) => s === undefined || idle0[i] === undefined ? NaN : (s.cpuS - idle0[i]!.cpuS) / (IDLE_WINDOW_MS / 1000) * 100)
    log(`  idle: operator RSS median ${mib(median(idle1.slice(1, -1).map(s => s?.rss ?? NaN)))} MiB, PSS median ${mib(median(idle1.slice(1, -1).map(s => s?.pss ?? NaN)))} MiB`)

    const model = modelIdToString((await loadModelDir(SHIPPED_MODEL_DIR)).modelId)
    const dirs = await prepareNodeDir(root, 'requester')
    client = await PoiClient.connect({ keystore: dirs.keystore, bootstrap: [net.bootstrapAddr], genesis: net.genesisPath, connectTimeoutMs: CONNECT_TIMEOUT_MS })
    const input = (seed: number): Record<string, unknown> => JSON.parse(new TextDecoder().decode(exampleInput(seed))) as Record<string, unknown>
    // The first task also has every operator load the model (and with --fetch-model fetch it
    // through the DHT): timed apart, and tried again if it ends without a certificate.
    const firstStart = performance.now()
    const warmupFailures: string[] = []
    for (let attempt = 0; ; attempt++) {
      try {
        await (await client.submit({ model, input: input(size * 1000 + 500 + attempt), timeoutMs: TASK_TIMEOUT_MS })).result
        break
      } catch (err) {
        warmupFailures.push(err instanceof Error ? err.message : String(err))
        log(`  first task failed: ${warmupFailures.at(-1)}`)
        if (attempt + 1 >= WARMUP_ATTEMPTS) throw err
      }
    }
    const firstTaskMs = performance.now() - firstStart
    log(`  first task certified after ${(firstTaskMs / 1000).toFixed(1)} s; ${tasks} more`)
    const beforeTasks = all.map(c => sample(c.proc.pid!))
    const latencies: number[] = []
    const failed: string[] = []
    for (let i = 0; i < tasks; i++) {
      const start = performance.now()
      try {
        await (await client.submit({ model, input: input(size * 1000 + 1 + i), timeoutMs: TASK_TIMEOUT_MS })).result
        latencies.push(performance.now() - start)
      } catch (err) {
        failed.push(err instanceof Error ? err.message : String(err))
      }
    }
    const afterTasks = all.map(c => sample(c.proc.pid!))
    const machineAfter = machine()

    const group = (indices: number[]): GroupFigures => {
      const at = (xs: Array<Sample | undefined>, f: (s: Sample) => number): number[] => indices.map(i => xs[i] === undefined ? NaN : f(xs[i]!))
      const attest = indices.flatMap(i => all[i].events.filter(e => e.event === 'attested').slice(1).map(e => e.event === 'attested' ? e.inferenceMs + e.signMs : NaN))
      return {
        operators: indices.length,
        idleRssMiB: figures(at(idle1, s => mib(s.rss))),
        idlePssMiB: figures(at(idle1, s => mib(s.pss))),
        idleAnonMiB: figures(at(idle1, s => mib(s.rssAnon))),
        idleCpuPercent: figures(indices.map(i => Math.round(idleCpu[i] * 10) / 10)),
        taskCpuS: figures(indices.map(i => afterTasks[i] === undefined || beforeTasks[i] === undefined ? NaN : Math.round((afterTasks[i]!.cpuS - beforeTasks[i]!.cpuS) * 100) / 100)),
        peakRssMiB: figures(at(afterTasks, s => mib(s.hwm))),
        fds: figures(at(afterTasks, s => s.fds)),
        attestMs: { p50: quantile(attest, 0.5), p95: quantile(attest, 0.95) }
      }
    }
    const operatorIndices = net.operators.map((_, i) => i + 1)
    const variants = compare
      ? Object.fromEntries(VARIANTS.map((v, k) => [v.name, group(operatorIndices.filter(i => (i - 1) % VARIANTS.length === k))]))
      : undefined
    const one = (i: number): SizeResult['bootstrap'] => ({ idleRssMiB: mib(idle1[i]?.rss ?? NaN), idlePssMiB: mib(idle1[i]?.pss ?? NaN), idleCpuPercent: Math.round(idleCpu[i] * 10) / 10, fds: afterTasks[i]?.fds ?? NaN })
    return {
      size,
      nodes,
      startupS: Math.round(startupS * 10) / 10,
      startWave: wave,
      machineBefore,
      machineAfter,
      operators: group(operatorIndices),
      variants,
      bootstrap: one(0),
      aggregator: one(all.length - 1),
      firstTaskMs: Math.round(firstTaskMs),
      warmupFailures,
      tasks,
      certified: latencies.length,
      failed,
      certificateMs: { p50: Math.round(quantile(latencies, 0.5)), p95: Math.round(quantile(latencies, 0.95)), max: Math.round(max(latencies)) },
      networkPssGiB: Math.round(idle1.reduce((a, s) => a + (s?.pss ?? 0), 0) / (1024 * MIB) * 100) / 100
    }
  } catch (err) {
    log(`  the nodes' logs are kept in ${root}`)
    keep = true
    throw err
  } finally {
    await client?.close()
    await net.stop()
    if (!keep) await rm(root, { recursive: true, force: true })
  }
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '16,32,64,100' },
      tasks: { type: 'string', default: '8' },
      wave: { type: 'string', default: '8' },
      out: { type: 'string', default: 'bench/results/scale.json' },
      compare: { type: 'boolean', default: false },
      'fetch-model': { type: 'boolean', default: false }
    }
  })
  const sizes = values.sizes.split(',').map(Number)
  const tasks = Number(values.tasks)
  const wave = Number(values.wave)
  const log = (s: string): void => { console.error(s) }
  const results: SizeResult[] = []
  const write = async (results: SizeResult[], stopped: string | undefined): Promise<string> => {
    const out = resolve(values.out)
    await mkdir(dirname(out), { recursive: true })
    await writeFile(out, JSON.stringify({ benchmark: 'scale', date: new Date().toISOString(), node: process.version, machine: machine(), tasksPerSize: tasks, startWave: wave, compare: values.compare, fetchModel: values['fetch-model'], results, stopped }, null, 2) + '\n')
    return out
  }
  let stopped: string | undefined
  let perNodeEstimate = FIRST_ESTIMATE_PER_NODE_BYTES
  for (const size of sizes) {
    const m = machine()
    const need = (size + 2) * perNodeEstimate
    if (need > m.availableMemBytes - MEMORY_RESERVE_BYTES) {
      stopped = `size ${size} needs ~${(need / 1024 / MIB).toFixed(1)} GiB (${size + 2} nodes at ~${mib(perNodeEstimate)} MiB each), ` +
        `${(m.availableMemBytes / 1024 / MIB).toFixed(1)} GiB available and ${MEMORY_RESERVE_BYTES / 1024 / MIB} GiB kept for the machine's other users: not started`
      log(stopped)
      break
    }
    log(`size ${size}: ${size} operators + bootstrap + aggregator (load ${m.loadAverage.join(' ')}, ${(m.availableMemBytes / 1024 / MIB).toFixed(1)} GiB available)`)
    try {
      const r = await measureSize(size, tasks, wave, values.compare, values['fetch-model'], log)
      results.push(r)
      // Written after every size too: a long run stopped half-way keeps what it measured.
      await write(results, undefined)
      perNodeEstimate = Math.max(r.operators.idlePssMiB.max, r.aggregator.idlePssMiB, r.bootstrap.idlePssMiB) * MIB * ESTIMATE_MARGIN
    } catch (err) {
      stopped = `size ${size} failed: ${err instanceof Error ? err.message : String(err)}`
      log(stopped)
      break
    }
  }

  const head = ['size', 'startup s', 'RSS med/max MiB', 'PSS med MiB', 'idle CPU %', 'task CPU s', 'peak RSS MiB', 'cert p50/p95 ms', 'first ms', 'ok', 'load']
  const rows = results.map(r => [String(r.size), r.startupS.toFixed(1), `${r.operators.idleRssMiB.median}/${r.operators.idleRssMiB.max}`, String(r.operators.idlePssMiB.median),
    String(r.operators.idleCpuPercent.median), String(r.operators.taskCpuS.median), String(r.operators.peakRssMiB.max), `${r.certificateMs.p50}/${r.certificateMs.p95}`,
    String(r.firstTaskMs), `${r.certified}/${r.tasks}`, r.machineAfter.loadAverage[0].toFixed(2)])
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i])).join('  ')
  console.log(line(head))
  for (const r of rows) console.log(line(r))
  for (const r of results) {
    for (const [name, g] of Object.entries(r.variants ?? {})) {
      console.log(`  size ${r.size} ${name.padEnd(18)}: idle RSS ${g.idleRssMiB.median} MiB (PSS ${g.idlePssMiB.median}, anon ${g.idleAnonMiB.median}), idle CPU ${g.idleCpuPercent.median} %, task CPU ${g.taskCpuS.median} s, peak RSS ${g.peakRssMiB.max} MiB, attest p50/p95 ${g.attestMs.p50}/${g.attestMs.p95} ms`)
    }
  }
  if (stopped !== undefined) console.log(stopped)
  console.log('goal: under 100 MiB RSS per idle operator')
  console.log(`wrote ${await write(results, stopped)}`)
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
