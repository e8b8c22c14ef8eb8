import { strict as assert } from 'node:assert'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getContractAddress, parseEther } from 'viem'
import { TestTokenAbi, TestTokenBytecode, readVault } from '../contracts/index.js'
import { parseEvent, type EventOf } from '../node/cli/events.js'
import { AmountError, formatUnlock, parseAmount } from '../node/cli/payment-setup.js'
import { writeDeployment } from '../node/deployment.js'
import { generateKeystore, loadKeystore } from '../node/keys.js'
import { runPoi, type CliResult } from './helpers/cli.js'
import { anvilAccount, startPoiChain, type PoiChain } from './helpers/poi-chain.js'

/** A payment command reads a few views and sends at most one or two transactions; generous for a loaded machine. */
const CLI_TIMEOUT_MS = 30_000

async function poi (home: string, ...args: string[]): Promise<CliResult> {
  return await runPoi(home, CLI_TIMEOUT_MS, ...args)
}

function ok (r: CliResult): CliResult {
  assert.equal(r.code, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`)
  return r
}

function line<K extends 'deposit' | 'withdrawal' | 'rewards'> (r: CliResult, event: K): EventOf<K> {
  const e = parseEvent(ok(r).stdout.trim())
  assert.equal(e.event, event)
  return e as EventOf<K>
}

describe('payment amounts on the command line', () => {
  const eth = { symbol: 'ETH', decimals: 18 }

  it('reads units of the asset and wei, and refuses what is not an amount', () => {
    assert.equal(parseAmount('0.5', eth, 'x'), parseEther('0.5'))
    assert.equal(parseAmount('2', eth, 'x'), 2n * 10n ** 18n)
    assert.equal(parseAmount('123wei', eth, 'x'), 123n)
    assert.equal(parseAmount('1.5', { symbol: 'USDC', decimals: 6 }, 'x'), 1_500_000n)
    assert.throws(() => parseAmount('1.1234567', { symbol: 'USDC', decimals: 6 }, 'the deposit'), (err: unknown) => err instanceof AmountError && /more than the 6 decimals USDC has/.test(err.message))
    assert.throws(() => parseAmount('-1', eth, 'the deposit'), /the deposit must be an amount like 0\.5 \(ETH\) or 123wei, got "-1"/)
    assert.throws(() => parseAmount('1e18', eth, 'the deposit'), AmountError)
    assert.throws(() => parseAmount('0', eth, 'the deposit'), /must be more than zero/)
    assert.equal(parseAmount('0', eth, '--fee', true), 0n)
  })

  it('says when a withdrawal unlocks as a date and a span', () => {
    assert.equal(formatUnlock(1_800_010_800n, 1_800_000_000n), '2027-01-15 11:00:00 UTC (in 3 h 0 min)')
    assert.equal(formatUnlock(1_800_000_090n, 1_800_000_000n), '2027-01-15 08:01:30 UTC (in 1 min 30 s)')
    assert.equal(formatUnlock(1_800_000_000n, 1_800_000_000n), '2027-01-15 08:00:00 UTC (unlocked)')
  })
})

/**
 * `poi deposit`, `poi withdraw` and `poi rewards` against a real anvil chain with the contracts
 * deployed (ETH as the payment asset): each figure they print is checked against the chain, and
 * each refusal (another token, a locked withdrawal, nothing to claim) leaves the vault unchanged.
 */
describe('poi deposit, withdraw and rewards (anvil)', function () {
  this.timeout(120_000)
  let chain: PoiChain
  let home: string
  let chainArgs: string[]
  let account: `0x${string}`

  before(async () => {
    chain = await startPoiChain()
    home = await mkdtemp(join(tmpdir(), 'poi-payment-cli-'))
    const deploymentPath = join(home, 'deployment.json')
    await writeDeployment(deploymentPath, { rpcUrl: chain.anvil.rpcUrl, ...chain.deployment })
    const keystore = join(home, 'keys')
    await generateKeystore(keystore)
    account = (await loadKeystore(keystore)).account.address
    await chain.publicClient.waitForTransactionReceipt({ hash: await chain.wallets[0].sendTransaction({ to: account, value: parseEther('10') }) })
    chainArgs = ['--chain', deploymentPath, '--keystore', keystore]
  })

  after(async () => {
    await chain?.stop()
    if (home !== undefined) await rm(home, { recursive: true, force: true })
  })

  const vault = async (): Promise<Awaited<ReturnType<typeof readVault>>> => await readVault(chain.publicClient, chain.deployment.taskManager, account)

  it('deposits ETH in ether units or wei and prints the balance after', async () => {
    const before = (await vault()).balance
    const first = line(await poi(home, 'deposit', '0.5', ...chainArgs, '--json'), 'deposit')
    assert.equal(first.amount, `${parseEther('0.5')}`)
    assert.equal(BigInt(first.balance), before + parseEther('0.5'))
    const human = ok(await poi(home, 'deposit', '123wei', ...chainArgs))
    const balance = before + parseEther('0.5') + 123n
    assert.equal((await vault()).balance, balance)
    assert.match(human.stdout, new RegExp(`deposited +0\\.000000000000000123 ETH \\(123 wei\\)[\\s\\S]*balance +[\\d.]+ ETH \\(${balance} wei\\)`))
  })

  it('refuses a --token that is not the payment asset, naming the asset, and deposits nothing', async () => {
    const before = await vault()
    const r = await poi(home, 'deposit', '1', '--token', `0x${'12'.repeat(20)}`, ...chainArgs)
    assert.equal(r.code, 1)
    assert.match(r.stderr, /--token 0x1212\S* is not this network's payment asset: the TaskManager takes ETH \(leave out --token\)/)
    const bad = await poi(home, 'deposit', 'lots', ...chainArgs)
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /the deposit must be an amount like 0\.5 \(ETH\) or 123wei, got "lots"/)
    assert.deepEqual(await vault(), before)
  })

  it('requests a withdrawal, refuses to complete it before it unlocks, then pays it out', async () => {
    if ((await vault()).balance < parseEther('0.2')) ok(await poi(home, 'deposit', '0.5', ...chainArgs))
    const none = await poi(home, 'withdraw', ...chainArgs)
    assert.equal(none.code, 1)
    assert.match(none.stderr, /has no withdrawal pending: request one with `poi withdraw <amount>`/)
    const tooMuch = await poi(home, 'withdraw', '1000', ...chainArgs)
    assert.equal(tooMuch.code, 1)
    assert.match(tooMuch.stderr, /cannot withdraw 1000 ETH .*: the deposit of 0x[0-9a-fA-F]{40} is/)

    const requested = line(await poi(home, 'withdraw', '0.2', ...chainArgs, '--json'), 'withdrawal')
    assert.equal(requested.action, 'requested')
    const block = await chain.publicClient.getBlock()
    assert.equal(requested.unlocksAt, Number(block.timestamp + chain.params.withdrawalDelay))
    const pending = await vault()
    assert.deepEqual(pending.pending, { amount: parseEther('0.2'), unlocksAt: BigInt(requested.unlocksAt) })

    const locked = await poi(home, 'withdraw', ...chainArgs)
    assert.equal(locked.code, 1)
    assert.match(locked.stderr, /the withdrawal of 0\.2 ETH \(200000000000000000 wei\) is still locked: it unlocks at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in (2 h 59|3 h 0) min\); run `poi withdraw` again then/)
    assert.deepEqual(await vault(), pending)

    await chain.testClient.increaseTime({ seconds: Number(chain.params.withdrawalDelay) })
    await chain.testClient.mine({ blocks: 1 })
    const ethBefore = await chain.publicClient.getBalance({ address: account })
    const done = line(await poi(home, 'withdraw', ...chainArgs, '--json'), 'withdrawal')
    assert.equal(done.action, 'withdrawn')
    assert.equal(done.amount, `${parseEther('0.2')}`)
    assert.equal(BigInt(done.balance), pending.balance - parseEther('0.2'))
    const receipt = await chain.publicClient.getTransactionReceipt({ hash: done.txHash })
    assert.equal(await chain.publicClient.getBalance({ address: account }) - ethBefore + receipt.gasUsed * receipt.effectiveGasPrice, parseEther('0.2'))
    assert.deepEqual((await vault()).pending, { amount: 0n, unlocksAt: 0n })
  })

  it('shows an account that is no operator nothing to claim, and refuses --claim and --withdraw-credit', async () => {
    const shown = line(await poi(home, 'rewards', ...chainArgs, '--json'), 'rewards')
    assert.deepEqual(shown.epochs, [])
    assert.equal(shown.pending, '0')
    assert.equal(shown.credit, '0')
    assert.deepEqual(shown.reputation, { signed: '0', missed: '0', slashings: 0 })
    assert.equal(shown.claimed, null)
    const claim = await poi(home, 'rewards', '--claim', ...chainArgs)
    assert.equal(claim.code, 1)
    assert.match(claim.stderr, /has no rewards to claim: it was in no epoch's operator set/)
    const credit = await poi(home, 'rewards', '--withdraw-credit', ...chainArgs)
    assert.equal(credit.code, 1)
    assert.match(credit.stderr, /has no credit to withdraw/)
    const noChain = await poi(home, 'rewards')
    assert.equal(noChain.code, 1)
    assert.match(noChain.stderr, /poi rewards needs --chain <deployment\.json>/)
  })
})

/**
 * A deployment whose payment asset is an ERC-20 (the mintable TestToken): `poi deposit` takes
 * amounts in the token's units, approves the TaskManager and deposits, and `--token` must name
 * that token.
 */
describe('poi deposit with an ERC-20 payment asset (anvil)', function () {
  this.timeout(60_000)
  let chain: PoiChain
  let home: string
  /** An anvil account that sends nothing before it deploys the token. */
  const TOKEN_DEPLOYER = 9

  after(async () => {
    await chain?.stop()
    if (home !== undefined) await rm(home, { recursive: true, force: true })
  })

  it('approves and deposits the token, accepts --token naming it and refuses ETH\'s zero address', async () => {
    // The TaskManager takes its asset at deployment: the token's address is fixed beforehand
    // (anvil account 9's first contract) and the token deployed there right after.
    const token = getContractAddress({ from: anvilAccount(TOKEN_DEPLOYER).address, nonce: 0n })
    chain = await startPoiChain({ asset: token })
    const deployed = await chain.wallets[TOKEN_DEPLOYER].deployContract({ abi: TestTokenAbi, bytecode: TestTokenBytecode, args: ['Test USD', 'TUSD'] })
    assert.equal((await chain.publicClient.waitForTransactionReceipt({ hash: deployed })).contractAddress, token.toLowerCase())

    home = await mkdtemp(join(tmpdir(), 'poi-payment-cli-token-'))
    const deploymentPath = join(home, 'deployment.json')
    await writeDeployment(deploymentPath, { rpcUrl: chain.anvil.rpcUrl, ...chain.deployment })
    const keystore = join(home, 'keys')
    await generateKeystore(keystore)
    const account = (await loadKeystore(keystore)).account.address
    await chain.publicClient.waitForTransactionReceipt({ hash: await chain.wallets[0].sendTransaction({ to: account, value: parseEther('1') }) })
    await chain.publicClient.waitForTransactionReceipt({ hash: await chain.wallets[0].writeContract({ address: token, abi: TestTokenAbi, functionName: 'mint', args: [account, parseEther('100')] }) })
    const args = ['--chain', deploymentPath, '--keystore', keystore]

    const eth = await poi(home, 'deposit', '1', '--token', '0x0000000000000000000000000000000000000000', ...args)
    assert.equal(eth.code, 1)
    assert.match(eth.stderr, new RegExp(`is not this network's payment asset: the TaskManager takes TUSD at ${token} \\(pass --token ${token} or leave it out\\)`))
    const deposited = line(await poi(home, 'deposit', '2.5', '--token', token.toLowerCase(), ...args, '--json'), 'deposit')
    assert.equal(deposited.asset, token)
    assert.equal(deposited.balance, `${parseEther('2.5')}`)
    assert.equal((await readVault(chain.publicClient, chain.deployment.taskManager, account)).balance, parseEther('2.5'))
    assert.equal(await chain.publicClient.readContract({ address: token, abi: TestTokenAbi, functionName: 'balanceOf', args: [account] }), parseEther('97.5'))
    const human = ok(await poi(home, 'deposit', '0.5', ...args))
    assert.match(human.stdout, /balance +3 TUSD \(3000000000000000000 wei\)/)
  })
})
