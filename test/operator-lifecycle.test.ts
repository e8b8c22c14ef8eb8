import { strict as assert } from 'node:assert'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startAnvil, type Anvil } from '../contracts/index.js'
import { exampleInput } from '../node/cli/devnet.js'
import { parseEvent, type EventOf, type PoiEventName } from '../node/cli/events.js'
import { ChildNode } from '../node/cli/launcher.js'
import { MODEL_FILE, SHIPPED_MODEL_DIR } from '../node/inference/index.js'
import { generateKeystore } from '../node/keys.js'
import { runPoi, type CliResult } from './helpers/cli.js'
import { until } from './helpers/wait.js'

/** One CLI run: spawning Node and loading viem takes a few seconds on a busy machine. */
const CLI_TIMEOUT_MS = 60_000
/** Five nodes starting at once on two shared cores. */
const READY_TIMEOUT_MS = 60_000
const MESH_TIMEOUT_MS = 20_000
/** From the request's certificate to the aggregator's settlement, seen as rewards in `poi operator status`. */
const SETTLEMENT_TIMEOUT_MS = 30_000
/** Deploy parameters of this test: epochs may start back to back, an exit waits a minute, one epoch of certificate age. */
const EXIT_DELAY_S = 60
const ETHER = 10n ** 18n

/** The last line of a `--json` run, which must be `name`. */
function lineOf<K extends PoiEventName> (r: CliResult, name: K): EventOf<K> {
  assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
  const e = parseEvent(r.stdout.trim().split('\n').at(-1)!)
  assert.equal(e.event, name)
  return e as EventOf<K>
}

async function rpc (url: string, method: string, params: unknown[]): Promise<unknown> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) })
  const json = await res.json() as { result?: unknown, error?: { message: string } }
  if (json.error != null) throw new Error(`${method}: ${json.error.message}`)
  return json.result
}

/**
 * The acceptance: an operator's whole life on a chain with the commands a user has
 * (keys generate, chain deploy, operator register/status/exit/withdraw, epoch advance, model
 * publish, deposit, request), each run as its own `poi` process without a terminal.
 */
describe('operator lifecycle on anvil with the poi commands only', function () {
  this.timeout(300_000)
  let anvil: Anvil
  let root: string
  let home: string
  const nodes: ChildNode[] = []
  const dir = (name: string): string => join(root, name, 'keys')
  let deployment: string
  const poi = async (...args: string[]): Promise<CliResult> => await runPoi(home, CLI_TIMEOUT_MS, ...args)

  before(async () => {
    anvil = await startAnvil()
    root = await mkdtemp(join(tmpdir(), 'poi-lifecycle-'))
    home = join(root, 'home')
    deployment = join(root, 'deployment.json')
    // Keystores (what `poi keys generate` writes, made in-process to save seven process starts) and
    // gas money: funding the accounts is the only step outside poi.
    for (const name of ['deployer', 'op-0', 'op-1', 'op-2', 'aggregator', 'bootstrap', 'requester']) {
      const { address } = await generateKeystore(dir(name))
      await rpc(anvil.rpcUrl, 'anvil_setBalance', [address, `0x${(100n * ETHER).toString(16)}`])
    }
  })

  after(async () => {
    await Promise.all(nodes.map(async n => await n.stop()))
    await anvil?.stop()
    if (root !== undefined) await rm(root, { recursive: true, force: true })
  })

  it('deploys, registers three operators, certifies a task, and lets one exit and withdraw after the delay', async () => {
    const chain = ['--chain', deployment]
    // Deploy: without --yes and without a terminal nothing is sent.
    const unconfirmed = await poi('chain', 'deploy', '--rpc', anvil.rpcUrl, '--keystore', dir('deployer'), '--out', deployment)
    assert.equal(unconfirmed.code, 1)
    assert.match(unconfirmed.stderr, /pass --yes/)
    const deployed = lineOf(await poi('chain', 'deploy', '--rpc', anvil.rpcUrl, '--keystore', dir('deployer'), '--out', deployment,
      '--epoch-duration', '0', '--exit-delay', String(EXIT_DELAY_S), '--max-epoch-age', '1', '--min-stake', '1', '--yes', '--json'), 'deployed')
    assert.equal(deployed.chainId, anvil.chainId)
    const again = await poi('chain', 'deploy', '--rpc', anvil.rpcUrl, '--keystore', dir('deployer'), '--out', deployment, '--yes')
    assert.equal(again.code, 1)
    assert.match(again.stderr, /already exists: pass --force/)

    // Register three operators; the preview comes first, and registering twice is refused with what to do.
    const noYes = await poi('operator', 'register', '--stake', '2', ...chain, '--keystore', dir('op-0'))
    assert.equal(noYes.code, 1)
    assert.match(noYes.stderr, /about to register 0x[0-9a-fA-F]{40} as an operator with 2 ETH stake[\s\S]*gas +\d+ \(estimated\)[\s\S]*pass --yes/)
    assert.equal(lineOf(await poi('operator', 'status', ...chain, '--keystore', dir('op-0'), '--json'), 'operator-status').registered, false)
    // One after the other: the registry's list order (op-0, op-1, op-2) is then the operator indices of epoch 1.
    for (const op of ['op-0', 'op-1', 'op-2']) {
      const r = lineOf(await poi('operator', 'register', '--stake', '2', ...chain, '--keystore', dir(op), '--yes', '--json'), 'operator-registered')
      assert.equal(r.stake, `${2n * ETHER}`)
      assert.equal(r.firstEpoch, '1')
    }
    // Read-only and refused steps run side by side (they change nothing on the chain).
    const [twice, waitingRun, early] = await Promise.all([
      poi('operator', 'register', '--stake', '2', ...chain, '--keystore', dir('op-0'), '--yes'),
      poi('operator', 'status', ...chain, '--keystore', dir('op-0'), '--json'),
      // An operator node started before its first epoch is told to advance the epoch, not to edit a genesis file.
      poi('operator', ...chain, '--keystore', dir('op-0'), '--data-dir', join(root, 'op-0', 'data'), '--no-model-dir')
    ])
    assert.equal(twice.code, 1)
    assert.match(twice.stderr, /already registered .*poi operator status/)
    const waiting = lineOf(waitingRun, 'operator-status')
    assert.deepEqual([waiting.registered, waiting.stake, waiting.firstEpoch, waiting.currentEpoch, waiting.inCurrentEpoch], [true, `${2n * ETHER}`, '1', '0', false])

    assert.equal(early.code, 1)
    assert.match(early.stderr, /registered and joins at epoch 1; run `poi epoch advance/)
    assert.doesNotMatch(early.stderr, /genesis/)

    const epoch1 = lineOf(await poi('epoch', 'advance', ...chain, '--keystore', dir('deployer'), '--yes', '--json'), 'epoch-started')
    assert.deepEqual([epoch1.epoch, epoch1.operators, epoch1.totalStake], ['1', 3, `${6n * ETHER}`])
    assert.equal(lineOf(await poi('operator', 'status', ...chain, '--keystore', dir('op-1'), '--json'), 'operator-status').inCurrentEpoch, true)

    // Certify a task: the model registered and stored at the bootstrap node, three operators, an aggregator, a paying requester.
    const published = lineOf(await poi('model', 'publish', join(SHIPPED_MODEL_DIR, MODEL_FILE), '--rule', 'grid:16', '--data-dir', join(root, 'bootstrap', 'data'),
      '--keystore', dir('deployer'), ...chain, '--json'), 'published')
    assert.ok(published.registeredTx != null)
    const node = (name: string, role: string, extra: string[]): ChildNode => {
      const n = new ChildNode(name, [role, ...chain, '--keystore', dir(name), '--data-dir', join(root, name, 'data'), '--listen', '/ip4/127.0.0.1/tcp/0', ...extra], join(root, `${name}.log`), { HOME: home })
      nodes.push(n)
      return n
    }
    const bootstrap = node('bootstrap', 'bootstrap', ['--no-model-dir'])
    const ready = await bootstrap.ready(READY_TIMEOUT_MS)
    const bootstrapAddr = ready.addrs.find(a => a.includes('/tcp/')) ?? ready.addrs[0]
    const operators = ['op-0', 'op-1', 'op-2'].map(name => node(name, 'operator', ['--bootstrap', bootstrapAddr, '--no-model-dir']))
    const aggregator = node('aggregator', 'aggregator', ['--bootstrap', bootstrapAddr])
    await Promise.all([...operators, aggregator].map(async n => await n.ready(READY_TIMEOUT_MS)))
    await Promise.all(operators.map(async n => await n.waitForEvent('mesh', e => e.attestationSubscribers > 0 && e.tasks > 0, MESH_TIMEOUT_MS, 'gossip mesh')))
    await aggregator.waitForEvent('mesh', e => e.attestations > 0 && e.tasks > 0, MESH_TIMEOUT_MS, 'gossip mesh')
    lineOf(await poi('deposit', '0.01', ...chain, '--keystore', dir('requester'), '--json'), 'deposit')
    const result = lineOf(await poi('request', '--bootstrap', bootstrapAddr, ...chain, '--keystore', dir('requester'), '--model', published.modelId,
      '--input', new TextDecoder().decode(exampleInput(5)), '--timeout', '30', '--json'), 'result')
    assert.ok(result.signers != null && result.signers.length >= 2)
    assert.equal(result.epoch, '1')
    // Settled on-chain: a signer has rewards to claim.
    const signer = `op-${result.signers[0]}`
    await until(async () => BigInt(lineOf(await poi('operator', 'status', ...chain, '--keystore', dir(signer), '--json'), 'operator-status').pendingRewards) > 0n,
      SETTLEMENT_TIMEOUT_MS, 'the certificate\'s settlement (rewards in poi operator status)')
    await Promise.all(nodes.map(async n => await n.stop()))

    // op-2 exits; withdrawing too early says when it becomes possible.
    const exit = lineOf(await poi('operator', 'exit', ...chain, '--keystore', dir('op-2'), '--yes', '--json'), 'operator-exit')
    assert.deepEqual([exit.exitEpoch, exit.withdrawableEpoch], ['2', '3'])
    const [exitingRun, tooEarly] = await Promise.all([
      poi('operator', 'status', ...chain, '--keystore', dir('op-2'), '--json'),
      poi('operator', 'withdraw', ...chain, '--keystore', dir('op-2'), '--yes')
    ])
    const exiting = lineOf(exitingRun, 'operator-status')
    assert.deepEqual([exiting.exitEpoch, exiting.withdrawableEpoch, exiting.withdrawableAt], ['2', '3', exit.withdrawableAt])
    assert.equal(tooEarly.code, 1)
    assert.match(tooEarly.stderr, /epoch 3 must start first .*poi epoch advance.*withdrawn from \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/)
    const epoch2 = lineOf(await poi('epoch', 'advance', ...chain, '--keystore', dir('deployer'), '--yes', '--json'), 'epoch-started')
    assert.deepEqual([epoch2.epoch, epoch2.operators], ['2', 2])
    assert.equal(lineOf(await poi('operator', 'status', ...chain, '--keystore', dir('op-2'), '--json'), 'operator-status').inCurrentEpoch, false)
    lineOf(await poi('epoch', 'advance', ...chain, '--keystore', dir('deployer'), '--yes', '--json'), 'epoch-started')
    const locked = await poi('operator', 'withdraw', ...chain, '--keystore', dir('op-2'), '--yes')
    assert.equal(locked.code, 1)
    assert.match(locked.stderr, /still locked: it can be withdrawn from \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in \d+ (min|s)/)

    // After the delay (anvil's clock moved on), the stake comes back and the account is no longer registered.
    await rpc(anvil.rpcUrl, 'evm_increaseTime', [EXIT_DELAY_S + 1])
    await rpc(anvil.rpcUrl, 'evm_mine', [])
    const withdrawn = lineOf(await poi('operator', 'withdraw', ...chain, '--keystore', dir('op-2'), '--yes', '--json'), 'stake-withdrawn')
    assert.equal(withdrawn.amount, `${2n * ETHER}`)
    const gone = lineOf(await poi('operator', 'status', ...chain, '--keystore', dir('op-2'), '--json'), 'operator-status')
    assert.deepEqual([gone.registered, gone.stake, gone.exitEpoch], [false, '0', null])

    // An unregistered operator in chain mode is told to register.
    const unregistered = await poi('operator', ...chain, '--keystore', dir('op-2'), '--data-dir', join(root, 'op-2', 'data'), '--no-model-dir')
    assert.equal(unregistered.code, 1)
    assert.match(unregistered.stderr, /not registered; run `poi operator register --stake <eth>/)
  })
})
