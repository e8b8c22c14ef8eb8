/**
 * The test files in the order `npm test` gives them to `mocha --parallel` (package.json's test
 * script runs `mocha … $(node dist/test/helpers/suite-order.js)`): the slowest files first, then
 * every other file in name order.
 *
 * mocha --parallel hands files to its workers in the order it is given them. In name order
 * (the glob's) the slowest files came in the middle and the end (chain-e2e, operator-lifecycle,
 * restart), and the suite ended with one worker still running one of them while the other sat
 * idle. Started first, they overlap with the many short files instead (longest job first).
 * The list is measured, not exhaustive: `node dist/bench/test-times.js` prints each file's time;
 * a file missing from it only starts later.
 */
import { readdirSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Slowest first, by wall time with two jobs (bench/test-times.ts), as names under test/ without `.test.js`. */
export const SLOWEST_FIRST = [
  'chain-e2e',
  'operator-lifecycle',
  'devnet-resume',
  'network',
  'devnet-cleanup',
  'model-publish',
  'devnet',
  // 40 s of CPU when it compiles (a changed source or a cold cache), under a second otherwise
  'contracts-build',
  'cli-help',
  'aggregator-restart',
  // issue 12's files, by their times alone (40–60 s each): not yet measured side by side
  'gateway',
  'poi-client',
  'http-fuzz',
  'network-page',
  'readme-curl',
  'cli',
  'restart',
  'real-models',
  'paid-e2e',
  'model-owner',
  // issue 13: an in-process network of four with one faulty operator started twice
  'test-faults',
  // issue 14: model access tiers through a network on anvil (a network of separate processes), then on anvil alone
  'access-network',
  'access-tiers',
  'http-api',
  'streams',
  // issue 14: governance on one anvil chain (proposals through voting, queue and the timelock)
  'governance',
  // issue 14: a whole devnet, then a governed change (85 s with the machine's load at 60; ~15 s quiet, like `npm start`)
  'devnet-gov',
  // issue 14: `poi gov` as processes on one anvil chain, about 20 of them (60-70 s with the load at 60)
  'gov-cli',
  // issue 15: batches on one anvil chain each (a few dozen transactions; under 40 s quiet)
  'batch-settlement',
  'batch-invariant',
  // issue 15: batches on anvil through a network of processes (about 40 s quiet), then through an in-process network (about 20 s)
  'batch-chain',
  'batch-network',
  // issue 15 point 4: a batch leaf against an attestation, slashed through an in-process network on anvil (about 10 s)
  'batch-conflicts',
  // issue 15: two aggregators on anvil through an in-process network, one posting the other's batch (about 35 s)
  'batch-backup',
  // issue 15: failed batches re-batched and per-requester order, on one anvil chain (under 30 s quiet), then a stubbed chain (a few seconds)
  'batch-rebatch-chain',
  'batch-rebatch',
  // issue 16: a Groth16 ceremony with two contributions (the first file to run also makes the
  // machine's cached 2^9 powers of tau, about 20 s), the same through the CLI (5 processes),
  // a verifier and zk settlement on anvil, and circuits compiled with circom2 (about 10 s each);
  // then the acceptance flow (a ceremony with two contributions, a proof, verified off-chain and settled on
  // anvil; about 35 s) and hand-made calldata through TaskManager's zk forwarder (about 20 s)
  'zk-ceremony',
  'zk-setup-cli',
  'zk-verifier',
  'zk-settlement',
  'zk-e2e',
  'zk-settlement-forwarder',
  'zk-circuit',
  // issue 16 part B: an in-process network of four checking real proofs (about 20 s; the first
  // file to run on a machine also builds the zk test model's fixture: 2^10 ptau, circuit and a
  // two-contribution ceremony, about 90 s), then the proofs codec with one real proof
  'zk-proofs-network',
  // issue 16 part C: the zk path on anvil (prover, requester, aggregator; about 20 s with the fixture built), the proving process
  'zk-network-chain',
  'zk-proof-worker',
  'zk-wire'
]

/**
 * Files `npm test` runs alone, after the parallel run (package.json's test script names each):
 * the swarm test builds images and starts a dozen containers, which takes every core of the
 * machine and would slow the parallel files into their timeouts.
 */
export const RUN_ALONE = ['swarm']

/** dist/test, from dist/test/helpers/suite-order.js. */
const TEST_DIR = join(dirname(fileURLToPath(import.meta.url)), '..')

/** Every `*.test.js` file under `dir` (paths relative to it) but RUN_ALONE's, slowest known first, then in name order; names of SLOWEST_FIRST with no file are left out. */
export function suiteOrder (dir = TEST_DIR): string[] {
  const alone = RUN_ALONE.map(name => `${name}.test.js`)
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter(f => f.endsWith('.test.js') && !alone.includes(f)).sort()
  const first = SLOWEST_FIRST.map(name => `${name}.test.js`).filter(f => files.includes(f))
  return [...first, ...files.filter(f => !first.includes(f))]
}

if (process.argv[1] != null && fileURLToPath(import.meta.url) === process.argv[1]) {
  const missing = SLOWEST_FIRST.filter(name => !suiteOrder().includes(`${name}.test.js`))
  if (missing.length > 0) process.stderr.write(`suite-order: no test file for ${missing.join(', ')} (renamed? update SLOWEST_FIRST in test/helpers/suite-order.ts)\n`)
  console.log(suiteOrder().map(f => relative(process.cwd(), join(TEST_DIR, f))).join('\n'))
}
