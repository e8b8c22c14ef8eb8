/**
 * Runs one of the partition, flood and burst scenarios alone and prints its result as JSON,
 * before (or beside) the full runner: `node dist/bench/chaos/run-one.js <name> [--keep]`.
 * Exit code 0 when its expectation held, 1 when not.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { burst } from './burst.js'
import { flood } from './flood.js'
import { partition } from './partition.js'
import type { Scenario } from './scenario.js'

const SCENARIOS: Record<string, Scenario> = { burst, flood, partition }

const name = process.argv[2]
const scenario = name !== undefined ? SCENARIOS[name] : undefined
if (scenario === undefined) {
  console.error(`usage: node dist/bench/chaos/run-one.js <${Object.keys(SCENARIOS).join('|')}> [--keep]`)
  process.exit(2)
}
const root = await mkdtemp(join(tmpdir(), `poi-chaos-${scenario.name}-`))
const started = performance.now()
try {
  const result = await scenario.run({ root, progress: (line) => { console.error(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${line}`) } })
  console.log(JSON.stringify(result, null, 2))
  process.exitCode = result.passed ? 0 : 1
} finally {
  if (process.argv.includes('--keep')) console.error(`kept ${root}`)
  else await rm(root, { recursive: true, force: true })
}
