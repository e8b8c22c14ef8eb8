/**
 * Gas of the poi contracts on anvil (Prague): TaskManager.submitCertificate for 4, 16, 64 and 128
 * registered operators with 0 %, 1 % and 10 % non-signers (at least one when the share is not 0),
 * unpaid (fee 0) and paid, OperatorRegistry.register, advanceEpoch, and SlashingManager.submitEvidence.
 *
 * Each (size, share) gets a fresh epoch and, in it, with the same non-signers:
 *  1. paid, cold: the epoch's first certificate, its non-signers never recorded (zero → non-zero
 *     SSTOREs of the epoch's reward slot and of each non-signer's record);
 *  2. paid, steady: the next one (every slot it writes already non-zero: the requester's balance,
 *     the model owner's and the treasury's credits, the epoch's index, the non-signers' records);
 *  3. unpaid: fee 0 for an unregistered model (no charge, no credit; the reward and reputation
 *     slots are still written, non-zero → non-zero).
 * The per-non-signer slope is (gas at 10 % − gas at 0 %) / non-signers at 10 %.
 *
 * Batches (issue 15), at the largest size in a fresh epoch, every operator signing: submitBatch of
 * 1, 16, 64 and 256 paid tab tasks from 1 and 16 requesters (each requester's tab, deposit and
 * bitmap word already written by a warm-up batch, as on a running network), gas per task with
 * the payments included, beside the paid steady single certificate of the same run.
 *
 *   npm run build && node dist/bench/gas.js [--sizes 4,16,64,128] [--out bench/results/gas.json]
 *
 * Figures are receipt gasUsed: the whole transaction, 21,000 base and calldata included.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { TaskAggregation, blsPublicKeyOf, generateBlsSecretKey, signAttestation, type EquivocationEvidence } from '../consensus/index.js'
import { deposit, readOperatorSet, registerModel, submitBatch, submitCertificate, submitEvidence, type OnChainOperatorSet } from '../contracts/index.js'
import { bytesToHex } from 'viem'
import { bytesEqual, taskIdOf, type TaskAnnouncement } from '../protocols/wire/index.js'
import { signBatch, tabBatch, type TabTask } from '../test/helpers/batch-chain.js'
import { ownedManifest } from '../test/helpers/model-manifests.js'
import { anvilAccount, chainNowMs, nextEpoch, paidTask, registerAll, startPoiChain, TEST_TASK_LIFE_MS, type PoiChain } from '../test/helpers/poi-chain.js'

const ETHER = 10n ** 18n
const EPOCH_SECONDS = 60n
/** Certificates of every size stay acceptable while the registry grows through the sizes. */
const MAX_EPOCH_AGE = 8n
const NON_SIGNER_SHARES = [0, 0.01, 0.1] as const
/** Unequal stakes (1..8 ether, cycling) so the sums are not all multiples of one value. */
const stakeOf = (i: number): bigint => BigInt(1 + (i % 8)) * ETHER
/** The paid tasks' model: registered with this fee, so each paid certificate credits its owner. */
const MODEL_FEE = 10n ** 14n
/** A paid task's fee: the model's fee plus a network part (deployed with minTaskFee 0 so that fee 0 is accepted for the unpaid rows). */
const PAID_FEE = 3n * 10n ** 14n + 7n
/** The requester's deposit: covers every paid task of the run, so none defaults. */
const REQUESTER_DEPOSIT = ETHER
/** README "With a chain", before the economy issue: an unpaid certificate at 128 operators, and per non-signer. */
const BEFORE_PAYMENTS = { noNonSigners: 235_000, perNonSigner: 12_000 }
/** Issue 10's goal for the paid certificate at 128 operators. */
const GOAL = { noNonSigners: 280_000, extraPerNonSigner: 20_000 }

/** Batches: tasks per batch, and how many requesters they come from (a row needs at least one task per requester). */
const BATCH_TASKS = [1, 16, 64, 256]
const BATCH_REQUESTERS = [1, 16]
/** Issue 15's goals: gas per task, payments included, at 128 operators. */
const BATCH_GOALS: Record<number, number> = { 64: 15_000, 256: 4_000 }

type BatchRow = { operators: number, tasks: number, requesters: number, gasUsed: number, perTask: number, calldataBytes: number }
type CertificateRow = { operators: number, nonSignerShare: number, nonSigners: number, unpaid: number, paidSteady: number, paidCold: number }
type Column = 'unpaid' | 'paidSteady' | 'paidCold'
const COLUMNS: readonly Column[] = ['unpaid', 'paidSteady', 'paidCold']

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '4,16,64,128' },
      out: { type: 'string', default: 'bench/results/gas.json' }
    }
  })
  const sizes = values.sizes.split(',').map(Number).sort((a, b) => a - b)
  const largest = sizes[sizes.length - 1]
  const batchRequesters = Math.max(...BATCH_REQUESTERS)
  // account 0 deploys and is the treasury, accounts 1..largest register, then the requester (who also submits), the model owner and the batches' requesters
  const chain = await startPoiChain({ epochDuration: EPOCH_SECONDS, maxEpochAge: MAX_EPOCH_AGE, minTaskFee: 0n }, { accounts: largest + 3 + batchRequesters })
  try {
    const { publicClient, deployment } = chain
    const submitter = chain.wallets[largest + 1]
    const quorumBps = chain.params.quorumBps
    const model = await ownedManifest(chain.wallets[largest + 2].account.address, 'bench-paid-model')
    const modelId = model.modelId
    // an owner other than the treasury: their credits are two slots, as on a real network
    await registerModel(chain.wallets[largest + 2], publicClient, deployment.modelRegistry, modelId, model.block, MODEL_FEE)
    await deposit(submitter, publicClient, deployment.taskManager, REQUESTER_DEPOSIT)

    const secretKeys: Uint8Array[] = []
    const registerGas: number[] = []
    const epochGas: Array<{ operators: number, gasUsed: number }> = []
    const certificates: CertificateRow[] = []
    let set: OnChainOperatorSet | undefined
    let task = 0

    /** Certifies a fresh task (paid or fee 0) in `set`'s epoch, signed by all but `nonSigners`; returns the gas. */
    const certify = async (set: OnChainOperatorSet, nonSigners: ReadonlySet<number>, paid: boolean): Promise<number> => {
      const signedTask: TaskAnnouncement = await paidTask(chain, `bench-${++task}`, { requester: largest + 1, ...(paid ? { fee: PAID_FEE, modelId } : { fee: 0n }) })
      const taskId = taskIdOf(signedTask, deployment.taskManager)
      const resultHash = new Uint8Array(32).fill(0xaa)
      const outputRef = new Uint8Array(32).fill(0xbb)
      const aggregation = new TaskAggregation({ operatorSet: set, taskId, quorumBps, deadline: Date.now() + 600_000 })
      for (let i = 0; i < set.operators.length; i++) {
        if (nonSigners.has(i)) continue
        aggregation.add(signAttestation(secretKeys[i], set.domain, { taskId, resultHash, outputRef, epoch: set.epoch, operatorIndex: i, output: new Uint8Array(0) }), Date.now())
      }
      const qc = aggregation.buildCertificate(resultHash)
      const { accepted, receipt } = await submitCertificate(submitter, publicClient, deployment.taskManager, qc, set, signedTask)
      if (!accepted) throw new Error(`certificate for task ${task} was not accepted`)
      return Number(receipt.gasUsed)
    }
    const freshEpoch = async (chain: PoiChain): Promise<{ set: OnChainOperatorSet, gasUsed: number }> => {
      const { epoch, receipt } = await nextEpoch(chain)
      const set = await readOperatorSet(publicClient, deployment, epoch)
      for (const [i, operator] of set.operators.entries()) {
        if (!bytesEqual(operator.blsPublicKey, blsPublicKeyOf(secretKeys[i]))) throw new Error(`operator ${i} of epoch ${epoch} is not the key registered ${i}th`)
      }
      return { set, gasUsed: Number(receipt.gasUsed) }
    }

    for (const size of sizes) {
      // grow the registry to `size` operators
      const added = Array.from({ length: size - secretKeys.length }, () => generateBlsSecretKey())
      const receipts = await registerAll(chain, added, added.map((_, k) => stakeOf(secretKeys.length + k)), 1 + secretKeys.length)
      secretKeys.push(...added)
      registerGas.push(...receipts.map(r => Number(r.gasUsed)))
      if (certificates.length === 0) {
        // one paid certificate in an epoch of its own, so the owner's and the treasury's credits are non-zero from the first measured one on
        await certify((await freshEpoch(chain)).set, new Set(), true)
      }

      for (const share of NON_SIGNER_SHARES) {
        const fresh = await freshEpoch(chain)
        set = fresh.set
        if (share === 0) epochGas.push({ operators: size, gasUsed: fresh.gasUsed })
        const nonSignerCount = share === 0 ? 0 : Math.ceil(size * share)
        // spread the non-signers over the set (their proofs then share few siblings, the costlier case)
        const nonSigners = new Set(Array.from({ length: nonSignerCount }, (_, k) => Math.floor(k * size / nonSignerCount)))
        const paidCold = await certify(set, nonSigners, true)
        const paidSteady = await certify(set, nonSigners, true)
        const unpaid = await certify(set, nonSigners, false)
        certificates.push({ operators: size, nonSignerShare: share, nonSigners: nonSignerCount, unpaid, paidSteady, paidCold })
      }
    }

    // batches at the largest size: a fresh epoch, every operator signs
    const batchSet = (await freshEpoch(chain)).set
    const everyone = batchSet.operators.map((_, i) => i)
    const requesterAccounts = Array.from({ length: batchRequesters }, (_, k) => anvilAccount(largest + 3 + k))
    for (const [k, account] of requesterAccounts.entries()) await deposit(chain.wallets[largest + 3 + k], publicClient, deployment.taskManager, REQUESTER_DEPOSIT)
    const lastSequence = requesterAccounts.map(() => 0n)
    const authorised = requesterAccounts.map(() => 0n)
    /** Settles `tasks` tab tasks spread over the first `requesters` batch requesters; returns the receipt's gas and the calldata size. */
    const settleBatch = async (tasks: number, requesters: number): Promise<{ gasUsed: number, calldataBytes: number }> => {
      const deadlineMs = (await chainNowMs(chain)) + TEST_TASK_LIFE_MS
      const tabTasks: TabTask[] = Array.from({ length: tasks }, (_, k) => {
        const r = k % requesters
        authorised[r] += PAID_FEE
        return {
          account: requesterAccounts[r], sequence: ++lastSequence[r], modelId, fee: PAID_FEE, deadlineMs, cumulative: authorised[r],
          leaf: { taskId: bytesToHex(randomBytes(32)), resultHash: bytesToHex(randomBytes(32)), outputRef: bytesToHex(randomBytes(32)) }
        }
      })
      const { tree, summary } = await tabBatch(tabTasks, batchSet.domain, bytesToHex(randomBytes(32)))
      const qc = signBatch(batchSet.domain, batchSet.epoch, secretKeys, everyone, tree.root, summary)
      const { accepted, receipt } = await submitBatch(submitter, publicClient, deployment.taskManager, qc, summary, batchSet)
      if (!accepted) throw new Error(`batch of ${tasks} tasks was not accepted`)
      const tx = await publicClient.getTransaction({ hash: receipt.transactionHash })
      return { gasUsed: Number(receipt.gasUsed), calldataBytes: (tx.input.length - 2) / 2 }
    }
    // warm-up: every requester's tab, deposit and first bitmap word written once, and the epoch's reward slot
    await settleBatch(batchRequesters, batchRequesters)
    const batches: BatchRow[] = []
    for (const requesters of BATCH_REQUESTERS) {
      for (const tasks of BATCH_TASKS.filter(t => t >= requesters)) {
        const { gasUsed, calldataBytes } = await settleBatch(tasks, requesters)
        batches.push({ operators: largest, tasks, requesters, gasUsed, perTask: Math.round(gasUsed / tasks), calldataBytes })
      }
    }

    // equivocation: operator 0 signs two results for one task
    if (set === undefined) throw new Error('no sizes given')
    const taskId = new Uint8Array(32).fill(0xee)
    const sign = (fill: number): ReturnType<typeof signAttestation> => signAttestation(secretKeys[0], set!.domain, {
      taskId, resultHash: new Uint8Array(32).fill(fill), outputRef: new Uint8Array(32).fill(fill), epoch: set!.epoch, operatorIndex: 0, output: new Uint8Array(0)
    })
    const evidence: EquivocationEvidence = { taskId, operatorIndex: 0, epoch: set.epoch, a: sign(1), b: sign(2) }
    const { receipt: slashReceipt } = await submitEvidence(submitter, publicClient, deployment.slashing, evidence, set)
    const slashGas = Number(slashReceipt.gasUsed)

    // per non-signer: from no non-signers to 10 % of the set
    const slopes = sizes.map(size => {
      const rows = certificates.filter(c => c.operators === size)
      const none = rows.find(c => c.nonSigners === 0)!
      const most = rows.reduce((a, b) => b.nonSigners > a.nonSigners ? b : a)
      const slope = (column: Column): number => Math.round((most[column] - none[column]) / most.nonSigners)
      return { operators: size, nonSigners: most.nonSigners, unpaid: slope('unpaid'), paidSteady: slope('paidSteady'), paidCold: slope('paidCold') }
    })
    const atLargest = certificates.find(c => c.operators === largest && c.nonSigners === 0)!
    const slopeAtLargest = slopes.find(s => s.operators === largest)!
    const perNonSignerLimit = BEFORE_PAYMENTS.perNonSigner + GOAL.extraPerNonSigner
    const goals = {
      operators: largest,
      noNonSigners: { limit: GOAL.noNonSigners, paidSteady: atLargest.paidSteady, paidCold: atLargest.paidCold, met: atLargest.paidSteady <= GOAL.noNonSigners },
      perNonSigner: { limit: perNonSignerLimit, paidSteady: slopeAtLargest.paidSteady, paidCold: slopeAtLargest.paidCold, met: slopeAtLargest.paidSteady <= perNonSignerLimit }
    }

    const mean = (xs: number[]): number => Math.round(xs.reduce((a, b) => a + b, 0) / xs.length)
    const cell = (s: string, width = 16): string => s.padStart(width)
    console.log('submitCertificate gas (whole transaction); paid steady = not the first of its epoch, paid cold = first of its epoch with fresh non-signers')
    console.log([cell('operators', 10), cell('non-signers', 12), ...COLUMNS.map(c => cell(c)), cell('steady − unpaid')].join(''))
    for (const c of certificates) {
      console.log([cell(String(c.operators), 10), cell(`${c.nonSigners} (${c.nonSignerShare * 100}%)`, 12), ...COLUMNS.map(k => cell(String(c[k]))), cell(String(c.paidSteady - c.unpaid))].join(''))
    }
    console.log('per non-signer (0 → 10 % of the set)')
    for (const s of slopes) {
      console.log([cell(String(s.operators), 10), cell(`${s.nonSigners}`, 12), ...COLUMNS.map(k => cell(String(s[k])))].join(''))
    }
    const verdict = (value: number, limit: number): string => value <= limit ? `met (${limit - value} under)` : `missed by ${value - limit}`
    console.log(`goal at ${largest} operators, no non-signers, ≤ ${GOAL.noNonSigners}: paid steady ${atLargest.paidSteady} ${verdict(atLargest.paidSteady, GOAL.noNonSigners)}; paid cold ${atLargest.paidCold} ${verdict(atLargest.paidCold, GOAL.noNonSigners)}`)
    console.log(`goal per non-signer ≤ ${BEFORE_PAYMENTS.perNonSigner} (before payments) + ${GOAL.extraPerNonSigner} = ${perNonSignerLimit}: paid steady ${slopeAtLargest.paidSteady} ${verdict(slopeAtLargest.paidSteady, perNonSignerLimit)}; paid cold ${slopeAtLargest.paidCold} ${verdict(slopeAtLargest.paidCold, perNonSignerLimit)}`)
    console.log(`submitBatch gas at ${largest} operators, every one signing, payments included (paid tab tasks, warm tabs); single paid steady certificate: ${atLargest.paidSteady} per task`)
    console.log([cell('tasks', 10), cell('requesters', 12), cell('gas'), cell('gas per task'), cell('calldata bytes'), cell('vs single')].join(''))
    for (const b of batches) {
      console.log([cell(String(b.tasks), 10), cell(String(b.requesters), 12), cell(String(b.gasUsed)), cell(String(b.perTask)), cell(String(b.calldataBytes)), cell(`${(atLargest.paidSteady / b.perTask).toFixed(1)}×`)].join(''))
    }
    const batchGoals = batches.filter(b => BATCH_GOALS[b.tasks] !== undefined).map(b => ({ ...b, limit: BATCH_GOALS[b.tasks], met: b.perTask <= BATCH_GOALS[b.tasks] }))
    for (const g of batchGoals) console.log(`goal ${g.tasks} tasks from ${g.requesters} requester(s) ≤ ${g.limit} gas per task: ${g.perTask} ${verdict(g.perTask, g.limit)}`)
    console.log(`register: ${mean(registerGas)} gas (mean of ${registerGas.length}); advanceEpoch: ${epochGas.map(e => `${e.operators} ops ${e.gasUsed}`).join(', ')}; submitEvidence (slash): ${slashGas}`)

    const out = resolve(values.out)
    await mkdir(dirname(out), { recursive: true })
    await writeFile(out, JSON.stringify({
      benchmark: 'gas',
      date: new Date().toISOString(),
      node: process.version,
      chain: 'anvil prague',
      note: 'receipt gasUsed, including the 21000 base and calldata; unpaid = fee 0; paidSteady = a paid certificate that is not the first of its epoch (every slot it writes already non-zero); paidCold = the first of its epoch, non-signers never recorded; perNonSigner = (10 % − 0 %) / non-signers at 10 %',
      submitCertificate: certificates,
      submitBatch: { note: 'paid tab tasks (model fee + network part each), every operator signing, tabs already written by a warm-up batch; perTask = gasUsed / tasks', singlePaidSteady: atLargest.paidSteady, rows: batches, goals: batchGoals },
      perNonSigner: slopes,
      goals,
      register: { mean: mean(registerGas), samples: registerGas.length },
      advanceEpoch: epochGas,
      submitEvidence: slashGas
    }, null, 2) + '\n')
    console.log(`wrote ${out}`)
  } finally {
    await chain.stop()
  }
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
