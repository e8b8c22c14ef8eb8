/**
 * One Groth16 proof in a process of its own, for bench/zk.ts: the process's peak resident memory
 * (`process.resourceUsage().maxRSS`) is then the proof's, not the benchmark's.
 *
 *   node --liftoff-only dist/bench/zk-prove.js <job.json>
 *
 * job.json: { wasm, zkey, input } with the circuit input's numbers as decimal strings. Prints one
 * JSON line: the proof, the time to build snarkjs's BN254 curve (its worker threads, paid once per
 * prover process), the proving time (witness + proof, the curve already built), and the memory.
 */
import { readFile } from 'node:fs/promises'
import { prove, releaseCurve } from '../node/inference/zk/index.js'

/** What the child prints on its one line of stdout. */
export interface ProveChildResult {
  proof: unknown
  curveMs: number
  proveMs: number
  /** Resident memory after the curve was built, before proving (bytes). */
  rssBeforeProveBytes: number
  /** Peak resident memory of the whole process (bytes): node, the curve's workers and the proof. */
  maxRssBytes: number
}

export interface ProveJob { wasm: string, zkey: string, input: { circuitId: string, inputCommitment: string, outputCommitment: string, prover: string, x: number[] } }

/** snarkjs's curve module (no types shipped). */
const SNARKJS = 'snarkjs'

async function main (): Promise<void> {
  const file = process.argv[2]
  if (file === undefined) throw new Error('usage: node --liftoff-only dist/bench/zk-prove.js <job.json> (written by bench/zk.ts)')
  const job = JSON.parse(await readFile(file, 'utf8')) as ProveJob
  // fullProve reuses the curve on globalThis (curve_bn128): built here, its cost is not the proof's
  const curveStarted = performance.now()
  const snarkjs = await import(SNARKJS) as { curves: { getCurveFromName: (name: string) => Promise<unknown> } }
  await snarkjs.curves.getCurveFromName('bn128')
  const curveMs = performance.now() - curveStarted
  const rssBeforeProveBytes = process.memoryUsage.rss()
  const started = performance.now()
  // snarkjs's input: the public signals as decimal strings, x as numbers
  const proof = await prove(job.wasm, job.zkey, { ...job.input })
  const proveMs = performance.now() - started
  // maxRSS is in kibibytes
  const result: ProveChildResult = { proof, curveMs, proveMs, rssBeforeProveBytes, maxRssBytes: process.resourceUsage().maxRSS * 1024 }
  process.stdout.write(JSON.stringify(result) + '\n')
  await releaseCurve()
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
