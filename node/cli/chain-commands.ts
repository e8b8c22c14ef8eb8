/**
 * The operator lifecycle on any EVM chain with the EIP-2537 precompiles: `poi chain deploy`
 * (the contracts, and the deployment file nodes are pointed at), `poi operator register|status|
 * exit|withdraw` (stake, BLS key and proof of possession from the keystore) and `poi epoch
 * advance`. Each transaction is previewed and confirmed (confirm.ts), checked against the
 * registry's state first so a refusal says what to do and when, and sent through the same
 * contracts/ functions the devnet uses.
 */
import { access } from 'node:fs/promises'
import { resolve } from 'node:path'
import { createPublicClient, createWalletClient, defineChain, formatEther, http, isAddress, isAddressEqual, type PublicClient } from 'viem'
import {
  OperatorRegistryAbi, POI_DEPLOY_ORDER, advanceEpoch, contractErrorArgs, contractErrorName, deployParameters, deployPoi, estimateDeployPoiGas, readOperatorRecord,
  readPendingRewards, readRegistryState, readReputation, readWithdrawableAt, registerOperator, registrationCalldata, requestExit, withdrawStake,
  type DeployPoiParameters, type OperatorRecord, type RegistryState
} from '../../contracts/index.js'
import { PoiError } from '../../protocols/wire/index.js'
import { ChainClient } from '../chain-client.js'
import { writeDeployment } from '../deployment.js'
import { loadKeystore } from '../keys.js'
import { UsageError, nodeConfig, type OptionValues } from './args.js'
import { confirmTransaction } from './confirm.js'
import { readChain } from './operator-source.js'
import { CliOutput } from './output.js'
import { formatUnlock, parseAmount, type Wallet } from './payment-setup.js'

const ETH = { decimals: 18, symbol: 'ETH' }

/** The flags of every lifecycle command that works on a deployment. */
const LIFECYCLE_OPTIONS = {
  chain: { type: 'string' },
  keystore: { type: 'string' },
  rpc: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' }
} as const

/** `poi chain deploy`'s flags. */
const DEPLOY_OPTIONS = {
  rpc: { type: 'string' },
  keystore: { type: 'string' },
  out: { type: 'string' },
  force: { type: 'boolean' },
  json: { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
  'min-stake': { type: 'string' },
  'epoch-duration': { type: 'string' },
  'exit-delay': { type: 'string' },
  'quorum-bps': { type: 'string' },
  'max-epoch-age': { type: 'string' },
  'max-certificate-age': { type: 'string' },
  'slash-bps': { type: 'string' },
  'reporter-bps': { type: 'string' },
  'protocol-fee-bps': { type: 'string' },
  'min-task-fee': { type: 'string' },
  treasury: { type: 'string' },
  asset: { type: 'string' },
  'max-task-life': { type: 'string' },
  'settlement-window': { type: 'string' },
  'withdrawal-delay': { type: 'string' }
} as const

type LifecycleValues = OptionValues<typeof LIFECYCLE_OPTIONS>

/** The registry's state does not allow this step now (not registered, already registered, not exiting, …). */
export class OperatorStateError extends PoiError {
  constructor (message: string) {
    super('ERR_OPERATOR_STATE', message)
  }
}

/** Too early: the stake is still locked, or the current epoch has not lasted epochDuration. */
export class TooEarlyError extends PoiError {
  /** Unix seconds from which the step can succeed (at the earliest); undefined when it waits on an epoch, not a time. */
  readonly readyAt: bigint | undefined

  constructor (message: string, readyAt?: bigint) {
    super('ERR_TOO_EARLY', message)
    this.readyAt = readyAt
  }
}

/** The deployment file exists and --force was not given. */
export class DeploymentExistsError extends PoiError {
  constructor (path: string) {
    super('ERR_DEPLOYMENT_EXISTS', `${path} already exists: pass --force to overwrite it, or --out <file> to write elsewhere`)
  }
}

/** The chain refused a lifecycle transaction with an error this command does not expect. */
export class LifecycleRefusedError extends PoiError {
  constructor (what: string, cause: unknown) {
    const name = contractErrorName(cause)
    super('ERR_LIFECYCLE_REFUSED', `${what} was refused${name !== undefined ? ` by the contract (${name})` : `: ${(cause instanceof Error ? cause.message : String(cause)).split('\n')[0]}`}`, { cause })
  }
}

/** A whole number of seconds (or epochs) flag. */
function whole (value: string | undefined, name: string): bigint | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`--${name} must be a whole number, got ${JSON.stringify(value)}`)
  return BigInt(value.trim())
}

function bps (value: string | undefined, name: string): number | undefined {
  const v = whole(value, name)
  if (v === undefined) return undefined
  if (v > 10_000n) throw new UsageError(`--${name} is in basis points (0..10000), got ${value}`)
  return Number(v)
}

function address (value: string | undefined, name: string): `0x${string}` | undefined {
  if (value === undefined) return undefined
  if (!isAddress(value, { strict: false })) throw new UsageError(`--${name} must be a 0x-prefixed 20-byte address, got ${JSON.stringify(value)}`)
  return value
}

/** Clients for `rpcUrl`, sending from `account`. */
async function connectRpc (rpcUrl: string, account: Wallet['account']): Promise<{ publicClient: PublicClient, wallet: Wallet }> {
  const chainId = await readChain('the chain id', rpcUrl, async () => await createPublicClient({ transport: http(rpcUrl) }).getChainId())
  const chain = defineChain({ id: chainId, name: `chain ${chainId}`, nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 }, rpcUrls: { default: { http: [rpcUrl] } } })
  const transport = http(rpcUrl)
  return {
    publicClient: createPublicClient({ chain, transport, pollingInterval: 250 }) as PublicClient,
    wallet: createWalletClient({ chain, transport, account })
  }
}

/** `poi chain deploy --rpc <url> --keystore <dir> [--out <file>] [--force] [parameters]`. */
export async function runDeploy (values: OptionValues<typeof DEPLOY_OPTIONS>): Promise<void> {
  if (values.rpc === undefined) throw new UsageError('poi chain deploy needs --rpc <url>: the JSON-RPC endpoint of a chain with the EIP-2537 precompiles (Prague)')
  if (values.keystore === undefined) throw new UsageError('poi chain deploy needs --keystore <dir>: its Ethereum key deploys and pays the gas (create one with `poi keys generate --dir <dir>`)')
  const out = new CliOutput(values.json === true)
  const file = resolve(values.out ?? 'deployment.json')
  if (values.force !== true && await access(file).then(() => true, () => false)) throw new DeploymentExistsError(file)
  const given: DeployPoiParameters = {
    minStake: values['min-stake'] !== undefined ? parseAmount(values['min-stake'], ETH, '--min-stake') : undefined,
    epochDuration: whole(values['epoch-duration'], 'epoch-duration'),
    exitDelay: whole(values['exit-delay'], 'exit-delay'),
    quorumBps: bps(values['quorum-bps'], 'quorum-bps'),
    maxEpochAge: whole(values['max-epoch-age'], 'max-epoch-age'),
    maxCertificateAge: whole(values['max-certificate-age'], 'max-certificate-age'),
    slashBps: bps(values['slash-bps'], 'slash-bps'),
    reporterBps: bps(values['reporter-bps'], 'reporter-bps'),
    protocolFeeBps: bps(values['protocol-fee-bps'], 'protocol-fee-bps'),
    minTaskFee: values['min-task-fee'] !== undefined ? parseAmount(values['min-task-fee'], ETH, '--min-task-fee', true) : undefined,
    treasury: address(values.treasury, 'treasury'),
    asset: address(values.asset, 'asset'),
    maxTaskLife: whole(values['max-task-life'], 'max-task-life'),
    settlementWindow: whole(values['settlement-window'], 'settlement-window'),
    withdrawalDelay: whole(values['withdrawal-delay'], 'withdrawal-delay')
  }
  const params = deployParameters(Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) as DeployPoiParameters)
  const keystore = await loadKeystore(resolve(values.keystore))
  const { publicClient, wallet } = await connectRpc(values.rpc, keystore.account)
  const gas = await readChain('a gas estimate of the contracts\' deployment', values.rpc, async () => await estimateDeployPoiGas(publicClient, keystore.account, params))
  await confirmTransaction({
    action: 'deploy the poi contracts (OperatorRegistry, ModelRegistry, IdentityRegistry, ValidationRegistry, TaskManager, SlashingManager)',
    from: keystore.account.address,
    to: null,
    value: 0n,
    gas: gas.total,
    notes: [
      `gas is the sum over the ${POI_DEPLOY_ORDER.length} deployments (${POI_DEPLOY_ORDER.map(name => `${name} ${gas.perContract[name]}`).join(', ')}); OperatorRegistry.setSlasher, ModelRegistry.bindTaskManager and OperatorRegistry.setGuardian follow, then governance: a TimelockController and a PoiGovernor are deployed, the governor gets the timelock's proposer and canceller roles, and the three governed contracts' ownership goes to the timelock`,
      `min stake ${formatEther(params.minStake)} ETH, epoch ≥ ${params.epochDuration} s, exit delay ${params.exitDelay} s, quorum ${params.quorumBps} bps, max epoch age ${params.maxEpochAge}`,
      `protocol fee ${params.protocolFeeBps} bps, min task fee ${formatEther(params.minTaskFee)}, treasury ${params.treasury === '0x0000000000000000000000000000000000000000' ? keystore.account.address : params.treasury}`,
      `writes ${file}`
    ]
  }, values.yes === true, out)
  const deployment = await deployPoi(wallet, publicClient, params)
  await writeDeployment(file, { rpcUrl: values.rpc, ...deployment })
  out.event({ event: 'deployed', file, rpcUrl: values.rpc, ...deployment }, [
    `deployed on chain ${deployment.chainId} from block ${deployment.deployedAtBlock}; wrote ${file}`,
    `  OperatorRegistry    ${deployment.registry}`,
    `  TaskManager         ${deployment.taskManager}`,
    `  SlashingManager     ${deployment.slashing}`,
    `  ModelRegistry       ${deployment.modelRegistry}`,
    `  IdentityRegistry    ${deployment.identityRegistry}`,
    `  ValidationRegistry  ${deployment.validationRegistry}`,
    ...(deployment.governor !== undefined ? [`  PoiGovernor         ${deployment.governor}`, `  Timelock            ${deployment.timelock} (owns every parameter setter)`] : []),
    `next: operators run \`poi operator register --stake <eth> --chain ${file} --keystore <dir>\`, then \`poi epoch advance --chain ${file}\``
  ].join('\n'))
}

/** The chain of `--chain` and the keystore's wallet on it. */
async function lifecycleContext (command: string, values: Record<string, unknown>): Promise<{ chain: ChainClient, wallet: Wallet, rpc: string, chainFile: string }> {
  if (typeof values.chain !== 'string') throw new UsageError(`poi ${command} needs --chain <deployment.json>: the network's contracts and RPC URL (\`poi chain deploy\` writes one)`)
  const config = await nodeConfig(values)
  const keystore = await loadKeystore(config.keystore)
  const chain = await ChainClient.connect(config.chain!, keystore.account)
  return { chain, wallet: chain.walletClient!, rpc: chain.config.rpcUrl, chainFile: values.chain }
}

async function registryNow (chain: ChainClient): Promise<{ state: RegistryState, now: bigint }> {
  const rpc = chain.config.rpcUrl
  const [state, block] = await Promise.all([
    readChain('the registry\'s parameters and epoch', rpc, async () => await readRegistryState(chain.publicClient, chain.config.registry)),
    readChain('the latest block', rpc, async () => await chain.publicClient.getBlock())
  ])
  return { state, now: block.timestamp }
}

/** When the next epoch may start, as a sentence. */
function nextEpochAt (state: RegistryState, now: bigint): string {
  return formatUnlock(state.lastEpochStart + state.epochDuration, now)
}

/** `poi operator register --stake <eth> --chain <deployment.json> [--keystore <dir>]`. */
export async function runRegister (values: LifecycleValues & { stake?: string }): Promise<void> {
  if (values.stake === undefined) throw new UsageError('poi operator register needs --stake <eth>: the ETH staked (at least the registry\'s minimum; `poi operator status` shows it)')
  const stake = parseAmount(values.stake, ETH, '--stake')
  const { chain, wallet, rpc, chainFile } = await lifecycleContext('operator register', values)
  const out = new CliOutput(values.json === true)
  const account = wallet.account.address
  const keystore = await loadKeystore((await nodeConfig(values)).keystore)
  const [op, { state, now }] = await Promise.all([
    readChain(`the registration of ${account}`, rpc, async () => await readOperatorRecord(chain.publicClient, chain.config.registry, account)),
    registryNow(chain)
  ])
  if (op.registered) {
    throw new OperatorStateError(`${account} is already registered (stake ${formatEther(op.stake)} ETH, counted from epoch ${op.firstEpoch}${op.exitRequestedAt > 0n ? ', exiting' : ''}): see \`poi operator status --chain ${chainFile}\`; to register again, exit and withdraw first`)
  }
  if (stake < state.minStake) throw new OperatorStateError(`--stake ${formatEther(stake)} ETH is below the registry's minimum of ${formatEther(state.minStake)} ETH`)
  const { pubkey, proofOfPossession } = registrationCalldata(keystore.blsSecretKey, account)
  const gas = await estimate('registering', async () => await chain.publicClient.estimateContractGas({
    account: wallet.account, address: chain.config.registry, abi: OperatorRegistryAbi, functionName: 'register', args: [pubkey, proofOfPossession], value: stake
  }))
  await confirmTransaction({
    action: `register ${account} as an operator with ${formatEther(stake)} ETH stake`,
    from: account,
    to: chain.config.registry,
    value: stake,
    gas,
    notes: [`BLS key from ${keystore.dir}, with its proof of possession`, `counts from epoch ${state.currentEpoch + 1n}, once it starts`]
  }, values.yes === true, out)
  const receipt = await refusedAs('the registration', async () => await registerOperator(wallet, chain.publicClient, chain.config.registry, keystore.blsSecretKey, stake))
  const firstEpoch = state.currentEpoch + 1n
  out.event({ event: 'operator-registered', operator: account, stake, firstEpoch, txHash: receipt.transactionHash }, [
    `registered  ${account} with ${formatEther(stake)} ETH (tx ${receipt.transactionHash})`,
    `next        it joins the operator set when epoch ${firstEpoch} starts: \`poi epoch advance --chain ${chainFile}\` (possible from ${nextEpochAt(state, now)}), then start the node with \`poi operator --chain ${chainFile} --keystore <dir> --bootstrap <addr>\``
  ].join('\n'))
}

/** `poi operator status --chain <deployment.json> [--keystore <dir> | --address <0x…>]`. */
export async function runStatus (values: LifecycleValues & { address?: string }): Promise<void> {
  if (typeof values.chain !== 'string') throw new UsageError('poi operator status needs --chain <deployment.json>: the network\'s contracts and RPC URL')
  const out = new CliOutput(values.json === true)
  const config = await nodeConfig(values)
  let operator: `0x${string}`
  if (values.address !== undefined) operator = address(values.address, 'address')!
  else operator = (await loadKeystore(config.keystore)).account.address
  const chain = await ChainClient.connect(config.chain!)
  const rpc = chain.config.rpcUrl
  const [op, { state, now }] = await Promise.all([
    readChain(`the registration of ${operator}`, rpc, async () => await readOperatorRecord(chain.publicClient, chain.config.registry, operator)),
    registryNow(chain)
  ])
  const inCurrentEpoch = state.currentEpoch > 0n && (await readChain('the current operator set', rpc, async () => await chain.operatorSet())).operators.some(o => isAddressEqual(o.address, operator))
  const exiting = op.registered && op.exitRequestedAt > 0n
  const withdrawable = exiting ? await readChain('the stake\'s unlock', rpc, async () => await readWithdrawableAt(chain.publicClient, chain.config.registry, op, state)) : undefined
  const epochs = Array.from({ length: Number(state.currentEpoch) }, (_, i) => BigInt(i + 1))
  const [pendingRewards, reputation] = await Promise.all([
    readChain(`the rewards of ${operator}`, rpc, async () => await readPendingRewards(chain.publicClient, chain.config, operator, epochs)),
    readChain(`the reputation of ${operator}`, rpc, async () => await readReputation(chain.publicClient, chain.config.taskManager, operator))
  ])
  out.event({
    event: 'operator-status',
    operator,
    registered: op.registered,
    stake: op.stake,
    firstEpoch: op.registered ? op.firstEpoch : null,
    currentEpoch: state.currentEpoch,
    inCurrentEpoch,
    exitRequestedAt: exiting ? Number(op.exitRequestedAt) : null,
    exitEpoch: exiting ? op.exitEpoch : null,
    withdrawableAt: withdrawable !== undefined ? Number(withdrawable.at) : null,
    withdrawableEpoch: withdrawable !== undefined ? withdrawable.epoch : null,
    pendingRewards,
    reputation: { signed: `${reputation.signed}`, missed: `${reputation.missed}`, slashings: reputation.slashings }
  }, [
    `operator    ${operator}`,
    `registered  ${op.registered ? `yes, ${formatEther(op.stake)} ETH stake, counted from epoch ${op.firstEpoch}` : 'no (`poi operator register --stake <eth>` registers it)'}`,
    `epoch       ${state.currentEpoch}: ${inCurrentEpoch ? 'in its operator set' : 'not in its operator set'}${!inCurrentEpoch && op.registered && !exiting && op.firstEpoch > state.currentEpoch ? ` (joins at epoch ${op.firstEpoch}: \`poi epoch advance\`, possible from ${nextEpochAt(state, now)})` : ''}`,
    ...(exiting && withdrawable !== undefined
      ? [`exit        requested ${formatUnlock(op.exitRequestedAt, now)}; out of the set from epoch ${op.exitEpoch}`,
          `withdraw    from ${formatUnlock(withdrawable.at, now)}${withdrawable.epochsToGo > 0n ? ` at the earliest: epoch ${withdrawable.epoch} must have started (${withdrawable.epochsToGo} more)` : ''}`]
      : []),
    `rewards     ${formatEther(pendingRewards)} to claim (\`poi rewards --claim\`)`,
    `reputation  signed ${reputation.signed} certificates, missed ${reputation.missed}, slashed ${reputation.slashings} time${reputation.slashings === 1 ? '' : 's'}`
  ].join('\n'))
}

/** `poi operator exit --chain <deployment.json> [--keystore <dir>]`. */
export async function runExit (values: LifecycleValues): Promise<void> {
  const { chain, wallet, rpc, chainFile } = await lifecycleContext('operator exit', values)
  const out = new CliOutput(values.json === true)
  const account = wallet.account.address
  const [op, { state, now }] = await Promise.all([
    readChain(`the registration of ${account}`, rpc, async () => await readOperatorRecord(chain.publicClient, chain.config.registry, account)),
    registryNow(chain)
  ])
  if (!op.registered) throw new OperatorStateError(`${account} is not registered: nothing to exit (\`poi operator register --stake <eth>\` registers it)`)
  if (op.exitRequestedAt > 0n) {
    const w = await readWithdrawableAt(chain.publicClient, chain.config.registry, op, state)
    throw new OperatorStateError(`${account} already asked to exit; its stake can be withdrawn from ${formatUnlock(w.at, now)} with \`poi operator withdraw --chain ${chainFile}\``)
  }
  const gas = await estimate('exiting', async () => await chain.publicClient.estimateContractGas({
    account: wallet.account, address: chain.config.registry, abi: OperatorRegistryAbi, functionName: 'requestExit'
  }))
  await confirmTransaction({
    action: `ask to take ${account} out of the operator set from epoch ${state.currentEpoch + 1n}`,
    from: account,
    to: chain.config.registry,
    value: 0n,
    gas,
    notes: [`the stake (${formatEther(op.stake)} ETH) stays slashable until the exit delay and ${state.maxCertificateAge} more epochs have passed`]
  }, values.yes === true, out)
  const receipt = await refusedAs('the exit', async () => await requestExit(wallet, chain.publicClient, chain.config.registry))
  const after = await readOperatorRecord(chain.publicClient, chain.config.registry, account)
  const w = await readWithdrawableAt(chain.publicClient, chain.config.registry, after, await readRegistryState(chain.publicClient, chain.config.registry))
  out.event({ event: 'operator-exit', operator: account, exitEpoch: after.exitEpoch, withdrawableAt: Number(w.at), withdrawableEpoch: w.epoch, txHash: receipt.transactionHash }, [
    `exiting     ${account}: out of the operator set from epoch ${after.exitEpoch} (tx ${receipt.transactionHash})`,
    `withdraw    from ${formatUnlock(w.at, now)} at the earliest, once epoch ${w.epoch} has started: \`poi operator withdraw --chain ${chainFile}\``
  ].join('\n'))
}

/** `poi operator withdraw --chain <deployment.json> [--keystore <dir>]`: the stake of an exited operator. */
export async function runStakeWithdraw (values: LifecycleValues): Promise<void> {
  const { chain, wallet, rpc, chainFile } = await lifecycleContext('operator withdraw', values)
  const out = new CliOutput(values.json === true)
  const account = wallet.account.address
  const [op, { state, now }] = await Promise.all([
    readChain(`the registration of ${account}`, rpc, async () => await readOperatorRecord(chain.publicClient, chain.config.registry, account)),
    registryNow(chain)
  ])
  if (!op.registered || op.exitRequestedAt === 0n) {
    throw new OperatorStateError(op.registered
      ? `${account} has not asked to exit: run \`poi operator exit --chain ${chainFile}\` first, then withdraw once the stake unlocks`
      : `${account} is not registered: no stake to withdraw`)
  }
  await checkWithdrawable(chain, op, state, now, chainFile)
  const gas = await estimate('withdrawing the stake', async () => await chain.publicClient.estimateContractGas({
    account: wallet.account, address: chain.config.registry, abi: OperatorRegistryAbi, functionName: 'withdraw'
  }))
  await confirmTransaction({
    action: `withdraw the stake of ${account} (${formatEther(op.stake)} ETH) and leave the registry`,
    from: account,
    to: chain.config.registry,
    value: 0n,
    gas,
    notes: []
  }, values.yes === true, out)
  const { amount, receipt } = await refusedAs('the withdrawal', async () => await withdrawStake(wallet, chain.publicClient, chain.config.registry))
  out.event({ event: 'stake-withdrawn', operator: account, amount, txHash: receipt.transactionHash },
    `withdrawn   ${formatEther(amount)} ETH stake to ${account} (tx ${receipt.transactionHash}); the account is no longer registered`)
}

/** Throws TooEarlyError, with the date and what to run, when the registry would refuse withdraw() now. */
async function checkWithdrawable (chain: ChainClient, op: OperatorRecord, state: RegistryState, now: bigint, chainFile: string): Promise<void> {
  const w = await readWithdrawableAt(chain.publicClient, chain.config.registry, op, state)
  if (w.epochsToGo > 0n) {
    throw new TooEarlyError(`the stake is still certifiable: epoch ${w.epoch} must start first (current ${state.currentEpoch}; \`poi epoch advance --chain ${chainFile}\`, next possible from ${nextEpochAt(state, now)}); it can be withdrawn from ${formatUnlock(w.at, now)} at the earliest`, w.at)
  }
  if (now < w.at) throw new TooEarlyError(`the stake is still locked: it can be withdrawn from ${formatUnlock(w.at, now)}; run \`poi operator withdraw\` again then`, w.at)
}

async function estimate (what: string, run: () => Promise<bigint>): Promise<bigint> {
  try {
    return await run()
  } catch (err) {
    throw explainRevert(what, err)
  }
}

/** `send()`, with a contract refusal said in words (a race with the checks above, or an unforeseen case). */
async function refusedAs<T> (what: string, send: () => Promise<T>): Promise<T> {
  try {
    return await send()
  } catch (err) {
    throw explainRevert(what, err)
  }
}

/** The registry's named errors as what to do next. */
function explainRevert (what: string, err: unknown): Error {
  const name = contractErrorName(err)
  const args = contractErrorArgs(err)
  const at = (v: unknown): string => new Date(Number(v) * 1000).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC')
  switch (name) {
    case 'ExitNotReady': return new TooEarlyError(`${what}: the stake is still locked until ${at(args?.[0])}; run \`poi operator withdraw\` again then`, BigInt(args?.[0] as bigint))
    case 'StakeStillCertifiable': return new TooEarlyError(`${what}: the stake stays certifiable until epoch ${String(args?.[0])} starts (\`poi epoch advance\`)`)
    case 'EpochNotOver': return new TooEarlyError(`${what}: the current epoch lasts until ${at(args?.[0])}; run \`poi epoch advance\` then`, BigInt(args?.[0] as bigint))
    case 'AlreadyRegistered': return new OperatorStateError(`${what}: this account is already registered (\`poi operator status\`)`)
    case 'KeyAlreadyUsed': return new OperatorStateError(`${what}: this keystore's BLS key was registered before (keys are never reused): generate a new keystore with \`poi keys generate\``)
    case 'StakeTooLow': return new OperatorStateError(`${what}: the stake ${formatEther(BigInt(args?.[0] as bigint))} ETH is below the minimum ${formatEther(BigInt(args?.[1] as bigint))} ETH`)
    case 'NotRegistered': return new OperatorStateError(`${what}: this account is not registered`)
    case 'AlreadyExiting': return new OperatorStateError(`${what}: this account already asked to exit (\`poi operator status\`)`)
    case 'NotExiting': return new OperatorStateError(`${what}: this account has not asked to exit (\`poi operator exit\`)`)
    case 'TooManyOperators': return new OperatorStateError(`${what}: the registry holds its maximum of ${String(args?.[0])} operators`)
    default: return new LifecycleRefusedError(what, err)
  }
}

/** `poi epoch advance --chain <deployment.json> [--keystore <dir>]`: anyone may start the next epoch once the current one has lasted epochDuration. */
export async function runAdvance (values: LifecycleValues): Promise<void> {
  const { chain, wallet } = await lifecycleContext('epoch advance', values)
  const out = new CliOutput(values.json === true)
  const { state, now } = await registryNow(chain)
  const readyAt = state.lastEpochStart + state.epochDuration
  if (now < readyAt) throw new TooEarlyError(`epoch ${state.currentEpoch} lasts at least ${state.epochDuration} s: the next epoch may start from ${formatUnlock(readyAt, now)}; run \`poi epoch advance\` again then`, readyAt)
  const gas = await estimate('advancing the epoch', async () => await chain.publicClient.estimateContractGas({
    account: wallet.account, address: chain.config.registry, abi: OperatorRegistryAbi, functionName: 'advanceEpoch'
  }))
  await confirmTransaction({
    action: `start epoch ${state.currentEpoch + 1n} (snapshot the registered operators)`,
    from: wallet.account.address,
    to: chain.config.registry,
    value: 0n,
    gas,
    notes: []
  }, values.yes === true, out)
  const { epoch, receipt } = await refusedAs('advancing the epoch', async () => await advanceEpoch(wallet, chain.publicClient, chain.config.registry))
  const set = await chain.operatorSet(epoch)
  out.event({ event: 'epoch-started', epoch, operators: set.operators.length, totalStake: set.totalStake, txHash: receipt.transactionHash },
    `epoch ${epoch} started with ${set.operators.length} operator${set.operators.length === 1 ? '' : 's'}, total stake ${formatEther(set.totalStake)} ETH (tx ${receipt.transactionHash})`)
}
