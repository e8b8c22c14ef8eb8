import { strict as assert } from 'node:assert'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadGenesis } from '../consensus/index.js'
import { loadModelDir, modelIdToString, SHIPPED_MODEL_DIR } from '../node/inference/index.js'
import { KEY_FILES, generateKeystore, loadKeystore, publicKeysOf, type PublicKeys } from '../node/keys.js'

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../node/cli/main.js')
/** Every command here fails or finishes before it touches the network; generous for a loaded machine. */
const CLI_TIMEOUT_MS = 20_000
/** A Node stack frame line, e.g. "    at runRole (file:///…/cli.js:112:32)". */
const STACK_FRAME = /^\s+at .+:\d+:\d+\)?$/m

interface CliResult { code: number | null, stdout: string, stderr: string }

/**
 * Runs `poi <args>` with this test's Node (24), HOME pointed at a temp dir so the
 * ~/.poi defaults never touch the real home, and DEBUG unset so logs stay quiet.
 */
async function poi (home: string, ...args: string[]): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home }
  delete env.DEBUG
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  return await new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`poi ${args.join(' ')} did not exit within ${CLI_TIMEOUT_MS} ms\nstdout: ${stdout}\nstderr: ${stderr}`))
    }, CLI_TIMEOUT_MS)
    child.once('error', (err) => { clearTimeout(timer); reject(err) })
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

/** Reads the three public values from `keys generate` / `keys show` output. */
function parsePublicKeys (out: string): PublicKeys {
  const field = (label: string): string => {
    const m = out.match(new RegExp(`${label}\\s+(\\S+)`))
    assert.ok(m != null, `no "${label}" in output:\n${out}`)
    return m[1]
  }
  return { peerId: field('peer id'), blsPublicKey: field('BLS public key') as `0x${string}`, address: field('address') as `0x${string}` }
}

/** A failure a user can act on: non-zero exit, the expected words, no stack trace. */
function assertCleanFailure (r: CliResult, ...patterns: Array<RegExp | string>): void {
  assert.notEqual(r.code, 0, `expected a non-zero exit; stdout: ${r.stdout}`)
  for (const p of patterns) {
    if (typeof p === 'string') assert.ok(r.stderr.includes(p), `stderr should contain ${p}:\n${r.stderr}`)
    else assert.match(r.stderr, p)
  }
  assert.doesNotMatch(r.stderr, STACK_FRAME, `stderr has a stack trace:\n${r.stderr}`)
}

async function secretsOf (dir: string): Promise<string[]> {
  const secrets: string[] = []
  for (const file of Object.values(KEY_FILES)) {
    secrets.push((await readFile(join(dir, file), 'utf8')).trim().replace(/^0x/, '').toLowerCase())
  }
  return secrets
}

describe('cli: poi commands as a user runs them', function () {
  this.timeout(60_000)
  let root: string
  /** Operators a, b, c are in the genesis; x is not. */
  let operators: Record<'a' | 'b' | 'c' | 'x', string>
  let genesisPath: string
  let genesisRun: CliResult

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'poi-cli-'))
    operators = { a: join(root, 'op-a'), b: join(root, 'op-b'), c: join(root, 'op-c'), x: join(root, 'op-x') }
    await Promise.all(Object.values(operators).map(async dir => await generateKeystore(dir)))
    genesisPath = join(root, 'genesis.json')
    genesisRun = await poi(root, 'genesis', 'create', '--out', genesisPath, '--keystore', operators.a, '--keystore', operators.b, '--keystore', operators.c)
  })
  after(async () => { await rm(root, { recursive: true, force: true }) })

  it('keys generate then keys show print the same peer id, BLS key and address, and no secret', async () => {
    const dir = join(root, 'ks-roundtrip')
    const gen = await poi(root, 'keys', 'generate', '--dir', dir)
    assert.equal(gen.code, 0, gen.stderr)
    const show = await poi(root, 'keys', 'show', '--dir', dir)
    assert.equal(show.code, 0, show.stderr)
    const generated = parsePublicKeys(gen.stdout)
    assert.deepEqual(parsePublicKeys(show.stdout), generated)
    assert.deepEqual(publicKeysOf(await loadKeystore(dir)), generated)
    const printed = (gen.stdout + gen.stderr + show.stdout + show.stderr).toLowerCase()
    for (const secret of await secretsOf(dir)) {
      assert.ok(!printed.includes(secret), 'a secret key was printed')
      assert.ok(!printed.includes(secret.slice(8, 40)), 'part of a secret key was printed')
    }
  })

  it('keys generate refuses to overwrite an existing keystore without --force', async () => {
    const r = await poi(root, 'keys', 'generate', '--dir', operators.x)
    assertCleanFailure(r, join(operators.x, KEY_FILES.peer), /already exists/, '--force')
  })

  it('keys show on a missing directory names the missing file, without a stack trace', async () => {
    const dir = join(root, 'no-such-keystore')
    const r = await poi(root, 'keys', 'show', '--dir', dir)
    assertCleanFailure(r, join(dir, KEY_FILES.peer), /not found/, 'poi keys generate')
  })

  it('an unknown command exits non-zero with a usage hint', async () => {
    const r = await poi(root, 'frobnicate')
    assertCleanFailure(r, /unknown command "frobnicate"/, 'poi help')
  })

  it('an unknown flag exits non-zero with a usage hint', async () => {
    const [keys, node] = await Promise.all([
      poi(root, 'keys', 'show', '--dri', operators.a),
      poi(root, 'operator', '--keystroe', operators.a)
    ])
    assertCleanFailure(keys, '--dri', 'poi help')
    assertCleanFailure(node, '--keystroe', 'poi help')
  })

  it('help prints the usage and exits 0', async () => {
    const r = await poi(root, 'help')
    assert.equal(r.code, 0)
    assert.match(r.stdout, /Usage:/)
    assert.match(r.stdout, /poi keys generate --dir/)
  })

  it('genesis create writes a genesis that loadGenesis accepts, with the operators in order', async () => {
    assert.equal(genesisRun.code, 0, genesisRun.stderr)
    assert.match(genesisRun.stdout, /genesis with 3 operators/)
    const set = await loadGenesis(genesisPath)
    assert.equal(set.operators.length, 3)
    const expected = await Promise.all([operators.a, operators.b, operators.c].map(async d => publicKeysOf(await loadKeystore(d))))
    set.operators.forEach((op, i) => {
      assert.equal(op.index, i)
      assert.equal(`0x${Buffer.from(op.blsPublicKey).toString('hex')}`, expected[i].blsPublicKey)
      assert.equal(op.address, expected[i].address)
      assert.equal(op.peerId, expected[i].peerId)
      assert.ok(op.stake > 0n)
    })
    assert.equal(set.totalStake, set.operators.reduce((s, o) => s + o.stake, 0n))
  })

  it('genesis create with a missing keystore fails naming it', async () => {
    const missing = join(root, 'no-such-operator')
    const r = await poi(root, 'genesis', 'create', '--out', join(root, 'unused.json'), '--keystore', operators.a, '--keystore', missing)
    assertCleanFailure(r, join(missing, KEY_FILES.peer))
  })

  it('operator with a BLS key not in the genesis exits non-zero and says how to fix it', async () => {
    const r = await poi(root, 'operator', '--keystore', operators.x, '--genesis', genesisPath,
      '--data-dir', join(root, 'data-x'), '--listen', '/ip4/127.0.0.1/tcp/0')
    assert.notEqual(r.code, 0, r.stdout)
    const x = publicKeysOf(await loadKeystore(operators.x))
    assert.ok(r.stderr.includes(x.blsPublicKey.slice(2)), `stderr should name the BLS key:\n${r.stderr}`)
    assert.match(r.stderr, /is not in the operator set/)
    assert.ok(r.stderr.includes(genesisPath), `stderr should name the genesis file:\n${r.stderr}`)
    assert.doesNotMatch(r.stderr, STACK_FRAME, `stderr has a stack trace:\n${r.stderr}`)
  })

  it('request without --bootstrap exits non-zero and says what is missing', async () => {
    const r = await poi(root, 'request', '--genesis', genesisPath, '--input', '{"x":{"data":[1]}}')
    assertCleanFailure(r, /needs --bootstrap <multiaddr>/)
  })

  it('a bad --grace-ms or bootstrap address is reported, not thrown', async () => {
    const [grace, boot] = await Promise.all([
      poi(root, 'bootstrap', '--grace-ms=-5', '--data-dir', join(root, 'data-g')),
      poi(root, 'request', '--bootstrap', '/ip4/127.0.0.1/tcp/4001', '--genesis', genesisPath, '--input', '{}')
    ])
    assertCleanFailure(grace, '--grace-ms', /non-negative/)
    assertCleanFailure(boot, /\/p2p\/<peer id>/)
  })

  it('models lists the shipped model id', async () => {
    const shipped = modelIdToString((await loadModelDir(SHIPPED_MODEL_DIR)).modelId)
    const r = await poi(root, 'models')
    assert.equal(r.code, 0, r.stderr)
    assert.ok(r.stdout.includes(shipped), `model ${shipped} not listed:\n${r.stdout}`)
    assert.ok(r.stdout.includes('mlp-classifier'))
  })
})
