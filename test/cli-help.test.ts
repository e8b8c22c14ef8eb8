/**
 * The command line's conventions: every command and subcommand (enumerated from the program
 * definition, so a new one cannot be left out) answers --help with its options and an example
 * and exits 0; --version; refusals of the parser exit 2 with the command whose help to read;
 * the `poi` launcher works from any directory, through a symlink as `npm link` makes, with
 * relative paths resolved where they were typed, and passes the exit code through.
 */
import { strict as assert } from 'node:assert'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { EXIT_CODES, EXIT_FAILED, EXIT_OK, EXIT_USAGE } from '../node/cli/exit-codes.js'
import { allCommands, createProgram, runCommandLine } from '../node/cli/program.js'
import { CommandLineError } from '../node/cli/usage-error.js'
import { KEY_FILES } from '../node/keys.js'
import { DEFAULT_BATCH_MAX_LEAVES, DEFAULT_BATCH_MAX_WAIT_MS } from '../node/roles/index.js'
import { installedOnnxruntimeVersion } from '../node/inference/index.js'
import { CLI, runPoi, runProcess, type CliResult } from './helpers/cli.js'

/** The repository: dist/node/cli/main.js → ../../.. */
const REPO = join(dirname(CLI), '../../..')
const LAUNCHER = join(REPO, 'node/bin/poi')
/** Start-up of the CLI (no network) on a loaded machine. */
const CLI_TIMEOUT_MS = 20_000
/** npm itself starts slowly (it reads its config and the package) before it runs the script. */
const NPM_TIMEOUT_MS = 40_000
const STACK_FRAME = /^\s+at .+:\d+:\d+\)?$/m

/** Runs `argv` in this process as main.ts does, capturing what it writes: the exit code, stdout and stderr, or the error it throws. */
async function inProcess (argv: string[]): Promise<{ code?: number, error?: unknown, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const write = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) }
  process.stdout.write = ((chunk: string | Uint8Array) => { stdout += chunk.toString(); return true }) as typeof process.stdout.write
  process.stderr.write = ((chunk: string | Uint8Array) => { stderr += chunk.toString(); return true }) as typeof process.stderr.write
  try {
    return { code: await runCommandLine(argv), stdout, stderr }
  } catch (error) {
    return { error, stdout, stderr }
  } finally {
    process.stdout.write = write.out
    process.stderr.write = write.err
  }
}

function assertRefused (r: CliResult, command: string, message: RegExp): void {
  assert.equal(r.code, EXIT_USAGE, `exit code (stderr: ${r.stderr})`)
  assert.match(r.stderr, message)
  assert.ok(r.stderr.includes(command === '' ? '`poi help`' : `\`poi ${command} --help\``), `the hint names the help to read:\n${r.stderr}`)
  assert.doesNotMatch(r.stderr, STACK_FRAME)
}

describe('cli: help, version, refusals and exit codes', function () {
  let home: string
  before(async () => { home = await mkdtemp(join(tmpdir(), 'poi-cli-help-')) })
  after(async () => { await rm(home, { recursive: true, force: true }) })

  const commands = allCommands(createProgram())

  it('the program declares every command the README documents, with subcommands', () => {
    const paths = commands.map(c => c.path)
    for (const expected of ['keys generate', 'keys show', 'genesis create', 'operator', 'operator register', 'operator status', 'operator exit', 'operator withdraw',
      'chain deploy', 'epoch advance', 'aggregator', 'bootstrap', 'request', 'result', 'deposit', 'withdraw', 'rewards', 'network', 'models',
      'model publish', 'model ls', 'model show', 'model zk-attach', 'devnet']) {
      assert.ok(paths.includes(expected), `poi ${expected} is declared (declared: ${paths.join(', ')})`)
    }
  })

  it('every command and subcommand answers --help with exit 0, its usage, its options and an example', async () => {
    for (const { path, command } of commands) {
      const r = await inProcess([...path.split(' '), '--help'])
      assert.equal(r.error, undefined, `poi ${path} --help threw ${String(r.error)}`)
      assert.equal(r.code, EXIT_OK, `poi ${path} --help`)
      assert.ok(r.stdout.startsWith(`Usage: poi ${path} `), `poi ${path} --help prints its usage on stdout:\n${r.stdout}`)
      assert.match(r.stdout, /-h, --help/, `poi ${path} --help lists its options`)
      for (const option of command.options) assert.ok(r.stdout.includes(option.flags), `poi ${path} --help lists ${option.flags}`)
      // A command with subcommands lists them; a command that runs something shows how.
      if (command.commands.length > 0) for (const sub of command.commands) assert.ok(r.stdout.includes(sub.name()), `poi ${path} --help lists ${sub.name()}`)
      else assert.match(r.stdout, new RegExp(`Examples?:\\n  \\$ (poi ${path}|npm start)`), `poi ${path} --help shows an example:\n${r.stdout}`)
      assert.equal(r.stderr, '')
    }
  })

  it('aggregator --help states the batch bounds the Batcher defaults to (bench:batch-bounds measured them)', async () => {
    const r = await inProcess(['aggregator', '--help'])
    assert.equal(r.code, EXIT_OK, r.stderr)
    const help = r.stdout.replace(/\s+/g, ' ')
    assert.ok(help.includes(`--batch-max-leaves <n> aggregators: a batch of tab tasks closes once it holds this many (default: ${DEFAULT_BATCH_MAX_LEAVES})`), help)
    assert.ok(help.includes(`--batch-max-wait-ms <ms> aggregators: a batch closes this long after its first task was certified (default: ${DEFAULT_BATCH_MAX_WAIT_MS})`), help)
  })

  it('-h and `poi help <command>` are --help too, through the real binary', async () => {
    const [short, help, nested] = await Promise.all([
      runPoi(home, CLI_TIMEOUT_MS, 'operator', 'register', '-h'),
      runPoi(home, CLI_TIMEOUT_MS, 'help', 'request'),
      runPoi(home, CLI_TIMEOUT_MS, 'model', 'help', 'publish')
    ])
    for (const [r, path] of [[short, 'operator register'], [help, 'request'], [nested, 'model publish']] as const) {
      assert.equal(r.code, EXIT_OK, `poi ${path}: ${r.stderr}`)
      assert.ok(r.stdout.startsWith(`Usage: poi ${path} `), r.stdout)
      assert.match(r.stdout, /Example/)
    }
    assert.match(short.stdout, /--stake <eth>/)
    assert.match(help.stdout, /--input <json\|@file>/)
  })

  it('poi --help lists every command and the exit codes; poi alone prints it on stderr and exits 2', async () => {
    const [help, bare] = await Promise.all([runPoi(home, CLI_TIMEOUT_MS, '--help'), runPoi(home, CLI_TIMEOUT_MS)])
    assert.equal(help.code, EXIT_OK)
    for (const c of createProgram().commands) assert.ok(help.stdout.includes(`  ${c.name()}`), `poi --help lists ${c.name()}`)
    for (const e of EXIT_CODES) assert.ok(help.stdout.includes(`  ${e.code.padEnd(7)} ${e.meaning}`), `poi --help lists exit code ${e.code}`)
    assert.equal(bare.code, EXIT_USAGE)
    assert.equal(bare.stdout, '')
    assert.match(bare.stderr, /^Usage: poi /)
  })

  it('a reader that leaves early (`poi --help | head -1`) ends poi quietly with exit 0, not an EPIPE stack', async () => {
    const child = spawn(process.execPath, [CLI, '--help'], { env: { ...process.env, HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.destroy()
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const [code] = await once(child, 'close') as [number | null]
    assert.equal(code, EXIT_OK, stderr)
    assert.equal(stderr, '')
  })

  it('the README lists the exit codes the CLI has', async () => {
    const readme = await readFile(join(REPO, 'README.md'), 'utf8')
    for (const e of EXIT_CODES) assert.ok(readme.includes(`| ${e.code} | ${e.meaning} |`), `README lists exit code ${e.code}: | ${e.code} | ${e.meaning} |`)
  })

  it('--version and -V print poi\'s version, the installed onnxruntime-node and the Node running it', async () => {
    const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }
    const [long, short] = await Promise.all([runPoi(home, CLI_TIMEOUT_MS, '--version'), runPoi(home, CLI_TIMEOUT_MS, '-V')])
    assert.equal(long.code, EXIT_OK, long.stderr)
    assert.equal(long.stdout, `poi ${pkg.version}\nonnxruntime-node ${installedOnnxruntimeVersion()}\nnode ${process.versions.node}\n`)
    assert.equal(short.stdout, long.stdout)
  })

  it('mutually exclusive options are refused with exit 2 before anything runs, and say why', async () => {
    const [request, operator, status, json] = await Promise.all([
      runPoi(home, CLI_TIMEOUT_MS, 'request', '--chain', join(home, 'deployment.json'), '--genesis', join(home, 'genesis.json'), '--input', '{}'),
      runPoi(home, CLI_TIMEOUT_MS, 'operator', '--model-dir', home, '--no-model-dir', '--data-dir', join(home, 'data')),
      runPoi(home, CLI_TIMEOUT_MS, 'operator', 'status', '--chain', join(home, 'deployment.json'), '--keystore', home, '--address', `0x${'11'.repeat(20)}`),
      runPoi(home, CLI_TIMEOUT_MS, 'result', `0x${'ab'.repeat(32)}`, '--rpc', 'http://127.0.0.1:1', '--genesis', join(home, 'genesis.json'), '--json')
    ])
    assertRefused(request, 'request', /--chain and --genesis are mutually exclusive: --chain <deployment\.json> reads the operators from the chain/)
    assertRefused(operator, 'operator', /--model-dir and --no-model-dir are mutually exclusive/)
    assertRefused(status, 'operator status', /--keystore and --address are mutually exclusive/)
    assertRefused(json, 'result', /--rpc and --genesis are mutually exclusive/)
    // With --json the refusal is also the last stdout line.
    assert.deepEqual(JSON.parse(json.stdout.trim().split('\n').at(-1)!).code, 'ERR_USAGE')
    // The operator node never started: it would have made its data directory.
    await assert.rejects(stat(join(home, 'data')), { code: 'ENOENT' })
  })

  it('an unknown option, an unknown command, a missing argument or value exit 2 naming the help to read', async () => {
    const [option, command, argument, value, extra] = await Promise.all([
      runPoi(home, CLI_TIMEOUT_MS, 'keys', 'show', '--dri', home),
      runPoi(home, CLI_TIMEOUT_MS, 'frobnicate'),
      runPoi(home, CLI_TIMEOUT_MS, 'deposit', '--chain', join(home, 'deployment.json')),
      runPoi(home, CLI_TIMEOUT_MS, 'keys', 'generate', '--dir'),
      runPoi(home, CLI_TIMEOUT_MS, 'network', 'extra', '--chain', join(home, 'deployment.json'))
    ])
    assertRefused(option, 'keys show', /unknown option "--dri"/)
    assert.match(option.stderr, /Did you mean --dir\?/)
    assertRefused(command, '', /unknown command "frobnicate"/)
    assertRefused(argument, 'deposit', /missing required argument "amount"/)
    assertRefused(value, 'keys generate', /option "--dir <keystore>" argument missing/)
    assertRefused(extra, 'network', /too many arguments/)
  })

  it('a refusal in process is a CommandLineError with the refusing command', async () => {
    const r = await inProcess(['model', 'show'])
    assert.ok(r.error instanceof CommandLineError, String(r.error))
    assert.equal(r.error.code, 'ERR_USAGE')
    assert.equal(r.error.command, 'model show')
  })
})

describe('cli: the poi launcher (node/bin/poi)', function () {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'poi-launcher-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  /** The environment of a user's shell: its HOME, no DEBUG, and a PATH without this test's Node. */
  const userEnv = (): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: dir, PATH: '/usr/bin:/bin' }
    delete env.DEBUG
    delete env.INIT_CWD
    delete env.npm_lifecycle_event
    return env
  }

  it('is committed executable', async () => {
    assert.equal((await stat(LAUNCHER)).mode & 0o755, 0o755)
  })

  it('runs from a directory outside the repository through a symlink, with relative paths resolved there, and passes the exit code through', async () => {
    const bin = join(dir, 'bin')
    await mkdir(bin)
    await symlink(LAUNCHER, join(bin, 'poi'))
    const work = join(dir, 'work')
    await mkdir(work)
    const poi = async (...args: string[]): Promise<CliResult> => await runProcess(join(bin, 'poi'), args, { cwd: work, env: userEnv(), timeoutMs: CLI_TIMEOUT_MS })

    const generated = await poi('keys', 'generate', '--dir', './k')
    assert.equal(generated.code, EXIT_OK, generated.stderr)
    assert.ok((await stat(join(work, 'k', KEY_FILES.peer))).isFile(), 'the keystore is in the directory the user was in')
    assert.match(generated.stdout, new RegExp(`keystore written to ${join(work, 'k')}`))
    // The bundled Node 24 runs it, not the /usr/bin one on this PATH.
    assert.match((await poi('--version')).stdout, new RegExp(`^node ${process.versions.node.replace(/\./g, '\\.')}$`, 'm'))
    const [failed, refused] = await Promise.all([poi('keys', 'show', '--dir', './missing'), poi('frobnicate')])
    assert.equal(failed.code, EXIT_FAILED, failed.stderr)
    assert.ok(failed.stderr.includes(join(work, 'missing')), failed.stderr)
    assert.equal(refused.code, EXIT_USAGE, refused.stderr)
  })

  it('without the bundled Node, uses a node on the PATH only if it is >= 22, and without a build says to run npm ci', async () => {
    // A copy of the repository's layout with the launcher and nothing else.
    const repo = join(dir, 'bare-repo')
    await mkdir(join(repo, 'node/bin'), { recursive: true })
    await writeFile(join(repo, 'node/bin/poi'), await readFile(LAUNCHER), { mode: 0o755 })
    const oldNode = join(dir, 'old-node')
    const newNode = join(dir, 'new-node')
    await mkdir(oldNode)
    await mkdir(newNode)
    // What an old Node answers to the launcher's version question.
    await writeFile(join(oldNode, 'node'), '#!/bin/sh\nif [ "$1" = -p ]; then echo 20; else echo v20.0.0; fi\n', { mode: 0o755 })
    await symlink(process.execPath, join(newNode, 'node'))
    const run = async (path: string): Promise<CliResult> => await runProcess(join(repo, 'node/bin/poi'), ['--version'], { cwd: dir, env: { ...userEnv(), PATH: `${path}:/usr/bin:/bin` }, timeoutMs: CLI_TIMEOUT_MS })

    const [old, unbuilt] = await Promise.all([run(oldNode), run(newNode)])
    assert.equal(old.code, EXIT_FAILED)
    assert.match(old.stderr, /needs Node >= 22, but .*old-node\/node is v20\.0\.0: run npm ci in .*bare-repo/)
    assert.equal(unbuilt.code, EXIT_FAILED)
    assert.match(unbuilt.stderr, /bare-repo\/dist\/node\/cli\/main\.js is missing: run npm ci in .*bare-repo/)
  })

  it('`npm run poi` resolves relative paths against the directory npm was run from', async () => {
    const work = join(dir, 'npm-work')
    await mkdir(work)
    const env = { ...userEnv(), PATH: process.env.PATH }
    const r = await runProcess('npm', ['--prefix', REPO, 'run', '--silent', 'poi', '--', 'keys', 'generate', '--dir', './k'], { cwd: work, env, timeoutMs: NPM_TIMEOUT_MS })
    assert.equal(r.code, EXIT_OK, r.stderr)
    assert.ok((await stat(join(work, 'k', KEY_FILES.peer))).isFile(), `the keystore is in ${work}, not in the repository`)
  })
})
