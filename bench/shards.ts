/**
 * Time to fetch a model through the DHT over /poi/shard/1/ from 1, 2 and 4 providers on
 * 127.0.0.1, against copying the same bytes over one plain TCP socket in the same run.
 *
 *   npm run build && node dist/bench/shards.js [--mib 50] [--providers 1,2,4] [--runs 3] [--out bench/results/shards.json]
 *
 * Providers and the plain-socket sender run as child processes (as real peers would), the
 * fetcher in this process. Each provider count gets fresh providers and a fresh fetcher, so
 * the DHT lookup is part of every fetch. Reported per run (median over --runs):
 *   transfer: find providers + manifest + chunks + whole-file hash (what the task waits for
 *             before the model could be loaded from memory),
 *   total:    transfer + the atomic LevelDB write of all blocks,
 *   lookup:   the part of transfer before the first chunk is asked for (DHT + manifest),
 *   CPU:      CPU time of the fetcher and of all providers during the transfer. On a shared
 *             machine wall time swings with other load; CPU time shows what the protocol costs.
 * The goal (issue 4) compares transfer MiB/s from 4 providers with the plain socket: ≥ 0.5.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createCipheriv } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, connect, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createPoiLibp2p } from '../node/p2p.js'
import { loadModelDir, SHIPPED_MODEL_DIR, type ModelManifest } from '../node/inference/index.js'
import { fetchModel, provideModel, publishModel, type FetchPhase, type ModelFields } from '../node/models/index.js'
import { shardServer } from '../protocols/shard/index.js'
import { BlockStore, NodeStore } from '../storage/index.js'

const MIB = 1024 * 1024
const READY_TIMEOUT_MS = 120_000
const POLL_MS = 20
/**
 * Quiet time after the providers are ready and before the timed fetch. Fresh connections
 * bring a burst of identify, DHT and gossip traffic (and LevelDB compacts the 50 MiB just
 * written); a node fetching a model in real use has long passed that. Measured here: without
 * it, 4 fresh providers fetched 2× slower than 1 in the same process; with 1 s they match.
 */
const SETTLE_MS = 1_000
const SCRIPT = fileURLToPath(import.meta.url)

/** Deterministic pseudo-random bytes (AES-CTR keystream): every process builds the same model without shipping it. */
function modelBytesOf (mib: number, seed: number): Uint8Array {
  const key = Buffer.alloc(16)
  key.writeUInt32BE(seed)
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16))
  return new Uint8Array(cipher.update(Buffer.alloc(mib * MIB)))
}

async function fieldsOf (name: string): Promise<ModelFields> {
  const { manifest } = await loadModelDir(SHIPPED_MODEL_DIR)
  const { owner, runtime, agreement, inputs, outputs }: ModelManifest = manifest
  return { owner, name, runtime, agreement, inputs, outputs }
}

/** Child: hold the model, serve and provide it, print READY <multiaddr> <modelId>, exit when stdin closes. */
async function runProvider (dir: string, mib: number, seed: number, bootstrap: string[], peers: number): Promise<void> {
  const store = await NodeStore.open(dir)
  const blocks = BlockStore.of(store)
  const published = await publishModel(blocks, modelBytesOf(mib, seed), await fieldsOf(`bench-${seed}`))
  const libp2p = await createPoiLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, dhtClientMode: false })
  const server = shardServer(libp2p, blocks)
  await server.start()
  // the other providers and the fetcher: announce once the network has formed
  while (libp2p.getPeers().length < peers) await new Promise(resolve => setTimeout(resolve, POLL_MS))
  const report = await provideModel(libp2p, published.cids)
  process.stdout.write(`READY ${libp2p.getMultiaddrs()[0].toString()} ${published.modelCid.toString()} ${report.provided}\n`)
  process.stdin.resume()
  await new Promise(resolve => process.stdin.on('end', resolve))
  await server.stop()
  await libp2p.stop()
  await store.close()
}

/** Child: send `mib` MiB to the first connection, print READY <port>. */
async function runTcpSender (mib: number): Promise<void> {
  const bytes = modelBytesOf(mib, 0)
  const server = createServer(socket => {
    socket.end(bytes)
    server.close()
  })
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`READY ${(server.address() as AddressInfo).port}\n`)
  })
}

interface Child { proc: ChildProcess, ready: string[] }

async function spawnChild (args: string[]): Promise<Child> {
  const proc = spawn(process.execPath, [SCRIPT, ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: proc.stdout! })
  const ready = await new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child ${args.join(' ')} not ready in ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS)
    lines.on('line', line => {
      if (line.startsWith('READY ')) { clearTimeout(timer); resolve(line.split(' ').slice(1)) }
    })
    proc.once('exit', code => { clearTimeout(timer); reject(new Error(`child ${args.join(' ')} exited with ${code}`)) })
  })
  return { proc, ready }
}

async function stopChild (child: Child): Promise<void> {
  if (child.proc.exitCode !== null) return
  const exited = new Promise(resolve => child.proc.once('exit', resolve))
  child.proc.stdin?.end()
  await exited
}

/** One plain-socket copy: connect, read everything into one buffer (as the fetcher assembles the model). */
async function plainSocketMs (mib: number): Promise<number> {
  const sender = await spawnChild(['--tcp-sender', '--mib', String(mib)])
  const port = Number(sender.ready[0])
  const start = performance.now()
  const received = await new Promise<number>((resolve, reject) => {
    const parts: Buffer[] = []
    let n = 0
    const socket = connect(port, '127.0.0.1')
    socket.on('data', (b: Buffer) => { parts.push(b); n += b.length })
    socket.on('end', () => { Buffer.concat(parts, n); resolve(n) })
    socket.on('error', reject)
  })
  const ms = performance.now() - start
  await stopChild(sender)
  if (received !== mib * MIB) throw new Error(`plain socket received ${received} bytes, expected ${mib * MIB}`)
  return ms
}

/** ms from the start of the fetch to the start of each phase (finding, manifest, chunks, storing, done). */
type PhaseTimes = Partial<Record<FetchPhase, number>>
interface FetchSample {
  transferMs: number
  totalMs: number
  servedBy: number
  phases: PhaseTimes
  /** CPU time of the fetcher process during the transfer. */
  fetcherCpuMs: number
  /** CPU time of all providers together during the transfer (absent without /proc). */
  providersCpuMs?: number
}

async function fetchOnce (root: string, mib: number, providers: number, seed: number): Promise<FetchSample> {
  const children: Child[] = []
  const dir = await mkdtemp(join(root, `p${providers}-`))
  // the fetcher starts first and is the providers' bootstrap peer: a DHT needs a peer before
  // anything can be announced; it holds no block of the model before the timed fetch
  const store = await NodeStore.open(join(dir, 'fetcher'))
  const libp2p = await createPoiLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], dhtClientMode: false })
  try {
    const bootstrap = libp2p.getMultiaddrs()[0].toString()
    children.push(...await Promise.all(Array.from({ length: providers }, async (_, i) =>
      await spawnChild(['--provider', join(dir, `provider${i}`), '--mib', String(mib), '--seed', String(seed), '--bootstrap', bootstrap, '--peers', String(providers)]))))
    const modelId = children[0].ready[1]
    await new Promise(resolve => setTimeout(resolve, SETTLE_MS))
    const phases: PhaseTimes = {}
    let fetcherCpuMs = 0
    let providersCpu: number | undefined
    const providersCpuAtStart = providersCpuMs(children)
    const cpuAtStart = process.cpuUsage()
    const start = performance.now()
    const got = await fetchModel(libp2p, BlockStore.of(store), modelId, {
      provide: false,
      onProgress: p => {
        if (p.phase === 'storing' && phases.storing === undefined) {
          const cpu = process.cpuUsage(cpuAtStart)
          fetcherCpuMs = (cpu.user + cpu.system) / 1000
          const now = providersCpuMs(children)
          providersCpu = now === undefined || providersCpuAtStart === undefined ? undefined : now - providersCpuAtStart
        }
        phases[p.phase] ??= performance.now() - start
      }
    })
    const end = performance.now()
    if (got.modelBytes.length !== mib * MIB) throw new Error('fetched model has the wrong size')
    if (phases.storing === undefined) throw new Error('the fetch never reported its storing phase')
    return { transferMs: phases.storing, totalMs: end - start, servedBy: got.servedBy.length, phases, fetcherCpuMs, providersCpuMs: providersCpu }
  } finally {
    await Promise.all(children.map(stopChild))
    await libp2p.stop()
    await store.close()
  }
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const USER_HZ = 100
/**
 * CPU time (user + system) a child has used so far, or undefined where /proc is missing. The
 * machine may be shared: wall time swings with other load, CPU time much less, so the table
 * shows both.
 */
function childCpuMs (pid: number | undefined): number | undefined {
  if (pid === undefined || !existsSync(`/proc/${pid}/stat`)) return undefined
  // fields after the parenthesised command name: utime and stime are the 12th and 13th
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 1000 / USER_HZ
}

function providersCpuMs (children: Child[]): number | undefined {
  let sum = 0
  for (const child of children) {
    const ms = childCpuMs(child.proc.pid)
    if (ms === undefined) return undefined
    sum += ms
  }
  return sum
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)] }

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      provider: { type: 'string' },
      'tcp-sender': { type: 'boolean' },
      bootstrap: { type: 'string' },
      peers: { type: 'string', default: '1' },
      seed: { type: 'string', default: '1' },
      mib: { type: 'string', default: '50' },
      providers: { type: 'string', default: '1,2,4' },
      runs: { type: 'string', default: '3' },
      out: { type: 'string', default: 'bench/results/shards.json' }
    }
  })
  const mib = Number(values.mib)
  if (values.provider !== undefined) return await runProvider(values.provider, mib, Number(values.seed), values.bootstrap === undefined ? [] : [values.bootstrap], Number(values.peers))
  if (values['tcp-sender'] === true) return await runTcpSender(mib)

  const counts = values.providers.split(',').map(Number)
  const runs = Number(values.runs)
  const root = await mkdtemp(join(tmpdir(), 'poi-bench-shards-'))
  try {
    const plain: number[] = []
    for (let r = 0; r < runs; r++) plain.push(await plainSocketMs(mib))
    const plainMs = median(plain)
    const plainRate = mib / (plainMs / 1000)
    const results = []
    let seed = 1
    for (const providers of counts) {
      const samples: FetchSample[] = []
      for (let r = 0; r < runs; r++) samples.push(await fetchOnce(root, mib, providers, seed++))
      const transferMs = median(samples.map(s => s.transferMs))
      const totalMs = median(samples.map(s => s.totalMs))
      // finding providers and the manifest before any chunk is asked for: a DHT lookup, not bandwidth
      const lookupMs = median(samples.map(s => s.phases.chunks ?? 0))
      const fetcherCpuMs = median(samples.map(s => s.fetcherCpuMs))
      const providersCpu = samples.every(s => s.providersCpuMs !== undefined) ? median(samples.map(s => s.providersCpuMs ?? 0)) : undefined
      results.push({
        providers,
        transferMs,
        lookupMs,
        fetcherCpuMs,
        providersCpuMs: providersCpu,
        totalMs,
        transferMiBps: mib / (transferMs / 1000),
        totalMiBps: mib / (totalMs / 1000),
        ratioToPlainSocket: plainMs / transferMs,
        servedBy: Math.min(...samples.map(s => s.servedBy)),
        samples
      })
    }
    const rows = [
      ['providers', 'transfer ms', 'of it lookup ms', 'MiB/s', '× plain socket', 'fetcher CPU ms', 'providers CPU ms', 'incl. store ms', 'MiB/s'],
      ['plain TCP', plainMs.toFixed(0), '', plainRate.toFixed(0), '1.00', '', '', '', ''],
      ...results.map(r => [String(r.providers), r.transferMs.toFixed(0), r.lookupMs.toFixed(0), r.transferMiBps.toFixed(0), r.ratioToPlainSocket.toFixed(2),
        r.fetcherCpuMs.toFixed(0), r.providersCpuMs?.toFixed(0) ?? '?', r.totalMs.toFixed(0), r.totalMiBps.toFixed(0)])
    ]
    const widths = rows[0].map((_, i) => Math.max(...rows.map(row => row[i].length)))
    process.stdout.write(`fetch a ${mib} MiB model over /poi/shard/1/ on 127.0.0.1 (median of ${runs})\n`)
    for (const row of rows) process.stdout.write(row.map((c, i) => c.padStart(widths[i])).join('  ') + '\n')
    const out = resolve(values.out)
    await mkdir(dirname(out), { recursive: true })
    await writeFile(out, JSON.stringify({
      benchmark: 'shards',
      date: new Date().toISOString(),
      node: process.version,
      modelMiB: mib,
      runs,
      plainSocket: { ms: plainMs, MiBps: plainRate, samples: plain },
      results,
      goal: 'transfer from 4 providers at >= 0.5 of the plain-socket rate'
    }, null, 2) + '\n')
    process.stdout.write(`wrote ${out}\n`)
  } finally {
    await rm(root, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench shards: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
})
