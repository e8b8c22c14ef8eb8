import { strict as assert } from 'node:assert'
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { modelFetchLine } from '../node/cli/devnet.js'
import { EventLog } from '../node/cli/event-log.js'
import { ModelWaitError, waitForModels } from '../node/cli/model-wait.js'

const CLI = join(dirname(fileURLToPath(import.meta.url)), '../node/cli/main.js')
/** `npm start` takes about 10 s here when the machine is quiet; several times that under load. */
const DEVNET_TIMEOUT_MS = 150_000
/** For the waits on in-memory event logs below: events are pushed by the test itself. */
const WAIT_MS = 2_000

const MLP = 'bagaaieramlp'
const OCR = 'bagaaieraocr'
const fetched = (modelId: string, ms: number) => ({ event: 'model', modelId, bytes: 1000, fromStore: false, ms } as const)

/** Whether `p` has settled, without waiting for it. */
async function settled (p: Promise<unknown>): Promise<boolean> {
  const marker = Symbol('pending')
  return await Promise.race([p.then(() => true, () => true), new Promise(resolve => setImmediate(() => resolve(marker)))]) !== marker
}

describe('poi devnet: reporting the operators\' model fetches', () => {
  it('waits until every operator has reported every registered model, then counts them all', async () => {
    const ops = [0, 1, 2, 3].map(i => new EventLog(`operator-${i}`))
    for (const op of ops.slice(0, 3)) { op.push(fetched(MLP, 300)); op.push(fetched(OCR, 500)) }
    ops[3].push(fetched(MLP, 7_500))
    const waiting = waitForModels(ops, [MLP, OCR], WAIT_MS)
    // The race the devnet used to lose: 3 of 4 operators done, the fourth still fetching.
    assert.equal(await settled(waiting), false, 'the wait ended before operator-3 fetched the second model')
    ops[3].push({ event: 'prefetch-failed', modelId: OCR, reason: 'no provider answered' })
    const outcomes = await waiting
    assert.equal(outcomes.length, 8)
    assert.equal(modelFetchLine(outcomes.filter(o => o.modelId === MLP), 4),
      'model shards: 4 of 4 operators fetched the model through the DHT from the bootstrap node (7500 ms at most)')
    assert.match(modelFetchLine(outcomes.filter(o => o.modelId === OCR), 4), /^model shards: 3 of 4 operators .* \(500 ms at most\); not fetched: operator-3: prefetch failed: no provider answered$/)
  })

  it('an operator that never finishes fails the wait, naming that operator and model', async () => {
    const ops = [0, 1].map(i => new EventLog(`operator-${i}`, `see operator-${i}.log`))
    ops[0].push(fetched(MLP, 10))
    await assert.rejects(waitForModels(ops, [MLP], 50), (err: unknown) => {
      assert.ok(err instanceof ModelWaitError, String(err))
      assert.equal(err.unfinished.length, 1)
      assert.match(err.message, /^1 of 2 model fetches did not finish: operator-1: no model or prefetch-failed event for model bagaaieramlp within 50 ms; see operator-1\.log$/)
      return true
    })
  })

  it('without a chain (no prefetch), the task\'s failed event also ends an operator\'s wait', async () => {
    const taskId = `0x${'cd'.repeat(32)}` as const
    const op = new EventLog('operator-0')
    const waiting = waitForModels([op], [MLP], WAIT_MS, { taskId })
    op.push({ event: 'failed', taskId, reason: 'model unavailable' })
    const [outcome] = await waiting
    assert.ok('failed' in outcome && outcome.failed.includes('model unavailable'), JSON.stringify(outcome))
  })
})

/** The devnet's MLP task pays the model fee (DEVNET_MODEL_FEE) + the default network minimum (0.0001 ETH). */
const MLP_FEE_WEI = 10n ** 15n + 10n ** 14n
const MODEL_FEE_WEI = 10n ** 15n
/** The default protocol fee, 5% of what is left after the model fee. */
const PROTOCOL_FEE_BPS = 500n

/**
 * The paid task's split as `poi devnet` prints it: every payee's line, the figures to the wei
 * (owner and treasury from the fee's terms, each signer the same third of the rest, the
 * operator that did not sign nothing) and the sum, with any rounding said.
 */
function assertFeeSplit (stdout: string): void {
  const wei = (re: RegExp): bigint => {
    const m = re.exec(stdout)
    assert.ok(m !== null, `no line matches ${re}\n${stdout}`)
    return BigInt(m[1])
  }
  assert.equal(wei(/requester +0x[0-9a-fA-F]{40} paid [\d.]+ ETH \((\d+) wei\) from its deposit/), MLP_FEE_WEI)
  const owner = wei(/model owner 0x[0-9a-fA-F]{40} earned [\d.]+ ETH \((\d+) wei\), credit/)
  const treasury = wei(/treasury +0x[0-9a-fA-F]{40} earned [\d.]+ ETH \((\d+) wei\), credit/)
  assert.equal(owner, MODEL_FEE_WEI)
  const rest = MLP_FEE_WEI - MODEL_FEE_WEI
  assert.equal(treasury, rest * PROTOCOL_FEE_BPS / 10_000n)
  const signers = [...stdout.matchAll(/signer (\d) +0x[0-9a-fA-F]{40} earned [\d.]+ ETH \((\d+) wei\), claimable/g)].map(m => BigInt(m[2]))
  const idle = [...stdout.matchAll(/operator \d +0x[0-9a-fA-F]{40} earned 0 ETH \(0 wei\) \(did not sign\)/g)]
  assert.ok(signers.length >= 3, stdout)
  assert.equal(signers.length + idle.length, 4, stdout)
  // Equal stakes: equal shares of what the treasury left, less at most a wei each of rounding.
  const signersShare = rest - treasury
  for (const s of signers) assert.ok(s <= signersShare / BigInt(signers.length) && s >= signersShare / BigInt(signers.length) - 1n, `signer earned ${s} of ${signersShare}`)
  const sum = owner + treasury + signers.reduce((a, b) => a + b, 0n)
  const m = /adds up +owner (\d+) \+ treasury (\d+) \+ signers (\d+) = (\d+) wei of the (\d+) wei charged(, nothing left over| \((\d+) wei of rounding stays in the vault\))/.exec(stdout)
  assert.ok(m !== null, stdout)
  assert.equal(BigInt(m[4]), sum)
  assert.equal(BigInt(m[5]), MLP_FEE_WEI)
  assert.equal(MLP_FEE_WEI - sum, m[7] === undefined ? 0n : BigInt(m[7]))
  assert.ok(MLP_FEE_WEI - sum < BigInt(signers.length), 'more than a wei per signer left in the vault')
  assert.ok(wei(/gas +(\d+) for the certificate transaction/) > 0n)
}

/**
 * `npm start` is `poi devnet`: what a newcomer runs first. It must exit 0 having shown the
 * whole flow: operators fetching the model through the DHT, a certificate settled on-chain
 * whose outputRef resolves off-chain, and a real npm model whose input goes by reference.
 */
describe('poi devnet (npm start)', function () {
  this.timeout(DEVNET_TIMEOUT_MS + 10_000)

  it('runs the whole flow end to end and exits 0', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env }
    delete env.DEBUG
    const child = spawn(process.execPath, [CLI, 'devnet'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGINT')
        reject(new Error(`poi devnet did not exit within ${DEVNET_TIMEOUT_MS} ms\n${stdout}\n${stderr}`))
      }, DEVNET_TIMEOUT_MS)
      child.once('close', (c) => { clearTimeout(timer); resolve(c) })
    })
    assert.equal(code, 0, `${stdout}\n${stderr}`)
    // Quorum is 3 of 4; on a loaded machine the fourth may miss the grace window.
    assert.match(stdout, /certificate verified: [34] of 4 operators signed/)
    // Counted after every operator finished its prefetch, however slow: always all four, and nothing failed.
    assert.match(stdout, /model shards: 4 of 4 operators fetched the model through the DHT from the bootstrap node \(\d+ ms at most\)\n/)
    assert.doesNotMatch(stdout, /not fetched:/)
    assert.match(stdout, /result +0x[0-9a-f]{64} \(epoch 1, matches the off-chain certificate\)/)
    assert.match(stdout, /outputRef 0x[0-9a-f]{64} \(resolves over \/poi\/stream\/1\/ to the \d+-byte output/)
    assert.match(stdout, /ppocr-mobile-v2-cls[\s\S]*input +110620 bytes, by stream reference[\s\S]*on-chain +0x[0-9a-f]{64} \(same result\)/)
    assertFeeSplit(stdout)
    assert.match(stdout, /\] done/)
  })
})
