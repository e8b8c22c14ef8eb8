/**
 * `poi devnet` leaves nothing behind: whatever stops it (Ctrl-C during start-up, `kill` once it
 * is up, a closed terminal under --keep), no anvil and no node it started is still running
 * afterwards, and its temporary directory (private keys) is gone unless --dir or --keep kept
 * it. A kept --dir devnet has its nodes' logs, and a second one in the same --dir that does not
 * resume it (test/devnet-resume.test.ts) starts over with --force only. The devnet's children are found in /proc (Linux), as its descendants.
 */
import { strict as assert } from 'node:assert'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { KEY_FILES } from '../node/keys.js'
import { CLI } from './helpers/cli.js'
import { descendants, running } from './helpers/processes.js'

/** A devnet with no npm model is up in 5-10 s on a quiet machine; several times that under load. */
const DEVNET_UP_TIMEOUT_MS = 120_000
/** The devnet stops its nodes (SIGTERM, SIGKILL after 10 s) and anvil before it exits. */
const EXIT_TIMEOUT_MS = 30_000
/** After the devnet exited its children are gone already; this only absorbs the kernel's bookkeeping. */
const GONE_TIMEOUT_MS = 5_000
const POLL_MS = 100
/** The repository (package.json's `npm start`): dist/test/../.. */
const REPO = join(dirname(CLI), '../../..')
/** The smallest devnet (fewest processes to start on a busy machine): 3 operators, so 5 nodes with the bootstrap node and the aggregator. */
const OPERATORS = 3
const NODES = OPERATORS + 2

/** A `poi devnet` process, its output so far, and waits on both. */
class Devnet {
  readonly proc: ChildProcess
  stdout = ''
  stderr = ''
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>

  /** `viaNpm`: as `npm start -- <args>` from the repository, with npm's own CLI (npm_execpath) when this test runs under npm. */
  constructor (args: string[], env: NodeJS.ProcessEnv = {}, viaNpm = false) {
    const e: NodeJS.ProcessEnv = { ...process.env, ...env }
    delete e.DEBUG
    const devnetArgs = ['--npm-models', 'none', '--operators', String(OPERATORS), ...args]
    this.proc = viaNpm
      ? (process.env.npm_execpath != null
          ? spawn(process.execPath, [process.env.npm_execpath, 'start', '--', ...devnetArgs], { env: e, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] })
          : spawn('npm', ['start', '--', ...devnetArgs], { env: e, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] }))
      : spawn(process.execPath, [CLI, 'devnet', ...devnetArgs], { env: e, stdio: ['ignore', 'pipe', 'pipe'] })
    this.proc.stdout!.on('data', (d: Buffer) => { this.stdout += d.toString() })
    this.proc.stderr!.on('data', (d: Buffer) => { this.stderr += d.toString() })
    this.exited = new Promise(resolve => this.proc.once('close', (code, signal) => resolve({ code, signal })))
  }

  get output (): string { return `stdout:\n${this.stdout}\nstderr:\n${this.stderr}` }

  async waitForLine (re: RegExp, timeoutMs = DEVNET_UP_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!re.test(this.stdout)) {
      if (this.proc.exitCode != null || this.proc.signalCode != null) assert.fail(`the devnet exited before printing ${re}\n${this.output}`)
      if (Date.now() > deadline) assert.fail(`the devnet printed no ${re} within ${timeoutMs} ms\n${this.output}`)
      await new Promise(resolve => setTimeout(resolve, POLL_MS))
    }
  }

  /** Waits for the exit; on a timeout kills it and `children` (those of an old devnet outlive it) and fails. */
  async exit (children: Array<{ pid: number }> = []): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { this.proc.kill('SIGKILL'); for (const c of children) if (running(c.pid)) process.kill(c.pid, 'SIGKILL'); reject(new Error(`the devnet did not exit within ${EXIT_TIMEOUT_MS} ms\n${this.output}`)) }, EXIT_TIMEOUT_MS)
    })
    try {
      return await Promise.race([this.exited, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** The temporary or --dir directory it named in its first line. */
  get root (): string {
    const m = /generating keys for .* in (\S+)\n/.exec(this.stdout)
    assert.ok(m !== null, this.output)
    return m[1]
  }
}

/** Waits until none of `pids` runs; fails naming those still running. */
async function assertAllGone (pids: Array<{ pid: number, cmd: string }>): Promise<void> {
  const deadline = Date.now() + GONE_TIMEOUT_MS
  let alive = pids.filter(p => running(p.pid))
  while (alive.length > 0 && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, POLL_MS))
    alive = pids.filter(p => running(p.pid))
  }
  for (const p of alive) process.kill(p.pid, 'SIGKILL') // leave nothing behind ourselves
  assert.deepEqual(alive.map(p => p.cmd.slice(0, 160)), [], 'processes of the devnet outlived it')
}

const anvils = (ps: Array<{ cmd: string }>): number => ps.filter(p => /\/anvil /.test(p.cmd)).length
const nodes = (ps: Array<{ cmd: string }>): number => ps.filter(p => / (bootstrap|operator|aggregator) --keystore /.test(p.cmd)).length
const exists = async (path: string): Promise<boolean> => await stat(path).then(() => true, () => false)

describe('poi devnet leaves nothing behind', function () {
  this.timeout(DEVNET_UP_TIMEOUT_MS + 2 * EXIT_TIMEOUT_MS)
  let tmp: string
  /** The devnets' system temp dir: the test's own, so their poi-devnet-* directories can be counted. */
  let sysTmp: string

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'poi-devnet-cleanup-'))
    sysTmp = join(tmp, 'tmp')
    await mkdir(sysTmp)
  })
  after(async () => { await rm(tmp, { recursive: true, force: true }) })

  // One signal per test keeps the file short: SIGTERM here, SIGINT through npm and under --force,
  // SIGHUP under --keep once every node is up; the devnet handles all three the same way.
  it('SIGTERM during start-up stops anvil and every node started so far, and deletes the temporary key directory', async () => {
    const devnet = new Devnet([], { TMPDIR: sysTmp })
    await devnet.waitForLine(/starting bootstrap node\n/)
    const ps = descendants(devnet.proc.pid!)
    assert.equal(anvils(ps), 1, JSON.stringify(ps))
    assert.ok(await exists(join(devnet.root, 'bootstrap', 'keys')))
    devnet.proc.kill('SIGTERM')
    const { code, signal } = await devnet.exit(ps)
    assert.deepEqual({ code, signal }, { code: 143, signal: null }, devnet.output)
    await assertAllGone(ps)
    assert.deepEqual((await readdir(sysTmp)).filter(f => f.startsWith('poi-devnet-')), [], 'the temporary key directory is left')
  })

  it('SIGINT to npm only (`npm start`, not its process group) reaches the devnet: nothing is left', async () => {
    const npm = new Devnet([], { TMPDIR: sysTmp }, true)
    await npm.waitForLine(/starting bootstrap node\n/)
    const ps = descendants(npm.proc.pid!)
    assert.equal(anvils(ps), 1, JSON.stringify(ps))
    npm.proc.kill('SIGINT')
    await npm.exit(ps)
    await assertAllGone(ps)
    assert.deepEqual((await readdir(sysTmp)).filter(f => f.startsWith('poi-devnet-')), [], 'the temporary key directory is left')
  })

  describe('a kept --dir devnet', () => {
    let dir: string
    const bootstrapKey = async (): Promise<string> => await readFile(join(dir, 'bootstrap', 'keys', KEY_FILES.eth), 'utf8')

    before(() => { dir = join(tmp, 'kept') })

    it('SIGHUP under --keep stops everything; every node\'s log holds what it printed', async () => {
      const devnet = new Devnet(['--keep', '--dir', dir])
      await devnet.waitForLine(/network left running/)
      const ps = descendants(devnet.proc.pid!)
      assert.equal(anvils(ps), 1, JSON.stringify(ps))
      assert.equal(nodes(ps), NODES, JSON.stringify(ps))
      devnet.proc.kill('SIGHUP')
      const { code, signal } = await devnet.exit(ps)
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, devnet.output)
      await assertAllGone(ps)
      for (const name of ['bootstrap', 'aggregator', ...Array.from({ length: OPERATORS }, (_, i) => `operator-${i}`)]) {
        const log = await readFile(join(dir, `${name}.log`), 'utf8')
        assert.match(log, /"event":"ready"/, `${name}.log: ${JSON.stringify(log.slice(0, 200))}`)
      }
      assert.match(await readFile(join(dir, 'operator-0.log'), 'utf8'), /"event":"attested"/)
    })

    // Resuming it is test/devnet-resume.test.ts; here, that a refused resume touches nothing.
    it('a second devnet in that --dir with other options refuses without --force and touches nothing', async () => {
      const key = await bootstrapKey()
      const devnet = new Devnet(['--keep', '--dir', dir, '--operators', String(OPERATORS + 1)])
      const { code } = await devnet.exit()
      assert.equal(code, 1, devnet.output)
      assert.match(devnet.stderr, /differs from the devnet's 3 operators: a resumed devnet keeps what it was made with; drop the option, or pass --force/)
      assert.doesNotMatch(devnet.stdout, /starting anvil/)
      assert.equal(await bootstrapKey(), key)
    })

    it('--force starts over with new keys, and a Ctrl-C then keeps the --dir but no process', async () => {
      const key = await bootstrapKey()
      const devnet = new Devnet(['--dir', dir, '--force'])
      await devnet.waitForLine(/starting bootstrap node\n/)
      assert.notEqual(await bootstrapKey(), key, 'the old devnet\'s keys are still there')
      const ps = descendants(devnet.proc.pid!)
      assert.equal(anvils(ps), 1, JSON.stringify(ps))
      devnet.proc.kill('SIGINT')
      const { code } = await devnet.exit(ps)
      assert.equal(code, 130, devnet.output)
      await assertAllGone(ps)
      assert.ok(await exists(join(dir, 'deployment.json')), 'the --dir devnet\'s directory was deleted')
    })

    it('--force refuses a directory no devnet made', async () => {
      const devnet = new Devnet(['--dir', join(tmp, 'tmp', '..'), '--force'])
      const { code } = await devnet.exit()
      assert.equal(code, 1, devnet.output)
      assert.match(devnet.stderr, /holds no devnet \(no bootstrap\/keys\): --force deletes only a devnet's directory/)
      assert.ok(await exists(join(dir, 'deployment.json')))
    })
  })
})
