/**
 * Gas of the poi contracts on anvil (Prague): TaskManager.submitCertificate for 4, 16, 64 and 128
 * registered operators with 0 %, 1 % and 10 % non-signers (at least one when the share is not 0),
 * OperatorRegistry.register, advanceEpoch, and SlashingManager.submitEvidence.
 *
 *   npm run build && node dist/bench/gas.js [--sizes 4,16,64,128] [--out bench/results/gas.json]
 *
 * Figures are receipt gasUsed: the whole transaction, 21,000 base and calldata included.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { TaskAggregation, blsPublicKeyOf, generateBlsSecretKey, signAttestation, type EquivocationEvidence } from '../consensus/index.js'
import { readOperatorSet, submitCertificate, submitEvidence, type OnChainOperatorSet } from '../contracts/index.js'
import { bytesEqual, taskIdOf } from '../protocols/wire/index.js'
import { nextEpoch, paidTask, registerAll, startPoiChain } from '../test/helpers/poi-chain.js'

const ETHER = 10n ** 18n
const EPOCH_SECONDS = 60n
/** Certificates of every size stay acceptable while the registry grows through the sizes. */
const MAX_EPOCH_AGE = 8n
const NON_SIGNER_SHARES = [0, 0.01, 0.1] as const
/** Unequal stakes (1..8 ether, cycling) so the sums are not all multiples of one value. */
const stakeOf = (i: number): bigint => BigInt(1 + (i % 8)) * ETHER

type CertificateRow = { operators: number, nonSignerShare: number, nonSigners: number, gasUsed: number }

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
  const chain = await startPoiChain({ epochDuration: EPOCH_SECONDS, maxEpochAge: MAX_EPOCH_AGE }, { accounts: largest + 2 })
  try {
    const { publicClient, deployment } = chain
    const submitter = chain.wallets[largest + 1]
    const quorumBps = chain.params.quorumBps

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

      for (const share of NON_SIGNER_SHARES) {
        const nonSignerCount = share === 0 ? 0 : Math.ceil(size * share)
        // spread the non-signers over the set (their proofs then share few siblings, the costlier case)
        const nonSigners = new Set(Array.from({ length: nonSignerCount }, (_, k) => Math.floor(k * size / nonSignerCount)))
        const signedTask = await paidTask(chain, `bench-${++task}`)
        const taskId = taskIdOf(signedTask, deployment.taskManager)
        const resultHash = new Uint8Array(32).fill(0xaa)
        const outputRef = new Uint8Array(32).fill(0xbb)
        const aggregation = new TaskAggregation({ operatorSet: set, taskId, quorumBps, deadline: Date.now() + 600_000 })
        for (let i = 0; i < size; i++) {
          if (nonSigners.has(i)) continue
          aggregation.add(signAttestation(secretKeys[i], set.domain, { taskId, resultHash, outputRef, epoch, operatorIndex: i, output: new Uint8Array(0) }), Date.now())
        }
        const qc = aggregation.buildCertificate(resultHash)
        const { accepted, receipt: submitted } = await submitCertificate(submitter, publicClient, deployment.taskManager, qc, set, signedTask)
        if (!accepted) throw new Error(`certificate for task ${task} was not accepted`)
        certificates.push({ operators: size, nonSignerShare: share, nonSigners: nonSignerCount, gasUsed: Number(submitted.gasUsed) })
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
    console.log('submitCertificate gas (whole transaction)')
    console.log(['operators', ...NON_SIGNER_SHARES.map(s => `${s * 100}% non-signers`)].map(c => c.padStart(20)).join(''))
    for (const size of sizes) {
      const row = certificates.filter(c => c.operators === size)
      console.log([String(size), ...row.map(c => `${c.gasUsed} (${c.nonSigners})`)].map(c => c.padStart(20)).join(''))
    }
    console.log(`register: ${mean(registerGas)} gas (mean of ${registerGas.length}); advanceEpoch: ${epochGas.map(e => `${e.operators} ops ${e.gasUsed}`).join(', ')}; submitEvidence (slash): ${slashGas}`)

    const out = resolve(values.out)
    await mkdir(dirname(out), { recursive: true })
    await writeFile(out, JSON.stringify({
      benchmark: 'gas', date: new Date().toISOString(), node: process.version, chain: 'anvil prague', note: 'receipt gasUsed, including the 21000 base and calldata; (n) = non-signers',
      submitCertificate: certificates, register: { mean: mean(registerGas), samples: registerGas.length }, advanceEpoch: epochGas, submitEvidence: slashGas
    }, null, 2) + '\n')
    console.log(`wrote ${out}`)
  } finally {
    await chain.stop()
  }
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
