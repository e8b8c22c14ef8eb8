/**
 * `poi devnet --dir <d>` resumes the devnet a stopped `--dir` devnet left: the same chain (anvil's
 * state saved in <d> when the devnet stopped it), the same contracts and keys, the earlier
 * certificate still on chain, and a new paid task certified on top. What cannot be resumed is
 * refused with a reason (a damaged chain state, a devnet still running, options that contradict
 * the devnet's), and --force starts over on a new chain.
 */
import { strict as assert } from 'node:assert'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hexToBytes } from 'viem'
import { ChainClient } from '../node/chain-client.js'
import { DEVNET_PID_FILE, DEVNET_RECORD_FILE, DEVNET_STATE_FILE } from '../node/cli/devnet-state.js'
import { readDeployment } from '../node/deployment.js'
import { CLI } from './helpers/cli.js'

/** A 3-operator devnet without npm models is up and has settled its task in 10-20 s on a quiet machine; several times that under load. */
const DEVNET_TIMEOUT_MS = 150_000
/** A devnet that refuses its --dir exits before it starts anything. */
const REFUSAL_TIMEOUT_MS = 20_000
const POLL_MS = 100
const DEVNET_ARGS = ['--npm-models', 'none', '--operators', '3']

/** A `poi devnet` process and its output so far. */
class Devnet {
  readonly proc: ChildProcess
  stdout = ''
  stderr = ''
  readonly exited: Promise<number | null>

  constructor (args: string[]) {
    const env: NodeJS.ProcessEnv = { ...process.env }
    delete env.DEBUG
    this.proc = spawn(process.execPath, [CLI, 'devnet', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    this.proc.stdout!.on('data', (d: Buffer) => { this.stdout += d.toString() })
    this.proc.stderr!.on('data', (d: Buffer) => { this.stderr += d.toString() })
    this.exited = new Promise(resolve => this.proc.once('close', code => resolve(code)))
  }

  get output (): string { return `stdout:\n${this.stdout}\nstderr:\n${this.stderr}` }

  /** Waits for a line matching `re` on stdout and returns its match. */
  async line (re: RegExp, timeoutMs = DEVNET_TIMEOUT_MS): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const m = re.exec(this.stdout)
      if (m !== null) return m
      if (this.proc.exitCode != null || this.proc.signalCode != null) assert.fail(`the devnet exited before printing ${re}\n${this.output}`)
      if (Date.now() > deadline) assert.fail(`the devnet printed no ${re} within ${timeoutMs} ms\n${this.output}`)
      await new Promise(resolve => setTimeout(resolve, POLL_MS))
    }
  }

  /** Its exit code; killed (and failed) if it does not exit within `timeoutMs`. */
  async exit (timeoutMs = DEVNET_TIMEOUT_MS): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { this.proc.kill('SIGKILL'); reject(new Error(`the devnet did not exit within ${timeoutMs} ms\n${this.output}`)) }, timeoutMs)
    })
    try { return await Promise.race([this.exited, timeout]) } finally { clearTimeout(timer) }
  }
}

const exists = async (path: string): Promise<boolean> => await stat(path).then(() => true, () => false)
/** The task the devnet announced first (the shipped model's paid task). */
const taskOf = (stdout: string): `0x${string}` => {
  const m = /announced task (0x[0-9a-f]{64})/.exec(stdout)
  assert.ok(m !== null, stdout)
  return m[1] as `0x${string}`
}
const resultHashOf = (stdout: string): string => {
  const m = /^result hash (0x[0-9a-f]{64})$/m.exec(stdout)
  assert.ok(m !== null, stdout)
  return m[1]
}

describe('poi devnet --dir resumes a stopped devnet', function () {
  this.timeout(3 * DEVNET_TIMEOUT_MS)
  let tmp: string
  let dir: string
  const running: Devnet[] = []
  const devnet = (args: string[]): Devnet => { const d = new Devnet(args); running.push(d); return d }
  /** The deployment file without its RPC URL (a resumed anvil listens on a new port). */
  const contracts = async (): Promise<Record<string, unknown>> => {
    const { rpcUrl: _, ...rest } = JSON.parse(await readFile(join(dir, 'deployment.json'), 'utf8')) as Record<string, unknown>
    return rest
  }
  let first: { task: `0x${string}`, resultHash: string, contracts: Record<string, unknown>, block: bigint }

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'poi-devnet-resume-'))
    dir = join(tmp, 'devnet')
  })
  after(async () => {
    for (const d of running) if (d.proc.exitCode == null && d.proc.signalCode == null) d.proc.kill('SIGINT')
    await Promise.all(running.map(async d => await d.exit().catch(() => d.proc.kill('SIGKILL'))))
    await rm(tmp, { recursive: true, force: true })
  })

  it('a kept devnet stopped with SIGINT leaves its record and chain state; a second devnet meanwhile is told it still runs', async () => {
    const d = devnet([...DEVNET_ARGS, '--keep', '--dir', dir])
    await d.line(/network left running .*`poi devnet --dir \S+` resumes it/)
    const chain = await ChainClient.connect(await readDeployment(join(dir, 'deployment.json')))
    first = { task: taskOf(d.stdout), resultHash: resultHashOf(d.stdout), contracts: await contracts(), block: await chain.publicClient.getBlockNumber() }
    assert.ok(await chain.isCertified(hexToBytes(first.task)), 'the first task is not settled on-chain')

    const second = devnet(['--dir', dir])
    assert.equal(await second.exit(REFUSAL_TIMEOUT_MS), 1, second.output)
    assert.match(second.stderr, new RegExp(`a devnet is still running in ${dir} \\(pid ${d.proc.pid}\\): stop it first`))
    assert.doesNotMatch(second.stdout, /starting anvil/)

    d.proc.kill('SIGINT')
    assert.equal(await d.exit(), 0, d.output)
    assert.ok(await exists(join(dir, DEVNET_RECORD_FILE)))
    assert.ok(await exists(join(dir, DEVNET_STATE_FILE)), 'anvil saved no state when the devnet stopped it')
    assert.equal(await exists(join(dir, DEVNET_PID_FILE)), false, 'the stopped devnet left its pid file')
  })

  it('an option that contradicts the devnet is refused before anything starts', async () => {
    const d = devnet(['--npm-models', 'none', '--operators', '4', '--dir', dir])
    assert.equal(await d.exit(REFUSAL_TIMEOUT_MS), 1, d.output)
    assert.match(d.stderr, /--operators 4 differs from the devnet's 3 operators: a resumed devnet keeps what it was made with; drop the option, or pass --force/)
    assert.doesNotMatch(d.stdout, /starting anvil/)
  })

  it('resumes the same chain and contracts: the earlier certificate is still there, a new paid task is certified on top', async () => {
    const d = devnet(['--keep', '--dir', dir])
    const [, block, epoch] = await d.line(/resuming the devnet in (?:\S+) \(chain at block (\d+), epoch (\d+)\)/)
    assert.ok(BigInt(block) >= first.block, `resumed at block ${block}, the first run had reached ${first.block}`)
    assert.equal(epoch, '1')
    await d.line(/network left running/)
    assert.doesNotMatch(d.stdout, /deploying|registering \d+ operators/)
    assert.match(d.stdout, /requester 0x[0-9a-fA-F]{40} resumed with [\d.]+ ETH/)
    assert.match(d.stdout, /epoch 2 started with 3 of the devnet's 3 operators/)
    assert.match(d.stdout, /adds up +owner/, 'the resumed run\'s paid task has no exact fee split')
    assert.deepEqual(await contracts(), first.contracts)

    const chain = await ChainClient.connect(await readDeployment(join(dir, 'deployment.json')))
    const earlier = await chain.result(hexToBytes(first.task))
    assert.equal(earlier?.resultHash.toLowerCase(), first.resultHash, 'the first run\'s certificate is gone from the resumed chain')
    assert.equal(earlier?.epoch, 1n)
    const task = taskOf(d.stdout)
    assert.notEqual(task, first.task)
    const now = await chain.result(hexToBytes(task))
    assert.equal(now?.epoch, 2n, `the resumed run's task is not settled in epoch 2\n${d.output}`)
    assert.ok(await chain.publicClient.getBlockNumber() > BigInt(block), 'the resumed chain did not move')

    d.proc.kill('SIGTERM')
    assert.equal(await d.exit(), 0, d.output)
  })

  it('a devnet of another record version is refused with what to do', async () => {
    const path = join(dir, DEVNET_RECORD_FILE)
    const record = await readFile(path, 'utf8')
    await writeFile(path, JSON.stringify({ ...JSON.parse(record), version: 0 }))
    const d = devnet(['--dir', dir])
    assert.equal(await d.exit(REFUSAL_TIMEOUT_MS), 1, d.output)
    assert.match(d.stderr, /was made by another poi version \(record version 0, this poi resumes version 1\): pass --force to delete it and start over/)
    assert.doesNotMatch(d.stdout, /starting anvil/)
    await writeFile(path, record) // the next test's refusal comes from the state file, past this record
  })

  it('a damaged chain state is refused with what to do (a stale pid file does not count as a running devnet)', async () => {
    const exited = spawn(process.execPath, ['-e', ''])
    await new Promise(resolve => exited.once('exit', resolve))
    await writeFile(join(dir, DEVNET_PID_FILE), `${exited.pid}\n`)
    const state = join(dir, DEVNET_STATE_FILE)
    await writeFile(state, (await readFile(state, 'utf8')).slice(0, 100))
    const d = devnet(['--dir', dir])
    assert.equal(await d.exit(REFUSAL_TIMEOUT_MS), 1, d.output)
    assert.match(d.stderr, /the chain state \S+\/anvil-state\.json is damaged \(.+\): pass --force to delete the devnet in \S+ and start over/)
    assert.doesNotMatch(d.stdout, /starting anvil/)
  })

  it('--force starts over on a new chain', async () => {
    const d = devnet([...DEVNET_ARGS, '--dir', dir, '--force'])
    await d.line(/starting bootstrap node\n/)
    assert.doesNotMatch(d.stdout, /resuming/)
    const chain = await ChainClient.connect(await readDeployment(join(dir, 'deployment.json')))
    const block = await chain.publicClient.getBlockNumber()
    assert.ok(block < first.block, `the new chain is at block ${block}, the first devnet's was at ${first.block} when its task was settled`)
    assert.equal(await chain.isCertified(hexToBytes(first.task)), false, 'the old chain\'s task is on the new chain')
    d.proc.kill('SIGINT')
    assert.equal(await d.exit(), 130, d.output)
  })
})
