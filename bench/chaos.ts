/**
 * The chaos suite: what the network survives, measured. Each scenario (bench/chaos/index.ts)
 * starts its own multi-process network on 127.0.0.1 with a local anvil chain, injects one fault
 * (killed operators, a killed aggregator, byzantine operators, a partition, a flood, a burst),
 * sends tasks through it and counts how they ended.
 *
 *   npm run chaos -- [--only crash-minority,byzantine] [--keep] [--out bench/results/chaos.json]
 *
 * Scenarios run one after the other, each in a fresh temporary directory (removed unless
 * --keep). A scenario that throws is a failed result, never the end of the run; whatever it left
 * running is stopped before the next one starts. Progress goes to stderr, the table to stdout, the
 * results and the machine (cores, load average, Node version, date) to the JSON file. The exit
 * code is 1 when an expectation did not hold. Scenarios that need network namespaces are skipped,
 * with the reason, when this process is not root or `ip netns` does not work.
 */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { parseArgs } from 'node:util'
import { killOwnedNow, stopOwned } from '../node/cli/children.js'
import { scenarios } from './chaos/index.js'
import { chaosTable, type Scenario, type ScenarioResult } from './chaos/scenario.js'

/**
 * The longest a scenario may run: each is meant to take under two minutes on a busy 2-core
 * machine; past this it is stuck, and the run goes on without it.
 */
const SCENARIO_TIMEOUT_MS = 8 * 60_000

/** Why network-namespace scenarios cannot run here, or undefined when they can. */
async function netnsUnavailable (): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, veth and iptables)'
  try {
    await promisify(execFile)('ip', ['netns', 'list'])
    return undefined
  } catch (err) {
    return `\`ip netns list\` failed: ${(err as Error).message.split('\n')[0]}`
  }
}

/** A result for a scenario that did not run or did not finish. */
function notRun (scenario: Scenario, why: { failure: string } | { skipped: string }): ScenarioResult {
  return {
    name: scenario.name, expectation: scenario.expectation ?? '', sent: 0, certified: 0, noQuorum: 0, refused: 0, lost: 0, recoverMs: null, passed: false, details: {}, ...why
  }
}

async function runOne (scenario: Scenario, keep: boolean, progress: (line: string) => void): Promise<ScenarioResult> {
  const root = await mkdtemp(join(tmpdir(), `poi-chaos-${scenario.name}-`))
  let timer: NodeJS.Timeout | undefined
  try {
    const timeout = new Promise<ScenarioResult>(resolve => {
      timer = setTimeout(() => { resolve(notRun(scenario, { failure: `did not finish within ${SCENARIO_TIMEOUT_MS / 60_000} minutes` })) }, SCENARIO_TIMEOUT_MS)
    })
    const run = scenario.run({ root, progress }).catch((err: unknown) => notRun(scenario, { failure: `ended early: ${err instanceof Error ? err.message : String(err)}` }))
    return await Promise.race([run, timeout])
  } finally {
    clearTimeout(timer)
    // Whatever the scenario left running (it stops its own nodes; this is for one that failed to).
    await stopOwned()
    if (keep) progress(`kept ${root}`)
    else await rm(root, { recursive: true, force: true })
  }
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      keep: { type: 'boolean', default: false },
      out: { type: 'string', default: 'bench/results/chaos.json' }
    }
  })
  const only = values.only?.split(',').map(s => s.trim()).filter(s => s !== '')
  const unknown = only?.filter(n => !scenarios.some(s => s.name === n)) ?? []
  if (unknown.length > 0) {
    console.error(`no chaos scenario named ${unknown.join(', ')}; there are ${scenarios.map(s => s.name).join(', ')}`)
    process.exitCode = 2
    return
  }
  const chosen = only === undefined ? scenarios : scenarios.filter(s => only.includes(s.name))
  process.on('exit', killOwnedNow)
  const noNetns = chosen.some(s => s.needsNetns === true) ? await netnsUnavailable() : undefined
  const results: ScenarioResult[] = []
  const started = new Date()
  for (const [i, scenario] of chosen.entries()) {
    const progress = (line: string): void => { console.error(`[${scenario.name}] ${line}`) }
    console.error(`— ${i + 1}/${chosen.length} ${scenario.name}`)
    if (scenario.needsNetns === true && noNetns !== undefined) {
      progress(`skipped: ${noNetns}`)
      results.push(notRun(scenario, { skipped: noNetns }))
      continue
    }
    const t0 = performance.now()
    const result = await runOne(scenario, values.keep, progress)
    result.details = { ...result.details, wallMs: Math.round(performance.now() - t0) }
    progress(`${result.passed ? 'held' : `did NOT hold: ${result.failure ?? ''}`} (${((performance.now() - t0) / 1000).toFixed(0)} s)`)
    results.push(result)
  }
  console.log(chaosTable(results))
  const out = resolve(values.out)
  await mkdir(dirname(out), { recursive: true })
  const machine = { cores: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', memoryBytes: totalmem(), loadAverage: loadavg(), node: process.version, platform: process.platform }
  await writeFile(out, JSON.stringify({ benchmark: 'chaos', date: started.toISOString(), machine, results }, null, 2) + '\n')
  console.error(`wrote ${out}`)
  if (results.some(r => !r.passed && r.skipped === undefined)) process.exitCode = 1
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
