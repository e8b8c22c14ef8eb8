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
import { generateBlsSecretKey } from '../consensus/index.js'
import { ANVIL_PRIVATE_KEYS, TaskManagerAbi, readOperatorSet, type OnChainOperatorSet } from '../contracts/index.js'
import { ChainClient } from '../node/chain-client.js'
import { Submitter } from '../node/roles/index.js'
import { toHex, type QuorumCertificate } from '../protocols/wire/index.js'
import { NodeStore, type Submission } from '../storage/index.js'
import { ETHER, taskResult } from './consensus-fixtures.js'
import { makeCertificate, nextEpoch, registerAll, startPoiChain, type PoiChain } from './helpers/poi-chain.js'
import { until } from './helpers/wait.js'

const TEST_TIMEOUT_MS = 60_000
const SETTLE_TIMEOUT_MS = 45_000
const BURST = 200

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
    root = await mkdtemp(join(tmpdir(), 'poi-submissions-'))
  })
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })
  after(async () => {
    await chain?.stop()
    if (root != null) await rm(root, { recursive: true, force: true })
  })

  function certificates (prefix: string, n: number): QuorumCertificate[] {
    return Array.from({ length: n }, (_, i) => makeCertificate(set, keys, [0, 1, 2], taskResult(`${prefix}-${i}`, `out-${i}`)))
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

  const isSettled = async (qc: QuorumCertificate): Promise<boolean> =>
    await chain.publicClient.readContract({ address: chain.deployment.taskManager, abi: TaskManagerAbi, functionName: 'isSettled', args: [bytesToHex(qc.taskId)] })

  it(`a burst of ${BURST} certificates from one account all settle on-chain`, async () => {
    const qcs = certificates('burst', BURST)
    const { store, submitter: s } = await submitter('burst', await client(9))
    await s.start()
    for (const qc of qcs) await store.putCertificate(qc, { submit: true })
    for (const qc of qcs) s.kick('certificate', toHex(qc.taskId))
    let subs: Submission[] = []
    await until(async () => { subs = await submissions(store, qcs); return subs.every(sub => sub.state !== 'pending') }, SETTLE_TIMEOUT_MS,
      () => `every submission to leave pending; now ${stateCounts(subs)}; last errors: ${[...new Set(subs.map(sub => sub.lastError?.split('\\n')[0]).filter(e => e != null))].join(' | ')}`)
    const notConfirmed = subs.filter(sub => sub.state !== 'confirmed')
    assert.deepEqual(notConfirmed.map(sub => `${sub.id}: ${sub.state} ${sub.lastError ?? ''}`), [], `${notConfirmed.length} of ${BURST} not confirmed`)
    const settled = await Promise.all(qcs.map(isSettled))
    assert.equal(settled.filter(Boolean).length, BURST)
  })
})
