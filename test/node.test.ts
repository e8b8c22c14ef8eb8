import { strict as assert } from 'node:assert'
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createOperatorSet } from '../consensus/index.js'
import { resolveConfig } from '../node/config.js'
import { SHIPPED_MODEL_DIR } from '../node/inference/index.js'
import { generateKeystore, loadKeystore } from '../node/keys.js'
import { PoiNode } from '../node/poi-node.js'
import { STAKE, TEST_CHAIN_ID, TEST_TASK_MANAGER } from './helpers/network.js'

describe('node start-up', function () {
  this.timeout(30_000)
  let root: string
  beforeEach(async () => { root = await mkdtemp(join(tmpdir(), 'poi-node-')) })
  afterEach(async () => { await rm(root, { recursive: true, force: true }) })

  it('an operator refuses to start with a model whose bytes do not match its manifest', async () => {
    const modelDir = join(root, 'model')
    await cp(SHIPPED_MODEL_DIR, modelDir, { recursive: true })
    const bytes = await readFile(join(modelDir, 'model.onnx'))
    bytes[bytes.length - 10] ^= 0x01
    await writeFile(join(modelDir, 'model.onnx'), bytes)
    await generateKeystore(join(root, 'keys'))
    const keys = await loadKeystore(join(root, 'keys'))
    const operatorSet = createOperatorSet({
      epoch: 0n,
      domain: { chainId: TEST_CHAIN_ID, taskManager: TEST_TASK_MANAGER },
      operators: [{ address: keys.account.address, blsPublicKey: keys.blsPublicKey, stake: STAKE }]
    })
    const config = resolveConfig({ keystore: join(root, 'keys'), dataDir: join(root, 'data'), genesis: join(root, 'g.json'), modelDirs: [modelDir] })
    await assert.rejects(
      PoiNode.start({ operate: true, aggregate: false, light: false, keystore: keys, config, operatorSet }),
      (err: Error) => err.name === 'ModelHashMismatchError' && /hash/i.test(err.message)
    )
    // The data directory was released: a second start with the good model works.
    const good = resolveConfig({ ...config, modelDirs: [SHIPPED_MODEL_DIR] })
    const node = await PoiNode.start({ operate: true, aggregate: false, light: false, keystore: keys, config: good, operatorSet })
    assert.equal(node.operatorIndex, 0)
    await node.stop()
  })
})
