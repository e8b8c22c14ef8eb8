/**
 * DESIGN §5: "off-chain and on-chain verifiers must agree on every test vector". One set of QCs,
 * valid and invalid (random signer subsets over 8 operators with unequal stakes, some tampered),
 * goes through both verifyCertificate (off-chain, with the TaskManager's quorumBps) and
 * TaskManager.submitCertificate (eth_call on anvil); the verdicts must match every time.
 */
import assert from 'node:assert/strict'
import { bytesToHex } from 'viem'
import { generateBlsSecretKey, verifyCertificate } from '../consensus/index.js'
import {
  TaskManagerAbi, certificateCalldata, contractErrorName, readOperatorSet, readQuorumBps,
  type OnChainOperatorSet
} from '../contracts/index.js'
import { mulberry32 } from '../node/fixtures/build-model.js'
import { taskIdOf, type QuorumCertificate, type TaskAnnouncement } from '../protocols/wire/index.js'
import { ETHER, taskResult } from './consensus-fixtures.js'
import { makeCertificate, nextEpoch, paidTask, registerAll, startPoiChain, type PoiChain } from './helpers/poi-chain.js'

/** Unequal on purpose: 87 ether in all, so quorum sits between subsets (34+21+3 = 58 is just below 2/3). */
const STAKES = [1n, 2n, 3n, 5n, 8n, 13n, 21n, 34n].map(s => s * ETHER)
const RANDOM_CASES = 40
const SEED = 0x5eed_c0de
/** Custom errors a rejected certificate may revert with; anything else (a panic, out of gas) is a bug. */
const CERTIFICATE_ERRORS = new Set(['FutureEpoch', 'StaleEpoch', 'BitmapMismatch', 'InvalidNonSignerProof', 'TooFewSigners', 'InsufficientStake', 'InvalidSignature', 'InvalidPoint'])

type Tamper = 'none' | 'forged' | 'missing-signer' | 'extra-signature' | 'trailing-zero-byte' | 'other-chain' | 'other-contract' | 'empty-bitmap'
const TAMPERS: Tamper[] = ['none', 'none', 'none', 'forged', 'missing-signer', 'extra-signature', 'trailing-zero-byte', 'other-chain', 'other-contract', 'empty-bitmap']

type Case = { name: string, qc: QuorumCertificate }

describe('contracts: off-chain and on-chain verifiers agree', function () {
  this.timeout(60_000)
  const keys = STAKES.map(() => generateBlsSecretKey())
  let chain: PoiChain
  let set: OnChainOperatorSet
  let quorumBps: number
  /** One signed task for every case: each case is only simulated, so none settles it. */
  let task: TaskAnnouncement

  before(async () => {
    chain = await startPoiChain({ epochDuration: 100n })
    await registerAll(chain, keys, STAKES)
    await nextEpoch(chain)
    set = await readOperatorSet(chain.publicClient, chain.deployment, 1n)
    quorumBps = await readQuorumBps(chain.publicClient, chain.deployment.taskManager)
    task = await paidTask(chain, 'agreement')
  })
  after(async () => { await chain?.stop() })

  function build (name: string, signers: number[], tamper: Tamper): Case {
    const result = { ...taskResult(`agreement:${name}`, 'out'), taskId: taskIdOf(task, chain.deployment.taskManager) }
    const others = STAKES.map((_, i) => i).filter(i => !signers.includes(i))
    switch (tamper) {
      case 'none': return { name, qc: makeCertificate(set, keys, signers, result) }
      case 'forged': return { name, qc: makeCertificate(set, keys, signers, result, { signedResult: taskResult(`agreement:${name}`, 'lie') }) }
      case 'missing-signer': return { name, qc: makeCertificate(set, keys, signers, result, { signatureFrom: signers.slice(1) }) }
      case 'extra-signature': return { name, qc: makeCertificate(set, keys, signers, result, { signatureFrom: [...signers, ...others.slice(0, 1)] }) }
      case 'other-chain': return { name, qc: makeCertificate(set, keys, signers, result, { domain: { ...set.domain, chainId: 10n } }) }
      case 'other-contract': return { name, qc: makeCertificate(set, keys, signers, result, { domain: { ...set.domain, taskManager: chain.deployment.slashing } }) }
      case 'trailing-zero-byte': {
        const qc = makeCertificate(set, keys, signers, result)
        return { name, qc: { ...qc, signerBitmap: Uint8Array.from([...qc.signerBitmap, 0]) } }
      }
      case 'empty-bitmap': {
        const qc = makeCertificate(set, keys, signers, result)
        return { name, qc: { ...qc, signerBitmap: new Uint8Array(0) } }
      }
    }
  }

  function cases (): Case[] {
    const all = STAKES.map((_, i) => i)
    const fixed: Case[] = [
      build('all-signed', all, 'none'),
      build('just-below-quorum', [2, 6, 7], 'none'), // 58 of 87 ether < 66.67 %
      build('just-above-quorum', [3, 6, 7], 'none'), // 60 of 87
      build('two-whales', [6, 7], 'none'), // 55: too few signers and too little stake
      build('minnows', [0, 1, 2, 3, 4, 5], 'none') // 32
    ]
    const nextUint32 = mulberry32(SEED)
    const next = (): number => nextUint32() / 2 ** 32 // uniform in [0, 1)
    const random: Case[] = []
    for (let n = 0; n < RANDOM_CASES; n++) {
      // keep each operator with probability 0.75 so roughly half the subsets reach quorum
      let signers = all.filter(() => next() < 0.75)
      if (signers.length === 0) signers = [Math.floor(next() * all.length)]
      const tamper = TAMPERS[Math.floor(next() * TAMPERS.length)]
      random.push(build(`random-${n}-${tamper}-[${signers.join(',')}]`, signers, tamper))
    }
    return [...fixed, ...random]
  }

  it(`agrees on ${RANDOM_CASES} random signer subsets (some tampered) and the quorum edges`, async () => {
    const verdicts = { accepted: 0, rejected: 0 }
    const reasons = new Map<string, number>()
    for (const { name, qc } of cases()) {
      const offChain = verifyCertificate(qc, set, { quorumBps })
      let onChain: boolean
      let reason: string
      try {
        const { result } = await chain.publicClient.simulateContract({
          account: chain.wallets[9].account, address: chain.deployment.taskManager, abi: TaskManagerAbi, functionName: 'submitCertificate', args: certificateCalldata(qc, set, task)
        })
        assert.equal(result, true, `${name}: a fresh task must not read as already settled`)
        onChain = true
        reason = 'accepted'
      } catch (err) {
        const errorName = contractErrorName(err)
        assert.ok(errorName !== undefined && CERTIFICATE_ERRORS.has(errorName), `${name}: reverted without a certificate error: ${(err as Error).message.split('\n')[0]}`)
        onChain = false
        reason = errorName
      }
      assert.equal(onChain, offChain.ok,
        `${name} (bitmap ${bytesToHex(qc.signerBitmap)}): off-chain says ${offChain.ok ? 'valid' : `invalid (${offChain.reason})`}, the contract says ${reason}`)
      verdicts[onChain ? 'accepted' : 'rejected']++
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1)
    }
    // the vectors must exercise both verdicts and several rejection paths, or agreement means little
    assert.ok(verdicts.accepted >= 5 && verdicts.rejected >= 10, `too one-sided: ${JSON.stringify(verdicts)}`)
    for (const expected of ['InvalidSignature', 'BitmapMismatch', 'InsufficientStake']) {
      assert.ok(reasons.has(expected), `no vector exercised ${expected}: ${JSON.stringify([...reasons])}`)
    }
  })
})
