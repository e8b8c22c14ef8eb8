/**
 * Issue 15: a batch settles even when the aggregator that formed it never posts it. Two
 * aggregators on anvil (in-process libp2p nodes, the network of test/helpers/network.ts on a
 * chain): the forming aggregator closes a batch of tab tasks, the operators sign it, and its
 * certificate is gossiped; the other aggregator keeps it and, once its backup delay is over,
 * reads the chain and posts it if the chain still lacks it (node/roles/batch-backup.ts).
 *
 * The forming aggregator's "loss" is a chain client that refuses to post batches (a transaction
 * that never goes out, as when the process dies right after gossiping): everything else on its
 * path is real. The other aggregator forms no batch of its own here (its batcher's bounds are
 * out of reach), so a batch on chain from it can only be the backup's.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { BatchTree } from '../consensus/index.js'
import { ANVIL_PRIVATE_KEYS, deposit, hasBatchResult, readTab, registerModel } from '../contracts/index.js'
import { readTaskFee } from '../node/client/index.js'
import { exampleInput } from '../node/cli/devnet.js'
import { SHIPPED_MODEL_DIR, encodeManifest, loadModelDir } from '../node/inference/index.js'
import type { PoiNode } from '../node/poi-node.js'
import { RequesterTab, requestInference, type RequestResult } from '../node/requester/index.js'
import { PermanentSubmissionError, compareTaskIds, type BatchReport } from '../node/roles/index.js'
import { to0xHex } from '../protocols/wire/index.js'
import { startPoiChain, walletFor, type PoiChain } from './helpers/poi-chain.js'
import { startTestNetwork, until, type TestNetwork } from './helpers/network.js'

const ETHER = 10n ** 18n
/** Tab tasks per batch: the forming aggregator closes its batch at exactly these. */
const TASKS_PER_BATCH = 3
/**
 * The backup's delay here: past the forming aggregator's own post on a loaded test machine (a
 * chain read, a simulation and one anvil transaction: well under a second quiet, a few seconds
 * loaded), so the second test's backup finds the batch settled; short, so the file stays fast.
 */
const BACKUP_DELAY_MS = 5_000
/** From the backup taking the certificate in to the batch on chain: its delay, then a read and one transaction. */
const BACKUP_SETTLE_BOUND_MS = BACKUP_DELAY_MS + 20_000
const TASK_TIMEOUT_MS = 30_000
/**
 * anvil accounts of the requesters (0 deploys, 1-4 are the operators), one per test: the lost
 * aggregator of the first test keeps batching its requester's tasks again until it sees them
 * settled by the backup, and one batch per requester is in flight at a time.
 */
const REQUESTERS = [privateKeyToAccount(ANVIL_PRIVATE_KEYS[9]), privateKeyToAccount(ANVIL_PRIVATE_KEYS[8])] as const

describe('a batch whose aggregator never posts it is posted by another aggregator (issue 15)', function () {
  this.timeout(120_000)
  let chain: PoiChain
  let net: TestNetwork
  let backup: PoiNode
  const tabs: RequesterTab[] = []
  let fee: bigint
  let modelId: Uint8Array
  let tabDir: string
  let inputs = 0
  /** Whether the forming aggregator's batch transactions go out. */
  const forming = { posts: false }
  const reports = new Map<PoiNode, BatchReport[]>()

  before(async function () {
    chain = await startPoiChain({ epochDuration: 0n })
    const model = await loadModelDir(SHIPPED_MODEL_DIR)
    modelId = model.modelId
    // the shipped manifest names anvil's first account (wallets[0]) as its owner
    await registerModel(chain.wallets[0], chain.publicClient, chain.deployment.modelRegistry, modelId, encodeManifest(model.manifest), 0n)
    net = await startTestNetwork({
      operators: 4,
      chain,
      backupAggregation: false,
      aggregator: {
        config: { batchMaxLeaves: TASKS_PER_BATCH, batchMaxWaitMs: 60_000 },
        batchSettlement: (own) => ({
          get account () { return own.account },
          batchSettlement: async (root) => await own.batchSettlement(root),
          submitBatch: async (batch, options) => {
            if (!forming.posts) throw new PermanentSubmissionError('this aggregator is set not to post batches (the test\'s lost aggregator)')
            return await own.submitBatch(batch, options)
          }
        })
      }
    })
    // bounds out of reach: this aggregator batches nothing itself, so what it posts is the backup's
    backup = await net.extraAggregator('backup', { config: { batchMaxLeaves: 1024, batchMaxWaitMs: 600_000 }, node: { batchBackupDelayMs: BACKUP_DELAY_MS } })
    const full = [net.bootstrap, net.aggregator, backup, ...net.operators.filter(o => o != null)]
    await until(() => full.every(n => n.meshPeers('batches') > 0 && n.meshPeers('certificates') > 0 && (net.operators.includes(n) || n.meshPeers('attestations') > 0)),
      20_000, 'batches, certificates and attestations meshes on every full node')
    for (const node of [net.aggregator, backup]) {
      reports.set(node, [])
      node.addEventListener('batch', ({ detail }) => { reports.get(node)!.push(detail) })
    }
    const client = net.chainClient!
    fee = (await readTaskFee(client, modelId)).fee
    tabDir = await mkdtemp(join(tmpdir(), 'poi-batch-backup-tab-'))
    for (const [k, account] of REQUESTERS.entries()) {
      await deposit(walletFor(chain.anvil.rpcUrl, account), chain.publicClient, chain.deployment.taskManager, ETHER)
      await mkdir(join(tabDir, String(k)))
      tabs.push(await RequesterTab.open({
        dir: join(tabDir, String(k)), account, chainId: BigInt(chain.anvil.chainId), taskManager: chain.deployment.taskManager,
        readTab: async (r) => await readTab(chain.publicClient, chain.deployment.taskManager, r)
      }))
    }
  })

  after(async function () {
    await net?.stop()
    await chain?.stop()
    if (tabDir != null) await rm(tabDir, { recursive: true, force: true })
  })

  /** TASKS_PER_BATCH tab tasks, certified; the root of the batch that holds them (the forming aggregator's 'certified' report). */
  async function certifiedBatch (requester: 0 | 1): Promise<{ results: RequestResult[], root: Hex }> {
    const results = await Promise.all(Array.from({ length: TASKS_PER_BATCH }, async () =>
      await requestInference(net.requester, REQUESTERS[requester], { modelId, input: exampleInput(++inputs), timeoutMs: TASK_TIMEOUT_MS, fee, tab: tabs[requester] })))
    const ids = results.map(r => to0xHex(r.taskId).toLowerCase())
    const holds = (r: BatchReport): boolean => ids.every(id => r.taskIds.some(t => t.toLowerCase() === id))
    await until(() => reports.get(net.aggregator)!.some(r => r.state === 'certified' && holds(r)), 30_000,
      () => `the forming aggregator's batch certificate: ${reports.get(net.aggregator)!.map(r => `${r.state}(${r.leaves}${r.reason != null ? `: ${r.reason}` : ''})`).join(', ')}`)
    return { results, root: reports.get(net.aggregator)!.find(r => r.state === 'certified' && holds(r))!.root }
  }

  const step = (node: PoiNode, root: Hex, state: BatchReport['state']): BatchReport | undefined =>
    reports.get(node)!.find(r => r.root.toLowerCase() === root.toLowerCase() && r.state === state)

  /** Every leaf of the batch proved on chain with its Merkle proof (TaskManager.hasResult). */
  async function provedLeaves (results: RequestResult[], root: Hex): Promise<number> {
    const leaves = results.map(r => ({ taskId: to0xHex(r.taskId), resultHash: to0xHex(r.resultHash), outputRef: to0xHex(r.outputRef) })).sort((a, b) => compareTaskIds(a.taskId, b.taskId))
    const tree = new BatchTree(leaves)
    assert.equal(tree.root.toLowerCase(), root.toLowerCase(), 'the certified results make the batch\'s root')
    let proved = 0
    for (const [k, leaf] of leaves.entries()) {
      const result = { resultHash: leaf.resultHash, outputRef: leaf.outputRef, epoch: results[0]!.epoch }
      if (await hasBatchResult(chain.publicClient, chain.deployment.taskManager, leaf.taskId, result, tree.proof(k))) proved++
    }
    return proved
  }

  it('the other aggregator posts the certified batch once its delay is over: every leaf provable on chain', async function () {
    forming.posts = false
    const { results, root } = await certifiedBatch(0)
    const backupAccount = net.accountOf(backup)!
    await until(() => step(backup, root, 'certified') !== undefined, 20_000, 'the backup holding the batch certificate')
    const heldAt = Date.now()
    assert.equal(backup.batchBackup?.heldCount, 1)
    assert.equal(backup.batcher?.pendingCount, 0, 'the backup\'s batcher leaves the batch\'s tasks to it')
    await until(() => step(backup, root, 'settled') !== undefined || step(backup, root, 'failed') !== undefined, BACKUP_SETTLE_BOUND_MS,
      () => `the backup posting the batch: ${reports.get(backup)!.map(r => `${r.state}${r.reason != null ? ` (${r.reason})` : ''}`).join(', ')}`)
    const waited = Date.now() - heldAt
    const settled = step(backup, root, 'settled')
    assert.ok(settled !== undefined, `the batch failed: ${step(backup, root, 'failed')?.reason}`)
    assert.equal(settled.settledBy?.toLowerCase(), backupAccount.toLowerCase(), 'posted from the backup\'s account')
    assert.ok(settled.txHash !== undefined && settled.gasUsed !== undefined)
    assert.ok(waited >= BACKUP_DELAY_MS - 1_000, `posted ${waited} ms after the certificate arrived, before its delay of ${BACKUP_DELAY_MS} ms`)
    // the forming aggregator did not post it (its transaction never went out); the chain says who did
    assert.ok(step(net.aggregator, root, 'failed') !== undefined, 'the forming aggregator reported its own post as failed')
    const onChain = await net.chainClient!.batchSettlement(root)
    assert.equal(onChain?.by.toLowerCase(), backupAccount.toLowerCase())
    assert.equal(await provedLeaves(results, root), TASKS_PER_BATCH, 'hasResult(taskId, result, proof) for every leaf')
    assert.equal(backup.batchBackup?.heldCount, 0, 'nothing left held')
  })

  it('when the forming aggregator posts its batch, the backup sends nothing', async function () {
    forming.posts = true
    const backupAccount = net.accountOf(backup)!
    const formingAccount = net.accountOf(net.aggregator)!
    const nonceBefore = await chain.publicClient.getTransactionCount({ address: backupAccount })
    const { results, root } = await certifiedBatch(1)
    await until(() => step(backup, root, 'settled') !== undefined || step(backup, root, 'failed') !== undefined, BACKUP_SETTLE_BOUND_MS,
      () => `the backup ending its hold of the batch: ${reports.get(backup)!.map(r => `${r.state}${r.reason != null ? ` (${r.reason})` : ''}`).join(', ')}`)
    assert.ok(step(backup, root, 'certified') !== undefined, 'the backup held the batch certificate')
    const seen = step(backup, root, 'settled')
    assert.ok(seen !== undefined, `failed: ${step(backup, root, 'failed')?.reason}`)
    assert.equal(seen.settledBy?.toLowerCase(), formingAccount.toLowerCase(), 'the backup reports the forming aggregator as the poster')
    assert.equal(seen.gasUsed, undefined, 'no gas of the backup\'s own')
    assert.equal(step(net.aggregator, root, 'settled')?.settledBy?.toLowerCase(), formingAccount.toLowerCase())
    assert.equal(await chain.publicClient.getTransactionCount({ address: backupAccount }), nonceBefore, 'the backup sent no transaction')
    assert.equal(await provedLeaves(results, root), TASKS_PER_BATCH)
    assert.equal(backup.batchBackup?.heldCount, 0)
  })
})
