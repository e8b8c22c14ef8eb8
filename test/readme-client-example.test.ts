/**
 * The README's client library example runs as written: the block between its CLIENT_EXAMPLE
 * markers is written unchanged to a .mjs file inside the repo (so `poi` resolves by
 * self-reference to the package's exports) and run with this Node against a running network,
 * given the network only through the environment variables the example reads.
 */
import { strict as assert } from 'node:assert'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { signProofOfPossession, writeGenesis } from '../consensus/index.js'
import { SHIPPED_MODEL_DIR, loadModelDir, modelIdToString } from '../node/inference/index.js'
import { lookupResult } from '../node/requester/index.js'
import { fromHex, to0xHex } from '../protocols/wire/index.js'
import { startTestNetwork, type TestNetwork } from './helpers/network.js'

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
/** Node's start, the library's import, connecting and one task on a loaded machine. */
const EXAMPLE_TIMEOUT_MS = 60_000
/** The example needs what the package's engines field asks; this test runs it with Node 24. */
const NODE_MAJOR = 24

/** The code between the markers, without its fence. */
export function clientExample (readme: string): string {
  const block = /<!-- CLIENT_EXAMPLE -->\n```js\n([\s\S]*?)```\n<!-- \/CLIENT_EXAMPLE -->/.exec(readme)
  assert.ok(block !== null, 'README has a ```js block between <!-- CLIENT_EXAMPLE --> and <!-- /CLIENT_EXAMPLE -->')
  return block[1]
}

describe('README: the client library example', function () {
  this.timeout(120_000)
  let net: TestNetwork

  before(async () => { net = await startTestNetwork({ operators: 3 }) })
  after(async () => { await net?.stop() })

  it('runs as written against a running network and prints a verified result', async () => {
    assert.equal(Number(process.versions.node.split('.')[0]), NODE_MAJOR, `run with Node ${NODE_MAJOR} (npx mocha), not ${process.version}`)
    const code = clientExample(await readFile(join(REPO, 'README.md'), 'utf8'))
    assert.match(code, /from 'poi'/, 'the example imports the package, as a user would')
    const genesis = join(net.root, 'genesis.json')
    await writeGenesis(genesis, net.operatorSet, net.keys.map(k => signProofOfPossession(k.blsSecretKey, k.account.address)))
    const model = modelIdToString((await loadModelDir(SHIPPED_MODEL_DIR)).modelId)
    const dir = await mkdtemp(join(REPO, 'dist', '.readme-client-example-'))
    try {
      const script = join(dir, 'example.mjs')
      await writeFile(script, code)
      // Only the variables the example documents; none of the test's own (e.g. a POI_CHAIN set outside).
      const env: NodeJS.ProcessEnv = { ...process.env, POI_BOOTSTRAP: net.bootstrapAddr, POI_GENESIS: genesis, POI_MODEL: model }
      delete env.POI_CHAIN
      delete env.POI_KEYSTORE
      const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => {
        execFile(process.execPath, [script], { cwd: dir, env, timeout: EXAMPLE_TIMEOUT_MS }, (err, stdout, stderr) => {
          if (err != null) reject(new Error(`the example failed or did not exit by itself: ${err.message}\n${stderr}`))
          else resolve({ stdout })
        })
      })
      const lines = stdout.trim().split('\n')
      assert.equal(lines.length, 2, stdout)
      const taskId = /^announced (0x[0-9a-f]{64})$/.exec(lines[0])?.[1]
      assert.ok(taskId !== undefined, `first line: ${lines[0]}`)
      const certified = /^certified \((gossip|full-node)\): (.*)$/.exec(lines[1])
      assert.ok(certified !== null, `second line: ${lines[1]}`)
      const tensors = JSON.parse(certified[2]) as Array<{ name: string, values: unknown[] }>
      assert.ok(Array.isArray(tensors) && tensors.length > 0 && tensors.every(t => typeof t.name === 'string' && t.values.length > 0), certified[2])
      // The network certified that task: a full node shows a certificate for it that verifies.
      const found = await lookupResult(net.requester, fromHex(taskId)!)
      assert.equal(to0xHex(found.certificate.taskId), taskId)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
