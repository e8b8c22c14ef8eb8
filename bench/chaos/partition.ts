/**
 * Chaos scenario `partition`: a 4-operator network (off-chain, genesis mode) whose nodes each run
 * in their own network namespace, wired by veth pairs to a bridge in a hub namespace on a private
 * /24; the requester (this process) reaches the bridge from the root namespace. The partition
 * drops, with iptables in the namespaces of operators 2 and 3, every packet to or from the
 * other side (requester, bootstrap, aggregator, operators 0 and 1): each side holds half of the
 * operator stake, below the 2/3 quorum. Tasks sent during the split must end NoQuorum (the
 * requester's clear NoQuorumError, not a hang); after the rules are removed, tasks must certify
 * again within RECOVER_BOUND_MS of the heal.
 *
 * Needs root (ip netns, iptables). Every namespace, veth and rule carries a per-run prefix and
 * is removed in a finally block, whatever happened (the rules go with their namespaces).
 */
import { execFile, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { createOperatorSet, signProofOfPossession, writeGenesis } from '../../consensus/index.js'
import { DEVNET_CHAIN_ID, DEVNET_TASK_MANAGER, STAKE_WEI } from '../../node/cli/devnet.js'
import { ChildNode, prepareNodeDir, type MeshEvent } from '../../node/cli/launcher.js'
import { PoiClient } from '../../node/client/index.js'
import { loadModelDir, modelIdToString, SHIPPED_MODEL_DIR } from '../../node/inference/index.js'
import type { Scenario, ScenarioContext, ScenarioResult } from './scenario.js'
import { conclude, endedEarly, type Outcome, sendTask, sleep, tally } from './tally.js'

const run = promisify(execFile)

const OPERATORS = 4
/** Operators cut off from the rest: half the stake on each side, below the 2/3 quorum. */
const CUT_OPERATORS = [2, 3]
/** Same as node/cli/local-network.ts: five nodes starting at once on two busy cores. */
const READY_TIMEOUT_MS = 60_000
const MESH_TIMEOUT_MS = 30_000
/** Tasks sent during the split, one after another, and their deadline (short: they are meant to fail). */
const SPLIT_TASKS = 3
const SPLIT_TASK_TIMEOUT_MS = 10_000
/** After the heal: a task every HEAL_TASK_INTERVAL_MS until one certifies, each with this deadline. */
const HEAL_TASK_INTERVAL_MS = 2_000
const HEAL_TASK_TIMEOUT_MS = 20_000
/**
 * The longest a certificate may take after the heal. The split lasts ~50 s (three tasks that
 * each wait out their deadline and the lookup after it). The nodes' TCP connections across it
 * stay open (libp2p's ping monitor does not abort them, and Linux keeps a connection through
 * 15 retransmissions), so the first packet through after the heal is a retransmission, whose
 * back-off doubles from 200 ms: a segment first dropped at the split is retried 25 s, 51 s and
 * 102 s after it, so the wait after a heal at ~50 s is at most one back-off step (≤ the split's
 * length), and usually far less, since many connections with different phases retry. Then
 * gossipsub needs a heartbeat (1 s) or two to graft the returning peers, an operator runs the
 * task (< 1 s) and the aggregator gathers a quorum: one split's length plus 10 s.
 */
const RECOVER_BOUND_MS = 60_000

/** The nodes' private /24: 10.213.<random>.0, with the requester at .1 and the nodes from .10. */
function subnet (): string { return `10.213.${1 + randomBytes(1)[0] % 250}` }

async function sh (args: string[]): Promise<void> {
  await run(args[0], args.slice(1))
}

/** Namespaces, veths and addresses of one run; `remove()` undoes all of it, ignoring what is already gone. */
class Topology {
  readonly hub: string
  readonly namespaces: string[] = []
  private readonly rootVeth: string
  readonly requesterAddr: string

  constructor (readonly prefix: string, readonly net: string) {
    this.hub = `${prefix}hub`
    this.rootVeth = `${prefix}r`
    this.requesterAddr = `${net}.1`
  }

  nsOf (i: number): string { return `${this.prefix}n${i}` }
  addrOf (i: number): string { return `${this.net}.${10 + i}` }

  /** The hub namespace with its bridge, and the root namespace's leg onto it. */
  async create (): Promise<void> {
    await sh(['ip', 'netns', 'add', this.hub])
    this.namespaces.push(this.hub)
    await sh(['ip', '-n', this.hub, 'link', 'add', 'br0', 'type', 'bridge'])
    await sh(['ip', '-n', this.hub, 'link', 'set', 'br0', 'up'])
    await sh(['ip', 'link', 'add', this.rootVeth, 'type', 'veth', 'peer', 'name', `${this.prefix}rp`])
    await sh(['ip', 'link', 'set', `${this.prefix}rp`, 'netns', this.hub])
    await sh(['ip', '-n', this.hub, 'link', 'set', `${this.prefix}rp`, 'master', 'br0', 'up'])
    await sh(['ip', 'addr', 'add', `${this.requesterAddr}/24`, 'dev', this.rootVeth])
    await sh(['ip', 'link', 'set', this.rootVeth, 'up'])
  }

  /** Namespace `i` with its address on the bridge. */
  async addNode (i: number): Promise<void> {
    const ns = this.nsOf(i)
    await sh(['ip', 'netns', 'add', ns])
    this.namespaces.push(ns)
    const inner = `${this.prefix}v${i}`
    const outer = `${this.prefix}p${i}`
    await sh(['ip', 'link', 'add', inner, 'type', 'veth', 'peer', 'name', outer])
    await sh(['ip', 'link', 'set', inner, 'netns', ns])
    await sh(['ip', 'link', 'set', outer, 'netns', this.hub])
    await sh(['ip', '-n', this.hub, 'link', 'set', outer, 'master', 'br0', 'up'])
    await sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up'])
    await sh(['ip', '-n', ns, 'addr', 'add', `${this.addrOf(i)}/24`, 'dev', inner])
    await sh(['ip', '-n', ns, 'link', 'set', inner, 'up'])
  }

  /** Drops in namespace `i` every packet to or from `peers`. */
  async cut (i: number, peers: string[]): Promise<void> {
    for (const addr of peers) {
      await sh(['ip', 'netns', 'exec', this.nsOf(i), 'iptables', '-A', 'INPUT', '-s', addr, '-j', 'DROP'])
      await sh(['ip', 'netns', 'exec', this.nsOf(i), 'iptables', '-A', 'OUTPUT', '-d', addr, '-j', 'DROP'])
    }
  }

  async heal (i: number): Promise<void> {
    await sh(['ip', 'netns', 'exec', this.nsOf(i), 'iptables', '-F'])
  }

  /** remove() for a signal handler, where nothing asynchronous runs any more. */
  removeSync (): void {
    try { execFileSync('ip', ['link', 'del', this.rootVeth], { stdio: 'ignore' }) } catch {}
    for (const ns of this.namespaces.splice(0).reverse()) {
      try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }) } catch {}
    }
  }

  async remove (): Promise<string[]> {
    const errors: string[] = []
    // The root veth's peer is in the hub: deleting either end deletes both.
    await sh(['ip', 'link', 'del', this.rootVeth]).catch(() => {})
    for (const ns of this.namespaces.splice(0).reverse()) {
      await sh(['ip', 'netns', 'del', ns]).catch((err: Error) => { errors.push(`ip netns del ${ns}: ${err.message}`) })
    }
    return errors
  }
}

export const partition: Scenario = {
  name: 'partition',
  needsNetns: true,
  run: async (ctx: ScenarioContext): Promise<ScenarioResult> => {
    const expectation = `operators ${CUT_OPERATORS.join(', ')} of ${OPERATORS} cut off (half the stake each side, quorum 2/3): tasks end NoQuorum during the split and certify again within ${RECOVER_BOUND_MS / 1000} s of the heal`
    const result: ScenarioResult = { name: 'partition', expectation, sent: 0, certified: 0, noQuorum: 0, refused: 0, lost: 0, recoverMs: null, passed: false, details: {} }
    const topo = new Topology(`pc${randomBytes(2).toString('hex')}`, subnet())
    const children: ChildNode[] = []
    let client: PoiClient | undefined
    // Interrupted (Ctrl-C, the runner stopped), the finally block below would not run: the
    // namespaces go first, then the signal takes its course (the nodes exit with this process).
    const onSignal = (signal: NodeJS.Signals): void => {
      topo.removeSync()
      process.kill(process.pid, signal)
    }
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    try {
      ctx.progress(`network namespaces ${topo.prefix}* on ${topo.net}.0/24`)
      await topo.create()
      // Namespace i: 0 bootstrap, 1 aggregator, 2.. operators.
      const names = ['bootstrap', 'aggregator', ...Array.from({ length: OPERATORS }, (_, i) => `operator-${i}`)]
      for (let i = 0; i < names.length; i++) await topo.addNode(i)
      const dirs: Array<Awaited<ReturnType<typeof prepareNodeDir>>> = []
      for (const name of names) dirs.push(await prepareNodeDir(ctx.root, name))
      const opDirs = dirs.slice(2)
      const operatorSet = createOperatorSet({
        epoch: 0n,
        domain: { chainId: DEVNET_CHAIN_ID, taskManager: DEVNET_TASK_MANAGER },
        operators: opDirs.map(d => ({ address: d.keys.account.address, blsPublicKey: d.keys.blsPublicKey, stake: STAKE_WEI, peerId: d.keys.peerId.toString() }))
      })
      const genesisPath = join(ctx.root, 'genesis.json')
      await writeGenesis(genesisPath, operatorSet, opDirs.map(d => signProofOfPossession(d.keys.blsSecretKey, d.keys.account.address)))
      const spawnNode = (i: number, role: string, extra: string[]): ChildNode => {
        const node = new ChildNode(names[i], [role, '--keystore', dirs[i].keystore, '--data-dir', dirs[i].dataDir, '--genesis', genesisPath, '--listen', `/ip4/${topo.addrOf(i)}/tcp/0`, ...extra],
          join(ctx.root, `${names[i]}.log`), {}, ['ip', 'netns', 'exec', topo.nsOf(i)])
        children.push(node)
        return node
      }
      ctx.progress('starting bootstrap node')
      const bootstrap = spawnNode(0, 'bootstrap', [])
      const ready = await bootstrap.ready(READY_TIMEOUT_MS)
      const bootstrapAddr = ready.addrs.find(a => a.includes(topo.addrOf(0))) ?? ready.addrs[0]
      const aggregator = spawnNode(1, 'aggregator', ['--bootstrap', bootstrapAddr])
      const operators = opDirs.map((_, k) => spawnNode(2 + k, 'operator', ['--bootstrap', bootstrapAddr, '--no-model-dir']))
      ctx.progress(`starting ${OPERATORS} operators and an aggregator, each in its namespace`)
      await Promise.all([aggregator, ...operators].map(async c => await c.ready(READY_TIMEOUT_MS)))
      const meshed = (c: ChildNode) => (e: MeshEvent): boolean => e.tasks > 0 && e.certificates > 0 &&
        (operators.includes(c) ? e.attestationSubscribers > 0 : e.attestations > 0)
      await Promise.all(children.map(async c => await c.waitForEvent('mesh', meshed(c), MESH_TIMEOUT_MS, 'gossip mesh')))

      const model = modelIdToString((await loadModelDir(SHIPPED_MODEL_DIR)).modelId)
      client = await PoiClient.connect({ keystore: (await prepareNodeDir(ctx.root, 'requester')).keystore, bootstrap: [bootstrapAddr], genesis: genesisPath })
      ctx.progress('warm-up task (operators fetch the model)')
      const warm = await sendTask(client, model, 1, HEAL_TASK_TIMEOUT_MS)
      if (warm.kind !== 'certified') throw new Error(`the warm-up task did not certify before the partition (${warm.kind})`)

      const cutNs = CUT_OPERATORS.map(k => 2 + k)
      const otherSide = [topo.requesterAddr, ...names.map((_, i) => i).filter(i => !cutNs.includes(i)).map(i => topo.addrOf(i))]
      ctx.progress(`partition: dropping traffic between operators ${CUT_OPERATORS.join(', ')} and ${otherSide.join(', ')}`)
      for (const i of cutNs) await topo.cut(i, otherSide)
      const splitAt = Date.now()
      const during: Outcome[] = []
      for (let k = 0; k < SPLIT_TASKS; k++) {
        const o = await sendTask(client, model, 100 + k, SPLIT_TASK_TIMEOUT_MS)
        ctx.progress(`  split task ${k + 1}/${SPLIT_TASKS}: ${o.kind}`)
        during.push(o)
      }
      const splitMs = Date.now() - splitAt

      ctx.progress('heal: removing the rules')
      for (const i of cutNs) await topo.heal(i)
      const healedAt = Date.now()
      const after: Array<Promise<Outcome>> = []
      let firstCertifiedAt: number | undefined
      let seed = 200
      while (firstCertifiedAt === undefined && Date.now() - healedAt < RECOVER_BOUND_MS) {
        const p = sendTask(client, model, seed++, HEAL_TASK_TIMEOUT_MS)
        after.push(p)
        void p.then(o => { if (o.kind === 'certified') firstCertifiedAt = Math.min(firstCertifiedAt ?? Infinity, o.at) })
        const next = Date.now() + HEAL_TASK_INTERVAL_MS
        while (firstCertifiedAt === undefined && Date.now() < next) await sleep(100)
      }
      const afterOutcomes = await Promise.all(after)
      const firstAfter = afterOutcomes.flatMap(o => o.kind === 'certified' ? [o.at] : []).sort((a, b) => a - b)[0]
      result.recoverMs = firstAfter !== undefined ? firstAfter - healedAt : null

      const t = tally([...during, ...afterOutcomes])
      Object.assign(result, { sent: t.sent, certified: t.certified, noQuorum: t.noQuorum, refused: t.refused, lost: t.lost })
      const d = tally(during)
      result.details = {
        subnet: `${topo.net}.0/24`,
        splitSeconds: Math.round(splitMs / 100) / 10,
        duringSplit: { sent: d.sent, certified: d.certified, noQuorum: d.noQuorum, lost: d.lost, refused: d.refused },
        afterHeal: { sent: afterOutcomes.length, certified: afterOutcomes.filter(o => o.kind === 'certified').length },
        recoverBoundMs: RECOVER_BOUND_MS,
        reasons: t.reasons
      }
      const failures: string[] = []
      if (d.noQuorum !== SPLIT_TASKS) failures.push(`${d.noQuorum} of ${SPLIT_TASKS} tasks sent during the split ended NoQuorum (${d.certified} certified, ${d.lost} lost, ${d.refused} refused)`)
      if (result.recoverMs === null) failures.push(`no task certified within ${RECOVER_BOUND_MS / 1000} s of the heal`)
      else if (result.recoverMs > RECOVER_BOUND_MS) failures.push(`first certificate ${(result.recoverMs / 1000).toFixed(1)} s after the heal, over the ${RECOVER_BOUND_MS / 1000} s bound`)
      if (t.lost > 0) failures.push(`${t.lost} tasks lost`)
      const dead = children.filter(c => !c.running).map(c => c.name)
      if (dead.length > 0) failures.push(`${dead.join(', ')} died`)
      conclude(result, failures)
    } catch (err) {
      endedEarly(result, err)
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      await client?.close().catch(() => {})
      await Promise.all(children.map(async c => { await c.stop() }))
      const left = await topo.remove()
      if (left.length > 0) {
        result.passed = false
        result.failure = [result.failure, `cleanup: ${left.join('; ')}`].filter(Boolean).join('; ')
      }
    }
    return result
  }
}
