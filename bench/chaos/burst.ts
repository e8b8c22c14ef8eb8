/**
 * Chaos scenario `burst`: one requester sends BURST_TASKS tasks within BURST_WINDOW_MS to a
 * 4-operator network (separate processes on 127.0.0.1, off-chain). Every task must end either
 * certified or refused with a reason (reasons counted), none lost, no node may die, and every
 * node's resident memory must stay under its bound (see RSS_BOUND_*).
 */
import { startLocalNetwork, type LocalNetwork } from '../../node/cli/devnet.js'
import { prepareNodeDir } from '../../node/cli/launcher.js'
import { PoiClient } from '../../node/client/index.js'
import { loadModelDir, modelIdToString, SHIPPED_MODEL_DIR } from '../../node/inference/index.js'
import type { Scenario, ScenarioContext, ScenarioResult } from './scenario.js'
import { conclude, endedEarly, inMiB, MiB, type Outcome, RssSampler, sendTask, sleep, tally } from './tally.js'

/** The burst: 200 tasks in 20 s from one requester. */
const BURST_TASKS = 200
const BURST_WINDOW_MS = 20_000
const OPERATORS = 4
/**
 * Each task's deadline. The nodes' default (30 s) is for one task at a time; 200 queued behind
 * one another on a busy 2-core machine take longer to run on every operator, and a task that
 * ends NoQuorum for want of CPU would measure the machine, not the network.
 */
const TASK_TIMEOUT_MS = 90_000
/**
 * What a node's memory may grow by during the burst: 200 tasks in flight are 200 announcements,
 * inputs, attestations from 4 operators and certificates, a few KiB each, so what the heap holds
 * for them is a few MiB; the rest of the allowance is V8 heap growth before a collection and
 * onnxruntime's arena under concurrent runs. Measured here: see the scenario's details.
 */
const RSS_GROWTH_BOUND_BYTES = 192 * MiB
/** And an absolute ceiling per node, the scale target (100 MiB idle operator) with room for the burst. */
const RSS_CEILING_BYTES = 512 * MiB

export const burst: Scenario = {
  name: 'burst',
  run: async (ctx: ScenarioContext): Promise<ScenarioResult> => {
    const expectation = `${BURST_TASKS} tasks in ${BURST_WINDOW_MS / 1000} s from one requester: each certifies or is refused with a reason, none lost; every node's RSS grows by < ${RSS_GROWTH_BOUND_BYTES / MiB} MiB and stays < ${RSS_CEILING_BYTES / MiB} MiB`
    const result: ScenarioResult = { name: 'burst', expectation, sent: 0, certified: 0, noQuorum: 0, refused: 0, lost: 0, recoverMs: null, passed: false, details: {} }
    let net: LocalNetwork | undefined
    let client: PoiClient | undefined
    let sampler: RssSampler | undefined
    try {
      net = await startLocalNetwork({ root: ctx.root, operators: OPERATORS, progress: ctx.progress })
      const nodes = [net.bootstrap, ...net.operators, net.aggregator]
      const pids = new Map(nodes.map(n => [n.name, n.proc.pid!]))
      const model = modelIdToString((await loadModelDir(SHIPPED_MODEL_DIR)).modelId)
      const dirs = await prepareNodeDir(ctx.root, 'requester')
      client = await PoiClient.connect({ keystore: dirs.keystore, bootstrap: [net.bootstrapAddr], genesis: net.genesisPath })
      // The first task makes every operator fetch the model through the DHT: not part of the burst.
      ctx.progress('warm-up task (operators fetch the model)')
      const warm = await sendTask(client, model, 1, TASK_TIMEOUT_MS)
      if (warm.kind !== 'certified') throw new Error(`the warm-up task did not certify (${warm.kind})`)
      sampler = new RssSampler(pids)
      const baseline = sampler.sample()
      ctx.progress(`sending ${BURST_TASKS} tasks in ${BURST_WINDOW_MS / 1000} s`)
      const started = performance.now()
      const pending: Array<Promise<Outcome>> = []
      for (let i = 0; i < BURST_TASKS; i++) {
        // Evenly spread: task i leaves at i × window / n, whatever the previous submits cost.
        const due = started + i * BURST_WINDOW_MS / BURST_TASKS
        const wait = due - performance.now()
        if (wait > 0) await sleep(wait)
        pending.push(sendTask(client, model, 1_000 + i, TASK_TIMEOUT_MS))
      }
      const sentInMs = performance.now() - started
      ctx.progress(`${BURST_TASKS} tasks sent in ${(sentInMs / 1000).toFixed(1)} s; waiting for them to end`)
      const outcomes = await Promise.all(pending)
      const drainedInMs = performance.now() - started
      sampler.stop()
      const t = tally(outcomes)
      Object.assign(result, { sent: t.sent, certified: t.certified, noQuorum: t.noQuorum, refused: t.refused, lost: t.lost })
      const latencies = outcomes.flatMap(o => o.kind === 'certified' ? [o.latencyMs] : []).sort((a, b) => a - b)
      const growth = new Map([...sampler.peak].map(([name, peak]) => [name, peak - (baseline.get(name) ?? peak)]))
      result.details = {
        operators: OPERATORS,
        taskTimeoutMs: TASK_TIMEOUT_MS,
        // The pace the requester kept: on a loaded machine its own event loop can fall behind the schedule.
        sentInS: Math.round(sentInMs / 100) / 10,
        targetWindowS: BURST_WINDOW_MS / 1000,
        allEndedInS: Math.round(drainedInMs / 100) / 10,
        latencyP50Ms: Math.round(latencies[Math.floor(latencies.length / 2)] ?? NaN),
        latencyMaxMs: Math.round(latencies.at(-1) ?? NaN),
        reasons: t.reasons,
        baselineRssMiB: inMiB(baseline),
        peakRssMiB: inMiB(sampler.peak),
        growthMiB: inMiB(growth),
        boundGrowthMiB: RSS_GROWTH_BOUND_BYTES / MiB,
        boundCeilingMiB: RSS_CEILING_BYTES / MiB,
        crashed: [...sampler.gone]
      }
      const failures: string[] = []
      if (t.sent !== BURST_TASKS) failures.push(`${t.sent} of ${BURST_TASKS} tasks sent`)
      if (t.lost > 0) failures.push(`${t.lost} tasks lost`)
      if (t.noQuorum > 0) failures.push(`${t.noQuorum} tasks ended NoQuorum`)
      const dead = nodes.filter(n => !n.running).map(n => n.name)
      if (dead.length > 0) failures.push(`${dead.join(', ')} died`)
      const over = [...growth].filter(([name, g]) => g > RSS_GROWTH_BOUND_BYTES || (sampler!.peak.get(name) ?? 0) > RSS_CEILING_BYTES).map(([name]) => name)
      if (over.length > 0) failures.push(`memory over its bound on ${over.join(', ')}`)
      conclude(result, failures)
    } catch (err) {
      endedEarly(result, err)
    } finally {
      sampler?.stop()
      await client?.close()
      await net?.stop()
    }
    return result
  }
}
