/**
 * `poi model zk-setup` through the real binary: a ceremony started, contributed to twice and
 * finalized, each step a process that exits on its own once done (snarkjs's curve workers
 * ended); and a directory without a ceremony refused with a message and a failing exit code.
 */
import { strict as assert } from 'node:assert'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseCeremonyRecord } from '../node/inference/zk/ceremony.js'
import { runPoi, type CliResult } from './helpers/cli.js'
import { cachedTestPtau, compileTestCircuit, type TestCircuit } from './helpers/zk-test-circuit.js'

/**
 * A step on the test circuit takes 1–3 s of work plus Node's start (measured on two loaded cores);
 * a process left waiting on snarkjs's worker threads never exits, and is killed at this bound.
 */
const STEP_TIMEOUT_MS = 30_000

describe('cli: poi model zk-setup', function () {
  this.timeout(120_000)
  let home: string
  let circuit: TestCircuit
  let ptau: string

  before(async function () {
    home = await mkdtemp(join(tmpdir(), 'poi-zk-setup-cli-'))
    circuit = await compileTestCircuit()
    ptau = await cachedTestPtau()
  })
  after(async function () {
    await circuit?.remove()
    await rm(home, { recursive: true, force: true })
  })

  const times: Record<string, number> = {}
  after(() => { console.log(`      times (ms, each a whole process): ${JSON.stringify(times)}`) })

  async function poiStep (step: string, ...args: string[]): Promise<CliResult> {
    const started = Date.now()
    const r = await runPoi(home, STEP_TIMEOUT_MS, 'model', 'zk-setup', ...args)
    times[step] = Date.now() - started
    return r
  }

  it('start, contribute twice and finalize: each exits 0 on its own, and the record has both contributions', async function () {
    const dir = join(home, 'ceremony')
    const start = await poiStep('start', 'start', circuit.r1cs, '--dir', dir, '--ptau', ptau, '--name', 'the test node')
    assert.equal(start.code, 0, start.stderr)
    assert.match(start.stdout, /ceremony started in .*\n {2}circuit {10}500 constraints, 4 public inputs/)
    assert.match(start.stderr, /groth16 setup: the first key/)

    for (const name of ['alice', 'bob']) {
      const r = await poiStep(`contribute ${name}`, 'contribute', '--dir', dir, '--name', name)
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, new RegExp(`^contribution ${name === 'alice' ? 1 : 2} by ${name}\\n {2}contribution hash {2}[0-9a-f]{128}`))
      assert.match(r.stderr, name === 'alice' ? /verified in .* s: the first key, before any contribution/ : /verified in .* s: 1 contribution\(s\), each extending the previous/)
    }

    const fin = await poiStep('finalize', 'finalize', '--dir', dir)
    assert.equal(fin.code, 0, fin.stderr)
    assert.match(fin.stdout, /verification key {2}.*verification_key\.json \(sha256 [0-9a-f]{64}\)/)

    const record = parseCeremonyRecord(JSON.parse(await readFile(join(dir, 'ceremony.json'), 'utf8')), 'ceremony.json')
    assert.deepEqual(record.contributions.map(c => c.name), ['alice', 'bob'])
    for (const c of record.contributions) assert.ok(fin.stdout.includes(`${c.name}: ${c.contributionHash}`), `finalize lists ${c.name}'s hash:\n${fin.stdout}`)
    assert.equal(record.final?.zkeyFile, record.contributions[1].file)
  })

  it('a directory without a ceremony is refused with what to do, exit code 1', async function () {
    const missing = join(home, 'no-such-dir')
    const contribute = await poiStep('refused: missing dir', 'contribute', '--dir', missing, '--name', 'carol')
    assert.equal(contribute.code, 1)
    assert.match(contribute.stderr, /^poi: no ceremony directory .*no-such-dir: start one with `poi model zk-setup start <circuit\.r1cs> --dir /)

    const empty = join(home, 'empty')
    await mkdir(empty)
    const finalize = await poiStep('refused: empty dir', 'finalize', '--dir', empty)
    assert.equal(finalize.code, 1)
    assert.match(finalize.stderr, /^poi: no ceremony in .*empty: ceremony\.json is missing/)

    const notCircuit = await poiStep('refused: not an r1cs', 'start', join(home, 'nothing.r1cs'), '--dir', join(home, 'c2'))
    assert.equal(notCircuit.code, 1)
    assert.match(notCircuit.stderr, /^poi: cannot read .*nothing\.r1cs/)

    const noName = await poiStep('refused: no --name', 'contribute', '--dir', empty)
    assert.equal(noName.code, 2)
    assert.match(noName.stderr, /required option "--name <who>" not specified/)
  })
})
