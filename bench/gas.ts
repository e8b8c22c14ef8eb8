/**
 * Gas of the poi contracts on anvil (Prague): TaskManager.submitCertificate for 4, 16, 64 and 128
 * registered operators with 0 %, 1 % and 10 % non-signers (at least one when the share is not 0),
 * OperatorRegistry.register, advanceEpoch, and SlashingManager.submitEvidence.
 *
 * Each certificate row has three figures from the same run:
 * - paid: a task with a fee for a registered model, charged to a funded requester (owner and
 *   treasury credits already non-zero, the epoch's reward slot already written): what a network
 *   pays per task. Its non-signers miss their first certificate of the epoch (a fresh record each);
 * - paidRepeat: the same, with the same non-signers again (their records already exist);
 * - unpaid: a fee-0 task (no charge, no credits; the epoch and non-signer records still count).
 * firstOfEpoch: the first paid certificate of each epoch, 0 non-signers (the epoch slot is fresh).
 *
 *   npm run build && node dist/bench/gas.js [--sizes 4,16,64,128] [--out bench/results/gas.json]
 *
 * Figures are receipt gasUsed: the whole transaction, 21,000 base and calldata included.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { TaskAggregation, blsPublicKeyOf, generateBlsSecretKey, signAttestation, type EquivocationEvidence } from '../consensus/index.js'
import { deposit, readOperatorSet, registerModel, submitCertificate, submitEvidence, type OnChainOperatorSet } from '../contracts/index.js'
import type { TaskAnnouncement } from '../protocols/wire/index.js'
import { bytesEqual, taskIdOf } from '../protocols/wire/index.js'
import { ownedManifest } from '../test/helpers/model-manifests.js'
import { nextEpoch, paidTask, registerAll, startPoiChain } from '../test/helpers/poi-chain.js'

const ETHER = 10n ** 18n
const EPOCH_SECONDS = 60n
/** Certificates of every size stay acceptable while the registry grows through the sizes. */
const MAX_EPOCH_AGE = 8n
const NON_SIGNER_SHARES = [0, 0.01, 0.1] as const
/** Unequal stakes (1..8 ether, cycling) so the sums are not all multiples of one value. */
const stakeOf = (i: number): bigint => BigInt(1 + (i % 8)) * ETHER

type CertificateRow = { operators: number, nonSignerShare: number, nonSigners: number, paid: number, paidRepeat: number, unpaid: number }
/** A paid task: twice the model's fee (the network minimum is 0 here so that fee-0 rows run too), from a requester funded for every row. */
const MODEL_FEE = 10n ** 14n
const REQUESTER_DEPOSIT = ETHER

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '4,16,64,128' },
      out: { type: 'string', default: 'bench/results/gas.json' }
    }
  })
  const sizes = values.sizes.split(',').map(Number).sort((a, b) => a - b)
  const largest = sizes[sizes.length - 1]
  // account 0 deploys, accounts 1..largest register, the last one submits
  // account 0 deploys (and is the treasury), accounts 1..largest register, largest + 1 submits and
  // requests (its own deposit pays), largest + 2 owns the model
  const chain = await startPoiChain({ epochDuration: EPOCH_SECONDS, maxEpochAge: MAX_EPOCH_AGE, minTaskFee: 0n }, { accounts: largest + 3 })
  try {
    const { publicClient, deployment } = chain
    const submitter = chain.wallets[largest + 1]
    const quorumBps = chain.params.quorumBps
    const model = await ownedManifest(chain.wallets[largest + 2].account.address, 'bench-model')
    await registerModel(chain.wallets[largest + 2], publicClient, deployment.modelRegistry, model.modelId, model.block, MODEL_FEE)
    await deposit(submitter, publicClient, deployment.taskManager, REQUESTER_DEPOSIT)
    const firstOfEpoch: Array<{ operators: number, gasUsed: number }> = []

    const secretKeys: Uint8Array[] = []
    const registerGas: number[] = []
    const epochGas: Array<{ operators: number, gasUsed: number }> = []
    const certificates: CertificateRow[] = []
    let set: OnChainOperatorSet | undefined
    let task = 0

    for (const size of sizes) {
      // grow the registry to `size` operators, then freeze it in a new epoch
      const added = Array.from({ length: size - secretKeys.length }, () => generateBlsSecretKey())
      const receipts = await registerAll(chain, added, added.map((_, k) => stakeOf(secretKeys.length + k)), 1 + secretKeys.length)
      secretKeys.push(...added)
      registerGas.push(...receipts.map(r => Number(r.gasUsed)))
      const { epoch, receipt } = await nextEpoch(chain)
      epochGas.push({ operators: size, gasUsed: Number(receipt.gasUsed) })
      set = await readOperatorSet(publicClient, deployment, epoch)
      for (const [i, operator] of set.operators.entries()) {
        if (!bytesEqual(operator.blsPublicKey, blsPublicKeyOf(secretKeys[i]))) throw new Error(`operator ${i} of epoch ${epoch} is not the key registered ${i}th`)
      }

      /** Gas of a certificate of `set` signed by all but `nonSigners` for `signed` (requested by the submitter). */
      const certify = async (signed: TaskAnnouncement, nonSigners: ReadonlySet<number>): Promise<number> => {
        const taskId = taskIdOf(signed, deployment.taskManager)
        const resultHash = new Uint8Array(32).fill(0xaa)
        const outputRef = new Uint8Array(32).fill(0xbb)
        const aggregation = new TaskAggregation({ operatorSet: set!, taskId, quorumBps, deadline: Date.now() + 600_000 })
        for (let i = 0; i < size; i++) {
          if (nonSigners.has(i)) continue
          aggregation.add(signAttestation(secretKeys[i], set!.domain, { taskId, resultHash, outputRef, epoch, operatorIndex: i, output: new Uint8Array(0) }), Date.now())
        }
        const qc = aggregation.buildCertificate(resultHash)
        const { accepted, receipt: submitted } = await submitCertificate(submitter, publicClient, deployment.taskManager, qc, set!, signed)
        if (!accepted) throw new Error(`certificate for task ${task} was not accepted`)
        return Number(submitted.gasUsed)
      }
      const requester = largest + 1
      const paid = async (): Promise<TaskAnnouncement> => await paidTask(chain, `bench-${++task}`, { modelId: model.modelId, fee: 2n * MODEL_FEE, requester })
      firstOfEpoch.push({ operators: size, gasUsed: await certify(await paid(), new Set()) })

      for (const share of NON_SIGNER_SHARES) {
        const nonSignerCount = share === 0 ? 0 : Math.ceil(size * share)
        // spread the non-signers over the set (their proofs then share few siblings, the costlier case)
        const nonSigners = new Set(Array.from({ length: nonSignerCount }, (_, k) => Math.floor(k * size / nonSignerCount)))
        const paidGas = await certify(await paid(), nonSigners)
        const paidRepeat = await certify(await paid(), nonSigners)
        const unpaid = await certify(await paidTask(chain, `bench-${++task}`, { fee: 0n, requester }), nonSigners)
        certificates.push({ operators: size, nonSignerShare: share, nonSigners: nonSignerCount, paid: paidGas, paidRepeat, unpaid })
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

    const mean = (xs: number[]): number => Math.round(xs.reduce((a, b) => a + b, 0) / xs.length)
    console.log('submitCertificate gas (whole transaction): paid / paid, repeat non-signers / fee 0')
    console.log(['operators', ...NON_SIGNER_SHARES.map(s => `${s * 100}% non-signers`), 'first of epoch'].map(c => c.padStart(28)).join(''))
    for (const size of sizes) {
      const row = certificates.filter(c => c.operators === size)
      const first = firstOfEpoch.find(f => f.operators === size)?.gasUsed ?? 0
      console.log([String(size), ...row.map(c => `${c.paid}/${c.paidRepeat}/${c.unpaid} (${c.nonSigners})`), String(first)].map(c => c.padStart(28)).join(''))
    }
    console.log(`register: ${mean(registerGas)} gas (mean of ${registerGas.length}); advanceEpoch: ${epochGas.map(e => `${e.operators} ops ${e.gasUsed}`).join(', ')}; submitEvidence (slash): ${slashGas}`)

    const out = resolve(values.out)
    await mkdir(dirname(out), { recursive: true })
    await writeFile(out, JSON.stringify({
      benchmark: 'gas', date: new Date().toISOString(), node: process.version, chain: 'anvil prague', note: 'receipt gasUsed, including the 21000 base and calldata; paid = funded requester, registered model, fresh non-signer records; paidRepeat = the same non-signers again; unpaid = fee-0 task',
      submitCertificate: certificates, firstPaidCertificateOfEpoch: firstOfEpoch, register: { mean: mean(registerGas), samples: registerGas.length }, advanceEpoch: epochGas, submitEvidence: slashGas
    }, null, 2) + '\n')
    console.log(`wrote ${out}`)
  } finally {
    await chain.stop()
  }
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
