/**
 * Invariant (fuzz) test of the payments (issue 10, DESIGN §9) on a real anvil with real BLS keys.
 * A seeded PRNG drives random sequences of deposits, paid certificates (random fees, random
 * non-signer subsets that meet the quorum, several epochs whose stakes differ after slashes),
 * requesters in default, reward claims (partial over epochs, repeated, another operator's leaf),
 * credit withdrawals, equivocation slashes, withdrawal requests and withdrawals after the delay.
 * After every step:
 *  - the TaskManager's asset balance is exactly Σ deposits − Σ payouts (withdrawals, claims,
 *    credits), and each payout reached its payee to the wei;
 *  - every requester's balance, pending withdrawal and shortfall and every credit is what an
 *    off-chain model of the contract says;
 *  - the vault holds at least what it owes: Σ balances + Σ credits + Σ pendingRewards (on-chain)
 *    and Σ balances + Σ credits + Σ (⌊exact share⌋ − claimed) (off-chain), and no more than that
 *    plus the rounding dust (under 1 wei per (operator, epoch));
 *  - per operator, claimed + pending ≤ ⌊Σ exact stake-proportional share⌋ (exact rationals over
 *    each certificate's signers), and > Σ share − n·stake/REWARD_SCALE − (claims + 1): each
 *    certificate's index increment floors once (a loss below stake/1e27 wei: far under one wei
 *    for any stake below 1e27 wei) and each claim, and the pending read, floors once more (< 1 wei).
 *
 * A failure prints the seed: POI_FUZZ_SEED=<seed> npx mocha dist/test/payments-invariant.test.js
 * replays the same sequence.
 */
import assert from 'node:assert/strict'
import { createPublicClient, erc20Abi, http, isAddressEqual, parseEventLogs, zeroAddress, type PublicClient, type TransactionReceipt } from 'viem'
import { foundry } from 'viem/chains'
import { generateBlsSecretKey, signAttestation, type EquivocationEvidence } from '../consensus/index.js'
import {
  TaskManagerAbi, TestTokenAbi, certificateCalldata, deposit, nonSignerArgs, readOperatorSet, registerModel, requestWithdrawal,
  submitEvidence, withdraw, withdrawCredit, type ClaimArgs, type OnChainOperatorSet
} from '../contracts/index.js'
import { taskIdOf } from '../protocols/wire/index.js'
import { ownedManifest } from './helpers/model-manifests.js'
import { ETHER, hash32 } from './consensus-fixtures.js'
import { currentEpoch, expectRevert, makeCertificate, nextEpoch, paidTask, registerAll, startPoiChain, type PoiChain, type Wallet } from './helpers/poi-chain.js'
import { fuzzSeed, Prng } from './helpers/prng.js'

/** Per `it`: a few hundred anvil transactions and BLS signatures on a loaded 2-core machine. */
const FUZZ_TIMEOUT_MS = 120_000
const ETH_STEPS = 220
const TOKEN_STEPS = 70
/** Random steps between the forced slash + epoch change (so every run spans several epochs with different stakes). */
const STEPS_PER_EPOCH = 30
/** Dead-beat certificates tried after the random steps when none defaulted (each one drains or defaults). */
const FORCED_DEFAULT_ATTEMPTS = 8
const OPERATORS = 6
const REQUESTERS = 3
/** Requester DEADBEAT deposits only dust, so its certificates default. */
const DEADBEAT = REQUESTERS - 1
/** Account layout: 0 deployer and treasury, 1..OPERATORS operators, then requesters, model owner, reporter, submitter. */
const FIRST_REQUESTER = 1 + OPERATORS
const MODEL_OWNER = FIRST_REQUESTER + REQUESTERS
const REPORTER = MODEL_OWNER + 1
const SUBMITTER = REPORTER + 1
const ACCOUNTS = SUBMITTER + 1
const MODEL_FEE = 300_000_000_000_001n
const REWARD_SCALE = 10n ** 27n
const BPS = 10_000n
/** Gas for transactions sent although they must revert (no estimate: it would fail). */
const REVERTING_TX_GAS = 1_000_000n
/** anvil's clock also moves with the wall clock; a withdrawal this close to its unlock time is not attempted. */
const UNLOCK_MARGIN_S = 300n
/** anvil mines at once; a receipt is there by the next poll. */
const FAST_POLL_MS = 20

/** A non-negative rational, exact. */
class Fraction {
  constructor (readonly num: bigint, readonly den: bigint) {}
  static readonly ZERO = new Fraction(0n, 1n)
  add (num: bigint, den: bigint): Fraction {
    const n = this.num * den + num * this.den
    const d = this.den * den
    const g = gcd(n, d)
    return new Fraction(n / g, d / g)
  }

  floor (): bigint { return this.num / this.den }
  /** this > x − y/den (a lower bound with a rational slack). */
  exceeds (lower: bigint, slackNum: bigint, slackDen: bigint): boolean {
    // x = lower (integer) compared with this − slack: lower > this − s  ⇔  (lower)·D·sD > num·sD − sN·den
    return lower * this.den * slackDen > this.num * slackDen - slackNum * this.den
  }
}

function gcd (a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b]
  return a === 0n ? 1n : a
}

function mulDiv (a: bigint, b: bigint, d: bigint): bigint { return a * b / d }

type Operator = { wallet: Wallet, address: `0x${string}`, key: Uint8Array, liveStake: bigint }
type Requester = { wallet: Wallet, address: `0x${string}`, balance: bigint, pending: bigint, unlocksAt: bigint, shortfall: bigint }

/** What the contract should hold for one epoch, and each operator's exact entitlement there. */
type EpochModel = {
  set: OnChainOperatorSet
  /** Secret key of each set index. */
  keys: Uint8Array[]
  index: bigint
  certificates: number
  excluded: Map<string, bigint>
  /** Exact Σ over certificates it signed of signersShare · stake / signedStake. */
  entitled: Map<string, Fraction>
  signed: Map<string, number>
  claimedIndex: Map<string, bigint>
  claimed: Map<string, bigint>
  claims: Map<string, number>
}

type Coverage = Record<'deposits' | 'certificates' | 'defaults' | 'claims' | 'partialClaims' | 'emptyClaims' | 'foreignClaims' | 'credits' | 'slashes' | 'withdrawals' | 'lockedWithdrawals' | 'requests' | 'epochs', number>

/** Runs `steps` random steps from `seed`; `replay` says how to run the same sequence again (printed on a failure). */
async function runFuzz (chain: PoiChain, seed: number, steps: number, replay: string): Promise<Coverage> {
  const rng = new Prng(seed)
  const { publicClient, deployment } = chain
  const tm = deployment.taskManager
  const asset = deployment.paymentAsset
  const eth = isAddressEqual(asset, zeroAddress)
  const params = chain.params
  const submitter = chain.wallets[SUBMITTER]
  const owner = chain.wallets[MODEL_OWNER]
  const treasury = chain.wallets[0]
  const coverage: Coverage = { deposits: 0, certificates: 0, defaults: 0, claims: 0, partialClaims: 0, emptyClaims: 0, foreignClaims: 0, credits: 0, slashes: 0, withdrawals: 0, lockedWithdrawals: 0, requests: 0, epochs: 0 }

  const assetBalance = async (account: `0x${string}`): Promise<bigint> => eth
    ? await publicClient.getBalance({ address: account })
    : await publicClient.readContract({ address: asset, abi: erc20Abi, functionName: 'balanceOf', args: [account] })
  /** What a payout transaction gave `payee`: its asset balance change, plus its gas when the asset is ETH and it sent the transaction. */
  const received = (before: bigint, after: bigint, receipt: TransactionReceipt, paidGas: boolean): bigint =>
    after - before + (eth && paidGas ? receipt.gasUsed * receipt.effectiveGasPrice : 0n)

  // operators with unequal random stakes
  const operators: Operator[] = Array.from({ length: OPERATORS }, (_, i) => ({
    wallet: chain.wallets[1 + i], address: chain.wallets[1 + i].account.address, key: generateBlsSecretKey(), liveStake: rng.big(ETHER, 8n * ETHER)
  }))
  await registerAll(chain, operators.map(o => o.key), operators.map(o => o.liveStake))
  const byAddress = new Map(operators.map(o => [o.address.toLowerCase(), o]))
  const requesters: Requester[] = Array.from({ length: REQUESTERS }, (_, i) => ({
    wallet: chain.wallets[FIRST_REQUESTER + i], address: chain.wallets[FIRST_REQUESTER + i].account.address, balance: 0n, pending: 0n, unlocksAt: 0n, shortfall: 0n
  }))
  if (!eth) {
    for (const r of requesters) {
      const hash = await r.wallet.writeContract({ address: asset, abi: TestTokenAbi, functionName: 'mint', args: [r.address, 100n * ETHER] })
      await publicClient.waitForTransactionReceipt({ hash })
    }
  }
  const model = await ownedManifest(owner.account.address, `fuzz-model-${seed}`)
  const modelId = model.modelId
  await registerModel(owner, publicClient, deployment.modelRegistry, modelId, model.block, MODEL_FEE)
  const credits = new Map<string, bigint>([[owner.account.address.toLowerCase(), 0n], [treasury.account.address.toLowerCase(), 0n]])
  let deposited = 0n
  let paidOut = 0n
  const epochs = new Map<bigint, EpochModel>()
  let task = 0

  const startEpoch = async (): Promise<void> => {
    const { epoch } = await nextEpoch(chain)
    const set = await readOperatorSet(publicClient, deployment, epoch)
    // the snapshot holds the live stakes (slashes included) of the registration order
    assert.deepEqual(set.operators.map(o => o.address.toLowerCase()), operators.map(o => o.address.toLowerCase()))
    assert.deepEqual(set.operators.map(o => o.stake), operators.map(o => o.liveStake), `epoch ${epoch} stakes`)
    epochs.set(epoch, {
      set, keys: operators.map(o => o.key), index: 0n, certificates: 0, excluded: new Map(), entitled: new Map(), signed: new Map(), claimedIndex: new Map(), claimed: new Map(), claims: new Map()
    })
    coverage.epochs++
  }

  const owedIndex = (e: EpochModel, op: string): bigint => e.index - (e.excluded.get(op) ?? 0n) - (e.claimedIndex.get(op) ?? 0n)
  const owedOf = (e: EpochModel, op: string, i: number): bigint => mulDiv(e.set.operators[i].stake, owedIndex(e, op), REWARD_SCALE)
  const claimOf = (e: EpochModel, i: number): ClaimArgs => {
    const { operator: _, ...leaf } = nonSignerArgs(e.set, i)
    return { epoch: e.set.epoch, ...leaf }
  }

  const check = async (what: string): Promise<void> => {
    const vault = await assetBalance(tm)
    assert.equal(vault, deposited - paidOut, `${what}: vault balance = Σ deposits − Σ payouts`)
    let owedOnChain = 0n
    let owedOffChain = 0n
    let dustBound = 0n
    for (const r of requesters) {
      const [balance, [pending, unlocksAt], shortfall] = await Promise.all([
        publicClient.readContract({ address: tm, abi: TaskManagerAbi, functionName: 'balanceOf', args: [r.address] }),
        publicClient.readContract({ address: tm, abi: TaskManagerAbi, functionName: 'pendingWithdrawal', args: [r.address] }),
        publicClient.readContract({ address: tm, abi: TaskManagerAbi, functionName: 'shortfallOf', args: [r.address] })
      ])
      assert.deepEqual([balance, pending, BigInt(unlocksAt), shortfall], [r.balance, r.pending, r.unlocksAt, r.shortfall], `${what}: requester ${r.address}`)
      owedOnChain += balance
      owedOffChain += balance
    }
    for (const [account, credit] of credits) {
      const onChain = await publicClient.readContract({ address: tm, abi: TaskManagerAbi, functionName: 'creditOf', args: [account as `0x${string}`] })
      assert.equal(onChain, credit, `${what}: credit of ${account}`)
      owedOnChain += onChain
      owedOffChain += credit
    }
    for (const o of operators) {
      const op = o.address.toLowerCase()
      const claims: ClaimArgs[] = []
      let expected = 0n
      let ceiling = 0n
      let exact = Fraction.ZERO
      let claimed = 0n
      let slack: [bigint, bigint] = [0n, 1n] // Σ n·stake/REWARD_SCALE + (claims + 1), as num/den with den REWARD_SCALE
      for (const e of epochs.values()) {
        if (e.certificates === 0) continue
        const i = e.set.operators.findIndex(x => x.address.toLowerCase() === op)
        claims.push(claimOf(e, i))
        expected += owedOf(e, op, i)
        const entitled = e.entitled.get(op) ?? Fraction.ZERO
        const got = e.claimed.get(op) ?? 0n
        ceiling += entitled.floor()
        exact = exact.add(entitled.num, entitled.den)
        claimed += got
        owedOffChain += entitled.floor() - got
        dustBound += 1n
        slack = [slack[0] + BigInt(e.signed.get(op) ?? 0) * e.set.operators[i].stake + BigInt((e.claims.get(op) ?? 0) + 1) * REWARD_SCALE, REWARD_SCALE]
      }
      if (claims.length === 0) continue
      const pending = await publicClient.readContract({ address: tm, abi: TaskManagerAbi, functionName: 'pendingRewards', args: [o.address, claims] })
      assert.equal(pending, expected, `${what}: pendingRewards of operator ${o.address} (reward index model)`)
      assert.ok(claimed + pending <= ceiling, `${what}: operator ${o.address} claimed ${claimed} + pending ${pending} exceeds ⌊its exact share⌋ ${ceiling}`)
      assert.ok(exact.exceeds(claimed + pending, slack[0], slack[1]), `${what}: operator ${o.address} claimed ${claimed} + pending ${pending} is further below its exact share ${exact.num}/${exact.den} than the rounding bound`)
      owedOnChain += pending
    }
    assert.ok(vault >= owedOnChain, `${what}: vault ${vault} < what it owes on-chain ${owedOnChain}`)
    assert.ok(vault >= owedOffChain, `${what}: vault ${vault} < what it owes off-chain ${owedOffChain}`)
    assert.ok(vault - owedOffChain < dustBound || (dustBound === 0n && vault === owedOffChain), `${what}: vault ${vault} holds ${vault - owedOffChain} more than it owes (dust bound ${dustBound})`)
  }

  const stepDeposit = async (): Promise<string> => {
    const k = rng.int(REQUESTERS)
    const r = requesters[k]
    const amount = k === DEADBEAT ? rng.big(1n, params.minTaskFee) : rng.big(params.minTaskFee, ETHER / 20n)
    await deposit(r.wallet, publicClient, tm, amount)
    r.balance += amount
    deposited += amount
    coverage.deposits++
    return `deposit ${amount} by requester ${k}`
  }

  /** A paid certificate; `requester` forces whose task it is (else drawn: the dead-beat a quarter of the time). */
  const stepCertificate = async (requester?: number): Promise<string> => {
    const current = await currentEpoch(chain)
    const oldest = current > params.maxEpochAge ? current - params.maxEpochAge : 1n
    const epochNumber = oldest + BigInt(rng.int(Number(current - oldest) + 1))
    const e = epochs.get(epochNumber)
    if (e === undefined) throw new Error(`epoch ${epochNumber} was not modelled`)
    const stakes = e.set.operators.map(o => o.stake)
    // random non-signers, redrawn until the signers meet the quorum and the signer minimum
    let signers = stakes.map((_, i) => i)
    for (let attempt = 0; attempt < 20; attempt++) {
      const drawn = stakes.map((_, i) => i).filter(() => !rng.chance(0.3))
      const stake = drawn.reduce((sum, i) => sum + stakes[i], 0n)
      if (drawn.length >= 3 && stake * BPS >= BigInt(params.quorumBps) * e.set.totalStake) { signers = drawn; break }
    }
    const signedStake = signers.reduce((sum, i) => sum + stakes[i], 0n)
    const k = requester ?? (rng.chance(0.25) ? DEADBEAT : rng.int(REQUESTERS))
    const r = requesters[k]
    const registered = rng.chance(0.7)
    const required = params.minTaskFee + (registered ? MODEL_FEE : 0n)
    const fee = required + rng.big(0n, 2n * 10n ** 15n)
    const signed = await paidTask(chain, `fuzz-${seed}-${++task}`, { requester: FIRST_REQUESTER + k, fee, ...(registered ? { modelId } : {}) })
    const taskId = taskIdOf(signed, tm)
    const qc = makeCertificate(e.set, e.keys, signers, { taskId, resultHash: hash32(`result ${task}`), outputRef: hash32(`output ${task}`), output: new Uint8Array(0) })
    const { request, result } = await publicClient.simulateContract({
      account: submitter.account, address: tm, abi: TaskManagerAbi, functionName: 'submitCertificate', args: certificateCalldata(qc, e.set, signed)
    })
    assert.equal(result, true)
    const receipt = await publicClient.waitForTransactionReceipt({ hash: await submitter.writeContract(request) })
    assert.equal(receipt.status, 'success')

    // the model of _charge and _settle
    const charged = r.balance < fee ? r.balance : fee
    r.balance -= charged
    if (charged < fee) {
      r.shortfall += fee - charged
      coverage.defaults++
      const [event] = parseEventLogs({ abi: TaskManagerAbi, logs: receipt.logs, eventName: 'RequesterDefaulted' })
      assert.deepEqual([event.args.fee, event.args.charged, event.args.shortfall], [fee, charged, fee - charged])
    }
    const ownerShare = registered ? (charged < MODEL_FEE ? charged : MODEL_FEE) : 0n
    const ownerKey = owner.account.address.toLowerCase()
    credits.set(ownerKey, credits.get(ownerKey)! + ownerShare)
    const rest = charged - ownerShare
    const protocolShare = rest * BigInt(params.protocolFeeBps) / BPS
    const treasuryKey = treasury.account.address.toLowerCase()
    credits.set(treasuryKey, credits.get(treasuryKey)! + protocolShare)
    const signersShare = rest - protocolShare
    const [charge] = parseEventLogs({ abi: TaskManagerAbi, logs: receipt.logs, eventName: 'TaskCharged' })
    assert.deepEqual([charge.args.charged, charge.args.ownerShare, charge.args.protocolShare, charge.args.signersShare], [charged, ownerShare, protocolShare, signersShare])

    const increment = signersShare * REWARD_SCALE / signedStake
    e.index += increment
    e.certificates++
    const signerSet = new Set(signers)
    for (const [i, o] of e.set.operators.entries()) {
      const op = o.address.toLowerCase()
      if (signerSet.has(i)) {
        e.entitled.set(op, (e.entitled.get(op) ?? Fraction.ZERO).add(signersShare * o.stake, signedStake))
        e.signed.set(op, (e.signed.get(op) ?? 0) + 1)
      } else {
        e.excluded.set(op, (e.excluded.get(op) ?? 0n) + increment)
      }
    }
    coverage.certificates++
    return `certificate epoch ${epochNumber} fee ${fee} requester ${k} signers ${signers.join(',')}${charged < fee ? ' (default)' : ''}`
  }

  const sendClaim = async (o: Operator, claims: ClaimArgs[]): Promise<TransactionReceipt> => {
    const hash = await o.wallet.writeContract({ address: tm, abi: TaskManagerAbi, functionName: 'claimRewards', args: [claims], gas: REVERTING_TX_GAS })
    return await publicClient.waitForTransactionReceipt({ hash })
  }

  const stepClaim = async (): Promise<string> => {
    const o = rng.pick(operators)
    const op = o.address.toLowerCase()
    const chosen = [...epochs.values()].filter(() => rng.chance(0.5))
    if (chosen.length === 0) return 'claim: no epoch drawn'
    if (rng.chance(0.1)) {
      // another operator's leaf: NotCallersLeaf, nothing paid
      const claims = chosen.map(e => claimOf(e, e.set.operators.findIndex(x => x.address.toLowerCase() === op)))
      const other = operators[(operators.indexOf(o) + 1) % operators.length]
      await expectRevert(publicClient.simulateContract({ account: other.wallet.account, address: tm, abi: TaskManagerAbi, functionName: 'claimRewards', args: [claims] }), 'NotCallersLeaf')
      coverage.foreignClaims++
      return `claim by ${other.address} with ${o.address}'s leaves refused`
    }
    return await claim(o, chosen, rng.chance(0.3))
  }

  /** `o` claims `chosen` epochs (and claims them again at once when `repeat`): exactly the model's amount, or NothingToClaim. */
  const claim = async (o: Operator, chosen: EpochModel[], repeat: boolean): Promise<string> => {
    const op = o.address.toLowerCase()
    const claims = chosen.map(e => claimOf(e, e.set.operators.findIndex(x => x.address.toLowerCase() === op)))
    const expected = chosen.reduce((sum, e) => sum + owedOf(e, op, e.set.operators.findIndex(x => x.address.toLowerCase() === op)), 0n)
    const rounds = repeat ? 2 : 1
    let log = ''
    for (let round = 0; round < rounds; round++) {
      const vaultBefore = await assetBalance(tm)
      const before = await assetBalance(o.address)
      const amount = round === 0 ? expected : 0n
      if (amount === 0n) {
        // nothing new (a repeat, or only epochs it missed): the call reverts NothingToClaim and pays nothing, also when sent
        await expectRevert(publicClient.simulateContract({ account: o.wallet.account, address: tm, abi: TaskManagerAbi, functionName: 'claimRewards', args: [claims] }), 'NothingToClaim')
        const receipt = await sendClaim(o, claims)
        assert.equal(receipt.status, 'reverted')
        assert.equal(await assetBalance(tm), vaultBefore)
        assert.equal(received(before, await assetBalance(o.address), receipt, true), 0n, 'a refused claim pays nothing')
        coverage.emptyClaims++
        log += ` ${round === 0 ? 'empty' : 'repeat'} claim refused;`
        continue
      }
      const receipt = await sendClaim(o, claims)
      assert.equal(receipt.status, 'success')
      const [event] = parseEventLogs({ abi: TaskManagerAbi, logs: receipt.logs, eventName: 'RewardsClaimed' })
      assert.equal(event.args.amount, amount, 'claimRewards pays the reward index model')
      assert.equal(received(before, await assetBalance(o.address), receipt, true), amount, 'the operator received what was claimed')
      paidOut += amount
      for (const e of chosen) {
        const i = e.set.operators.findIndex(x => x.address.toLowerCase() === op)
        const owed = owedOf(e, op, i)
        if (owed === 0n) continue
        e.claimedIndex.set(op, e.index - (e.excluded.get(op) ?? 0n))
        e.claimed.set(op, (e.claimed.get(op) ?? 0n) + owed)
        e.claims.set(op, (e.claims.get(op) ?? 0) + 1)
        if (e.claims.get(op)! > 1) coverage.partialClaims++
      }
      coverage.claims++
      log += ` claimed ${amount};`
    }
    return `claim by operator ${o.address} epochs ${chosen.map(e => e.set.epoch).join(',')}:${log}`
  }

  const stepCredit = async (): Promise<string> => await withdrawCreditOf(rng.chance(0.5) ? owner : treasury)

  /** `wallet` withdraws its credit: exactly the model's amount, or NoCredit. */
  const withdrawCreditOf = async (wallet: typeof owner): Promise<string> => {
    const key = wallet.account.address.toLowerCase()
    const credit = credits.get(key)!
    if (credit === 0n) {
      await expectRevert(withdrawCredit(wallet, publicClient, tm), 'NoCredit')
      return `credit of ${key}: none`
    }
    const before = await assetBalance(wallet.account.address)
    const { amount, receipt } = await withdrawCredit(wallet, publicClient, tm)
    assert.equal(amount, credit)
    assert.equal(received(before, await assetBalance(wallet.account.address), receipt, true), credit)
    credits.set(key, 0n)
    paidOut += credit
    coverage.credits++
    return `credit ${credit} withdrawn by ${key}`
  }

  const stepRequest = async (): Promise<string> => {
    const k = rng.int(REQUESTERS)
    const r = requesters[k]
    if (rng.chance(0.1)) {
      await expectRevert(requestWithdrawal(r.wallet, publicClient, tm, r.balance + 1n), 'WithdrawalExceedsBalance')
      return `withdrawal of more than requester ${k}'s balance refused`
    }
    const amount = rng.chance(0.1) || r.balance === 0n ? 0n : rng.big(1n, r.balance)
    const { unlocksAt, receipt } = await requestWithdrawal(r.wallet, publicClient, tm, amount)
    const block = await publicClient.getBlock({ blockNumber: receipt.blockNumber })
    r.pending = amount
    r.unlocksAt = amount === 0n ? 0n : block.timestamp + params.withdrawalDelay
    assert.equal(unlocksAt, r.unlocksAt)
    coverage.requests++
    return `withdrawal of ${amount} requested by requester ${k}`
  }

  const stepWithdraw = async (): Promise<string> => await withdrawOf(rng.int(REQUESTERS))

  /** Requester k withdraws: NoPendingWithdrawal, WithdrawalLocked before the delay, else its pending amount capped at its balance. */
  const withdrawOf = async (k: number): Promise<string> => {
    const r = requesters[k]
    if (r.pending === 0n) {
      await expectRevert(withdraw(r.wallet, publicClient, tm), 'NoPendingWithdrawal')
      return `requester ${k} has no pending withdrawal`
    }
    const now = (await publicClient.getBlock({ blockTag: 'latest' })).timestamp
    if (now + UNLOCK_MARGIN_S < r.unlocksAt) {
      await expectRevert(withdraw(r.wallet, publicClient, tm), 'WithdrawalLocked')
      coverage.lockedWithdrawals++
      return `requester ${k}'s withdrawal still locked`
    }
    if (now < r.unlocksAt) return `requester ${k}'s withdrawal unlocks too close to now to tell`
    const expected = r.pending < r.balance ? r.pending : r.balance
    const before = await assetBalance(r.address)
    const { amount, receipt } = await withdraw(r.wallet, publicClient, tm)
    assert.equal(amount, expected)
    assert.equal(received(before, await assetBalance(r.address), receipt, true), expected)
    r.balance -= expected
    r.pending = 0n
    r.unlocksAt = 0n
    paidOut += expected
    coverage.withdrawals++
    return `requester ${k} withdrew ${expected}`
  }

  const stepTime = async (): Promise<string> => {
    const seconds = 60 + rng.int(Number(params.withdrawalDelay) / 2)
    await chain.testClient.increaseTime({ seconds })
    await chain.testClient.mine({ blocks: 1 })
    return `time +${seconds} s`
  }

  /** Operator equivocates on a fresh task in the current epoch: its live stake (next epoch's snapshot) drops by slashBps. */
  const stepSlash = async (): Promise<string> => {
    const e = epochs.get(await currentEpoch(chain))!
    const i = rng.int(operators.length)
    const o = operators[i]
    const taskId = hash32(`equivocation ${seed} ${++task}`)
    const sign = (result: string): ReturnType<typeof signAttestation> => signAttestation(o.key, e.set.domain, {
      taskId, resultHash: hash32(result), outputRef: hash32(result), epoch: e.set.epoch, operatorIndex: i, output: new Uint8Array(0)
    })
    const evidence: EquivocationEvidence = { taskId, operatorIndex: i, epoch: e.set.epoch, a: sign('a'), b: sign('b') }
    const vaultBefore = await assetBalance(tm)
    const { slashed } = await submitEvidence(chain.wallets[REPORTER], publicClient, deployment.slashing, evidence, e.set)
    const expected = o.liveStake * BigInt(params.slashBps) / BPS
    assert.equal(slashed, expected)
    assert.equal(await assetBalance(tm), vaultBefore, 'a slash moves registry stake, not the vault')
    o.liveStake -= expected
    coverage.slashes++
    return `operator ${i} slashed ${expected}`
  }

  const stepEpoch = async (): Promise<string> => {
    await startEpoch()
    return `epoch ${await currentEpoch(chain)}`
  }

  const weighted: Array<[number, () => Promise<string>]> = [
    [6, stepDeposit], [10, stepCertificate], [5, stepClaim], [2, stepCredit], [3, stepRequest], [4, stepWithdraw], [3, stepTime], [1, stepSlash], [1, stepEpoch]
  ]
  const total = weighted.reduce((sum, [w]) => sum + w, 0)
  const draw = (): (() => Promise<string>) => {
    let x = rng.int(total)
    for (const [w, step] of weighted) {
      if (x < w) return step
      x -= w
    }
    throw new Error('unreachable')
  }

  const run = async (what: string, action: () => Promise<string>): Promise<void> => {
    const done = await action()
    history.push(done)
    await check(`${what} (${done})`)
  }
  const history: string[] = []
  await startEpoch()
  await check('start')
  // every requester holds something before the first certificate (the dead-beat a little)
  for (let k = 0; k < REQUESTERS; k++) await stepDeposit()
  let step = 0
  try {
    for (; step < steps; step++) {
      // every STEPS_PER_EPOCH steps a slash and a new epoch: the next epoch's stakes differ
      const actions = step > 0 && step % STEPS_PER_EPOCH === 0 ? [stepSlash, stepEpoch] : [draw()]
      for (const action of actions) await run(`step ${step}`, action)
    }
    // a sequence that drew no dead-beat certificate gets one now: every run covers a default (the
    // dead-beat's dust deposits could add up to a fee, so it may take a few)
    for (let attempt = 0; coverage.defaults === 0 && attempt < FORCED_DEFAULT_ATTEMPTS; attempt++) {
      await run(`forced dead-beat certificate ${attempt + 1}`, async () => await stepCertificate(DEADBEAT))
    }
    // at the end every requester takes its whole balance out after the delay
    for (const [k, r] of requesters.entries()) {
      if (r.balance === 0n) continue
      await run(`final request of requester ${k}`, async () => {
        const { receipt } = await requestWithdrawal(r.wallet, publicClient, tm, r.balance)
        r.pending = r.balance
        r.unlocksAt = (await publicClient.getBlock({ blockNumber: receipt.blockNumber })).timestamp + params.withdrawalDelay
        coverage.requests++
        return `withdrawal of ${r.balance} requested by requester ${k}`
      })
    }
    await chain.testClient.increaseTime({ seconds: Number(params.withdrawalDelay) })
    await chain.testClient.mine({ blocks: 1 })
    for (const [k, r] of requesters.entries()) {
      if (r.pending !== 0n) await run(`final withdrawal of requester ${k}`, async () => await withdrawOf(k))
    }
    // then every operator claims every epoch, then again (NothingToClaim), and the credits are withdrawn
    for (const o of operators) await run(`final claim of ${o.address}`, async () => await claim(o, [...epochs.values()], true))
    for (const wallet of [owner, treasury]) {
      if (credits.get(wallet.account.address.toLowerCase())! === 0n) continue
      await run(`final credit of ${wallet.account.address}`, async () => await withdrawCreditOf(wallet))
    }
  } catch (err) {
    console.log(`payments invariant failed after step ${step} (replay: ${replay}); last steps:\n  ${history.slice(-8).join('\n  ')}`)
    throw err
  }
  // drained of deposits, rewards and credits, the vault keeps only the rounding dust: under 1 wei per
  // claim of an (operator, epoch) (each claim floors once), plus under 1 wei for all the index floors
  // together (each certificate's loses under signedStake / REWARD_SCALE wei)
  assert.deepEqual(requesters.map(r => r.balance), requesters.map(() => 0n))
  const dust = await assetBalance(tm)
  const claimFloors = [...epochs.values()].reduce((sum, e) => sum + [...e.claims.values()].reduce((a, b) => a + b, 0), 0)
  assert.ok(dust < BigInt(claimFloors + 1), `after every withdrawal and claim the vault still holds ${dust} wei (bound ${claimFloors + 1})`)
  console.log(`    drained: ${dust} wei of rounding dust left over ${epochs.size} epochs`)
  return coverage
}

/**
 * The chain with a public client that polls anvil every FAST_POLL_MS and caches nothing: viem's
 * default (4 s for a chain without a block time, block number cached as long) would make each of
 * the few hundred receipts wait for the next poll.
 */
function withFastPolling (chain: PoiChain): PoiChain {
  const publicClient = createPublicClient({ chain: foundry, transport: http(chain.anvil.rpcUrl), pollingInterval: FAST_POLL_MS, cacheTime: 0 }) as PublicClient
  return { ...chain, publicClient }
}

describe('payments invariant (fuzz): the vault holds what it owes, no operator gets more than its stake share', function () {
  this.timeout(FUZZ_TIMEOUT_MS)
  const seed = fuzzSeed()
  let chain: PoiChain | undefined

  before(() => { console.log(`    payments invariant seed ${seed} (replay: POI_FUZZ_SEED=${seed})`) })
  afterEach(async () => {
    await chain?.stop()
    chain = undefined
  })

  const assertCovered = (coverage: Coverage, steps: number): void => {
    console.log(`    ${steps} steps: ${Object.entries(coverage).map(([k, v]) => `${k} ${v}`).join(', ')}`)
    // the sequence exercised what the invariants are about (a run that never claimed proves little)
    for (const key of ['deposits', 'certificates', 'defaults', 'claims', 'emptyClaims', 'credits', 'slashes', 'withdrawals', 'requests', 'epochs'] as const) {
      assert.ok(coverage[key] > 0, `the run never did: ${key}`)
    }
    assert.ok(coverage.epochs >= 2)
  }

  it(`with ETH: ${ETH_STEPS} random steps`, async () => {
    chain = await startPoiChain({}, { accounts: ACCOUNTS })
    assertCovered(await runFuzz(withFastPolling(chain), seed, ETH_STEPS, `POI_FUZZ_SEED=${seed}`), ETH_STEPS)
  })

  it(`with an ERC-20 (TestToken): ${TOKEN_STEPS} random steps`, async () => {
    chain = await startPoiChain({}, { accounts: ACCOUNTS }, { testToken: true })
    assert.equal(isAddressEqual(chain.deployment.paymentAsset, zeroAddress), false)
    assertCovered(await runFuzz(withFastPolling(chain), (seed ^ 0x5eed) >>> 0, TOKEN_STEPS, `POI_FUZZ_SEED=${seed}`), TOKEN_STEPS)
  })
})
