/**
 * Invariant (fuzz) test of batch settlement (issue 15) on anvil with real BLS keys, following
 * test/payments-invariant.test.ts for batches. A seeded PRNG drives random sequences of tab
 * tasks (random fees), batches of them (random requesters, random prefixes of their pending
 * tasks, random signer subsets that meet the quorum), batches that must revert and are sent
 * anyway (a task already settled, a voucher below the charge, a charge above the deposit),
 * deposits, withdrawal requests and withdrawals after the delay, reward claims and credit
 * withdrawals. After every step:
 *  - the TaskManager's ETH balance is exactly Σ deposits − Σ payouts;
 *  - every requester's balance and tab (settled, lastSequence) and every credit is what an
 *    off-chain model of the contract says;
 *  - the vault holds what it owes: balance − (Σ balances + Σ credits + Σ pendingRewards) lies in
 *    [0, operators + claims) wei: the pending read and each claim floor once (under a wei each),
 *    and each batch's index increment floors below signedStake / 1e27 wei: the rounding dust.
 *
 * A failure prints the seed: POI_FUZZ_SEED=<seed> npx mocha dist/test/batch-invariant.test.js
 * replays the same sequence.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { bytesToHex, encodeFunctionData } from 'viem'
import { generateBlsSecretKey } from '../consensus/index.js'
import {
  TaskManagerAbi, batchCalldata, claimRewards, deposit, readCredit, readOperatorSet, readPendingRewards, readTab, readVault, registerModel,
  requestWithdrawal, submitBatch, withdraw, withdrawCredit, type OnChainOperatorSet
} from '../contracts/index.js'
import { signVoucher } from '../protocols/wire/index.js'
import { signBatch, tabBatch, type TabTask } from './helpers/batch-chain.js'
import { ownedManifest } from './helpers/model-manifests.js'
import { ETHER } from './consensus-fixtures.js'
import { anvilAccount, chainNowMs, nextEpoch, registerAll, startPoiChain, TEST_TASK_LIFE_MS, type PoiChain } from './helpers/poi-chain.js'
import { fuzzSeed, Prng } from './helpers/prng.js'

const FUZZ_TIMEOUT_MS = 150_000
const STEPS = 45
/** 4 operators of 10..40 ether (100 in all): any three but the smallest-two-out meet 2/3. */
const STAKES = [10n, 20n, 30n, 40n].map(s => s * ETHER)
const REQUESTERS = 3
/** Account layout: 0 deployer and treasury, 1..4 operators, then requesters, the model owner, the submitter. */
const FIRST_REQUESTER = 1 + STAKES.length
const MODEL_OWNER = FIRST_REQUESTER + REQUESTERS
const SUBMITTER = MODEL_OWNER + 1
const ACCOUNTS = SUBMITTER + 1
const MODEL_FEE = 300_000_000_000_001n
const BPS = 10_000n
/** Gas for batches sent although they must revert (no estimate: it would fail). */
const REVERTING_TX_GAS = 3_000_000n

/** The off-chain model of what the contract holds for each party. */
interface Model {
  balances: bigint[]
  tabs: Array<{ settled: bigint, lastSequence: bigint }>
  ownerCredit: bigint
  treasuryCredit: bigint
  /** Σ deposits − Σ payouts: the vault's ETH balance. */
  held: bigint
}

describe('batches: the vault holds what it owes over random tasks, batches and withdrawals', function () {
  this.timeout(FUZZ_TIMEOUT_MS)
  const seed = fuzzSeed()
  const rng = new Prng(seed)
  const keys = STAKES.map(() => generateBlsSecretKey())
  let chain: PoiChain
  let set: OnChainOperatorSet
  let modelId: Uint8Array
  const model: Model = { balances: [], tabs: [], ownerCredit: 0n, treasuryCredit: 0n, held: 0n }
  let claims = 0
  const tally = { accepted: 0, reverted: 0, withdrawals: 0 }
  /** Per requester: its tab tasks not yet settled (ascending sequence), its next sequence and what its vouchers authorised. */
  const pending: TabTask[][] = Array.from({ length: REQUESTERS }, () => [])
  const nextSequence = Array.from({ length: REQUESTERS }, () => 1n)
  const authorised = Array.from({ length: REQUESTERS }, () => 0n)
  const wallet = (account: number) => chain.wallets[account]
  const requesterAddress = (r: number): `0x${string}` => wallet(FIRST_REQUESTER + r).account.address
  const tm = (): `0x${string}` => chain.deployment.taskManager

  before(async () => {
    console.log(`    batch invariant seed ${seed} (replay: POI_FUZZ_SEED=${seed})`)
    chain = await startPoiChain({ epochDuration: 100n }, { accounts: ACCOUNTS })
    await registerAll(chain, keys, STAKES)
    await nextEpoch(chain)
    set = await readOperatorSet(chain.publicClient, chain.deployment, 1n)
    const manifest = await ownedManifest(wallet(MODEL_OWNER).account.address, 'batch-invariant')
    modelId = manifest.modelId
    await registerModel(wallet(MODEL_OWNER), chain.publicClient, chain.deployment.modelRegistry, modelId, manifest.block, MODEL_FEE)
    for (let r = 0; r < REQUESTERS; r++) {
      const amount = rng.big(ETHER / 1000n, ETHER / 100n)
      await deposit(wallet(FIRST_REQUESTER + r), chain.publicClient, tm(), amount)
      model.balances.push(amount)
      model.tabs.push({ settled: 0n, lastSequence: 0n })
      model.held += amount
    }
  })
  after(async () => { await chain?.stop() })

  const check = async (step: string): Promise<void> => {
    const at = `after ${step} (seed ${seed})`
    const eth = await chain.publicClient.getBalance({ address: tm() })
    assert.equal(eth, model.held, `vault ETH ${at}`)
    let owed = 0n
    for (let r = 0; r < REQUESTERS; r++) {
      const vault = await readVault(chain.publicClient, tm(), requesterAddress(r))
      assert.equal(vault.balance, model.balances[r], `requester ${r}'s balance ${at}`)
      assert.deepEqual(await readTab(chain.publicClient, tm(), requesterAddress(r)), model.tabs[r], `requester ${r}'s tab ${at}`)
      owed += vault.balance
    }
    const ownerCredit = await readCredit(chain.publicClient, tm(), wallet(MODEL_OWNER).account.address)
    const treasuryCredit = await readCredit(chain.publicClient, tm(), wallet(0).account.address)
    assert.equal(ownerCredit, model.ownerCredit, `owner credit ${at}`)
    assert.equal(treasuryCredit, model.treasuryCredit, `treasury credit ${at}`)
    owed += ownerCredit + treasuryCredit
    for (const op of set.operators) owed += await readPendingRewards(chain.publicClient, chain.deployment, op.address, [1n])
    assert.ok(eth >= owed, `the vault holds ${eth} but owes ${owed} ${at}`)
    assert.ok(eth - owed < BigInt(set.operators.length + claims + 1), `the vault holds ${eth - owed} wei more than it owes ${at}: more than rounding`)
  }

  /** A new tab task of requester `r` with a random fee (at least the model's and the network's). */
  const newTask = async (r: number): Promise<void> => {
    const fee = MODEL_FEE + chain.params.minTaskFee + rng.big(0n, 10n ** 14n)
    authorised[r] += fee
    pending[r].push({
      account: anvilAccount(FIRST_REQUESTER + r), sequence: nextSequence[r]++, modelId, fee,
      deadlineMs: (await chainNowMs(chain)) + TEST_TASK_LIFE_MS, cumulative: authorised[r],
      leaf: { taskId: bytesToHex(randomBytes(32)), resultHash: bytesToHex(randomBytes(32)), outputRef: bytesToHex(randomBytes(32)) }
    })
  }

  /** Signers meeting 2/3 of 100 ether: everyone, or everyone but operator 0 (10) or 1 (20). */
  const randomSigners = (): number[] => {
    const out = rng.int(3)
    return [0, 1, 2, 3].filter(i => out === 0 || i !== out - 1)
  }

  /** Sends a batch that must revert with a fixed gas limit; checks it reverted on chain. */
  const sendReverting = async (tasks: TabTask[], mutate?: (s: Awaited<ReturnType<typeof tabBatch>>['summary']) => Promise<void>): Promise<void> => {
    const domain = set.domain
    const { tree, summary } = await tabBatch(tasks, domain, bytesToHex(randomBytes(32)))
    await mutate?.(summary)
    const qc = signBatch(domain, set.epoch, keys, randomSigners(), tree.root, summary)
    const data = encodeFunctionData({ abi: TaskManagerAbi, functionName: 'submitBatch', args: batchCalldata(qc, summary, set) })
    const hash = await wallet(SUBMITTER).sendTransaction({ to: tm(), data, gas: REVERTING_TX_GAS })
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash })
    assert.equal(receipt.status, 'reverted', `a bad batch was accepted (seed ${seed})`)
    tally.reverted++
  }

  it('keeps the vault whole after every step', async () => {
    for (let step = 0; step < STEPS; step++) {
      const roll = rng.next()
      let what: string
      if (roll < 0.35) {
        const r = rng.int(REQUESTERS)
        const n = 1 + rng.int(4)
        for (let k = 0; k < n; k++) await newTask(r)
        what = `${n} tab tasks of requester ${r}`
      } else if (roll < 0.65) {
        // a batch of random prefixes of the requesters' pending tasks
        const tasks: TabTask[] = []
        const taken: Array<[number, number]> = []
        for (let r = 0; r < REQUESTERS; r++) {
          if (pending[r].length === 0 || rng.chance(0.3)) continue
          const n = 1 + rng.int(pending[r].length)
          tasks.push(...pending[r].slice(0, n))
          taken.push([r, n])
        }
        if (tasks.length === 0) { await newTask(0); what = 'a tab task (nothing to batch)'; continue }
        const charges = taken.map(([r, n]) => pending[r].slice(0, n).reduce((sum, t) => sum + t.fee, 0n))
        const short = taken.findIndex(([r], k) => charges[k] > model.balances[r])
        if (short !== -1) {
          await sendReverting(tasks)
          what = `a batch requester ${taken[short][0]}'s deposit cannot pay (reverted)`
        } else {
          const domain = set.domain
          const { tree, summary } = await tabBatch(tasks, domain, bytesToHex(randomBytes(32)))
          const signers = randomSigners()
          const qc = signBatch(domain, set.epoch, keys, signers, tree.root, summary)
          const { accepted } = await submitBatch(wallet(SUBMITTER), chain.publicClient, tm(), qc, summary, set)
          assert.equal(accepted, true)
          tally.accepted++
          let charged = 0n
          let ownerShares = 0n
          for (const [k, [r, n]] of taken.entries()) {
            const settled = pending[r].splice(0, n)
            model.balances[r] -= charges[k]
            model.tabs[r] = { settled: model.tabs[r].settled + charges[k], lastSequence: settled[settled.length - 1].sequence }
            charged += charges[k]
            ownerShares += BigInt(n) * MODEL_FEE
          }
          model.ownerCredit += ownerShares
          const protocol = (charged - ownerShares) * BigInt(chain.params.protocolFeeBps) / BPS
          model.treasuryCredit += protocol
          // the signers' share stays in the vault as rewards (checked through pendingRewards)
          what = `a batch of ${tasks.length} from ${taken.length} requester(s), signers ${signers.join(',')}`
        }
      } else if (roll < 0.73) {
        // must revert: a settled sequence again, or a voucher below the charge
        const r = rng.int(REQUESTERS)
        if (model.tabs[r].lastSequence === 0n || pending[r].length === 0) { await newTask(r); what = `a tab task of requester ${r}`; continue }
        if (rng.chance(0.5)) {
          // a new task numbered like a settled one, with a pending one above it: TaskAlreadySettled
          const again = { ...pending[r][0], sequence: model.tabs[r].lastSequence, leaf: { ...pending[r][0].leaf, taskId: bytesToHex(randomBytes(32)) } }
          await sendReverting([again, pending[r][0]])
          what = `a batch with requester ${r}'s settled sequence ${again.sequence} (reverted)`
        } else {
          const task = pending[r][0]
          await sendReverting([task], async (summary) => {
            const tab = summary.tabs[0]
            tab.cumulative = model.tabs[r].settled + task.fee - 1n
            tab.signature = await signVoucher(task.account, set.domain.chainId, { requester: tab.requester, taskManager: tm(), cumulative: tab.cumulative, sequence: tab.sequence })
          })
          what = `a batch above requester ${r}'s voucher (reverted)`
        }
      } else if (roll < 0.83) {
        const r = rng.int(REQUESTERS)
        const amount = rng.big(1n, ETHER / 200n)
        await deposit(wallet(FIRST_REQUESTER + r), chain.publicClient, tm(), amount)
        model.balances[r] += amount
        model.held += amount
        what = `requester ${r} deposits ${amount}`
      } else if (roll < 0.9) {
        // a withdrawal: requested, the delay passed (pending tasks expire with it: dropped), paid
        const r = rng.int(REQUESTERS)
        const amount = rng.big(0n, model.balances[r])
        if (amount === 0n) { what = 'nothing'; continue }
        await requestWithdrawal(wallet(FIRST_REQUESTER + r), chain.publicClient, tm(), amount)
        await chain.testClient.increaseTime({ seconds: Number(chain.params.withdrawalDelay) + 1 })
        await chain.testClient.mine({ blocks: 1 })
        const { amount: paid } = await withdraw(wallet(FIRST_REQUESTER + r), chain.publicClient, tm())
        assert.equal(paid, amount)
        model.balances[r] -= amount
        model.held -= amount
        tally.withdrawals++
        for (const p of pending) p.length = 0
        what = `requester ${r} withdraws ${amount} (pending tasks expired)`
      } else if (roll < 0.96) {
        const i = rng.int(STAKES.length)
        const owed = await readPendingRewards(chain.publicClient, chain.deployment, set.operators[i].address, [1n])
        if (owed === 0n) { what = `operator ${i} has nothing to claim`; continue }
        const { amount } = await claimRewards(wallet(1 + i), chain.publicClient, chain.deployment, [1n])
        assert.equal(amount, owed)
        model.held -= amount
        claims++
        what = `operator ${i} claims ${amount}`
      } else {
        const owner = rng.chance(0.5)
        const credit = owner ? model.ownerCredit : model.treasuryCredit
        if (credit === 0n) { what = 'no credit to withdraw'; continue }
        const { amount } = await withdrawCredit(wallet(owner ? MODEL_OWNER : 0), chain.publicClient, tm())
        assert.equal(amount, credit)
        if (owner) model.ownerCredit = 0n
        else model.treasuryCredit = 0n
        model.held -= amount
        what = `${owner ? 'the model owner' : 'the treasury'} withdraws its credit ${amount}`
      }
      await check(`step ${step}: ${what}`)
    }
    console.log(`    ${tally.accepted} batches settled, ${tally.reverted} reverted, ${tally.withdrawals} withdrawals, ${claims} claims`)
    assert.ok(tally.accepted > 0, `seed ${seed} settled no batch: the sequence checked nothing`)
  })
})

