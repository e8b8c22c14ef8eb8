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
    assert.match(stdout, /\] done/)
  })
})
