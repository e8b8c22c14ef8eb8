/**
 * What the multi-process chaos scenarios share: a local network on 127.0.0.1 with an anvil chain
 * (node/cli/local-network.ts) and a deposited requester (PoiClient) in this process; tasks sent
 * through it and counted by how they ended; restarting a killed node with its own keys and data.
 */
import { join } from 'node:path'
import { createTestClient, http } from 'viem'
import { foundry } from 'viem/chains'
import { deposit } from '../../contracts/index.js'
import { ChainClient } from '../../node/chain-client.js'
import { exampleInput, startLocalNetwork, type LocalNetwork, type LocalNetworkOptions } from '../../node/cli/devnet.js'
import { ChildNode, prepareNodeDir } from '../../node/cli/launcher.js'
import { NoQuorumError, PoiClient, PoiError, type JsonTensors } from '../../node/client/index.js'
import { loadModelDir, modelIdToString, SHIPPED_MODEL_DIR } from '../../node/inference/index.js'
import type { ScenarioContext, ScenarioResult } from './scenario.js'

export const ETHER = 10n ** 18n
/** A task's deadline: inference takes well under a second; the rest is gossip on a loaded machine. */
export const TASK_TIMEOUT_MS = 30_000
/** A (re)started node printing its ready line: five at once on two busy cores took over 30 s. */
export const READY_TIMEOUT_MS = 60_000
/** The whole network started at once (up to nine processes loading libp2p, onnxruntime and viem on two cores others use too). */
const NETWORK_READY_TIMEOUT_MS = 180_000
/** Gossipsub grafts on its 1 s heartbeat; a restarted peer may wait out a prune backoff first. */
export const MESH_TIMEOUT_MS = 60_000
/** From a certificate to its transaction mined (anvil mines at once; a backup waits 5 s first). */
export const SETTLE_TIMEOUT_MS = 60_000
/** The requester's deposit: thousands of the devnet's tasks (about 0.001 ETH each). */
const REQUESTER_DEPOSIT_WEI = 10n * ETHER

export interface ChaosNetwork {
  net: LocalNetwork
  chain: NonNullable<LocalNetwork['chain']>
  /** A deposited requester, a light peer in this process. */
  client: PoiClient
  /** The shipped model's id, as `poi model ls` prints it. */
  model: string
  /** Nodes the scenario started besides the network's (a second aggregator, restarted nodes): stopped with it. */
  extra: ChildNode[]
  stop: () => Promise<void>
}

export interface ChaosNetworkOptions {
  operators: number
  graceMs?: number
  operatorEnv?: LocalNetworkOptions['operatorEnv']
}

/** Starts the network with a chain, funds and deposits a requester and connects it. */
export async function startChaosNetwork (ctx: ScenarioContext, opts: ChaosNetworkOptions): Promise<ChaosNetwork> {
  const net = await startLocalNetwork({ root: ctx.root, operators: opts.operators, chain: true, graceMs: opts.graceMs, operatorEnv: opts.operatorEnv, progress: ctx.progress,
    // Operators hold the shipped model from the start (loaded before their ready line): fetching it
    // through the DHT is not what these scenarios test, and on a loaded machine an operator's
    // provider lookup once found nobody for every task of a run, which ended them NoQuorum.
    operatorArgs: () => ['--model-dir', SHIPPED_MODEL_DIR],
    readyTimeoutMs: NETWORK_READY_TIMEOUT_MS, meshTimeoutMs: MESH_TIMEOUT_MS
  })
  const extra: ChildNode[] = []
  let client: PoiClient | undefined
  const stop = async (): Promise<void> => {
    await client?.close()
    await Promise.all(extra.map(async c => await c.stop()))
    await net.stop()
  }
  try {
    const chain = net.chain!
    const dirs = await prepareNodeDir(ctx.root, 'requester')
    await chain.fund(dirs.keys.account.address, 2n * REQUESTER_DEPOSIT_WEI)
    const payer = await ChainClient.connect(chain.client.config, dirs.keys.account)
    await deposit(payer.walletClient!, payer.publicClient, chain.client.config.taskManager, REQUESTER_DEPOSIT_WEI)
    ctx.progress('connecting a deposited requester')
    client = await PoiClient.connect({ keystore: dirs.keystore, bootstrap: [net.bootstrapAddr], chain: chain.deploymentPath })
    const model = modelIdToString((await loadModelDir(SHIPPED_MODEL_DIR)).modelId)
    return { net, chain, client, model, extra, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/** The shipped model's example input `seed` as JSON tensors. */
export function inputOf (seed: number): JsonTensors {
  return JSON.parse(new TextDecoder().decode(exampleInput(seed))) as JsonTensors
}

/** How one task ended, from the requester's side. */
export interface TaskOutcome {
  seed: number
  taskId?: `0x${string}`
  kind: 'certified' | 'no-quorum' | 'refused' | 'lost'
  /** Operator indices the certificate names (certified only). */
  signers?: number[]
  sentAt: number
  /** When the requester had its verified result (or gave up). */
  endedAt: number
  reason?: string
}

/** A failure line quotes this much of each task's error (the whole one is in details.tasks). */
const UNCERTIFIED_REASON_CHARS = 160

/** Every task a scenario sent and how it ended. */
export class TaskLog {
  readonly outcomes: TaskOutcome[] = []

  /** Sends one task and resolves when it ended; never throws. */
  async send (c: ChaosNetwork, seed: number, timeoutMs = TASK_TIMEOUT_MS): Promise<TaskOutcome> {
    const sentAt = Date.now()
    let outcome: TaskOutcome
    let taskId: `0x${string}` | undefined
    try {
      const submitted = await c.client.submit({ model: c.model, input: inputOf(seed), timeoutMs })
      taskId = submitted.taskId
      const result = await submitted.result
      outcome = { seed, taskId, kind: 'certified', signers: result.signers, sentAt, endedAt: Date.now() }
    } catch (err) {
      const reason = (err as Error).message
      // Refused: nothing announced. Announced and not certified: NoQuorum by the deadline, or lost.
      const kind = taskId === undefined ? 'refused' : err instanceof NoQuorumError ? 'no-quorum' : 'lost'
      outcome = { seed, taskId, kind, sentAt, endedAt: Date.now(), reason }
    }
    this.outcomes.push(outcome)
    return outcome
  }

  /** `sent` counts every task tried, refused ones included, so that it is the sum of the other four. */
  counts (): Pick<ScenarioResult, 'sent' | 'certified' | 'noQuorum' | 'refused' | 'lost'> {
    const n = (k: TaskOutcome['kind']): number => this.outcomes.filter(o => o.kind === k).length
    return { sent: this.outcomes.length, certified: n('certified'), noQuorum: n('no-quorum'), refused: n('refused'), lost: n('lost') }
  }

  /**
   * Ms from `since` (the end of a fault) to the first certificate of a task sent at or after it;
   * null when none came. Tasks in flight at the fault do not count: their signatures may predate it.
   */
  recoverMs (since: number): number | null {
    const after = this.outcomes.filter(o => o.kind === 'certified' && o.sentAt >= since).map(o => o.endedAt)
    return after.length === 0 ? null : Math.min(...after) - since
  }

  /** One line per task that did not certify, for a failure message. */
  uncertified (): string {
    return this.outcomes.filter(o => o.kind !== 'certified').map(o => `task ${o.taskId?.slice(0, 10) ?? `(seed ${o.seed})`}… ${o.kind}${o.kind === 'no-quorum' || o.reason === undefined ? '' : `: ${o.reason.slice(0, UNCERTIFIED_REASON_CHARS)}`}`).join('; ')
  }
}

/** The operator index a node's ready line names (its place in the current operator set). */
export function operatorIndexOf (node: ChildNode): number {
  const ready = node.events.find(e => e.event === 'ready')
  if (ready?.event !== 'ready' || ready.operatorIndex == null) throw new PoiError('ERR_NO_OPERATOR_INDEX', `${node.name} printed no ready line with an operator index; see ${node.logFile}`)
  return ready.operatorIndex
}

/** Waits until a node has gossip mesh peers (an operator: a subscriber to publish its attestations to). */
export async function meshed (node: ChildNode, operator: boolean): Promise<void> {
  await node.waitForEvent('mesh', e => e.tasks > 0 && e.certificates > 0 && (operator ? e.attestationSubscribers > 0 : e.attestations > 0), MESH_TIMEOUT_MS, 'gossip mesh')
}

/** SIGKILL: no shutdown of any kind, as a crash or an OOM kill. Resolves once the process is gone. */
export async function crash (node: ChildNode): Promise<void> {
  node.proc.kill('SIGKILL')
  await node.exited
}

/** Starts `node` again as `name`, with the same command line (keys, data dir, chain, bootstrap) and `env`. */
export function restart (c: ChaosNetwork, node: ChildNode, name: string, env?: NodeJS.ProcessEnv): ChildNode {
  const again = new ChildNode(name, node.args, join(c.net.root, `${name}.log`), env)
  c.extra.push(again)
  return again
}

/** The anvil methods the scenarios use: stop and resume mining, and drop an account's pending transactions. */
export interface AnvilControl {
  setAutomine: (on: boolean) => Promise<void>
  /** Drops every pending transaction sent from `from` (as if its sender died before the mempool saw it); returns how many. */
  dropPendingFrom: (from: `0x${string}`) => Promise<number>
}

export function anvilControl (c: ChaosNetwork): AnvilControl {
  const test = createTestClient({ chain: foundry, mode: 'anvil', transport: http(c.chain.anvil.rpcUrl) })
  return {
    setAutomine: async (on) => { await test.setAutomine(on) },
    dropPendingFrom: async (from) => {
      const { pending } = await test.getTxpoolContent()
      let dropped = 0
      for (const [sender, byNonce] of Object.entries(pending)) {
        if (sender.toLowerCase() !== from.toLowerCase()) continue
        for (const tx of Object.values(byNonce)) {
          await test.dropTransaction({ hash: tx.hash })
          dropped++
        }
      }
      return dropped
    }
  }
}

/**
 * Runs a scenario's body on a fresh network and turns what it found into a ScenarioResult: the
 * body returns its failures (empty: the expectation held); an error thrown ends it early as a
 * failure, with the tasks counted so far.
 */
export async function scenario (
  ctx: ScenarioContext,
  head: { name: string, expectation: string },
  network: ChaosNetworkOptions,
  body: (c: ChaosNetwork, tasks: TaskLog, details: Record<string, unknown>) => Promise<{ failures: string[], recoverMs: number | null }>
): Promise<ScenarioResult> {
  const tasks = new TaskLog()
  const details: Record<string, unknown> = { operators: network.operators }
  let c: ChaosNetwork | undefined
  const finish = (failures: string[], recoverMs: number | null): ScenarioResult => ({
    ...head,
    ...tasks.counts(),
    recoverMs,
    passed: failures.length === 0,
    details: { ...details, tasks: tasks.outcomes },
    ...(failures.length > 0 ? { failure: failures.join('; ') } : {})
  })
  try {
    try {
      c = await startChaosNetwork(ctx, network)
    } catch (err) {
      // Nothing was injected yet: a network that did not come up on a machine loaded by others
      // gets a second try, in a directory of its own (the first one's keys and logs are kept).
      ctx.progress(`the network did not come up (${(err as Error).message}); starting it once more`)
      details.startRetried = (err as Error).message
      c = await startChaosNetwork({ ...ctx, root: join(ctx.root, 'second-start') }, network)
    }
    details.pids = Object.fromEntries([c.net.bootstrap, c.net.aggregator, ...c.net.operators].map(n => [n.name, n.proc.pid]))
    const { failures, recoverMs } = await body(c, tasks, details)
    return finish(failures, recoverMs)
  } catch (err) {
    return finish([`ended early: ${(err as Error).message}`], null)
  } finally {
    await c?.stop()
  }
}
