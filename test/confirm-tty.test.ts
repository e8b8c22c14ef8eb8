import { strict as assert } from 'node:assert'
import { spawn, spawnSync } from 'node:child_process'
import { access, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createPublicClient, http, type PublicClient } from 'viem'
import { startAnvil, type Anvil } from '../contracts/index.js'
import { generateKeystore } from '../node/keys.js'
import { CLI } from './helpers/cli.js'

/** One CLI run on a terminal: starting Node, loading viem and estimating nine deployments on a busy machine. */
const CLI_TIMEOUT_MS = 90_000
const ETHER = 10n ** 18n
/** What confirm.ts asks on a terminal. */
const QUESTION = 'send it? [y/N]'

/** util-linux `script` gives a command a pseudo-terminal: the only way to be "on a TTY" in a test. */
const hasScript = spawnSync('script', ['--version']).error === undefined

interface TtyRun { code: number | null, output: string }

/**
 * Runs `poi <args>` on a pseudo-terminal (`script -qec`), types `answer` and Enter once the
 * question shows, and resolves with the exit code and everything the terminal showed (stdout
 * and stderr together, as a person sees them).
 */
async function poiOnTty (home: string, answer: string, ...args: string[]): Promise<TtyRun> {
  const quote = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`
  const command = [process.execPath, CLI, ...args].map(quote).join(' ')
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home }
  delete env.DEBUG
  // -q: no "Script started" lines; -e: its exit code is the command's; -c: the command; /dev/null: no typescript file
  const child = spawn('script', ['-qec', command, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] })
  let output = ''
  let answered = false
  const onData = (d: Buffer): void => {
    output += d.toString()
    if (!answered && output.includes(QUESTION)) {
      answered = true
      child.stdin.write(`${answer}\r`)
    }
  }
  child.stdout.on('data', onData)
  child.stderr.on('data', onData)
  return await new Promise<TtyRun>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`poi ${args.join(' ')} on a terminal did not exit within ${CLI_TIMEOUT_MS} ms\n${output}`))
    }, CLI_TIMEOUT_MS)
    child.once('error', (err) => { clearTimeout(timer); reject(err) })
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, output: output.replaceAll('\r\n', '\n') }) })
  })
}

/**
 * confirm.ts on a real (pseudo-)terminal: `poi chain deploy` shows its preview, asks, and sends
 * nothing on "n" and everything on "y". Without a terminal the same command refuses without
 * --yes (test/operator-lifecycle.test.ts).
 */
describe('a transaction command asks on a terminal (poi chain deploy under a pseudo-terminal)', function () {
  this.timeout(4 * CLI_TIMEOUT_MS)
  let anvil: Anvil
  let publicClient: PublicClient
  let root: string
  let keys: string
  let deployer: `0x${string}`
  const deployment = (): string => join(root, 'deployment.json')
  const deploy = async (answer: string): Promise<TtyRun> =>
    await poiOnTty(join(root, 'home'), answer, 'chain', 'deploy', '--rpc', anvil.rpcUrl, '--keystore', keys, '--out', deployment())

  before(async function () {
    if (!hasScript) {
      console.log('    (skipped: util-linux `script` is not installed, and nothing else here gives a command a terminal)')
      this.skip()
    }
    anvil = await startAnvil()
    publicClient = createPublicClient({ transport: http(anvil.rpcUrl) })
    root = await mkdtemp(join(tmpdir(), 'poi-tty-'))
    keys = join(root, 'deployer')
    deployer = (await generateKeystore(keys)).address
    await fetch(anvil.rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'anvil_setBalance', params: [deployer, `0x${(100n * ETHER).toString(16)}`] })
    })
  })

  after(async () => {
    await anvil?.stop()
    if (root !== undefined) await rm(root, { recursive: true, force: true })
  })

  it('"n": the preview and the question show, nothing is sent, and it says so', async () => {
    const r = await deploy('n')
    assert.equal(r.code, 1, r.output)
    assert.match(r.output, /about to deploy the poi contracts/)
    // the preview's gas is the nine deployments', each named (BatchSettlement, TaskManagerGovernance, ZkSettlement: the libraries TaskManager links);
    // node/cli/chain-commands.ts still calls them "eight" (its wording is the lead's to change)
    assert.match(r.output, /gas +\d+ \(estimated\)/)
    assert.match(r.output, /gas is the sum over the 9 deployments \(OperatorRegistry \d+, ModelRegistry \d+, IdentityRegistry \d+, ValidationRegistry \d+, BatchSettlement \d+, TaskManagerGovernance \d+, ZkSettlement \d+, TaskManager \d+, SlashingManager \d+\)/)
    assert.ok(r.output.includes(QUESTION), r.output)
    assert.match(r.output, /not sent: .* was declined; nothing changed on the chain/)
    assert.equal(await publicClient.getTransactionCount({ address: deployer }), 0, 'the deployer sent nothing')
    await assert.rejects(access(deployment()), 'no deployment file')
  })

  it('"y": the contracts are deployed and the deployment file written', async () => {
    const r = await deploy('y')
    assert.equal(r.code, 0, r.output)
    assert.ok(r.output.includes(QUESTION), r.output)
    assert.match(r.output, /deployed on chain \d+ from block \d+; wrote /)
    // nine deployments (BatchSettlement, TaskManagerGovernance and ZkSettlement included), setSlasher, bindTaskManager, setGuardian; then governance: the
    // timelock, the governor, two role grants, three ownership transfers and the deployer's admin role renounced
    assert.equal(await publicClient.getTransactionCount({ address: deployer }), 20)
    await access(deployment())
    const registry = /OperatorRegistry +(0x[0-9a-fA-F]{40})/.exec(r.output)?.[1] as `0x${string}` | undefined
    assert.ok(registry !== undefined, r.output)
    assert.ok(((await publicClient.getCode({ address: registry })) ?? '0x').length > 2, 'the registry has code')
  })
})
