/**
 * The README's "Try the HTTP API" block works as written: against `poi devnet --keep` (what
 * `npm start -- --keep` runs), the export line the devnet prints followed by the block taken
 * unchanged from README.md, run by `bash -euo pipefail` with nothing else set, checks an
 * operator's health, greps its poi_tasks series and runs a task through the devnet's gateway to
 * a certified result. Ctrl-C then stops the devnet with 0 and nothing it started still runs.
 */
import { strict as assert } from 'node:assert'
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { CLI } from './helpers/cli.js'
import { descendants, running } from './helpers/processes.js'

/** A 3-operator devnet without npm models is up, its task settled and its gateway started in 20-30 s on a quiet machine; several times that under load. */
const DEVNET_UP_TIMEOUT_MS = 150_000
/** The block waits at most 20 s for the certificate (`?wait=20000`); the rest is curl and bash starting. */
const BLOCK_TIMEOUT_MS = 40_000
/** The devnet stops its nodes, gateway (SIGTERM, SIGKILL after 10 s) and anvil before it exits. */
const EXIT_TIMEOUT_MS = 30_000
/** After the devnet exited its children are gone already; this only absorbs the kernel's bookkeeping. */
const GONE_TIMEOUT_MS = 5_000
const POLL_MS = 100
/** The repository: dist/test/../.. */
const README = join(dirname(CLI), '../../../README.md')
const BLOCK_START = '<!-- CURL_EXAMPLE'
const BLOCK_END = '<!-- /CURL_EXAMPLE -->'
/** The line the devnet prints for a person to paste. */
const EXPORT_LINE = /^export POI_NODE=\S+ POI_OPERATOR=\S+ POI_GATEWAY=\S+ POI_MODEL=\S+$/m

/** The shell code of the README's CURL_EXAMPLE block: what is inside its ```sh fence, unchanged. */
function readmeBlock (readme: string): string {
  const start = readme.indexOf(BLOCK_START)
  const end = readme.indexOf(BLOCK_END)
  assert.ok(start >= 0 && end > start, `README.md has no ${BLOCK_START} … ${BLOCK_END} block`)
  const fenced = /```sh\n([\s\S]*?)\n```/.exec(readme.slice(start, end))
  assert.ok(fenced !== null, 'the CURL_EXAMPLE block has no ```sh fence')
  return fenced[1]
}

describe('the README\'s curl examples against `poi devnet --keep`', function () {
  this.timeout(DEVNET_UP_TIMEOUT_MS + BLOCK_TIMEOUT_MS + EXIT_TIMEOUT_MS)
  let tmp: string
  let devnet: ChildProcess | undefined
  let stdout = ''
  let stderr = ''
  let exited: Promise<number | null>
  let exportLine: string
  let started: Array<{ pid: number, cmd: string }> = []
  const output = (): string => `devnet stdout:\n${stdout}\ndevnet stderr:\n${stderr}`

  before(async function () {
    if (spawnSync('curl', ['--version']).error != null) {
      console.log('    skipped: curl is not installed (apt-get install curl)')
      this.skip()
    }
    // The devnet's kept directory goes to this test's own temp dir, deleted after.
    tmp = await mkdtemp(join(tmpdir(), 'poi-readme-curl-'))
    const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp }
    delete env.DEBUG
    const proc = spawn(process.execPath, [CLI, 'devnet', '--keep', '--npm-models', 'none', '--operators', '3'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    devnet = proc
    proc.stdout!.on('data', (d: Buffer) => { stdout += d.toString() })
    proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
    exited = new Promise(resolve => proc.once('close', code => resolve(code)))
    const deadline = Date.now() + DEVNET_UP_TIMEOUT_MS
    let m: RegExpExecArray | null
    while ((m = EXPORT_LINE.exec(stdout)) === null) {
      if (proc.exitCode != null || proc.signalCode != null) assert.fail(`the devnet exited before printing its export line\n${output()}`)
      if (Date.now() > deadline) assert.fail(`the devnet printed no export line within ${DEVNET_UP_TIMEOUT_MS} ms\n${output()}`)
      await new Promise(resolve => setTimeout(resolve, POLL_MS))
    }
    exportLine = m[0]
    started = descendants(proc.pid!)
  })

  after(async () => {
    if (devnet != null && devnet.exitCode == null && devnet.signalCode == null) {
      devnet.kill('SIGKILL')
      await exited
    }
    for (const p of started) if (running(p.pid)) process.kill(p.pid, 'SIGKILL')
    if (tmp !== undefined) await rm(tmp, { recursive: true, force: true })
  })

  it('the block, pasted after the export line, shows health, the poi_tasks series and a certified task through the gateway', async () => {
    assert.ok(started.some(p => / gateway --keystore /.test(p.cmd)), `the devnet runs no poi gateway: ${JSON.stringify(started.map(p => p.cmd.slice(0, 120)))}`)
    const block = readmeBlock(await readFile(README, 'utf8'))
    // What a person's second terminal has: a PATH (for curl, sed, grep) and the pasted line.
    const { stdout: out } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', `${exportLine}\n${block}`], { env: { PATH: process.env.PATH }, timeout: BLOCK_TIMEOUT_MS })
      .catch((err: Error & { stdout?: string, stderr?: string }) => assert.fail(`the README block failed: ${err.message}\nstdout:\n${err.stdout}\nstderr:\n${err.stderr}\n${output()}`))
    const lines = out.split('\n')

    const health = JSON.parse(lines[0]) as { ok: boolean, checks: Array<{ name: string, ok: boolean }> }
    assert.equal(health.ok, true, lines[0])
    assert.ok(health.checks.some(c => c.name === 'tasks-mesh' && c.ok), lines[0])

    // The devnet's own task went through operator-0: it saw, attested and certified it.
    for (const series of ['seen', 'attested', 'certified']) {
      assert.match(out, new RegExp(`^poi_tasks_${series}_total\\{[^}]*role="operator"[^}]*\\} [1-9]\\d*$`, 'm'), out)
    }
    assert.ok(lines.filter(l => l !== '' && !l.startsWith('{') && !l.startsWith('open ')).every(l => l.startsWith('poi_tasks')), out)

    // The POST's answer, then the certified one: both name the task.
    const answers = lines.filter(l => l.startsWith('{"taskId"'))
    assert.equal(answers.length, 2, out)
    const task = /^\{"taskId":"(0x[0-9a-f]{64})"/.exec(answers[0])
    assert.ok(task !== null, `the gateway answered no task id:\n${out}`)
    const answerLine = answers[1]
    const answer = JSON.parse(answerLine) as { taskId: string, status: string, certificate?: { aggregateSig?: string }, signers?: number[], outputTensors?: Array<{ name: string, shape: number[], values: unknown[] }> }
    assert.equal(answer.taskId, task[1])
    assert.equal(answer.status, 'certified', answerLine)
    assert.match(answer.certificate?.aggregateSig ?? '', /^0x[0-9a-f]+$/, answerLine)
    assert.ok((answer.signers ?? []).length >= 2, answerLine)
    assert.equal(answer.outputTensors?.[0]?.name, 'probs', answerLine)
    assert.equal(answer.outputTensors?.[0]?.values.length, 10, answerLine)

    // The page the block's last line names is there.
    const node = /^open (http:\/\/127\.0\.0\.1:\d+)\/ in a browser/m.exec(out)
    assert.ok(node !== null, out)
    const page = await fetch(`${node[1]}/`)
    assert.equal(page.status, 200)
    assert.match(await page.text(), /<title>poi node<\/title>/)
  })

  it('Ctrl-C stops the devnet with 0 and leaves none of its processes running', async () => {
    assert.ok(started.length > 0)
    devnet!.kill('SIGINT')
    let timer: NodeJS.Timeout | undefined
    const code = await Promise.race([exited, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`the devnet did not exit within ${EXIT_TIMEOUT_MS} ms\n${output()}`)), EXIT_TIMEOUT_MS) })])
      .finally(() => clearTimeout(timer))
    assert.equal(code, 0, output())
    const deadline = Date.now() + GONE_TIMEOUT_MS
    let alive = started.filter(p => running(p.pid))
    while (alive.length > 0 && Date.now() < deadline) {
      await new Promise(resolve => setTimeout(resolve, POLL_MS))
      alive = started.filter(p => running(p.pid))
    }
    assert.deepEqual(alive.map(p => p.cmd.slice(0, 160)), [], 'processes of the devnet outlived it')
  })
})
