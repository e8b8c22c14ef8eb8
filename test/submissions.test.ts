/**
 * Submissions are never lost (issue 9, finding 2): a burst of certificates from one account, two
 * accounts racing on the same tasks, a restart with work pending, a named revert.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { privateKeyToAccount } from 'viem/accounts'
import { bytesToHex } from 'viem'
import { generateBlsSecretKey, signAttestation } from '../consensus/index.js'
import { ANVIL_PRIVATE_KEYS, SlashingManagerAbi, TaskManagerAbi, deposit, readOperatorSet, type OnChainOperatorSet } from '../contracts/index.js'
import { ChainClient } from '../node/chain-client.js'
import { Submitter } from '../node/roles/index.js'
import { toHex, type QuorumCertificate, type TaskAnnouncement } from '../protocols/wire/index.js'
import { NodeStore, type Submission } from '../storage/index.js'
import { ETHER, taskResult } from './consensus-fixtures.js'
import { makeCertificate, nextEpoch, paidTask, registerAll, resultOf, startPoiChain, type PoiChain } from './helpers/poi-chain.js'
import { until } from './helpers/wait.js'

const TEST_TIMEOUT_MS = 60_000
const SETTLE_TIMEOUT_MS = 45_000
const BURST = 200
/** Tasks in the race and restart tests: enough to interleave, few enough to stay quick. */
const RACE = 30

describe('submissions are never lost', function () {
  this.timeout(TEST_TIMEOUT_MS)
  const STAKES = [10n, 10n, 10n].map(s => s * ETHER)
  const keys = STAKES.map(() => generateBlsSecretKey())
  let chain: PoiChain
  let set: OnChainOperatorSet
  let root: string
  const cleanups: Array<() => Promise<void>> = []

  before(async () => {
    chain = await startPoiChain({ epochDuration: 100n })
    await registerAll(chain, keys, STAKES)
    await nextEpoch(chain)
    set = await readOperatorSet(chain.publicClient, chain.deployment, 1n)
    // paidTask's requester (the last account) pays every certified task's fee (the network minimum).
    await deposit(chain.wallets[chain.wallets.length - 1], chain.publicClient, chain.deployment.taskManager, ETHER)
    root = await mkdtemp(join(tmpdir(), 'poi-submissions-'))
  })
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })
  after(async () => {
    await chain?.stop()
    if (root != null) await rm(root, { recursive: true, force: true })
  })

  /** The signed task of each certificate made here: the chain settles a certificate only with its task. */
  const tasks = new Map<string, TaskAnnouncement>()

  async function certificate (label: string, result: string, options: Parameters<typeof makeCertificate>[4] = {}): Promise<QuorumCertificate> {
    const task = await paidTask(chain, label)
    const qc = makeCertificate(set, keys, [0, 1, 2], resultOf(chain, task, label, result), options)
    tasks.set(toHex(qc.taskId), task)
    return qc
  }

  async function certificates (prefix: string, n: number): Promise<QuorumCertificate[]> {
    return await Promise.all(Array.from({ length: n }, async (_, i) => await certificate(`${prefix}-${i}`, `out-${i}`)))
  }

  /** Stores `qc` for submission with its task, as the aggregator does. */
  async function putCertified (store: NodeStore, qc: QuorumCertificate): Promise<void> {
    const task = tasks.get(toHex(qc.taskId))
    if (task === undefined) throw new Error(`no task made for certificate ${toHex(qc.taskId)}`)
    await store.putTask(qc.taskId, task)
    await store.putCertificate(qc, { submit: true })
  }

  async function client (account: number): Promise<ChainClient> {
    return await ChainClient.connect({ ...chain.deployment, rpcUrl: chain.anvil.rpcUrl }, privateKeyToAccount(ANVIL_PRIVATE_KEYS[account]))
  }

  async function submitter (name: string, chainClient: ChainClient): Promise<{ store: NodeStore, submitter: Submitter }> {
    const store = await NodeStore.open(join(root, name))
    const s = new Submitter(store, chainClient)
    cleanups.push(async () => { await s.stop(); await store.close() })
    return { store, submitter: s }
  }

  async function submissions (store: NodeStore, qcs: QuorumCertificate[]): Promise<Submission[]> {
    return await Promise.all(qcs.map(async qc => (await store.getSubmission('certificate', toHex(qc.taskId)))!))
  }

  function stateCounts (subs: Submission[]): string {
    const counts = new Map<string, number>()
    for (const sub of subs) counts.set(sub.state, (counts.get(sub.state) ?? 0) + 1)
    return JSON.stringify(Object.fromEntries(counts))
  }

  /** Every settlement of every task: its CertificateAccepted events (one per settled task). */
  async function acceptances (): Promise<Map<string, Array<{ submitter: string, txHash: string }>>> {
    const logs = await chain.publicClient.getContractEvents({ address: chain.deployment.taskManager, abi: TaskManagerAbi, eventName: 'CertificateAccepted', fromBlock: 0n, strict: true })
    const byTask = new Map<string, Array<{ submitter: string, txHash: string }>>()
    for (const l of logs) {
      const id = l.args.taskId.slice(2)
      byTask.set(id, [...(byTask.get(id) ?? []), { submitter: l.args.submitter, txHash: l.transactionHash }])
    }
    return byTask
  }

  async function settle (store: NodeStore, qcs: QuorumCertificate[], what: string): Promise<Submission[]> {
    let subs: Submission[] = []
    await until(async () => { subs = await submissions(store, qcs); return subs.every(sub => sub.state !== 'pending') }, SETTLE_TIMEOUT_MS,
      () => `every ${what} submission to leave pending; now ${stateCounts(subs)}; last errors: ${[...new Set(subs.map(sub => sub.lastError?.split('\n')[0]).filter(e => e != null))].join(' | ')}`)
    return subs
  }

  const isSettled = async (qc: QuorumCertificate): Promise<boolean> =>
    await chain.publicClient.readContract({ address: chain.deployment.taskManager, abi: TaskManagerAbi, functionName: 'isSettled', args: [bytesToHex(qc.taskId)] })

  it(`a burst of ${BURST} certificates from one account all settle on-chain`, async () => {
    const qcs = await certificates('burst', BURST)
    const { store, submitter: s } = await submitter('burst', await client(9))
    await s.start()
    for (const qc of qcs) await putCertified(store, qc)
    for (const qc of qcs) s.kick('certificate', toHex(qc.taskId))
    const subs = await settle(store, qcs, 'burst')
    const notConfirmed = subs.filter(sub => sub.state !== 'confirmed')
    assert.deepEqual(notConfirmed.map(sub => `${sub.id}: ${sub.state} ${sub.lastError ?? ''}`), [], `${notConfirmed.length} of ${BURST} not confirmed`)
    const settled = await Promise.all(qcs.map(isSettled))
    assert.equal(settled.filter(Boolean).length, BURST)
  })

  it('two accounts racing on the same tasks: each task settles once, the loser names the winner and its transaction', async () => {
    const qcs = await certificates('race', RACE)
    const accounts = [7, 8]
    const racers = await Promise.all(accounts.map(async a => await submitter(`race-${a}`, await client(a))))
    for (const { store } of racers) for (const qc of qcs) await putCertified(store, qc)
    for (const qc of qcs) for (const { submitter: s } of racers) s.kick('certificate', toHex(qc.taskId))
    const outcomes = await Promise.all(racers.map(async ({ store }, i) => await settle(store, qcs, `account ${accounts[i]}`)))
    const events = await acceptances()
    const address = accounts.map(a => privateKeyToAccount(ANVIL_PRIVATE_KEYS[a]).address)
    for (const qc of qcs) {
      const id = toHex(qc.taskId)
      const settled = events.get(id) ?? []
      assert.equal(settled.length, 1, `task ${id} settled ${settled.length} times`)
      const [winner] = settled
      for (let i = 0; i < racers.length; i++) {
        const sub = outcomes[i].find(o => o.id === id)!
        const ours = winner.submitter === address[i]
        if (ours) {
          assert.equal(sub.state, 'confirmed', `account ${accounts[i]} won task ${id} but recorded ${JSON.stringify(sub)}`)
          assert.equal(sub.txHash, winner.txHash)
        } else {
          assert.equal(sub.state, 'settled-by-other', `account ${accounts[i]} lost task ${id} but recorded ${JSON.stringify(sub)}`)
          assert.equal(sub.settledBy, winner.submitter)
          assert.equal(sub.txHash, winner.txHash)
          assert.equal(sub.resultHash, bytesToHex(qc.resultHash))
        }
      }
    }
  })

  it('a submitter stopped with transactions in flight, and a new one over the same store, settle everything once', async () => {
    const sent = await certificates('restart-sent', RACE)
    const unsent = await certificates('restart-unsent', 10)
    const account = 6
    const address = privateKeyToAccount(ANVIL_PRIVATE_KEYS[account]).address
    const nonceBefore = await chain.publicClient.getTransactionCount({ address })
    const path = 'restart'
    const first = await submitter(path, await client(account))
    // No mining: the first submitter's transactions stay in the pool, their receipts never come.
    await chain.testClient.setAutomine(false)
    cleanups.push(async () => { await chain.testClient.setAutomine(true) })
    for (const qc of [...sent, ...unsent]) await putCertified(first.store, qc)
    for (const qc of sent) first.submitter.kick('certificate', toHex(qc.taskId))
    await until(async () => await chain.publicClient.getTransactionCount({ address, blockTag: 'pending' }) === nonceBefore + RACE, SETTLE_TIMEOUT_MS,
      `${RACE} transactions from account ${account} in the pool`)
    await first.submitter.stop()
    assert.deepEqual((await submissions(first.store, [...sent, ...unsent])).map(s => s.state), [...sent, ...unsent].map(() => 'pending'))
    await first.store.close()

    // The chain mines what the first one sent; a new process opens the same data directory.
    await chain.testClient.setAutomine(true)
    await chain.testClient.mine({ blocks: 1 })
    const second = await submitter(path, await client(account))
    assert.equal(await second.submitter.start(), RACE + 10)
    const outcomes = await settle(second.store, [...sent, ...unsent], 'resumed')
    assert.deepEqual(outcomes.filter(o => o.state !== 'confirmed'), [])
    const events = await acceptances()
    for (const qc of [...sent, ...unsent]) {
      const settled = events.get(toHex(qc.taskId)) ?? []
      assert.equal(settled.length, 1)
      assert.equal(settled[0].submitter, address)
      assert.equal(outcomes.find(o => o.id === toHex(qc.taskId))?.txHash, settled[0].txHash)
    }
    // The resumed submitter asked the chain first: nothing sent twice.
    assert.equal(await chain.publicClient.getTransactionCount({ address }), nonceBefore + RACE + 10)
  })

  it('a certificate the contract refuses by name ends failed with that name, not retried', async () => {
    const forged = await certificate('forged', 'claimed', { signedResult: taskResult('forged', 'signed') })
    const { store, submitter: s } = await submitter('revert', await client(5))
    const failed = new Promise<Submission>(resolve => s.addEventListener('failed', ({ detail }) => { resolve(detail) }, { once: true }))
    await putCertified(store, forged)
    s.kick('certificate', toHex(forged.taskId))
    const [sub] = await settle(store, [forged], 'forged')
    assert.equal(sub.state, 'failed')
    assert.equal(sub.revert, 'InvalidSignature')
    assert.equal(sub.attempts, 1)
    assert.match(sub.lastError ?? '', /reverted with InvalidSignature/)
    const event = await failed
    assert.deepEqual([event.id, event.state, event.revert], [sub.id, 'failed', 'InvalidSignature'])
    assert.equal(await isSettled(forged), false)
  })

  it('equivocation evidence from two accounts: one slashes, the other names who did and in which transaction', async () => {
    const task = taskResult('equivocation', 'first')
    const sign = (result: typeof task): ReturnType<typeof signAttestation> =>
      signAttestation(keys[2], set.domain, { ...result, epoch: set.epoch, operatorIndex: 2 })
    const a = sign(task)
    const b = sign({ ...taskResult('equivocation', 'second'), taskId: task.taskId })
    const accounts = [3, 4]
    const reporters = await Promise.all(accounts.map(async n => await submitter(`evidence-${n}`, await client(n))))
    const ids = await Promise.all(reporters.map(async ({ store }) => await store.putEvidence({ taskId: task.taskId, operatorIndex: 2, a, b }, { submit: true })))
    reporters.forEach(({ submitter: s }, i) => { s.kick('evidence', ids[i]) })
    const outcomes: Submission[] = []
    for (let i = 0; i < reporters.length; i++) {
      let sub: Submission | undefined
      await until(async () => { sub = await reporters[i].store.getSubmission('evidence', ids[i]); return sub?.state !== 'pending' }, SETTLE_TIMEOUT_MS, `evidence of account ${accounts[i]} to leave pending`)
      outcomes.push(sub!)
    }
    const slashes = await chain.publicClient.getContractEvents({
      address: chain.deployment.slashing, abi: SlashingManagerAbi, eventName: 'EquivocationSlashed', args: { operator: set.operators[2].address, taskId: bytesToHex(task.taskId) }, fromBlock: 0n, strict: true
    })
    assert.equal(slashes.length, 1)
    assert.deepEqual(outcomes.map(o => o.state).sort(), ['confirmed', 'settled-by-other'])
    const loser = outcomes.find(o => o.state === 'settled-by-other')!
    assert.equal(loser.settledBy, slashes[0].args.reporter)
    assert.equal(loser.txHash, slashes[0].transactionHash)
    assert.equal(outcomes.find(o => o.state === 'confirmed')!.txHash, slashes[0].transactionHash)
  })

  it('a send refused as underpriced (another transaction holds its nonce) goes out again with bumped fees', async () => {
    const [warmUp, qc] = await certificates('bump', 2)
    const account = 0
    const { store, submitter: s } = await submitter('bump', await client(account))
    // One certificate through first: the sender now counts this account's nonces itself.
    await putCertified(store, warmUp)
    s.kick('certificate', toHex(warmUp.taskId))
    await settle(store, [warmUp], 'warm-up')
    const wallet = chain.wallets[account]
    const nonce = await chain.publicClient.getTransactionCount({ address: wallet.account.address })
    // Another process with the same key takes the next nonce with 1.5 times the fees, and sits in the pool.
    await chain.testClient.setAutomine(false)
    cleanups.push(async () => { await chain.testClient.setAutomine(true) })
    const fees = await chain.publicClient.estimateFeesPerGas()
    const blocker = await wallet.sendTransaction({
      to: wallet.account.address, value: 0n, nonce, maxFeePerGas: fees.maxFeePerGas * 3n / 2n, maxPriorityFeePerGas: fees.maxPriorityFeePerGas * 3n / 2n
    })
    await putCertified(store, qc)
    s.kick('certificate', toHex(qc.taskId))
    let replacement: { hash: `0x${string}`, maxFeePerGas?: `0x${string}` } | undefined
    await until(async () => {
      const pool = await chain.testClient.getTxpoolContent()
      const mine = Object.entries(pool.pending).find(([from]) => from.toLowerCase() === wallet.account.address.toLowerCase())?.[1]
      const tx = mine?.[String(nonce)]
      if (tx?.hash !== blocker) replacement = tx
      return replacement != null
    }, SETTLE_TIMEOUT_MS, `the certificate's transaction replacing ${blocker} at nonce ${nonce}`)
    await chain.testClient.setAutomine(true)
    await chain.testClient.mine({ blocks: 1 })
    const [sub] = await settle(store, [qc], 'bumped')
    assert.equal(sub.state, 'confirmed', JSON.stringify(sub))
    assert.equal(sub.txHash, replacement!.hash)
    assert.ok(BigInt(replacement!.maxFeePerGas!) > fees.maxFeePerGas * 3n / 2n, 'the replacement pays more than the transaction it replaced')
    assert.equal(await isSettled(qc), true)
  })
})
