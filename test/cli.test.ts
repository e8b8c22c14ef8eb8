import { strict as assert } from 'node:assert'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { createServer as createTcpServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { keccak256 } from 'viem'
import { loadGenesis, signProofOfPossession, verifyCertificate, writeGenesis, type OperatorSet } from '../consensus/index.js'
import { parseEvent, type EventOf } from '../node/cli/events.js'
import { ChildNode } from '../node/cli/launcher.js'
import { formatError } from '../node/cli/main.js'
import { ChainReadError, chainOperatorSets } from '../node/cli/operator-source.js'
import { explainLookupFailure } from '../node/cli/result-command.js'
import { decodeCanonicalOutput, loadModelDir, modelIdToString, SHIPPED_MODEL_DIR } from '../node/inference/index.js'
import { KEY_FILES, generateKeystore, loadKeystore, publicKeysOf, type PublicKeys } from '../node/keys.js'
import { ResultNotFoundError } from '../node/requester/index.js'
import { PoiError, uint256ToBytes, type QuorumCertificate } from '../protocols/wire/index.js'
import { runPoi, type CliResult } from './helpers/cli.js'
import { startTestNetwork, type TestNetwork } from './helpers/network.js'
import { sampleInput } from './helpers/shipped-model.js'

/** Most commands here fail or finish before they touch the network; generous for a loaded machine. */
const CLI_TIMEOUT_MS = 20_000
/**
 * `poi result` against a running node: start-up, up to 20 s waiting for gossip peers
 * (DEFAULT_CONNECT_TIMEOUT_MS) and 3 s asking them, with room for a loaded machine.
 */
const NETWORK_CLI_TIMEOUT_MS = 45_000
/** A Node stack frame line, e.g. "    at runRole (file:///…/cli.js:112:32)". */
const STACK_FRAME = /^\s+at .+:\d+:\d+\)?$/m
/** A bootstrap node prints its ready line within a few seconds; generous for a loaded machine. */
const READY_TIMEOUT_MS = 30_000
const UNKNOWN_TASK = `0x${'ab'.repeat(32)}`

/** Runs `poi <args>` with a temp HOME and DEBUG unset (helpers/cli.ts runPoi). */
async function poi (home: string, ...args: string[]): Promise<CliResult> {
  return await runPoi(home, CLI_TIMEOUT_MS, ...args)
}

async function poiWithin (timeoutMs: number, home: string, ...args: string[]): Promise<CliResult> {
  return await runPoi(home, timeoutMs, ...args)
}

/**
 * A JSON-RPC endpoint that knows its chain id and fails every other call, as a node whose
 * backend is down does: what the CLI reads from it must be reported as an RPC failure.
 */
async function brokenRpc (): Promise<{ url: string, server: Server }> {
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => { body += d.toString() })
    req.on('end', () => {
      const answer = (call: { id: number, method: string }): unknown => call.method === 'eth_chainId'
        ? { jsonrpc: '2.0', id: call.id, result: '0x7a69' }
        : { jsonrpc: '2.0', id: call.id, error: { code: -32603, message: 'backend unavailable (test)' } }
      const parsed = JSON.parse(body) as { id: number, method: string } | Array<{ id: number, method: string }>
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify(Array.isArray(parsed) ? parsed.map(answer) : answer(parsed)))
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

/** A deployment file for `rpcUrl` with made-up contract addresses. */
async function deploymentFile (dir: string, rpcUrl: string): Promise<string> {
  const path = join(dir, `deployment-${rpcUrl.replace(/\W/g, '')}.json`)
  await writeFile(path, JSON.stringify({ rpcUrl, chainId: 31337, registry: `0x${'11'.repeat(20)}`, taskManager: `0x${'22'.repeat(20)}`, slashing: `0x${'33'.repeat(20)}`, deployedAtBlock: '0' }))
  return path
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

/** The last stdout line of a `--json` run as an event; it must be `name`. */
function lastEvent<K extends EventOf<'error'>['event'] | 'result'> (r: CliResult, name: K): EventOf<K> {
  const lines = r.stdout.trim().split('\n')
  const e = parseEvent(lines[lines.length - 1])
  assert.equal(e.event, name, `expected a ${name} line last on stdout:\n${r.stdout}\nstderr: ${r.stderr}`)
  return e as EventOf<K>
}

/**
 * The certificate a `result` line describes, rebuilt from the line alone, as a script would
 * before checking it against the operator set of its epoch.
 */
function certificateOfLine (line: EventOf<'result'>): QuorumCertificate {
  const bytes = (hex: string): Uint8Array<ArrayBuffer> => Uint8Array.from(Buffer.from(hex.slice(2), 'hex'))
  assert.ok(line.signerBitmap !== null && line.aggregateSig !== null && line.certificateVersion !== null, 'a certified result carries its certificate')
  return {
    version: line.certificateVersion,
    taskId: bytes(line.taskId),
    resultHash: bytes(line.resultHash),
    outputRef: bytes(line.outputRef),
    epoch: BigInt(line.epoch),
    signerBitmap: bytes(line.signerBitmap),
    aggregateSig: bytes(line.aggregateSig),
    signedStake: uint256ToBytes(BigInt(line.signedStake)),
    totalStake: uint256ToBytes(BigInt(line.totalStake)),
    output: new Uint8Array()
  }
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
    // Genesis mode keeps the genesis advice; registering on a chain is chain mode's.
    assert.match(r.stderr, /add it to the genesis file/)
    assert.doesNotMatch(r.stderr, /poi operator register/)
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

  it('genesis create with a --stake that is not an integer is a usage error, not a crash', async () => {
    const r = await poi(root, 'genesis', 'create', '--out', join(root, 'unused.json'), '--keystore', operators.a, '--stake', '32 ETH')
    assertCleanFailure(r, /--stake must be a non-negative integer/, 'poi help')
  })

  it('request --tier takes replicated or zk, says why not both, and refuses flags a zk task has no use for, before connecting', async () => {
    const base = ['request', '--genesis', genesisPath, '--input', '{"x":{"data":[1]}}']
    const [both, other, tab] = await Promise.all([
      poi(root, ...base, '--tier', 'both'),
      poi(root, ...base, '--tier', 'proof'),
      poi(root, ...base, '--tier', 'zk', '--tab')
    ])
    assertCleanFailure(both, /--tier both: expected replicated or zk \(tier both, a certificate and a proof that agree, settles on chain but this version's operators do not sign output commitments yet\)/)
    assertCleanFailure(other, /--tier proof: expected replicated or zk$/m)
    assertCleanFailure(tab, /--tab pays replicated tasks from a credit tab/)
  })

  it('with --json a failure is an error object on stdout, and the exit code is the same as without', async () => {
    const args = ['request', '--genesis', genesisPath, '--input', '{"x":{"data":[1]}}']
    const [plain, json] = await Promise.all([poi(root, ...args), poi(root, ...args, '--json')])
    assertCleanFailure(json, /needs --bootstrap <multiaddr>/)
    assert.equal(json.code, plain.code)
    const line = lastEvent(json, 'error')
    assert.equal(line.code, 'ERR_USAGE')
    assert.match(line.message, /needs --bootstrap <multiaddr>/)
    assert.equal(plain.stdout, '', 'without --json stdout stays empty')
  })

  it('a port in use is a clean error naming the address and what to do', async () => {
    const busy = createTcpServer()
    await new Promise<void>(resolve => busy.listen(0, '127.0.0.1', resolve))
    const listen = `/ip4/127.0.0.1/tcp/${(busy.address() as AddressInfo).port}`
    try {
      const keystore = join(root, 'busy-keys')
      await generateKeystore(keystore)
      const r = await poi(root, 'bootstrap', '--keystore', keystore, '--data-dir', join(root, 'busy-data'), '--genesis', genesisPath, '--listen', listen, '--json')
      assertCleanFailure(r, `cannot listen on ${listen}: EADDRINUSE`, /another --listen port/)
      assert.equal(lastEvent(r, 'error').code, 'ERR_LISTEN')
    } finally {
      busy.close()
    }
  })

  describe('poi result says what failed', () => {
    let peerId: string

    before(async () => { peerId = publicKeysOf(await loadKeystore(operators.a)).peerId })

    it('an RPC that cannot be reached is reported as such, naming the URL', async () => {
      const rpc = 'http://127.0.0.1:1'
      const r = await poi(root, 'result', UNKNOWN_TASK, '--bootstrap', `/ip4/127.0.0.1/tcp/1/p2p/${peerId}`, '--chain', await deploymentFile(root, rpc))
      assertCleanFailure(r, /cannot (reach the chain at|read the chain id from) http:\/\/127\.0\.0\.1:1/)
      assert.doesNotMatch(r.stderr, /no connected full node/)
    })

    it('an RPC that answers with errors is reported as a failed read of the operator set, not as a missing certificate', async () => {
      const { url, server } = await brokenRpc()
      try {
        const r = await poi(root, 'result', UNKNOWN_TASK, '--bootstrap', `/ip4/127.0.0.1/tcp/1/p2p/${peerId}`, '--chain', await deploymentFile(root, url))
        assertCleanFailure(r, `cannot read the current operator set from ${url}: `)
        assert.doesNotMatch(r.stderr, /no connected full node/)
      } finally {
        server.close()
      }
    })

    it('an unknown task is "no connected full node has a certificate", listing each peer asked and why', async function () {
      this.timeout(READY_TIMEOUT_MS + NETWORK_CLI_TIMEOUT_MS + 10_000)
      const keystore = join(root, 'boot-keys')
      await generateKeystore(keystore)
      const boot = new ChildNode('bootstrap', ['bootstrap', '--keystore', keystore, '--data-dir', join(root, 'boot-data'), '--genesis', genesisPath, '--listen', '/ip4/127.0.0.1/tcp/0'], join(root, 'bootstrap.log'))
      try {
        const ready = await boot.ready(READY_TIMEOUT_MS)
        const r = await poiWithin(NETWORK_CLI_TIMEOUT_MS, root, 'result', UNKNOWN_TASK, '--bootstrap', ready.addrs[0], '--genesis', genesisPath, '--json')
        assertCleanFailure(r, `no connected full node has a certificate for task ${UNKNOWN_TASK}`, /asked 1 peer: 12D3\S+: UNKNOWN_TASK/)
        // With --json the failure is also the last stdout line, with its code.
        const line = lastEvent(r, 'error')
        assert.match(line.code, /^ERR_/)
        assert.ok(line.message.includes(`no connected full node has a certificate for task ${UNKNOWN_TASK}`), line.message)
      } finally {
        await boot.stop()
      }
    })
  })
})

describe('cli: errors and the messages poi exits with', () => {
  it('a PoiError, or any error with a string code, is printed as its message without a stack; anything else with its stack', () => {
    assert.equal(formatError(new PoiError('ERR_X', 'model 0x12 not registered')), 'poi: model 0x12 not registered')
    assert.equal(formatError(Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' })), 'poi: ENOENT: no such file')
    const bug = formatError(new TypeError('x is not a function'))
    assert.match(bug, /^poi: TypeError: x is not a function\n/)
    assert.match(bug, STACK_FRAME)
    assert.equal(formatError('thrown string'), 'poi: thrown string')
  })

  it("a failed read of an epoch's operator set during a lookup is reported as that read, with the peers asked", async () => {
    const chain = { operatorSet: async (epoch: bigint): Promise<OperatorSet> => { throw new Error(`connection refused\n(request body: epoch ${epoch})`) } }
    const { setOf, failures } = chainOperatorSets(chain, 'http://rpc.example:8545')
    await assert.rejects(setOf(3n), (err: unknown) => {
      assert.ok(err instanceof ChainReadError, String(err))
      assert.equal(err.message, 'cannot read the operator set of epoch 3 from http://rpc.example:8545: connection refused')
      return true
    })
    const taskId = new Uint8Array(32).fill(0xab)
    const notFound = new ResultNotFoundError(taskId, [{ peer: '12D3KooWPeerAAAAAAAAAA', code: 'OPERATOR_SET_UNAVAILABLE', reason: 'OPERATOR_SET_UNAVAILABLE: its certificate is of epoch 3' }])
    const explained = explainLookupFailure(notFound, taskId, failures)
    assert.ok(explained instanceof ChainReadError, String(explained))
    assert.match(explained.message, /^cannot read the operator set of epoch 3 from http:\/\/rpc\.example:8545: connection refused; the certificate a full node showed for task 0xabab\S+ cannot be checked without it \(asked 1 peer: /)
    // Without a failed chain read, not finding the certificate is what is reported.
    assert.equal(explainLookupFailure(notFound, taskId, []), notFound)
  })
})

describe('cli: --json of a certified task is enough to verify it independently', function () {
  this.timeout(180_000)
  let net: TestNetwork
  let genesisPath: string
  let set: OperatorSet

  before(async function () {
    this.timeout(60_000)
    net = await startTestNetwork({ operators: 3 })
    genesisPath = join(net.root, 'cli-genesis.json')
    await writeGenesis(genesisPath, net.operatorSet, net.keys.map(k => signProofOfPossession(k.blsSecretKey, k.account.address)))
    set = await loadGenesis(genesisPath)
  })
  after(async () => { await net?.stop() })

  it('poi request and poi result print task, model, epoch, bitmap, aggregate signature, stakes, result hash, outputRef, decoded and raw output, fee', async () => {
    const shipped = modelIdToString((await loadModelDir(SHIPPED_MODEL_DIR)).modelId)
    const requested = await poiWithin(NETWORK_CLI_TIMEOUT_MS, net.root, 'request', '--bootstrap', net.bootstrapAddr, '--genesis', genesisPath,
      '--input', new TextDecoder().decode(sampleInput()), '--timeout', '30', '--json')
    assert.equal(requested.code, 0, requested.stderr)
    const line = lastEvent(requested, 'result')
    assert.equal(line.modelId, shipped)
    assert.equal(line.epoch, String(set.epoch))
    assert.equal(line.fee, '0')
    assert.equal(line.totalStake, String(set.totalStake))
    assert.equal(line.aggregateSig?.length, 2 + 2 * 96, 'a 96-byte compressed G2 point')
    assert.ok(line.output !== null && line.outputTensors !== null)
    assert.equal(keccak256(line.output), line.resultHash, 'the raw output is what the result hash commits to')
    const decoded = decodeCanonicalOutput(Buffer.from(line.output.slice(2), 'hex'))
    assert.deepEqual(line.outputTensors.map(t => [t.name, t.dtype, t.shape]), decoded.outputs.map(t => [t.name, t.dtype, t.dims]))
    assert.ok(line.outputTensors.every(t => t.values.length > 0))

    // Nothing but the line and the operator set: the aggregate signature verifies for the bitmap's signers.
    const qc = certificateOfLine(line)
    const verdict = verifyCertificate(qc, set)
    assert.ok(verdict.ok, verdict.ok ? '' : verdict.reason)
    assert.deepEqual(verdict.signers, line.signers)
    assert.equal(String(verdict.signedStake), line.signedStake)
    const forged = certificateOfLine({ ...line, resultHash: `0x${'00'.repeat(32)}` })
    assert.equal(verifyCertificate(forged, set).ok, false, 'the check the line allows is a real one')

    // poi result asks a full node for the same task: the same certificate fields and output.
    const fetched = await poiWithin(NETWORK_CLI_TIMEOUT_MS, net.root, 'result', line.taskId, '--bootstrap', net.bootstrapAddr, '--genesis', genesisPath, '--json')
    assert.equal(fetched.code, 0, fetched.stderr)
    const again = lastEvent(fetched, 'result')
    for (const field of ['taskId', 'resultHash', 'outputRef', 'output', 'epoch', 'signedStake', 'totalStake', 'certificateVersion'] as const) {
      assert.deepEqual(again[field], line[field], field)
    }
    assert.deepEqual(again.outputTensors, line.outputTensors)
    assert.equal(again.modelId, null, 'without a chain nothing names the model of a certificate')
    assert.ok(verifyCertificate(certificateOfLine(again), set).ok)
    assert.equal(again.onChain, undefined, 'no chain, no on-chain part')
  })
})
