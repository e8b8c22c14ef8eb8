/**
 * Issue 15's credit tabs, requester side and admission side: the requester's tab hands out
 * dense sequences that survive a restart (written before a task is sent), its vouchers verify and
 * accumulate fees, single tasks' random nonces stay at or above 2^40; full nodes refuse tab tasks
 * whose voucher is not the requester's, does not cover the fee, or exceeds the deposit.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bytesToHex, hexToBytes } from 'viem'
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import { deposit, type OnChainOperatorSet } from '../contracts/index.js'
import { ChainClient } from '../node/chain-client.js'
import { exampleInput } from '../node/cli/devnet.js'
import type { PoiNode, Rejection } from '../node/poi-node.js'
import { fetchResult } from '../protocols/result/index.js'
import { RequesterTab, TabStateError, TaskRefusedError, announceTask, randomTaskNonce, requestInference, tabFilePath, waitForNetwork } from '../node/requester/index.js'
import {
  bytesToUint256, signTask, signVoucher, taskIdOf, toHex, uint256ToBytes, verifyVoucherSignature, VOUCHER_SEQUENCE_LIMIT, type TaskAnnouncement
} from '../protocols/wire/index.js'
import { TEST_DOMAIN } from './consensus-fixtures.js'
import { startPaidNetwork, type PaidNetwork } from './helpers/paid-network.js'
import type { PoiChain } from './helpers/poi-chain.js'
import { until } from './helpers/wait.js'

const ACCOUNT = privateKeyToAccount('0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d')
const OTHER = privateKeyToAccount('0x5de4111afa1a4b94908f83103eb1f1706367c2e82ca4a8e6a27b12a1b3b2d8c4')

describe('credit tabs (issue 15)', function () {
  this.timeout(60_000)

  describe('the requester\'s tab', () => {
    let dir: string
    beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'poi-tab-')) })
    afterEach(async () => { await rm(dir, { recursive: true, force: true }) })
    const open = async (extra: Partial<Parameters<typeof RequesterTab.open>[0]> = {}): Promise<RequesterTab> =>
      await RequesterTab.open({ dir, account: ACCOUNT, chainId: TEST_DOMAIN.chainId, taskManager: TEST_DOMAIN.taskManager, ...extra })

    it('hands out 1, 2, 3 with cumulative fees, signed by the requester, and continues after a restart', async () => {
      const tab = await open()
      const fees = [100n, 250n, 0n]
      let cumulative = 0n
      for (const [i, fee] of fees.entries()) {
        const p = await tab.next(fee)
        cumulative += fee
        assert.equal(p.sequence, BigInt(i + 1))
        assert.equal(p.cumulative, cumulative)
        assert.equal(p.voucher.sequence, p.sequence)
        assert.equal(bytesToUint256(p.voucher.cumulative), cumulative)
        const voucher = { requester: ACCOUNT.address, taskManager: TEST_DOMAIN.taskManager, cumulative, sequence: p.sequence }
        assert.ok(await verifyVoucherSignature(TEST_DOMAIN.chainId, voucher, bytesToHex(p.voucher.signature)))
        // on disk before it is handed out
        const onDisk = JSON.parse(await readFile(tabFilePath(dir, TEST_DOMAIN.chainId, TEST_DOMAIN.taskManager), 'utf8'))
        assert.equal(onDisk.sequence, String(p.sequence))
        assert.equal(onDisk.cumulative, String(cumulative))
      }
      const again = await open()
      assert.equal(again.sequence, 3n)
      const p = await again.next(5n)
      assert.equal(p.sequence, 4n)
      assert.equal(p.cumulative, 355n)
    })

    it('never gives two concurrent tasks the same sequence', async () => {
      const tab = await open()
      const all = await Promise.all(Array.from({ length: 20 }, async () => await tab.next(1n)))
      assert.deepEqual(all.map(p => p.sequence).sort((a, b) => Number(a - b)), Array.from({ length: 20 }, (_, i) => BigInt(i + 1)))
      assert.equal((await open()).sequence, 20n)
    })

    it('continues above what the chain settled when the file is behind or lost', async () => {
      const tab = await open({ readTab: async () => ({ settled: 1000n, lastSequence: 41n }) })
      const p = await tab.next(7n)
      assert.equal(p.sequence, 42n)
      assert.equal(p.cumulative, 1007n)
    })

    it('refuses a file of another requester, another network, or not a tab state', async () => {
      await (await open()).next(1n)
      // one directory holds one requester's tabs (its keystore): another account there is refused, not mixed in
      await assert.rejects(RequesterTab.open({ dir, account: OTHER, chainId: TEST_DOMAIN.chainId, taskManager: TEST_DOMAIN.taskManager }),
        (err: Error) => err instanceof TabStateError && /not of/.test(err.message))
      await writeFile(tabFilePath(dir, TEST_DOMAIN.chainId, TEST_DOMAIN.taskManager), '{"version": 1, "requester": "nope"')
      await assert.rejects(open(), (err: Error) => err instanceof TabStateError && /not JSON/.test(err.message))
    })

    it('single tasks\' random nonces are never tab sequences', () => {
      for (let i = 0; i < 100; i++) assert.ok(randomTaskNonce() >= VOUCHER_SEQUENCE_LIMIT)
    })
  })

  describe('full nodes admit tab tasks only when their voucher pays (anvil, in-process nodes)', function () {
    const SETUP_TIMEOUT_MS = 120_000
    const MESH_TIMEOUT_MS = 30_000
    const REFUSAL_TIMEOUT_MS = 20_000
    const TASK_TIMEOUT_MS = 30_000
    const MODEL_FEE = 20_000_000_000_000n
    /** anvil accounts used as requesters (0 deploys, 1-3 are operators). */
    const REQUESTER = { paying: 4, forger: 5, poor: 6, behind: 7 } as const
    let net: PaidNetwork
    let chain: PoiChain
    let client: ChainClient
    let set: OnChainOperatorSet
    let root: string
    let modelId: Uint8Array
    let required: bigint
    let bootstrap: PoiNode
    let requester: PoiNode
    const rejections: Rejection[] = []
    let inputs = 100
    const account = (i: number): PrivateKeyAccount => net.account(i)
    const fund = async (i: number, amount: bigint): Promise<void> => { await net.fund(i, amount) }
    const tabOf = async (i: number): Promise<RequesterTab> =>
      await RequesterTab.open({ dir: join(root, `tab-${i}`), account: account(i), chainId: set.domain.chainId, taskManager: set.domain.taskManager, readTab: client.tabs.readTab })

    before(async function () {
      this.timeout(SETUP_TIMEOUT_MS)
      // the three registered operators make a set a request can be certified by; admission needs no operator running
      net = await startPaidNetwork('poi-tab-admission-', MODEL_FEE)
      ;({ chain, client, set, root, modelId, required } = net)
      for (const i of Object.values(REQUESTER)) await mkdir(join(root, `tab-${i}`))
      bootstrap = await net.start('bootstrap')
      bootstrap.addEventListener('rejected', ({ detail }) => { if (detail.topic === 'task') rejections.push(detail) })
      requester = await net.start('requester', { light: true })
      await waitForNetwork(requester, { timeoutMs: MESH_TIMEOUT_MS })
    })

    after(async function () {
      this.timeout(SETUP_TIMEOUT_MS)
      await net?.stop()
    })

    const params = (fee = required): { modelId: Uint8Array, input: Uint8Array, fee: bigint, timeoutMs: number } => ({ modelId, input: exampleInput(++inputs), fee, timeoutMs: TASK_TIMEOUT_MS })

    /** A task `signer` signs as a tab task of sequence `nonce`, with the voucher `voucher` signs (another account: a forgery). */
    async function craft (signer: number, nonce: bigint, voucherBy: number | undefined, cumulative = required): Promise<TaskAnnouncement> {
      const task = await signTask(account(signer), set.domain.taskManager, { chainId: set.domain.chainId, modelId, input: exampleInput(++inputs), fee: required, deadline: BigInt(Date.now() + TASK_TIMEOUT_MS), quorumBps: 6_667, nonce })
      if (voucherBy !== undefined) {
        const by = account(voucherBy)
        const signature = await signVoucher(by, set.domain.chainId, { requester: by.address, taskManager: set.domain.taskManager, cumulative, sequence: nonce })
        task.voucher = { cumulative: uint256ToBytes(cumulative), sequence: nonce, signature: hexToBytes(signature) as Uint8Array<ArrayBuffer> }
      }
      return task
    }

    async function refusalOf (t: TaskAnnouncement): Promise<Rejection> {
      const id = toHex(taskIdOf(t, set.domain.taskManager))
      await until(() => rejections.some(r => r.reason.includes(id)), REFUSAL_TIMEOUT_MS, `the bootstrap node's refusal of task ${id}`)
      return rejections.find(r => r.reason.includes(id))!
    }

    it('admits a funded requester\'s tab task (nonce = sequence 1, voucher = its fee) and counts it', async () => {
      await fund(REQUESTER.paying, 10n * required)
      const tab = await tabOf(REQUESTER.paying)
      const announced = await announceTask(requester, account(REQUESTER.paying), { ...params(), tab })
      announced.result.catch(() => {})
      assert.deepEqual(announced.tab, { sequence: 1n, cumulative: required })
      await until(() => bootstrap.knowsTask(announced.taskId), REFUSAL_TIMEOUT_MS, 'the bootstrap node admits the tab task')
      assert.ok(bootstrap.paymentGate!.pendingCount >= 1)
    })

    it('the requester sees why: a voucher that does not cover its fee on top of its lower pending tab tasks', async () => {
      const tab = await tabOf(REQUESTER.behind)
      await fund(REQUESTER.behind, 10n * required)
      const first = await announceTask(requester, account(REQUESTER.behind), { ...params(), tab })
      first.result.catch(() => {})
      await until(() => bootstrap.knowsTask(first.taskId), REFUSAL_TIMEOUT_MS, 'the first tab task admitted')
      // the tab file rolled back (say, restored from an old backup) signs sequence 2 with a cumulative of one fee only
      const path = tabFilePath(join(root, `tab-${REQUESTER.behind}`), set.domain.chainId, set.domain.taskManager)
      const state = JSON.parse(await readFile(path, 'utf8'))
      await writeFile(path, JSON.stringify({ ...state, cumulative: '0' }))
      const rolledBack = await tabOf(REQUESTER.behind)
      await assert.rejects(requestInference(requester, account(REQUESTER.behind), { ...params(), tab: rolledBack }), (err: Error) => {
        assert.ok(err instanceof TaskRefusedError, String(err))
        assert.match(err.reason, new RegExp(`voucher does not cover its fee: cumulative ${required} wei − 0 wei settled on the tab − ${required} wei of lower-sequence tab tasks pending here`))
        return true
      })
    })

    it('the requester sees why: a tab task whose fee exceeds the deposit minus what it already owes', async () => {
      await fund(REQUESTER.poor, required)
      const tab = await tabOf(REQUESTER.poor)
      const first = await announceTask(requester, account(REQUESTER.poor), { ...params(), tab })
      first.result.catch(() => {})
      await until(() => bootstrap.knowsTask(first.taskId), REFUSAL_TIMEOUT_MS, 'the first tab task admitted')
      await assert.rejects(requestInference(requester, account(REQUESTER.poor), { ...params(), tab }), (err: Error) => {
        assert.ok(err instanceof TaskRefusedError, String(err))
        assert.match(err.reason, new RegExp(`available deposit ${required} wei does not cover this task's fee ${required} wei plus ${required} wei its 1 pending tasks here may still cost`))
        return true
      })
      assert.equal(tab.sequence, 2n, 'the refused task still used its sequence (written before it was sent)')
    })

    it('refuses a voucher signed by another account, and a tab nonce without a voucher (rejected, but not told to the requester: a relay may have stripped it; last, since a rejection lowers the forwarding requester\'s score)', async () => {
      await fund(REQUESTER.forger, 10n * required)
      const forged = await craft(REQUESTER.forger, 1n, REQUESTER.paying)
      await requester.announce(forged)
      const refusal = await refusalOf(forged)
      assert.equal(refusal.verdict, 'reject')
      assert.match(refusal.reason, new RegExp(`voucher .* is not signed by its requester ${account(REQUESTER.forger).address.toLowerCase()}`))
      const bare = await craft(REQUESTER.forger, 2n, undefined)
      await requester.announce(bare)
      assert.match((await refusalOf(bare)).reason, /below 2\^40, which makes it a tab task, but it carries no voucher/)
      for (const t of [forged, bare]) assert.equal(bootstrap.knowsTask(taskIdOf(t, set.domain.taskManager)), false)
      // The voucher is outside the task's signature, so a relay could have stripped or mangled
      // it: the node does not tell the requester it refused the task, and admits the intact copy.
      for (const t of [forged, bare]) {
        const answer = await fetchResult(requester.libp2p, bootstrap.libp2p.peerId, taskIdOf(t, set.domain.taskManager))
        assert.notEqual(answer.status, 'refused', 'a refusal over the unsigned voucher is not the requester\'s')
      }
      const intact = await craft(REQUESTER.forger, 3n, REQUESTER.forger)
      const stripped: TaskAnnouncement = { ...intact, voucher: undefined }
      await requester.announce(stripped)
      await refusalOf(stripped)
      await requester.announce(intact)
      const intactId = taskIdOf(intact, set.domain.taskManager)
      await until(() => bootstrap.knowsTask(intactId), REFUSAL_TIMEOUT_MS, 'the intact copy admitted after a stripped one was refused')
    })
  })
})
