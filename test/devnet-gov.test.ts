/**
 * The issue's acceptance: `npm start -- --gov` runs the devnet, then changes a network parameter
 * through governance (propose, vote with the operators' stake, queue, execute, anvil's clock
 * moved past the voting period and the timelock's delay), prints it before and after, sends one
 * more task whose fee the TaskManager splits with the new value, and exits 0. Run through npm as a user types it, with the smallest devnet (3 operators, no npm model);
 * and `--gov --offchain` is refused before anything starts.
 */
import { strict as assert } from 'node:assert'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { DEVNET_GOV_PARAMETER, DEVNET_GOV_VALUE } from '../node/cli/devnet-gov.js'
import { CLI, runPoi, runProcess } from './helpers/cli.js'

/** `npm start` takes 10-15 s on a quiet machine, the governed change about a second more; several times that under load. */
const DEVNET_TIMEOUT_MS = 240_000
/** The repository (package.json's `npm start`): dist/test/../.. */
const REPO = join(dirname(CLI), '../../..')

describe('poi devnet --gov (npm start -- --gov): a governed parameter change on the devnet', function () {
  this.timeout(DEVNET_TIMEOUT_MS + 30_000)

  it('proposes, votes, queues and executes the change, prints the parameter before and after, the next task pays the new share, and exits 0', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env }
    delete env.DEBUG
    const args = ['start', '--', '--gov', '--npm-models', 'none', '--operators', '3']
    // npm's own CLI when this test runs under npm (npm_execpath), else the npm on PATH.
    const r = process.env.npm_execpath != null
      ? await runProcess(process.execPath, [process.env.npm_execpath, ...args], { env, cwd: REPO, timeoutMs: DEVNET_TIMEOUT_MS })
      : await runProcess('npm', args, { env, cwd: REPO, timeoutMs: DEVNET_TIMEOUT_MS })
    const output = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`
    assert.equal(r.code, 0, output)
    assert.equal(DEVNET_GOV_PARAMETER, 'protocolFeeBps')
    assert.equal(DEVNET_GOV_VALUE, '250')
    // Each step, in order, with the poi gov command that does the same.
    const steps = [
      /governance: protocolFeeBps is 500 bps \(5 %\); voting opens 60 s after a proposal and lasts 600 s, quorum 33 % of the stake, timelock delay 300 s/,
      /proposed to set protocolFeeBps to 250 bps \(2\.5 %\) as operator-0: proposal (\d+) {2}\(poi gov propose set protocolFeeBps 250\)/,
      /anvil's clock moved past the voting delay/,
      /operator-0 voted for with \d+ ETH of stake {2}\(poi gov vote \d+ for\)/,
      /operator-2 voted for/,
      /anvil's clock moved past the voting period: Succeeded/,
      /queued in the timelock 0x[0-9a-fA-F]{40}, executable after its 300 s delay/,
      /the timelock executed it {2}\(poi gov execute \d+\)/
    ]
    let at = 0
    for (const step of steps) {
      const m = step.exec(r.stdout.slice(at))
      assert.ok(m !== null, `${step} after the previous steps\n${output}`)
      at += m.index + m[0].length
    }
    assert.match(r.stdout, /governance {2}protocolFeeBps changed by proposal \d+: voted by 3 operators with their stake, executed by the timelock\n {2}before {4}protocolFeeBps = 500 bps \(5 %\)\n {2}after {5}protocolFeeBps = 250 bps \(2\.5 %\)\n/)
    // The next task pays the treasury the new share: 250 bps of what is left after the model owner's fee (0.0001 ETH), where the first paid 500.
    assert.match(r.stdout, /treasury {4}0x[0-9a-fA-F]{40} earned 0\.000005 ETH \(5000000000000 wei\), credit/)
    assert.match(r.stdout, /after the change: task 0x[0-9a-f]{64} settled in 0x[0-9a-f]{64}\n {2}treasury {4}earned 0\.0000025 ETH \(2500000000000 wei\): 250 bps of the 0\.0001 ETH \(100000000000000 wei\) left after the model owner's fee\n/)
    assert.match(r.stdout, /\] done\n?$/)
  })

  it('--gov with --offchain is refused with the reason, before anything starts', async () => {
    const r = await runPoi(tmpdir(), 30_000, 'devnet', '--gov', '--offchain')
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /--offchain and --gov are mutually exclusive: --gov changes a parameter on the devnet's chain, --offchain runs without one/)
  })
})
