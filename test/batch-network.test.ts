/**
 * Issue 15 through a real network (in-process libp2p nodes, no chain): tab tasks from two
 * requesters are certified one by one as before, then the aggregator batches them, the
 * operators check and sign the proposal over the batches topic, and a batch certificate forms
 * that verifies against the epoch's operator set, with every leaf provable in its tree.
 */
import assert from 'node:assert/strict'
import type { Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { verifyBatchProof } from '../consensus/index.js'
import { exampleInput } from '../node/cli/devnet.js'
import { SHIPPED_MODEL_DIR, loadModelDir } from '../node/inference/index.js'
import { buildBatch } from '../node/roles/batch-contents.js'
import { storedBatchItem } from '../node/roles/batch-gossip.js'
import type { BatchReport } from '../node/roles/batcher.js'
import { signTask, signVoucher, to0xHex, uint256ToBytes, type TaskAnnouncement } from '../protocols/wire/index.js'
import { TEST_CHAIN_ID, TEST_TASK_MANAGER, startTestNetwork, until, type TestNetwork } from './helpers/network.js'

const FEE = 10n ** 15n
const TASKS_PER_REQUESTER = 3

describe('batches through a network (issue 15)', function () {
  this.timeout(90_000)
  let net: TestNetwork

  before(async function () {
    net = await startTestNetwork({ operators: 4 })
    const full = [net.bootstrap, net.aggregator, ...net.operators.filter(o => o != null)]
    await until(() => full.every(n => n!.meshPeers('batches') > 0), 20_000, 'a batches mesh on every full node')
  })

  after(async function () {
    await net?.stop()
  })

  it('certifies tab tasks of two requesters in a batch the operators signed', async function () {
    const reports: BatchReport[] = []
    const refusals: string[] = []
    net.aggregator.addEventListener('batch', ({ detail }) => { reports.push(detail) })
    for (const op of net.operators) op?.addEventListener('batch-refused', ({ detail }) => { refusals.push(`${detail.code}: ${detail.reason}`) })
    const model = await loadModelDir(SHIPPED_MODEL_DIR)
    const ids: Hex[] = []
    for (const account of [privateKeyToAccount(generatePrivateKey()), privateKeyToAccount(generatePrivateKey())]) {
      for (let sequence = 1n; sequence <= TASKS_PER_REQUESTER; sequence++) {
        const task: TaskAnnouncement = await signTask(account, TEST_TASK_MANAGER, {
          chainId: TEST_CHAIN_ID, modelId: model.modelId, input: exampleInput(Number(sequence) + ids.length), fee: FEE,
          deadline: BigInt(Date.now() + 60_000), quorumBps: 6667, nonce: sequence
        })
        const cumulative = sequence * FEE
        const signature = await signVoucher(account, TEST_CHAIN_ID, { requester: account.address, taskManager: TEST_TASK_MANAGER, cumulative, sequence })
        task.voucher = { cumulative: uint256ToBytes(cumulative), sequence, signature: new Uint8Array(Buffer.from(signature.slice(2), 'hex')) }
        ids.push(to0xHex(await net.requester.announce(task)))
      }
    }
    const certified = (): Set<string> => new Set(reports.filter(r => r.state === 'certified').flatMap(r => r.taskIds.map(id => id.toLowerCase())))
    await until(() => ids.every(id => certified().has(id.toLowerCase())), 60_000,
      () => `every task in a certified batch: ${certified().size} of ${ids.length}; batches ${reports.map(r => `${r.state}(${r.leaves})`).join(', ')}; refusals ${refusals.join('; ')}`)
    assert.deepEqual(refusals, [], 'no operator refused')
    for (const report of reports.filter(r => r.state === 'certified')) {
      assert.ok((report.signers ?? 0) >= 3, `batch ${report.root} has ${report.signers} signers`)
      // the leaves the aggregator's store holds give the batch's root, and each leaf's proof checks
      const items = await Promise.all(report.taskIds.map(async id => (await storedBatchItem(net.aggregator.store!, id))!))
      const batch = buildBatch(items)
      assert.equal(batch.root, report.root)
      batch.leaves.forEach((leaf, k) => { assert.ok(verifyBatchProof(batch.root, leaf, batch.tree.proof(k))) })
      assert.equal(batch.summary.leafCount, report.leaves)
    }
    // without a chain nothing settles: the tasks stay in the aggregator's batches, none pending alone
    assert.equal(net.aggregator.batcher?.pendingCount, 0)
  })
})
