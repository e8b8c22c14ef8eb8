/**
 * `poi devnet` (`npm start`): a whole network on this machine (node/cli/local-network.ts), a
 * task for the shipped model end to end with its certificate settled on-chain, then tasks for
 * real models from npm. What it reports it has waited for: the operators' model fetches are
 * counted once every operator has finished (or failed) each one.
 */
import { rmSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { constants as osConstants, tmpdir } from 'node:os'
import { basename, join, resolve } from 'node:path'
import { hexToBytes } from 'viem'
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import { MAX_INLINE_INPUT_BYTES, PoiError, to0xHex } from '../../protocols/wire/index.js'
import { resolveConfig } from '../config.js'
import { NpmModelNotInstalledError, modelDirFromNpm, npmModelSampleInput } from '../fixtures/index.js'
import { DEVNET_PROVER, DEVNET_ZK_CONTRIBUTORS, formatZkDemo, prepareZkModel, runZkDemo } from './devnet-zk.js'
import { encodeTensorFile, formatCanonicalOutput, loadModelDir, modelIdToString, SHIPPED_MODEL_DIR } from '../inference/index.js'
import { TaskManagerAbi, deposit, readVault } from '../../contracts/index.js'
import { ChainClient, type AcceptedCertificate } from '../chain-client.js'
import { PoiNode } from '../poi-node.js'
import { fetchOutput, requestInference, waitForNetwork, type RequestResult } from '../requester/index.js'
import { UsageError, num, type OptionValues } from './args.js'
import { killOwnedNow, stopOwned } from './children.js'
import {
  DEVNET_PID_FILE, DEVNET_RECORD_FILE, DEVNET_RECORD_VERSION, DEVNET_STATE_FILE, DevnetResumeError, checkNotRunning, checkStateFile, readDevnetRecord,
  removePidFileSync, writeDevnetRecord, writePidFile, type DevnetRecord
} from './devnet-state.js'
import { ChildNode, openNodeDir, prepareNodeDir } from './launcher.js'
import { startLocalNetwork, type LocalNetwork } from './local-network.js'
import { waitForModels, type ModelOutcome } from './model-wait.js'
import { formatFeeSplit, readFeeSplit, readPayees, snapshotPayees } from './fee-split.js'
import { formatAmount, readAsset, readTaskFee, type PaymentAsset } from './payment-setup.js'
import { formatSummary } from './summary.js'
import { DEVNET_BATCH_MAX_WAIT_MS, DEVNET_BATCH_REQUESTERS, DEVNET_BATCH_TASKS_PER_REQUESTER, formatBatchDemo, runBatchDemo } from './devnet-batch.js'

// Kept here for the tests and benchmarks that import them from the devnet.
export { DEVNET_CHAIN_ID, DEVNET_TASK_MANAGER, STAKE_WEI } from './network-defaults.js'
export { startLocalNetwork, DEVNET_MODEL_FEE, DEVNET_TREASURY } from './local-network.js'
export type { LocalNetwork, LocalNetworkOptions } from './local-network.js'

export const DEFAULT_DEVNET_OPERATORS = 4
/** A certificate needs 3 signers. */
const MIN_DEVNET_OPERATORS = 3
const DEVNET_TASK_TIMEOUT_MS = 30_000
/** How long the devnet waits for the aggregator's transaction after the QC formed. */
const SETTLEMENT_TIMEOUT_MS = 30_000
/**
 * How long every operator may take to fetch every registered model through the DHT, from the
 * moment the network is up: the 579 KB classifier takes well under a second on loopback, and
 * 7.5 s was seen with the machine busy.
 */
const MODEL_FETCH_TIMEOUT_MS = 60_000

/** Gas money and deposit for the devnet's requester: the deposit pays for far more tasks than it runs. */
const DEVNET_REQUESTER_FUNDING_WEI = 10n * 10n ** 18n
const DEVNET_REQUESTER_DEPOSIT_WEI = 10n ** 18n
/** A resumed devnet's requester deposits again only below this: a tenth of the deposit still pays ~90 tasks of the shipped model (0.0011 ETH). */
const DEVNET_REQUESTER_TOPUP_BELOW_WEI = DEVNET_REQUESTER_DEPOSIT_WEI / 10n

/**
 * The PaddleOCR text-direction classifier: a real model (579 KB, so it travels as a shard)
 * whose 110 KB sample input is above the inline limit, so the default devnet also sends an
 * input by stream reference.
 */
export const DEFAULT_DEVNET_NPM_MODELS = ['ppocr-cls']

/** A deterministic example input for the shipped 16-feature classifier. */
export function exampleInput (seed = 1): Uint8Array {
  const data = Array.from({ length: 16 }, (_, i) => Math.round(Math.sin(seed * 7.1 + i * 1.3) * 1000) / 1000)
  return new TextEncoder().encode(JSON.stringify({ x: { dims: [1, 16], data } }))
}

/** The devnet found something wrong in what it ran (the chain and the certificate disagree, …). */
export class DevnetError extends PoiError {
  constructor (message: string) {
    super('ERR_DEVNET', message)
  }
}

export interface DevnetOptions {
  operators?: number
  keep?: boolean
  dir?: string
  /** With `dir`: delete the devnet already there (keys, data, logs) and start over. */
  force?: boolean
  /** Without a chain: the operator set from a genesis file, certificates only off-chain. */
  offchain?: boolean
  /** Real models from npm dev dependencies to run after the shipped one (NPM_MODELS keys); default DEFAULT_DEVNET_NPM_MODELS. */
  npmModels?: string[]
  /** After the tasks: change a parameter through governance (propose, vote, queue, execute) and print it before and after (devnet-gov.ts). */
  gov?: boolean
  /** After the tasks: tab tasks from two requesters settled in one batch on chain, each leaf proved by Merkle proof (devnet-batch.ts). */
  batch?: boolean
  /** After the tasks: one zk-tier task, proved by operator 0 and settled on chain with its proof (devnet-zk.ts). */
  zk?: boolean
}

/** `poi devnet`'s flags (declared with their help in program.ts). */
const DEVNET_OPTIONS = {
  operators: { type: 'string' }, keep: { type: 'boolean' }, dir: { type: 'string' }, force: { type: 'boolean' }, offchain: { type: 'boolean' }, 'npm-models': { type: 'string' }, gov: { type: 'boolean' }, batch: { type: 'boolean' }, zk: { type: 'boolean' }
} as const

/** `poi devnet [--operators <n>] [--keep] [--dir <dir> [--force]] [--offchain] [--npm-models <keys|none>] [--gov] [--batch] [--zk]` */
export async function runDevnetCommand (values: OptionValues<typeof DEVNET_OPTIONS>): Promise<number> {
  const npm = values['npm-models']
  const npmModels = npm === undefined ? undefined : npm === 'none' ? [] : npm.split(',').map(k => k.trim()).filter(k => k !== '')
  if (values.force === true && values.dir === undefined) throw new UsageError('--force needs --dir: it deletes the devnet in that directory and starts over')
  return await runDevnet({ operators: num(values.operators, 'operators'), keep: values.keep === true, dir: values.dir, force: values.force === true, offchain: values.offchain === true, npmModels, gov: values.gov === true, batch: values.batch === true, zk: values.zk === true })
}

/** The signals that stop a devnet: Ctrl-C (also what npm passes on), `kill`, and a closed terminal. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const
/** How many lines of each node's log a failed devnet prints before it deletes its temporary directory. */
const FAILED_LOG_LINES = 15

/** Whether `<root>/<name>` has a node's keystore (a resumed devnet's requester may not: the first run may have stopped before it). */
async function isNodeDir (root: string, name: string): Promise<boolean> {
  return await stat(join(root, name, 'keys')).then(s => s.isDirectory(), () => false)
}

/** A directory a devnet made: it has the bootstrap node's keys. */
async function isDevnetDir (dir: string): Promise<boolean> {
  return await isNodeDir(dir, 'bootstrap')
}

/**
 * The devnet's `--dir`: a new or empty directory (a new devnet), one a stopped devnet left (its
 * record, to resume it), or with `force` one a devnet made, emptied. A devnet still running
 * there is never touched.
 */
async function prepareDevnetDir (dir: string, force: boolean): Promise<DevnetRecord | undefined> {
  const entries = await readdir(dir).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return []; throw err })
  // Only a pid file: a devnet stopped before it made its keys, or one starting right now.
  if (entries.every(e => e === DEVNET_PID_FILE)) {
    await checkNotRunning(dir, undefined)
    return undefined
  }
  if (!await isDevnetDir(dir)) {
    throw new UsageError(force
      ? `${dir} is not empty and holds no devnet (no bootstrap/keys): --force deletes only a devnet's directory; pick an empty or new --dir`
      : `${dir} is not empty and holds no devnet: pick an empty or new --dir`)
  }
  if (force) {
    // A damaged record must not stop --force; a live devnet must (its processes would write into the emptied directory).
    await checkNotRunning(dir, await readDevnetRecord(dir).catch(() => undefined))
    await Promise.all(entries.map(async e => await rm(join(dir, e), { recursive: true, force: true })))
    return undefined
  }
  const record = await readDevnetRecord(dir)
  if (record === undefined) {
    throw new DevnetResumeError(`${dir} holds a devnet that cannot be resumed: it has no ${DEVNET_RECORD_FILE} (it was stopped before it finished starting, or an older poi made it): pass --force to delete it and start over, or pick another --dir`)
  }
  await checkNotRunning(dir, record)
  if (record.chain) await checkStateFile(dir)
  return record
}

/** What a resume takes from the record; an option that says otherwise is refused rather than silently ignored. */
function resumedOptions (dir: string, record: DevnetRecord, opts: DevnetOptions): { operators: number, offchain: boolean, npmModels: string[] } {
  const conflict = (what: string): UsageError => new UsageError(`${what}: a resumed devnet keeps what it was made with; drop the option, or pass --force to delete the devnet in ${dir} and start over with it`)
  if (opts.operators !== undefined && opts.operators !== record.operators) throw conflict(`--operators ${opts.operators} differs from the devnet's ${record.operators} operators`)
  if (opts.offchain === true && record.chain) throw conflict('--offchain, but the devnet runs on a chain')
  if (opts.batch === true && !record.chain) throw new UsageError(`--batch settles tab tasks on the devnet's chain, but the devnet in ${dir} runs without one (--offchain); pass --force to start it over on a chain`)
  if (opts.gov === true && !record.chain) throw new UsageError(`--gov changes a parameter on the devnet's chain, but the devnet in ${dir} runs without one (--offchain); pass --force to start it over on a chain`)
  if (opts.zk === true && !record.chain) throw new UsageError(`--zk settles a proof on the devnet's chain, but the devnet in ${dir} runs without one (--offchain); pass --force to start it over on a chain`)
  if (opts.npmModels !== undefined && opts.npmModels.join(',') !== record.npmModels.join(',')) {
    throw conflict(`--npm-models ${opts.npmModels.join(',') || 'none'} differs from the devnet's ${record.npmModels.join(',') || 'none'}`)
  }
  return { operators: record.operators, offchain: !record.chain, npmModels: record.npmModels }
}

/** The last lines of every node's log in `root`, for a failed devnet whose directory is about to go. */
async function logTails (root: string): Promise<string> {
  const logs = (await readdir(root).catch(() => [])).filter(f => f.endsWith('.log')).sort()
  const tails = await Promise.all(logs.map(async f => {
    const lines = (await readFile(join(root, f), 'utf8').catch(() => '')).trimEnd().split('\n')
    return `--- ${f} (last ${Math.min(lines.length, FAILED_LOG_LINES)} lines)\n${lines.slice(-FAILED_LOG_LINES).join('\n')}`
  }))
  return tails.join('\n')
}

interface ExtraModel { key: string, dir: string, modelId: Uint8Array, name: string }

/** `poi devnet` / `npm start`: a whole network on this machine, tasks end to end. */
export async function runDevnet (options: DevnetOptions): Promise<number> {
  const started = Date.now()
  const resumed = options.dir != null ? await prepareDevnetDir(resolve(options.dir), options.force === true) : undefined
  const opts = resumed != null ? { ...options, ...resumedOptions(resolve(options.dir!), resumed, options) } : options
  const n = opts.operators ?? DEFAULT_DEVNET_OPERATORS
  if (n < MIN_DEVNET_OPERATORS) throw new UsageError(`a devnet needs at least ${MIN_DEVNET_OPERATORS} operators (a certificate needs ${MIN_DEVNET_OPERATORS} signers), got ${n}`)
  const root = opts.dir != null ? resolve(opts.dir) : await mkdtemp(join(tmpdir(), 'poi-devnet-'))
  const progress = (line: string): void => { console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`) }
  // The temporary directory holds private keys: it goes on every exit unless --dir or --keep keeps it.
  const keepDir = opts.dir != null || opts.keep === true
  if (opts.dir != null) { await mkdir(root, { recursive: true }); await writePidFile(root) }
  const removeDir = (): void => { if (!keepDir) rmSync(root, { recursive: true, force: true }); else if (opts.dir != null) removePidFileSync(root) }
  // While --keep waits, a signal is the normal way to stop; before, it cuts the run short.
  let keeping: (() => void) | undefined
  let stopping = false
  const onSignal = (signal: typeof STOP_SIGNALS[number]): void => {
    if (keeping != null) { const stop = keeping; keeping = undefined; stop(); return }
    const code = 128 + osConstants.signals[signal]
    if (stopping) { killOwnedNow(); removeDir(); process.exit(code) } // a second Ctrl-C: now
    stopping = true
    progress(`${signal}: stopping every node and anvil${keepDir ? '' : ` and deleting ${root}`}`)
    stopOwned().finally(() => { removeDir(); process.exit(code) })
  }
  // Whatever ends this process (an uncaught error, process.exit), no child and no key outlives it.
  const onExit = (): void => { killOwnedNow(); removeDir() }
  for (const s of STOP_SIGNALS) process.on(s, onSignal)
  process.on('exit', onExit)
  const waitForStop = async (): Promise<void> => { await new Promise<void>(resolve => { keeping = resolve }) }
  // Once a signal is stopping the devnet, what fails because its nodes are gone is no news: the
  // run waits for the signal's exit instead of reporting it.
  const interrupted = async (): Promise<never> => await new Promise<never>(() => {})
  try {
    return await runDevnetIn(opts, n, { root, keepDir, resume: resumed != null, progress, waitForStop, interrupted: () => stopping ? interrupted() : undefined })
  } catch (err) {
    if (stopping) return await interrupted()
    // The network did not start: its logs say why, and the directory they are in is about to go.
    if (!keepDir) console.error(await logTails(root))
    removeDir()
    throw err
  } finally {
    for (const s of STOP_SIGNALS) process.off(s, onSignal)
    process.off('exit', onExit)
    if (opts.dir != null) removePidFileSync(root)
  }
}

/** The network page of every node (`--http` on a free port each), the aggregator's first: what a person opens in a browser. */
export function networkPages (net: Pick<LocalNetwork, 'aggregator' | 'bootstrap' | 'operators'>): string {
  const nodes = [net.aggregator, net.bootstrap, ...net.operators]
  const width = Math.max(...nodes.map(n => n.name.length))
  return ['network pages (open in a browser; they update live):', ...nodes.map(n => `  ${n.name.padEnd(width)}  ${n.httpUrl != null ? `${n.httpUrl}/` : '(no HTTP API)'}`)].join('\n')
}

/** How long `poi gateway` may take to print its gateway-ready line: a node's start-up (READY_TIMEOUT_MS in local-network.ts) and the light peer's first connection. */
const GATEWAY_READY_TIMEOUT_MS = 60_000

/**
 * `poi gateway` on a free loopback port, joined through the bootstrap node, with a keystore of
 * its own (`<root>/gateway/keys`) funded and deposited like the requester's (on a chain every
 * task is paid); its log is `<root>/gateway.log`. Not the requester's keys: the requester peer
 * has just left the network, and gossipsub peers refuse a peer id they pruned for a minute
 * (the prune backoff), so a gateway with that peer id formed no mesh and its first tasks failed
 * ERR_NOT_CONNECTED. A gateway that does not start is reported, not fatal: the network stays up.
 */
async function startDevnetGateway (net: LocalNetwork, resume: boolean, progress: (line: string) => void, stopped: Promise<void>): Promise<{ node: ChildNode, url: string } | undefined> {
  const logFile = join(net.root, 'gateway.log')
  let node: ChildNode | undefined
  try {
    const dirs = resume && await isNodeDir(net.root, 'gateway') ? await openNodeDir(net.root, 'gateway') : await prepareNodeDir(net.root, 'gateway')
    if (net.chain != null) await fundRequester(net, dirs.keys.account, resume, progress)
    const source = net.chain != null ? ['--chain', net.chain.deploymentPath] : ['--genesis', net.genesisPath]
    progress(`starting a requester gateway (poi gateway, tasks signed and paid by ${dirs.keys.account.address})`)
    node = new ChildNode('gateway', ['gateway', '--keystore', dirs.keystore, '--data-dir', dirs.dataDir, '--bootstrap', net.bootstrapAddr, ...source, '--http', '127.0.0.1:0'], logFile)
    const ready = node.waitForEvent('gateway-ready', () => true, GATEWAY_READY_TIMEOUT_MS, 'gateway-ready event')
    ready.catch(() => {}) // raced against a stop signal below, which may win
    const first = await Promise.race([ready, stopped.then(() => undefined)])
    if (first === undefined) {
      await node.stop()
      return undefined
    }
    return { node, url: first.url }
  } catch (err) {
    await node?.stop()
    progress(`the requester gateway did not start: ${(err as Error).message}`)
    return undefined
  }
}

/**
 * One shell line that exports the devnet's HTTP endpoints, for the README's "Try the HTTP API":
 * POI_NODE the aggregator, POI_OPERATOR the first operator, POI_GATEWAY the requester gateway,
 * POI_MODEL the shipped model's id.
 */
export function httpExports (net: Pick<LocalNetwork, 'aggregator' | 'operators'>, gatewayUrl: string | undefined, modelId: string): string {
  const vars = [['POI_NODE', net.aggregator.httpUrl], ['POI_OPERATOR', net.operators[0]?.httpUrl], ['POI_GATEWAY', gatewayUrl], ['POI_MODEL', modelId]]
    .flatMap(([name, value]) => value !== undefined ? [`${name}=${value}`] : [])
  return `HTTP API (paste in another shell, then see "Try the HTTP API" in the README):\nexport ${vars.join(' ')}`
}

/** Where a devnet runs and how it reports: its directory (kept or not), its progress lines, and the wait of --keep. */
interface DevnetRun {
  root: string
  keepDir: boolean
  /** The devnet in `root` is resumed (prepareDevnetDir found its record). */
  resume: boolean
  progress: (line: string) => void
  /** --keep: resolves on the first stop signal. */
  waitForStop: () => Promise<void>
  /** Once a signal is stopping the devnet: a promise that never settles (the signal's handler exits). */
  interrupted: () => Promise<never> | undefined
}

async function runDevnetIn (opts: DevnetOptions, n: number, { root, keepDir, resume, progress, waitForStop, interrupted }: DevnetRun): Promise<number> {
  // Real models are dev dependencies: without them (a production install) the devnet runs the shipped model only.
  const extraModels: ExtraModel[] = []
  for (const key of opts.npmModels ?? DEFAULT_DEVNET_NPM_MODELS) {
    try {
      const m = await modelDirFromNpm(key, join(root, 'models', key))
      extraModels.push({ key, dir: join(root, 'models', key), modelId: m.modelId, name: m.manifest.name })
    } catch (err) {
      if (!(err instanceof NpmModelNotInstalledError)) throw err
      progress(`skipping ${key}: ${err.message}`)
    }
  }
  const chain = opts.offchain !== true
  // A kept directory can be resumed: anvil saves its state there (DEVNET_STATE_INTERVAL_S and on stop).
  const stateFile = keepDir && chain ? join(root, DEVNET_STATE_FILE) : undefined
  if (opts.batch === true && !chain) throw new UsageError('--batch settles tab tasks on the devnet\'s chain: leave out --offchain')
  // --batch: the aggregator closes its batch at exactly the devnet's tab tasks (devnet-batch.ts), so they settle in one.
  const batchArgs = opts.batch === true
    ? ['--batch-max-leaves', String(DEVNET_BATCH_REQUESTERS * DEVNET_BATCH_TASKS_PER_REQUESTER), '--batch-max-wait-ms', String(DEVNET_BATCH_MAX_WAIT_MS)]
    : []
  if (opts.zk === true && !chain) throw new UsageError('--zk settles a proof on the devnet\'s chain: leave out --offchain')
  if (opts.zk === true && n < DEVNET_ZK_CONTRIBUTORS.length) throw new UsageError(`--zk needs at least ${DEVNET_ZK_CONTRIBUTORS.length} operators (they contribute to the circuit's setup)`)
  // --zk: the quantised model with its circuit (cached setup, or made now) is served by the bootstrap node and registered like the npm models; operator 0 proves.
  const zk = opts.zk === true ? await prepareZkModel(root, progress) : undefined
  const served = zk !== undefined ? [...extraModels, { dir: zk.dir, modelId: zk.model.modelId }] : extraModels
  const operatorArgs = zk !== undefined ? (i: number) => i === DEVNET_PROVER ? ['--no-model-dir', '--prove'] : ['--no-model-dir'] : undefined
  const net = await startLocalNetwork({ root, operators: n, progress, chain, extraModels: served, stateFile, resume, aggregatorArgs: batchArgs, operatorArgs })
  let requester: PoiNode | undefined
  let code = 1
  try {
    const requesterDir = resume && await isNodeDir(root, 'requester') ? await openNodeDir(root, 'requester') : await prepareNodeDir(root, 'requester')
    if (keepDir) {
      const rpcPort = net.chain != null ? Number(new URL(net.chain.client.config.rpcUrl).port) : undefined
      await writeDevnetRecord(root, {
        version: DEVNET_RECORD_VERSION,
        operators: n,
        chain,
        ...(net.chain != null ? { chainId: net.chain.anvil.chainId, rpcPort, deploymentFile: basename(net.chain.deploymentPath) } : {}),
        npmModels: opts.npmModels ?? DEFAULT_DEVNET_NPM_MODELS,
        nodes: ['bootstrap', ...net.operators.map(o => o.name), 'aggregator', 'requester']
      })
    }
    const model = await loadModelDir(SHIPPED_MODEL_DIR)
    const mlp = modelIdToString(model.modelId)
    // On a chain, operators prefetch every registered model from the start: wait for all of them.
    const prefetched = net.chain != null
      ? waitForModels(net.operators, [mlp, ...served.map(m => modelIdToString(m.modelId))], MODEL_FETCH_TIMEOUT_MS)
      : undefined
    prefetched?.catch(() => {}) // awaited below; a failure before then must not go unhandled
    const keys = requesterDir.keys
    const config = resolveConfig({ keystore: keys.dir, dataDir: join(root, 'requester', 'data'), genesis: net.genesisPath, bootstrap: [net.bootstrapAddr], listen: [], chain: net.chain?.client.config })
    requester = await PoiNode.start({ operate: false, aggregate: false, light: true, keystore: keys, config, operatorSet: net.operatorSet })
    // On a chain every task is paid: the requester funds its deposit before it asks anything.
    const paid = net.chain != null ? await fundRequester(net, keys.account, resume, progress) : undefined
    progress('requester (light peer) connecting')
    await waitForNetwork(requester)
    const fee = paid != null ? await readTaskFee(paid.chain, model.modelId) : undefined
    const payees = paid != null ? await readPayees(paid.chain, model.modelId, keys.account.address, await paid.chain.operatorSet()) : undefined
    const before = paid != null && payees != null ? await snapshotPayees(paid.chain, payees) : undefined
    progress(`sending a task for model ${model.manifest.name}${paid != null && fee != null ? `, fee ${formatAmount(fee.fee, paid.asset)} (model fee ${formatAmount(fee.modelFee, paid.asset)} + network minimum ${formatAmount(fee.minTaskFee, paid.asset)})` : ''}`)
    const result = await requestInference(requester, keys.account, { modelId: model.modelId, input: exampleInput(), timeoutMs: DEVNET_TASK_TIMEOUT_MS, fee: fee?.fee }, { onProgress: progress })
    console.log('\n' + formatSummary(result, net.operatorSet, `${model.manifest.name} (${mlp})`))
    // Without a chain there is no prefetch: the task made the operators fetch the model.
    const outcomes = await (prefetched ?? waitForModels(net.operators, [mlp], MODEL_FETCH_TIMEOUT_MS, { taskId: to0xHex(result.taskId) }))
    console.log(modelFetchLine(outcomes.filter(o => o.modelId === mlp), net.operators.length) + '\n')
    let singleGas: bigint | undefined
    if (net.chain != null) {
      const onChain = await reportSettlement(net, requester, result, progress)
      singleGas = onChain.gasUsed
      if (paid != null && payees != null && before != null && fee != null) {
        const split = await readFeeSplit(paid.chain, result.taskId, fee.fee, payees, before)
        if (split.charged !== fee.fee) throw new DevnetError(`the certificate charged ${split.charged} wei of the ${fee.fee} wei fee: the requester's deposit did not cover it`)
        console.log(formatFeeSplit(split, payees, result.signers, onChain.gasUsed, paid.asset).join('\n') + '\n')
      }
    }
    for (const m of extraModels) await runExtraModelTask(net, requester, keys.account, m, progress, paid?.chain)
    if (zk !== undefined && paid != null) {
      const report = await runZkDemo(net, requester, keys.account, zk, paid, progress)
      console.log('\n' + formatZkDemo(report, singleGas) + '\n')
    }
    if (opts.batch === true && net.chain != null) await runBatch(net, requester, keys.account, model, extraModels, singleGas, progress)
    if (opts.gov === true && net.chain != null) {
      await runGovernance(net, progress)
      if (paid != null) await runTaskAfterGovernance(net, requester, keys.account, model.modelId, paid, progress)
    }
    code = 0
  } catch (err) {
    const stopping = interrupted()
    if (stopping != null) return await stopping
    console.error(`devnet: ${(err as Error).message}\n` + (keepDir ? `node logs are in ${root}` : `${await logTails(root)}\n(pass --dir <dir> to keep the whole logs)`))
  } finally {
    await requester?.stop()
  }
  if (opts.keep === true) {
    // From here a signal is how the devnet ends (exit 0), also while the gateway starts.
    let stopRequested = false
    const stopped = waitForStop().then(() => { stopRequested = true })
    const source = net.chain != null ? `--rpc ${net.chain.client.config.rpcUrl}` : `--genesis ${net.genesisPath}`
    console.log(`network left running (Ctrl-C to stop; keys, data, chain state and logs in ${root}; \`poi devnet --dir ${root}\` resumes it). Bootstrap: ${net.bootstrapAddr}\ntry: poi request --bootstrap ${net.bootstrapAddr} ${source} --input '${new TextDecoder().decode(exampleInput(2))}'`)
    console.log(networkPages(net))
    // Started only now, so `npm start` without --keep does not pay for it.
    const gateway = await startDevnetGateway(net, resume, progress, stopped)
    try {
      if (!stopRequested) console.log(httpExports(net, gateway?.url, modelIdToString((await loadModelDir(SHIPPED_MODEL_DIR)).modelId)))
      await stopped
    } finally {
      await gateway?.node.stop()
    }
  }
  await net.stop()
  if (!keepDir) await rm(root, { recursive: true, force: true })
  progress(`${code === 0 ? 'done' : 'failed'}${opts.dir != null ? `; \`poi devnet --dir ${root}\` resumes this devnet` : ''}`)
  return code
}

/**
 * `--gov`: the governed change of devnet-gov.ts with the operators' keys, and the parameter
 * before and after. Loaded only then.
 */
async function runGovernance (net: LocalNetwork, progress: (line: string) => void): Promise<void> {
  const { runGovernanceDemo } = await import('./devnet-gov.js')
  const { formatValue } = await import('./gov-parameters.js')
  const operators = await Promise.all(net.operators.map(async o => (await openNodeDir(net.root, o.name)).keys))
  const r = await runGovernanceDemo(net.chain!.client, operators, progress)
  console.log([
    '',
    `governance  ${r.parameter} changed by proposal ${r.proposalId}: voted by ${operators.length} operators with their stake, executed by the timelock`,
    `  before    ${r.parameter} = ${formatValue(r.parameter, r.before)}`,
    `  after     ${r.parameter} = ${formatValue(r.parameter, r.after)}`,
    ''
  ].join('\n'))
}

/**
 * `--gov`: one more paid task for the shipped model once the protocol fee has changed, so the
 * change is seen where it matters: the treasury's share of the task's fee, computed by the
 * TaskManager with the new protocolFeeBps (of what is left after the model owner's fee).
 */
async function runTaskAfterGovernance (
  net: LocalNetwork, requester: PoiNode, account: PrivateKeyAccount, modelId: Uint8Array, paid: { chain: ChainClient, asset: PaymentAsset }, progress: (line: string) => void
): Promise<void> {
  const { chain, asset } = paid
  const feeBps = await chain.publicClient.readContract({ address: chain.config.taskManager, abi: TaskManagerAbi, functionName: 'protocolFeeBps' })
  const fee = await readTaskFee(chain, modelId)
  const payees = await readPayees(chain, modelId, account.address, await chain.operatorSet())
  const before = await snapshotPayees(chain, payees)
  progress(`sending another task for the shipped model, now with a protocol fee of ${feeBps} bps`)
  const result = await requestInference(requester, account, { modelId, input: exampleInput(3), timeoutMs: DEVNET_TASK_TIMEOUT_MS, fee: fee.fee }, { onProgress: progress })
  const settled = await net.chain!.client.waitForAcceptance(result.taskId, SETTLEMENT_TIMEOUT_MS)
  const split = await readFeeSplit(chain, result.taskId, fee.fee, payees, before)
  const expected = (split.charged - split.ownerShare) * BigInt(feeBps) / BPS
  if (split.protocolShare !== expected) throw new DevnetError(`the treasury's share of the task after the change is ${split.protocolShare} wei, not ${feeBps} bps of ${split.charged - split.ownerShare} wei (${expected} wei)`)
  console.log([
    `after the change: task ${to0xHex(result.taskId)} settled in ${settled.txHash}`,
    `  treasury    earned ${formatAmount(split.treasuryReceived, asset)}: ${feeBps} bps of the ${formatAmount(split.charged - split.ownerShare, asset)} left after the model owner's fee`,
    ''
  ].join('\n'))
}

/**
 * `--batch`: tab tasks of the devnet's requester and a second one, over the shipped model and the
 * first npm model, settled in one batch and proved leaf by leaf on chain (devnet-batch.ts).
 */
async function runBatch (
  net: LocalNetwork, requester: PoiNode, account: PrivateKeyAccount, model: { modelId: Uint8Array, manifest: { name: string } }, extraModels: ExtraModel[],
  singleGas: bigint | undefined, progress: (line: string) => void
): Promise<void> {
  const second = privateKeyToAccount(generatePrivateKey())
  await fundRequester(net, second, false, progress)
  const models = [
    { modelId: model.modelId, input: exampleInput(5), name: model.manifest.name },
    ...extraModels.slice(0, 1).map(m => ({ modelId: m.modelId, input: encodeTensorFile(npmModelSampleInput(m.key)), name: m.name }))
  ]
  const r = await runBatchDemo(net, requester, [account, second], models, progress)
  console.log(formatBatchDemo(r, net.chain!.deployment.taskManager, singleGas))
  if (r.proved !== r.results.length) throw new DevnetError(`only ${r.proved} of the batch's ${r.results.length} leaves are proved on chain`)
  if (r.forgedAccepted) throw new DevnetError('the chain accepted a forged result for a batch leaf')
}

/** Basis points in a whole. */
const BPS = 10_000n

/** "model shards: 4 of 4 operators fetched the model through the DHT …", from every operator's outcome. */
export function modelFetchLine (outcomes: readonly ModelOutcome[], operators: number): string {
  const fetched = outcomes.flatMap(o => 'fetched' in o && !o.fetched.fromStore ? [o.fetched] : [])
  const failed = outcomes.flatMap(o => 'failed' in o ? [`${o.node}: ${o.failed}`] : [])
  // A resumed devnet's operators have the model from the earlier run.
  const stored = outcomes.filter(o => 'fetched' in o && o.fetched.fromStore).length
  return `model shards: ${fetched.length} of ${operators} operators fetched the model through the DHT from the bootstrap node` +
    (fetched.length > 0 ? ` (${Math.max(...fetched.map(e => e.ms))} ms at most)` : '') +
    (stored > 0 ? `; ${stored} had it in their store already` : '') +
    (failed.length > 0 ? `; not fetched: ${failed.join('; ')}` : '')
}

/**
 * Sends the requester DEVNET_REQUESTER_FUNDING_WEI of ETH and deposits DEVNET_REQUESTER_DEPOSIT_WEI
 * of it: full nodes ignore tasks whose requester's deposit does not cover the fee.
 */
async function fundRequester (net: LocalNetwork, account: PrivateKeyAccount, resume: boolean, progress: (line: string) => void): Promise<{ chain: ChainClient, asset: PaymentAsset }> {
  const { fund, client } = net.chain!
  const chain = await ChainClient.connect(client.config, account)
  const asset = await readAsset(chain)
  if (resume) {
    const left = await readVault(chain.publicClient, client.config.taskManager, account.address)
    if (left.balance >= DEVNET_REQUESTER_TOPUP_BELOW_WEI) {
      progress(`requester ${account.address} resumed with ${formatAmount(left.balance, asset)} in the vault`)
      return { chain, asset }
    }
  }
  await fund(account.address, DEVNET_REQUESTER_FUNDING_WEI)
  await deposit(chain.walletClient!, chain.publicClient, client.config.taskManager, DEVNET_REQUESTER_DEPOSIT_WEI)
  const vault = await readVault(chain.publicClient, client.config.taskManager, account.address)
  progress(`requester ${account.address} deposited ${formatAmount(DEVNET_REQUESTER_DEPOSIT_WEI, asset)}; its balance in the vault: ${formatAmount(vault.balance, asset)}`)
  return { chain, asset }
}

/** Waits for the aggregator's transaction and checks the chain against the off-chain certificate. */
async function reportSettlement (net: LocalNetwork, requester: PoiNode, result: RequestResult, progress: (line: string) => void): Promise<AcceptedCertificate> {
  const chain = net.chain!
  progress('waiting for the aggregator to settle the certificate on-chain')
  const onChain = await chain.client.waitForAcceptance(result.taskId, SETTLEMENT_TIMEOUT_MS)
  const offChain = to0xHex(result.certificate.resultHash)
  const same = onChain.resultHash.toLowerCase() === offChain
  // The chain holds only the reference; the output itself is off-chain, in the operators' stream channels.
  const resolved = await fetchOutput(requester, hexToBytes(onChain.outputRef), hexToBytes(onChain.resultHash))
    .then(output => `resolves over /poi/stream/1/ to the ${output.length}-byte output with that result hash`)
    .catch((err: Error) => `NOT resolved: ${err.message}`)
  console.log([
    '',
    `on-chain    TaskManager ${chain.deployment.taskManager} (chain ${chain.anvil.chainId})`,
    `  tx        ${onChain.txHash}`,
    `  gas used  ${onChain.gasUsed}`,
    `  result    ${onChain.resultHash} (epoch ${onChain.epoch}, ${same ? 'matches the off-chain certificate' : 'DIFFERS from the off-chain certificate ' + offChain})`,
    `  outputRef ${onChain.outputRef} (${resolved})`,
    `  posted by ${onChain.submitter}`,
    ''
  ].join('\n'))
  if (!same) throw new DevnetError('the on-chain result differs from the verified off-chain certificate')
  if (resolved.startsWith('NOT')) throw new DevnetError(`the on-chain outputRef does not resolve: ${resolved}`)
  return onChain
}

/** A task for a real model from npm with its sample input (by stream reference when large), and a short summary. */
async function runExtraModelTask (net: LocalNetwork, requester: PoiNode, account: PrivateKeyAccount, m: ExtraModel, progress: (line: string) => void, chain?: ChainClient): Promise<void> {
  const input = encodeTensorFile(npmModelSampleInput(m.key))
  const fee = chain != null ? (await readTaskFee(chain, m.modelId)).fee : undefined
  progress(`sending a task for ${m.name}, a real model from npm, with its ${input.length}-byte sample input${fee !== undefined ? ` (fee ${fee} wei)` : ''}`)
  const r = await requestInference(requester, account, { modelId: m.modelId, input, timeoutMs: DEVNET_TASK_TIMEOUT_MS, fee }, { onProgress: progress })
  const settled = net.chain != null ? await net.chain.client.waitForAcceptance(r.taskId, SETTLEMENT_TIMEOUT_MS) : undefined
  console.log([
    '',
    `${m.name} (${modelIdToString(m.modelId)})`,
    `  input     ${input.length} bytes, ${input.length > MAX_INLINE_INPUT_BYTES ? 'by stream reference' : 'inline in the task'}`,
    `  output    ${formatCanonicalOutput(r.output)}${r.certificate.output.length === 0 ? ' (by stream reference)' : ''}`,
    `  verified  ${r.signers.length} of ${net.operatorSet.operators.length} operators signed, ${(r.certifiedAt - r.announcedAt).toFixed(1)} ms after the announcement`,
    ...(settled != null ? [`  on-chain  ${settled.txHash} (${settled.resultHash.toLowerCase() === to0xHex(r.certificate.resultHash) ? 'same result' : 'DIFFERENT result'})`] : []),
    ''
  ].join('\n'))
}
