/**
 * The requester gateway's HTTP overhead: tasks per second and latency through one gateway
 * (HTTP POST /v1/tasks, then GET /v1/tasks/:id?wait=) to the 4-operator devnet, against the same
 * tasks sent through PoiClient directly (submit, then await the result), with 1, 8
 * and 32 concurrent clients. Both paths share one light peer in this process, so the difference
 * is the HTTP layer: parsing, validation, the rate limiter, JSON answers and the client's fetch.
 *
 *   npm run bench:gateway -- [--clients 1,8,32] [--tasks 48] [--operators 4] [--out file]
 *
 * The network runs as separate processes (node/cli/local-network.ts, off-chain). Each
 * concurrency level sends the same `tasks` inputs both ways, in halves that alternate which
 * path goes first (gateway, direct, direct, gateway), so a drift of the machine's load over the
 * run weighs on both; a level runs at least two tasks per client. Latency is from the client's first byte out to the verified result in.
 * The HTTP clients run in a worker thread, as programs apart from the gateway would: their
 * fetch and JSON work does not share the gateway's event loop (the direct path's client is, by
 * definition, the caller's own library).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { Agent, request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { createGateway, loadOrCreateGatewayToken, MAX_WAIT_MS } from '../node/api/index.js'
import { exampleInput, startLocalNetwork } from '../node/cli/devnet.js'
import { PoiClient } from '../node/client/index.js'
import { prepareNodeDir } from '../node/cli/launcher.js'
import { loadModelDir, modelIdToString, SHIPPED_MODEL_DIR } from '../node/inference/index.js'

/** Tasks each path runs before measuring: operators fetch the model through the DHT for the first. */
const WARMUP_TASKS = 4
/** Per task; the nodes' default. */
const TASK_TIMEOUT_MS = 30_000
/** The rate limiter stays on (it is part of the overhead) but never refuses the benchmark. */
const BENCH_RATE_LIMIT = 1_000_000

type Path = 'gateway' | 'direct'

interface Row {
  clients: number
  path: Path
  tasks: number
  tasksPerSecond: number
  p50Ms: number
  p95Ms: number
  meanMs: number
}

function quantile (xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]
}

/** The shipped model's input as the body's JSON tensors (what a program would POST). */
function inputOf (seed: number): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(exampleInput(seed))) as Record<string, unknown>
}

/**
 * Keep-alive connections for the benchmark's HTTP clients. node:http rather than fetch: undici's
 * fetch costs several times more CPU per request, and on a machine whose cores the operators
 * share that would be counted against the gateway.
 */
const agent = new Agent({ keepAlive: true })

/** One HTTP exchange with the gateway: its status and JSON body. */
async function exchange (url: string, method: 'GET' | 'POST', body?: string): Promise<{ status: number, json: unknown }> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, agent, headers: body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {} }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) })
        } catch (err) {
          reject(err)
        }
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** One task through the gateway over HTTP: POST, then GET ?wait= until it is settled. Returns ms. */
async function viaGateway (base: string, model: string, input: Record<string, unknown>): Promise<number> {
  const start = performance.now()
  const res = await exchange(`${base}/v1/tasks`, 'POST', JSON.stringify({ model, input, timeoutMs: TASK_TIMEOUT_MS }))
  const accepted = res.json as { links?: { self: string }, error?: { message: string } }
  if (res.status !== 202 || accepted.links === undefined) throw new Error(`POST /v1/tasks answered ${res.status}: ${accepted.error?.message ?? JSON.stringify(accepted)}`)
  for (;;) {
    const view = (await exchange(`${base}${accepted.links.self}?wait=${MAX_WAIT_MS}`, 'GET')).json as { status: string, error?: { message: string } }
    if (view.status === 'certified') return performance.now() - start
    if (view.status !== 'pending') throw new Error(`task ${accepted.links.self} ended ${view.status}: ${view.error?.message ?? ''}`)
  }
}

/** The same task through the client directly. Returns ms. */
async function direct (client: PoiClient, model: string, input: Record<string, unknown>): Promise<number> {
  const start = performance.now()
  const submitted = await client.submit({ model, input, timeoutMs: TASK_TIMEOUT_MS })
  await submitted.result
  return performance.now() - start
}

/** `clients` workers take inputs from the list until it is empty; returns each task's ms and the wall time. */
async function runClients (clients: number, inputs: Array<Record<string, unknown>>, one: (input: Record<string, unknown>) => Promise<number>): Promise<{ latencies: number[], wallMs: number }> {
  const latencies: number[] = []
  let next = 0
  const start = performance.now()
  await Promise.all(Array.from({ length: clients }, async () => {
    while (next < inputs.length) {
      const input = inputs[next++]
      latencies.push(await one(input))
    }
  }))
  return { latencies, wallMs: performance.now() - start }
}

interface WorkerJob { base: string, model: string, clients: number, inputs: Array<Record<string, unknown>> }
type WorkerAnswer = { latencies: number[], wallMs: number } | { error: string }

/** Runs `clients` HTTP clients through the gateway in a worker thread (a program apart from the gateway). */
async function viaGatewayInWorker (job: WorkerJob): Promise<{ latencies: number[], wallMs: number }> {
  const worker = new Worker(new URL(import.meta.url), { workerData: job })
  try {
    const answer = await new Promise<WorkerAnswer>((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
      worker.once('exit', (code) => { reject(new Error(`the HTTP client worker exited with ${code} before answering`)) })
    })
    if ('error' in answer) throw new Error(answer.error)
    return answer
  } finally {
    await worker.terminate()
  }
}

/** In the worker: the job's clients against the gateway, the answer posted back. */
async function workerMain (): Promise<void> {
  const job = workerData as WorkerJob
  let answer: WorkerAnswer
  try {
    answer = await runClients(job.clients, job.inputs, async (input) => await viaGateway(job.base, job.model, input))
  } catch (err) {
    answer = { error: err instanceof Error ? err.message : String(err) }
  }
  parentPort!.postMessage(answer)
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string', default: '1,8,32' },
      tasks: { type: 'string', default: '48' },
      operators: { type: 'string', default: '4' },
      out: { type: 'string', default: 'bench/results/gateway.json' }
    }
  })
  const levels = values.clients.split(',').map(Number)
  const tasks = Number(values.tasks)
  const operators = Number(values.operators)
  const log = (s: string): void => { console.error(s) }
  const root = await mkdtemp(join(tmpdir(), 'poi-bench-gateway-'))
  const net = await startLocalNetwork({ root, operators, progress: (s) => log(`  ${s}`) })
  const rows: Row[] = []
  try {
    const model = modelIdToString((await loadModelDir(SHIPPED_MODEL_DIR)).modelId)
    const dirs = await prepareNodeDir(root, 'gateway')
    log('connecting the client')
    const client = await PoiClient.connect({ keystore: dirs.keystore, bootstrap: [net.bootstrapAddr], genesis: net.genesisPath })
    const { token } = await loadOrCreateGatewayToken(dirs.keystore)
    const gateway = createGateway(client, { host: '127.0.0.1', port: 0, token, rateLimit: { max: BENCH_RATE_LIMIT } })
    await gateway.start()
    const base = gateway.url!
    try {
      log(`warming up (${WARMUP_TASKS} tasks each way)`)
      for (let i = 0; i < WARMUP_TASKS; i++) {
        await direct(client, model, inputOf(10_000 + i))
        await viaGatewayInWorker({ base, model, clients: 1, inputs: [inputOf(20_000 + i)] })
      }
      const paths: Record<Path, (clients: number, inputs: Array<Record<string, unknown>>) => Promise<{ latencies: number[], wallMs: number }>> = {
        gateway: async (clients, inputs) => await viaGatewayInWorker({ base, model, clients, inputs }),
        direct: async (clients, inputs) => await runClients(clients, inputs, async (input) => await direct(client, model, input))
      }
      for (const clients of levels) {
        // Each half keeps every client busy: at least `clients` tasks in it.
        const count = Math.max(tasks, 2 * clients)
        const inputs = Array.from({ length: count }, (_, i) => inputOf(clients * 1000 + i))
        const halves = [inputs.slice(0, Math.ceil(count / 2)), inputs.slice(Math.ceil(count / 2))]
        const measured: Record<Path, { latencies: number[], wallMs: number }> = { gateway: { latencies: [], wallMs: 0 }, direct: { latencies: [], wallMs: 0 } }
        const order: Array<[Path, number]> = [['gateway', 0], ['direct', 0], ['direct', 1], ['gateway', 1]]
        for (const [path, half] of order) {
          log(`  ${clients} client${clients === 1 ? '' : 's'}, ${path}: ${halves[half].length} tasks`)
          const r = await paths[path](clients, halves[half])
          measured[path].latencies.push(...r.latencies)
          measured[path].wallMs += r.wallMs
        }
        for (const path of ['gateway', 'direct'] as const) {
          const { latencies, wallMs } = measured[path]
          rows.push({
            clients,
            path,
            tasks: latencies.length,
            tasksPerSecond: latencies.length / (wallMs / 1000),
            p50Ms: quantile(latencies, 0.5),
            p95Ms: quantile(latencies, 0.95),
            meanMs: latencies.reduce((a, b) => a + b, 0) / latencies.length
          })
        }
      }
    } finally {
      await gateway.stop()
      await client.close()
    }
  } finally {
    await net.stop()
    await rm(root, { recursive: true, force: true })
  }

  const overheads = levels.map(clients => {
    const g = rows.find(r => r.clients === clients && r.path === 'gateway')!
    const d = rows.find(r => r.clients === clients && r.path === 'direct')!
    return { clients, p50OverheadMs: g.p50Ms - d.p50Ms, p50Overhead: (g.p50Ms - d.p50Ms) / d.p50Ms, throughputRatio: g.tasksPerSecond / d.tasksPerSecond }
  })
  const head = ['clients', 'path', 'tasks', 'tasks/s', 'p50 ms', 'p95 ms', 'p50 overhead']
  const table = rows.map(r => {
    const o = overheads.find(x => x.clients === r.clients)!
    return [String(r.clients), r.path, String(r.tasks), r.tasksPerSecond.toFixed(2), r.p50Ms.toFixed(1), r.p95Ms.toFixed(1),
      r.path === 'gateway' ? `${o.p50OverheadMs >= 0 ? '+' : ''}${o.p50OverheadMs.toFixed(1)} ms (${(o.p50Overhead * 100).toFixed(1)}%)` : '']
  })
  const widths = head.map((h, i) => Math.max(h.length, ...table.map(r => r[i].length)))
  const line = (cells: string[]): string => cells.map((c, i) => i === 1 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join('  ')
  console.log(line(head))
  for (const r of table) console.log(line(r))
  console.log('goal: the gateway\'s overhead under 10% at p50')
  const out = resolve(values.out)
  await mkdir(dirname(out), { recursive: true })
  await writeFile(out, JSON.stringify({ benchmark: 'gateway', date: new Date().toISOString(), node: process.version, operators, tasksPerLevel: tasks, rows, overheads }, null, 2) + '\n')
  console.log(`wrote ${out}`)
}

if (isMainThread) main().catch((err) => { console.error(err); process.exitCode = 1 })
else workerMain().catch((err) => { console.error(err); process.exitCode = 1 })
