import { strict as assert } from 'node:assert'
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const CLI = join(dirname(fileURLToPath(import.meta.url)), '../node/cli/main.js')
/** `npm start` takes about 10 s here when the machine is quiet; several times that under load. */
const DEVNET_TIMEOUT_MS = 150_000

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
    assert.match(stdout, /model shards: 4 of 4 operators fetched the model through the DHT/)
    assert.match(stdout, /result +0x[0-9a-f]{64} \(epoch 1, matches the off-chain certificate\)/)
    assert.match(stdout, /outputRef 0x[0-9a-f]{64} \(resolves over \/poi\/stream\/1\/ to the \d+-byte output/)
    assert.match(stdout, /ppocr-mobile-v2-cls[\s\S]*input +110620 bytes, by stream reference[\s\S]*on-chain +0x[0-9a-f]{64} \(same result\)/)
    assert.match(stdout, /\] done/)
  })
})
