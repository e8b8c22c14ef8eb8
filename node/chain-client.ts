import { logger } from '@libp2p/logger'
import {
  BaseError, createPublicClient, createWalletClient, defineChain, encodeFunctionData, http, bytesToHex, hexToBytes, parseEventLogs,
  type Account, type Chain, type Hash, type Hex, type PublicClient, type Transport, type WalletClient
} from 'viem'
import type { PrivateKeyAccount } from 'viem/accounts'
import {
  ModelRegistryAbi, OperatorRegistryAbi, SlashingManagerAbi, TaskManagerAbi, contractErrorName,
  CalldataError, batchLeafAndAttestationCalldata, certificateAndAttestationCalldata, conflictingCertificatesCalldata, mined, readAccess, readCurrentEpoch, readModel, readQuorumBps,
  readOperatorSet, readTab, simulateBatchLeafAndAttestation, simulateCertificate, simulateCertificateAndAttestation, simulateConflictingCertificates, simulateEvidence,
  isTabSequenceSettled, readBatchEpoch, simulateBatch, TASK_MANAGER_ZK_ABI, taskArgs, zkSettlementError,
  type OnChainModel, type OnChainOperatorSet, type RequesterAccess, type SignedBatchLeaf
} from '../contracts/index.js'
import { PoiError, type QuorumCertificate, type TaskAnnouncement } from '../protocols/wire/index.js'
import type { BatchStatement, StoredConflict, StoredEvidence } from '../storage/index.js'
import type { ChainConfig } from './config.js'
import {
  PermanentSubmissionError, type BatchSettlementChain, type BatchSubmission, type CreditAccount, type PaymentChain, type PaymentTerms, type RequesterAccount, type Settlement, type SettlementChain, type TabChain,
  type SubmitOptions, type TxReceipt, type ZkResultSubmission
} from './roles/index.js'

const log = logger('poi:chain')

/** How often to ask the chain for a new epoch (anvil mines instantly; public chains every few seconds). */
export const EPOCH_POLL_MS = 1_000
const RPC_TIMEOUT_MS = 10_000
/**
 * How long a model's registry entry is trusted before it is read again:
 * relays and operators check every task, so this bounds RPC calls to one per
 * model per interval, and a deactivated model stops being served within it.
 * A requester's standing under the model's access tier is read more often
 * (ACCESS_CACHE_MS).
 */
export const MODEL_CACHE_MS = 30_000
/**
 * An unregistered model is read again sooner: a requester who has just
 * published one should not wait half a minute for every relay to notice.
 */
export const MODEL_MISS_CACHE_MS = 2_000
/**
 * How long a requester's standing under a model's access tier (ModelRegistry.accessOf: the tier,
 * its allowlist place, subscription end and credits) is trusted. Short, unlike MODEL_CACHE_MS:
 * a requester who has just bought access should be served within seconds, a tier change by the
 * owner seen as fast, and credits change with every settled task. Like PAYMENT_CACHE_MS, it
 * bounds the reads to one per model and requester per period however many tasks arrive.
 */
export const ACCESS_CACHE_MS = 3_000
/** How often operators look for newly registered models to prefetch. */
export const MODEL_WATCH_MS = 5_000
/**
 * How long to wait for a sent transaction's receipt. After it the submitter asks the chain
 * whether the task settled and sends again if not: a transaction dropped from the mempool (or
 * stuck behind a gap) must not hold its submission forever. Two minutes is ten blocks on a slow
 * chain.
 */
export const RECEIPT_TIMEOUT_MS = 120_000
/**
 * Fee increase per retry when the node refuses a transaction as underpriced: geth, reth and
 * anvil require at least 10% more on both fees to replace a pending transaction of the same
 * nonce; 25% clears that with room for a base fee rising meanwhile.
 */
export const FEE_BUMP_PERCENT = 25n
/**
 * Headroom on the gas one execution used (eth_createAccessList): the limit must also cover the
 * 1/64 of gas held back at each call into a precompile, and transactions landing first can change
 * which storage slots are cold. Only the gas used is paid.
 */
export const GAS_MARGIN_PERCENT = 25n
/** Fee bumps per send before the error goes back to the submitter, which retries with backoff. */
export const MAX_FEE_BUMPS = 4

export interface OnChainResult {
  resultHash: `0x${string}`
  outputRef: `0x${string}`
  epoch: bigint
}

export interface AcceptedCertificate extends OnChainResult {
  txHash: `0x${string}`
  gasUsed: bigint
  submitter: `0x${string}`
  signedStake: bigint
}


/**
 * Why `a` (a requester's standing under a model's tier) does not cover a task with deadline
 * `deadlineMs`, or undefined when it does. The rule is ModelRegistry.hasAccess's (without the
 * owner, whom the caller lets through): a subscription covers deadlines before its end.
 */
export function accessRefusal (a: RequesterAccess, modelId: string, requester: string, deadlineMs: number): string | undefined {
  if (!a.active) return `model ${modelId} is deactivated by its owner`
  if (a.isOwner) return undefined
  switch (a.tier) {
    case 'open':
    case 'pay-per-use':
      return undefined
    case 'allowlist':
      return a.allowed ? undefined : `requester ${requester} is not on the allowlist of model ${modelId}`
    case 'subscription': {
      if (a.expiresAt === 0n) return `requester ${requester} has no subscription to model ${modelId} (buy one with poi model buy ${modelId} --period <n>)`
      if (BigInt(deadlineMs) < a.expiresAt * 1000n) return undefined
      const end = new Date(Number(a.expiresAt) * 1000).toISOString()
      return a.expiresAt * 1000n <= BigInt(Date.now())
        ? `requester ${requester}'s subscription to model ${modelId} ended at ${end} (extend it with poi model buy ${modelId} --period <n>)`
        : `requester ${requester}'s subscription to model ${modelId} ends at ${end}, before the task's deadline ${new Date(deadlineMs).toISOString()} (extend it with poi model buy ${modelId} --period <n>)`
    }
    case 'credits':
      return a.credits > 0n ? undefined : `requester ${requester} has no credits left for model ${modelId} (buy some with poi model buy ${modelId} --credits <n>)`
  }
}

/** The RPC endpoint did not answer: nothing was read or sent. */
export class ChainUnreachableError extends PoiError {
  constructor (readonly rpcUrl: string, cause: unknown) {
    super('ERR_CHAIN_UNREACHABLE', `cannot reach the chain at ${rpcUrl}: ${(cause as Error).message.split('\n')[0]}; is the node running and the URL right?`, { cause })
  }
}

/** The SlashingManager function that takes each kind of conflict evidence. */
const CONFLICT_FUNCTIONS: Record<StoredConflict['kind'], string> = {
  certificates: 'submitConflictingCertificates',
  'certificate-attestation': 'submitCertificateAndAttestation',
  'batch-attestation': 'submitBatchLeafAndAttestation'
}

/** A stored batch statement as the calldata builder takes it. */
function signedBatchLeafOf (taskId: Uint8Array, b: BatchStatement): SignedBatchLeaf {
  return {
    batch: { root: b.root, epoch: b.epoch, summaryHash: b.summaryHash },
    share: { operatorIndex: b.operatorIndex, blsSig: hexToBytes(b.signature) },
    leaf: { taskId: bytesToHex(taskId), resultHash: b.resultHash, outputRef: b.outputRef },
    proof: b.proof
  }
}

/**
 * A node's view of the poi contracts: operator sets by epoch (from the
 * registry's events, checked against the stored root), and, with an
 * account, the transactions that settle certificates and slash equivocators.
 */
export class ChainClient implements SettlementChain, BatchSettlementChain, PaymentChain {
  readonly config: ChainConfig
  readonly publicClient: PublicClient
  readonly walletClient: WalletClient<Transport, Chain, Account> | undefined
  private readonly sets = new Map<bigint, Promise<OnChainOperatorSet>>()
  private readonly modelCache = new ReadThroughCache<OnChainModel | undefined>((m) => m == null ? MODEL_MISS_CACHE_MS : MODEL_CACHE_MS, (m) => m?.active === true)
  private readonly accessCache = new ReadThroughCache<RequesterAccess>(() => ACCESS_CACHE_MS, () => false)
  private readonly sender: AccountSender | undefined

  private constructor (config: ChainConfig, publicClient: PublicClient, walletClient?: WalletClient<Transport, Chain, Account>) {
    this.config = config
    this.publicClient = publicClient
    this.walletClient = walletClient
    this.sender = walletClient != null ? new AccountSender(publicClient, walletClient.account.address) : undefined
  }

  /**
   * Credit tabs (issue 15) for the payment gate: the vouchers' signing domain (this chain and
   * TaskManager) and a requester's on-chain tab (TaskManager tabOf: settled amount, last settled
   * sequence), read fresh on each call (the gate caches it with the requester's vault reading).
   */
  get tabs (): TabChain {
    this.#tabs ??= {
      chainId: BigInt(this.publicClient.chain?.id ?? 0),
      taskManager: this.config.taskManager,
      readTab: async (requester) => await readTab(this.publicClient, this.config.taskManager, requester)
    }
    return this.#tabs
  }

  #tabs: TabChain | undefined

  /** The account this client sends from (undefined: read-only). */
  get account (): `0x${string}` | undefined {
    return this.walletClient?.account.address
  }

  static async connect (config: ChainConfig, account?: PrivateKeyAccount): Promise<ChainClient> {
    const transport = http(config.rpcUrl, { timeout: RPC_TIMEOUT_MS, retryCount: 2 })
    const probe = createPublicClient({ transport })
    let chainId: number
    try {
      chainId = await probe.getChainId()
    } catch (err) {
      throw new ChainUnreachableError(config.rpcUrl, err)
    }
    const chain = defineChain({ id: chainId, name: `chain ${chainId}`, nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 }, rpcUrls: { default: { http: [config.rpcUrl] } } })
    const publicClient = createPublicClient({ chain, transport, pollingInterval: 250 }) as PublicClient
    const walletClient = account != null ? createWalletClient({ chain, transport, account }) : undefined
    return new ChainClient(config, publicClient, walletClient)
  }

  /** The ModelRegistry entry of `modelId` (undefined: not registered), cached (see ReadThroughCache). */
  async model (modelId: Uint8Array): Promise<OnChainModel | undefined> {
    const registry = this.config.modelRegistry
    if (registry == null) throw new PoiError('ERR_NO_MODEL_REGISTRY', 'the deployment names no modelRegistry; deploy one, or run without model checks')
    return await this.modelCache.get(bytesToHex(modelId), async () => await readModel(this.publicClient, registry, modelId))
  }

  /**
   * Why the network must not run `modelId` for `requester` in a task whose deadline is
   * `deadlineMs` (unix ms; default now), or undefined when it may: the model is not registered,
   * its owner deactivated it, or its access tier leaves the requester out at that deadline (not on
   * the allowlist, no subscription or one that ends before the deadline, no credits left), each
   * said so. The TaskManager checks the same at settlement (ModelRegistry.useAccess) and refuses
   * the certificate otherwise. Always undefined when the deployment names no ModelRegistry.
   */
  async modelRefusal (modelId: Uint8Array, requester: `0x${string}`, deadlineMs = Date.now()): Promise<string | undefined> {
    const registry = this.config.modelRegistry
    if (registry == null) return undefined
    const m = await this.model(modelId)
    const id = bytesToHex(modelId)
    if (m == null) return `model ${id} is not registered in ModelRegistry ${registry} (publish it with poi model publish --chain)`
    if (!m.active) return `model ${id} is deactivated by its owner ${m.owner}`
    if (requester.toLowerCase() === m.owner.toLowerCase()) return undefined
    // The tier itself comes from this short-lived read, so an owner's tier change is seen within ACCESS_CACHE_MS.
    const a = await this.access(modelId, requester)
    return accessRefusal(a, id, requester, deadlineMs)
  }

  /** `requester`'s standing under the access tier of `modelId` (ModelRegistry.accessOf), cached ACCESS_CACHE_MS. */
  async access (modelId: Uint8Array, requester: `0x${string}`): Promise<RequesterAccess> {
    const registry = this.config.modelRegistry
    if (registry == null) throw new PoiError('ERR_NO_MODEL_REGISTRY', 'the deployment names no modelRegistry; deploy one, or run without model checks')
    return await this.accessCache.get(`${bytesToHex(modelId)}/${requester.toLowerCase()}`,
      async () => await readAccess(this.publicClient, registry, modelId, requester))
  }

  /**
   * For a model under the credits tier (and a requester other than its owner): the requester's
   * credits and whether each of `taskIds` is settled, read at one block, so a credit a settled
   * task used is never counted twice. Undefined for any other tier (nothing to count).
   */
  async creditAccount (modelId: Uint8Array, requester: `0x${string}`, taskIds: readonly Uint8Array[]): Promise<CreditAccount | undefined> {
    const registry = this.config.modelRegistry
    if (registry == null) return undefined
    const a = await this.access(modelId, requester)
    if (a.tier !== 'credits' || a.isOwner) return undefined
    const blockNumber = await this.publicClient.getBlockNumber({ cacheTime: 0 })
    const [credits, ...settled] = await Promise.all([
      this.publicClient.readContract({ address: registry, abi: ModelRegistryAbi, functionName: 'creditsOf', args: [bytesToHex(modelId), requester], blockNumber }),
      ...taskIds.map(async (id) => await this.publicClient.readContract({ address: this.config.taskManager, abi: TaskManagerAbi, functionName: 'isSettled', args: [bytesToHex(id)], blockNumber }))
    ])
    return { credits: credits as bigint, settled: settled as boolean[] }
  }

  /** The network's quorum, basis points (TaskManager.quorumBps: governed, so read again now and then). */
  async networkQuorumBps (): Promise<number> {
    return await readQuorumBps(this.publicClient, this.config.taskManager)
  }

  /** The TaskManager's minimum fee and settlement window (governed: the payment gate reads them again every PAYMENT_TERMS_TTL_MS). */
  async paymentTerms (): Promise<PaymentTerms> {
    const { taskManager } = this.config
    const [minTaskFee, settlementWindow] = await Promise.all([
      this.publicClient.readContract({ address: taskManager, abi: TaskManagerAbi, functionName: 'minTaskFee' }),
      this.publicClient.readContract({ address: taskManager, abi: TaskManagerAbi, functionName: 'settlementWindow' })
    ])
    return { minTaskFee, settlementWindowMs: Number(settlementWindow) * 1000 }
  }

  /**
   * The model's fee (wei, from the cached registry entry); undefined when it is not registered.
   * A deployment without a ModelRegistry charges no model fee.
   */
  async modelFee (modelId: Uint8Array): Promise<bigint | undefined> {
    if (this.config.modelRegistry == null) return 0n
    return (await this.model(modelId))?.fee
  }

  /**
   * `requester`'s available deposit and shortfall and whether each of `taskIds` is settled, all
   * at one block: a task counted settled has its fee already out of that balance.
   */
  async requesterAccount (requester: `0x${string}`, taskIds: readonly Uint8Array[]): Promise<RequesterAccount> {
    const address = this.config.taskManager
    // Not viem's cached block number: a deposit mined a moment ago must count.
    const blockNumber = await this.publicClient.getBlockNumber({ cacheTime: 0 })
    const [available, shortfall, ...settled] = await Promise.all([
      this.publicClient.readContract({ address, abi: TaskManagerAbi, functionName: 'availableBalance', args: [requester], blockNumber }),
      this.publicClient.readContract({ address, abi: TaskManagerAbi, functionName: 'shortfallOf', args: [requester], blockNumber }),
      ...taskIds.map(async (id) => await this.publicClient.readContract({ address, abi: TaskManagerAbi, functionName: 'isSettled', args: [bytesToHex(id)], blockNumber }))
    ])
    return { available: available as bigint, shortfall: shortfall as bigint, settled: settled as boolean[] }
  }

  /** Models registered in blocks fromBlock..toBlock that are active now, in registration order. */
  async activeModels (fromBlock = this.config.deployedAtBlock ?? 0n, toBlock?: bigint): Promise<Uint8Array[]> {
    const registry = this.config.modelRegistry
    if (registry == null) return []
    const events = await this.publicClient.getContractEvents({
      address: registry, abi: ModelRegistryAbi, eventName: 'ModelRegistered', fromBlock, toBlock: toBlock ?? 'latest', strict: true
    })
    const active: Uint8Array[] = []
    for (const e of events) {
      const id = hexToBytes(e.args.modelId)
      if ((await this.model(id))?.active === true) active.push(id)
    }
    return active
  }

  /**
   * Calls `onModels` with the active models registered after block `after`,
   * as they appear (operators prefetch them). Returns a stop function.
   */
  watchModels (onModels: (ids: Uint8Array[]) => void, after: bigint): () => void {
    let last = after
    let stopped = false
    const tick = async (): Promise<void> => {
      try {
        const head = await this.publicClient.getBlockNumber()
        if (head > last) {
          const ids = await this.activeModels(last + 1n, head)
          last = head
          if (ids.length > 0) onModels(ids)
        }
      } catch (err) {
        log('model registry poll failed: %s', (err as Error).message.split('\n')[0])
      }
      if (!stopped) timer = setTimeout(() => { void tick() }, MODEL_WATCH_MS)
    }
    let timer = setTimeout(() => { void tick() }, MODEL_WATCH_MS)
    return () => { stopped = true; clearTimeout(timer) }
  }

  async currentEpoch (): Promise<bigint> {
    return await readCurrentEpoch(this.publicClient, this.config.registry)
  }

  /** The operator set of an epoch (default: the current one), cached; chain answers are verified against the stored root. */
  async operatorSet (epoch?: bigint): Promise<OnChainOperatorSet> {
    const e = epoch ?? await this.currentEpoch()
    if (e === 0n) throw new PermanentSubmissionError(`no epoch has started on registry ${this.config.registry}: register operators, then call advanceEpoch()`)
    let set = this.sets.get(e)
    if (set == null) {
      set = readOperatorSet(this.publicClient, { registry: this.config.registry, taskManager: this.config.taskManager, deployedAtBlock: this.config.deployedAtBlock }, e)
      this.sets.set(e, set)
      set.catch(() => this.sets.delete(e))
    }
    return await set
  }

  /** Calls `onSet` with each new epoch's operator set until the returned function is called. */
  watchEpochs (onSet: (set: OnChainOperatorSet) => void, from: bigint): () => void {
    let last = from
    let stopped = false
    const tick = async (): Promise<void> => {
      try {
        const e = await this.currentEpoch()
        if (e > last) {
          onSet(await this.operatorSet(e))
          last = e
        }
      } catch (err) {
        log('epoch poll failed: %s', (err as Error).message.split('\n')[0])
      }
      if (!stopped) timer = setTimeout(() => { void tick() }, EPOCH_POLL_MS)
    }
    let timer = setTimeout(() => { void tick() }, EPOCH_POLL_MS)
    return () => { stopped = true; clearTimeout(timer) }
  }

  /**
   * The certified result of a task: the values come from its CertificateAccepted
   * event and are checked against the commitment the contract stores.
   */
  async result (taskId: Uint8Array): Promise<OnChainResult | undefined> {
    if (!await this.isCertified(taskId)) return undefined
    const accepted = await this.waitForAcceptance(taskId, 0)
    const claimed = { resultHash: accepted.resultHash, outputRef: accepted.outputRef, epoch: accepted.epoch }
    const ok = await this.publicClient.readContract({ address: this.config.taskManager, abi: TaskManagerAbi, functionName: 'hasResult', args: [bytesToHex(taskId), claimed] })
    if (!ok) throw new PoiError('ERR_RESULT_MISMATCH', `the CertificateAccepted event for task ${bytesToHex(taskId)} does not match the stored commitment; is the RPC endpoint honest?`)
    return claimed
  }

  async isCertified (taskId: Uint8Array): Promise<boolean> {
    return await this.publicClient.readContract({ address: this.config.taskManager, abi: TaskManagerAbi, functionName: 'isSettled', args: [bytesToHex(taskId)] })
  }

  /** The CertificateAccepted event of a task, waiting up to `timeoutMs` for it. */
  async waitForAcceptance (taskId: Uint8Array, timeoutMs: number): Promise<AcceptedCertificate> {
    const end = Date.now() + timeoutMs
    while (true) {
      const accepted = await this.acceptance(taskId)
      if (accepted !== undefined) return accepted
      if (Date.now() > end) throw new PermanentSubmissionError(`no certificate for task ${bytesToHex(taskId)} accepted on-chain within ${timeoutMs} ms`)
      await new Promise(resolve => setTimeout(resolve, 200))
    }
  }

  /** The task's CertificateAccepted event with its transaction's gas, or undefined when there is none (yet). */
  private async acceptance (taskId: Uint8Array): Promise<AcceptedCertificate | undefined> {
    const [ev] = await this.publicClient.getContractEvents({
      address: this.config.taskManager, abi: TaskManagerAbi, eventName: 'CertificateAccepted', args: { taskId: bytesToHex(taskId) },
      fromBlock: this.config.deployedAtBlock ?? 0n, toBlock: 'latest', strict: true
    })
    if (ev == null) return undefined
    const receipt = await this.publicClient.getTransactionReceipt({ hash: ev.transactionHash })
    return {
      resultHash: ev.args.resultHash, outputRef: ev.args.outputRef, epoch: ev.args.epoch,
      txHash: ev.transactionHash, gasUsed: receipt.gasUsed, submitter: ev.args.submitter, signedStake: ev.args.signedStake
    }
  }


  /** Who settled the task (from its CertificateAccepted event), or undefined while it is not settled. */
  async certificateSettlement (taskId: Uint8Array): Promise<Settlement | undefined> {
    if (!await this.isCertified(taskId)) return undefined
    const accepted = await this.acceptance(taskId)
    if (accepted === undefined) throw new PoiError('ERR_SETTLEMENT_EVENT_MISSING', `task ${bytesToHex(taskId)} is settled on TaskManager ${this.config.taskManager} but the RPC returned no CertificateAccepted event for it; does the endpoint serve logs from block ${this.config.deployedAtBlock ?? 0n}?`)
    return { by: accepted.submitter, txHash: accepted.txHash, gasUsed: accepted.gasUsed, resultHash: accepted.resultHash }
  }


  /**
   * Sends `qc`. The simulation runs in parallel with other submissions; the send itself waits
   * its turn for the account's nonce (AccountSender); the receipt is awaited in parallel again.
   * Undefined when the simulation shows the task already settled: nothing is sent.
   */
  async submitCertificate (qc: QuorumCertificate, task: TaskAnnouncement, options: SubmitOptions = {}): Promise<TxReceipt | undefined> {
    const { wallet, sender } = this.sending()
    const set = await this.operatorSet(qc.epoch)
    try {
      const { request, result } = await simulateCertificate(this.publicClient, wallet.account, this.config.taskManager, qc, set, task)
      if (!result) return undefined
      const { gas, fees } = await this.gasAndFees(request, encodeFunctionData({ abi: TaskManagerAbi, functionName: 'submitCertificate', args: request.args }))
      const hash = await sender.send(fees, async (o) => await wallet.writeContract({ ...request, gas, ...o } as typeof request))
      const receipt = await mined(this.publicClient, hash, 'TaskManager.submitCertificate', { timeout: RECEIPT_TIMEOUT_MS, signal: options.signal })
      // The simulation's answer can be stale when another aggregator's transaction
      // lands first in the same block; the receipt's event is the truth.
      const accepted = parseEventLogs({ abi: TaskManagerAbi, eventName: 'CertificateAccepted', logs: receipt.logs })
        .some(l => l.args.taskId.toLowerCase() === bytesToHex(qc.taskId))
      return { txHash: receipt.transactionHash, gasUsed: receipt.gasUsed, accepted }
    } catch (err) {
      throw classify(err, 'TaskManager.submitCertificate')
    }
  }

  /** The zk verifier and circuit id the ModelRegistry holds for a model (issue 16); verifier 0x0…0 when none is registered. */
  async zkVerifierOf (modelId: Uint8Array): Promise<{ verifier: `0x${string}`, circuitId: bigint }> {
    const registry = this.config.modelRegistry
    if (registry == null) throw new PoiError('ERR_NO_MODEL_REGISTRY', 'the deployment names no modelRegistry: zk results need one (it holds the models\' verifiers)')
    const r = await this.publicClient.readContract({ address: registry, abi: ModelRegistryAbi, functionName: 'zkVerifierOf', args: [bytesToHex(modelId)] })
    return { verifier: r.verifier, circuitId: r.circuitId }
  }

  /** Who put the zk task's result on chain (its ZkResultAccepted event), or undefined while it has none (issue 16). */
  async zkSettlement (taskId: Uint8Array): Promise<Settlement | undefined> {
    if (!await this.isCertified(taskId)) return undefined
    const [ev] = await this.publicClient.getContractEvents({
      address: this.config.taskManager, abi: TaskManagerAbi, eventName: 'ZkResultAccepted', args: { taskId: bytesToHex(taskId) },
      fromBlock: this.config.deployedAtBlock ?? 0n, toBlock: 'latest', strict: true
    })
    if (ev == null) throw new PoiError('ERR_SETTLEMENT_EVENT_MISSING', `task ${bytesToHex(taskId)} is settled on TaskManager ${this.config.taskManager} but the RPC returned no ZkResultAccepted event for it (settled by a certificate, or the endpoint serves no logs from block ${this.config.deployedAtBlock ?? 0n})`)
    const receipt = await this.publicClient.getTransactionReceipt({ hash: ev.transactionHash })
    return { by: ev.args.submitter, txHash: ev.transactionHash, gasUsed: receipt.gasUsed, resultHash: `0x${ev.args.outputCommitment.toString(16).padStart(64, '0')}` }
  }

  /**
   * Sends TaskManager.submitZkResult for a zk-tier task (issue 16): simulated first (undefined
   * when the task already has a result: nothing sent), then sent in the account's nonce order;
   * `accepted` from the receipt's ZkResultAccepted event. The proof names its payee, so the
   * prover is paid whoever sends it.
   */
  async submitZkResult (task: TaskAnnouncement, result: ZkResultSubmission, options: SubmitOptions = {}): Promise<TxReceipt | undefined> {
    const { wallet, sender } = this.sending()
    const taskId = result.taskId
    try {
      const { circuitId } = await this.zkVerifierOf(task.modelId)
      const r = { ...result.proof, circuitId, outputCommitment: result.outputCommitment, outputRef: bytesToHex(result.outputRef), prover: result.prover }
      let simulated
      try {
        simulated = await this.publicClient.simulateContract({
          account: wallet.account, address: this.config.taskManager, abi: TASK_MANAGER_ZK_ABI, functionName: 'submitZkResult', args: [taskArgs(task), bytesToHex(task.requesterSig), r]
        })
      } catch (err) {
        const named = await zkSettlementError(err, this.publicClient, this.config.taskManager, task)
        throw named instanceof PoiError ? new PermanentSubmissionError(named.message, { cause: err, revert: contractErrorName(err) }) : err
      }
      if (!simulated.result) return undefined
      const request = simulated.request
      const { gas, fees } = await this.gasAndFees(request, encodeFunctionData({ abi: TASK_MANAGER_ZK_ABI, functionName: 'submitZkResult', args: request.args }))
      const hash = await sender.send(fees, async (o) => await wallet.writeContract({ ...request, gas, ...o } as typeof request))
      const receipt = await mined(this.publicClient, hash, 'TaskManager.submitZkResult', { timeout: RECEIPT_TIMEOUT_MS, signal: options.signal })
      const accepted = parseEventLogs({ abi: TaskManagerAbi, eventName: 'ZkResultAccepted', logs: receipt.logs })
        .some(l => l.args.taskId.toLowerCase() === bytesToHex(taskId))
      return { txHash: receipt.transactionHash, gasUsed: receipt.gasUsed, accepted }
    } catch (err) {
      throw err instanceof PermanentSubmissionError ? err : classify(err, 'TaskManager.submitZkResult')
    }
  }

  /** Who stored the batch's root (its BatchAccepted event), or undefined while the chain holds no such batch (issue 15). */
  async batchSettlement (root: Hex): Promise<Settlement | undefined> {
    if (await readBatchEpoch(this.publicClient, this.config.taskManager, root) === 0n) return undefined
    const [ev] = await this.publicClient.getContractEvents({
      address: this.config.taskManager, abi: TaskManagerAbi, eventName: 'BatchAccepted', args: { root },
      fromBlock: this.config.deployedAtBlock ?? 0n, toBlock: 'latest', strict: true
    })
    if (ev == null) throw new PoiError('ERR_SETTLEMENT_EVENT_MISSING', `batch ${root} is stored on TaskManager ${this.config.taskManager} but the RPC returned no BatchAccepted event for it; does the endpoint serve logs from block ${this.config.deployedAtBlock ?? 0n}?`)
    const receipt = await this.publicClient.getTransactionReceipt({ hash: ev.transactionHash })
    return { by: ev.args.submitter, txHash: ev.transactionHash, gasUsed: receipt.gasUsed }
  }

  /**
   * Sends a batch (TaskManager.submitBatch), as submitCertificate sends a certificate: simulated
   * first (undefined when the root is already stored: nothing sent), then sent in the account's
   * nonce order; `accepted` from the receipt's BatchAccepted event.
   */
  async submitBatch (batch: BatchSubmission, options: SubmitOptions = {}): Promise<TxReceipt | undefined> {
    const { wallet, sender } = this.sending()
    const set = await this.operatorSet(batch.qc.epoch)
    try {
      const { request, result } = await simulateBatch(this.publicClient, wallet.account, this.config.taskManager, batch.qc, batch.summary, set)
      if (!result) return undefined
      const { gas, fees } = await this.gasAndFees(request, encodeFunctionData({ abi: TaskManagerAbi, functionName: 'submitBatch', args: request.args }))
      const hash = await sender.send(fees, async (o) => await wallet.writeContract({ ...request, gas, ...o } as typeof request))
      const receipt = await mined(this.publicClient, hash, 'TaskManager.submitBatch', { timeout: RECEIPT_TIMEOUT_MS, signal: options.signal })
      const accepted = parseEventLogs({ abi: TaskManagerAbi, eventName: 'BatchAccepted', logs: receipt.logs })
        .some(l => l.args.root.toLowerCase() === batch.qc.root.toLowerCase())
      return { txHash: receipt.transactionHash, gasUsed: receipt.gasUsed, accepted }
    } catch (err) {
      throw classify(err, 'TaskManager.submitBatch')
    }
  }

  /** Whether `requester`'s tab sequence is already settled in some batch (operators refuse to batch it again). */
  async tabSettled (requester: Hex, sequence: bigint): Promise<boolean> {
    return await isTabSequenceSettled(this.publicClient, this.config.taskManager, requester, sequence)
  }

  async isSlashed (evidence: StoredEvidence): Promise<boolean> {
    const operator = await this.evidenceOperator(evidence)
    return await this.publicClient.readContract({ address: this.config.slashing, abi: SlashingManagerAbi, functionName: 'slashed', args: [operator, bytesToHex(evidence.taskId)] })
  }

  /** Who slashed the operator for this task (from the EquivocationSlashed event), or undefined while it is not slashed. */
  async evidenceSettlement (evidence: StoredEvidence): Promise<Settlement | undefined> {
    if (!await this.isSlashed(evidence)) return undefined
    const operator = await this.evidenceOperator(evidence)
    const taskId = bytesToHex(evidence.taskId)
    const [ev] = await this.publicClient.getContractEvents({
      address: this.config.slashing, abi: SlashingManagerAbi, eventName: 'EquivocationSlashed', args: { operator, taskId },
      fromBlock: this.config.deployedAtBlock ?? 0n, toBlock: 'latest', strict: true
    })
    if (ev == null) throw new PoiError('ERR_SETTLEMENT_EVENT_MISSING', `operator ${operator} is slashed for task ${taskId} on SlashingManager ${this.config.slashing} but the RPC returned no EquivocationSlashed event; does the endpoint serve logs from block ${this.config.deployedAtBlock ?? 0n}?`)
    const receipt = await this.publicClient.getTransactionReceipt({ hash: ev.transactionHash })
    return { by: ev.args.reporter, txHash: ev.transactionHash, gasUsed: receipt.gasUsed }
  }

  async submitEvidence (evidence: StoredEvidence, options: SubmitOptions = {}): Promise<TxReceipt> {
    const { wallet, sender } = this.sending()
    // each attestation is proven against the set of the epoch it names (they may differ)
    const set = await this.operatorSet(evidence.a.epoch)
    const setB = evidence.b.epoch === evidence.a.epoch ? set : await this.operatorSet(evidence.b.epoch)
    try {
      const { request } = await simulateEvidence(this.publicClient, wallet.account, this.config.slashing,
        { taskId: evidence.taskId, operatorIndex: evidence.operatorIndex, epoch: evidence.a.epoch, a: evidence.a, b: evidence.b }, set, setB)
      const { gas, fees } = await this.gasAndFees(request, encodeFunctionData({ abi: SlashingManagerAbi, functionName: 'submitEvidence', args: request.args }))
      const hash = await sender.send(fees, async (o) => await wallet.writeContract({ ...request, gas, ...o } as typeof request))
      const receipt = await mined(this.publicClient, hash, 'SlashingManager.submitEvidence', { timeout: RECEIPT_TIMEOUT_MS, signal: options.signal })
      const accepted = parseEventLogs({ abi: SlashingManagerAbi, eventName: 'EquivocationSlashed', logs: receipt.logs })
        .some(l => l.args.taskId.toLowerCase() === bytesToHex(evidence.taskId))
      return { txHash: receipt.transactionHash, gasUsed: receipt.gasUsed, accepted }
    } catch (err) {
      throw classify(err, 'SlashingManager.submitEvidence')
    }
  }

  /**
   * Gas and fees of a simulated call, found before it queues for its nonce, so the queue holds
   * only signing and sending. The gas comes from eth_createAccessList (one execution, plus
   * GAS_MARGIN_PERCENT), not eth_estimateGas, whose binary search runs the BLS pairing a dozen
   * times: with it, 200 certificates took 4 s each to estimate on a loaded anvil. An endpoint
   * without eth_createAccessList gets eth_estimateGas.
   */
  private async gasAndFees (request: Parameters<PublicClient['estimateContractGas']>[0] & { address: `0x${string}`, account: Account }, data: Hex): Promise<{ gas: bigint, fees: Fees }> {
    const gas = async (): Promise<bigint> => {
      try {
        const { gasUsed } = await this.publicClient.createAccessList({ account: request.account, to: request.address, data })
        return gasUsed + gasUsed * GAS_MARGIN_PERCENT / 100n
      } catch (err) {
        log('eth_createAccessList failed, estimating gas instead: %s', (err as Error).message.split('\n')[0])
        return await this.publicClient.estimateContractGas(request)
      }
    }
    const [limit, fees] = await Promise.all([gas(), this.publicClient.estimateFeesPerGas()])
    return { gas: limit, fees: { maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas } }
  }

  /**
   * Who slashed the operators `conflict` accuses for its task (the reporter of the first one's
   * EquivocationSlashed event, whatever evidence slashed it), or undefined while one of them is
   * not slashed: posting the conflict then slashes the rest.
   */
  async conflictSettlement (conflict: StoredConflict): Promise<Settlement | undefined> {
    const accused = await this.conflictAccused(conflict)
    const taskId = bytesToHex(conflict.taskId)
    for (const operator of accused) {
      const slashed = await this.publicClient.readContract({ address: this.config.slashing, abi: SlashingManagerAbi, functionName: 'slashed', args: [operator, taskId] })
      if (!slashed) return undefined
    }
    const [ev] = await this.publicClient.getContractEvents({
      address: this.config.slashing, abi: SlashingManagerAbi, eventName: 'EquivocationSlashed', args: { operator: accused[0], taskId },
      fromBlock: this.config.deployedAtBlock ?? 0n, toBlock: 'latest', strict: true
    })
    if (ev == null) throw new PoiError('ERR_SETTLEMENT_EVENT_MISSING', `operator ${accused[0]} is slashed for task ${taskId} on SlashingManager ${this.config.slashing} but the RPC returned no EquivocationSlashed event; does the endpoint serve logs from block ${this.config.deployedAtBlock ?? 0n}?`)
    const receipt = await this.publicClient.getTransactionReceipt({ hash: ev.transactionHash })
    return { by: ev.args.reporter, txHash: ev.transactionHash, gasUsed: receipt.gasUsed }
  }

  /**
   * Posts `conflict`: SlashingManager.submitConflictingCertificates for two certificates (every
   * operator named as a signer in both), submitCertificateAndAttestation for a certificate and an
   * attestation, submitBatchLeafAndAttestation for a batch signature and an attestation. Each
   * statement is proven against the operator set of the epoch it names.
   */
  async submitConflict (conflict: StoredConflict, options: SubmitOptions = {}): Promise<TxReceipt> {
    const { wallet, sender } = this.sending()
    const what = `SlashingManager.${CONFLICT_FUNCTIONS[conflict.kind]}`
    try {
      let hash: Hash
      if (conflict.kind === 'certificates') {
        const [setA, setB] = [await this.operatorSet(conflict.a.epoch), await this.operatorSet(conflict.b.epoch)]
        const { request } = await simulateConflictingCertificates(this.publicClient, wallet.account, this.config.slashing, conflict.a, setA, conflict.b, setB)
        const { gas, fees } = await this.gasAndFees(request, encodeFunctionData({ abi: SlashingManagerAbi, functionName: 'submitConflictingCertificates', args: request.args }))
        hash = await sender.send(fees, async (o) => await wallet.writeContract({ ...request, gas, ...o } as typeof request))
      } else if (conflict.kind === 'certificate-attestation') {
        const [set, attSet] = [await this.operatorSet(conflict.certificate.epoch), await this.operatorSet(conflict.attestation.epoch)]
        const { request } = await simulateCertificateAndAttestation(this.publicClient, wallet.account, this.config.slashing, conflict.certificate, set, conflict.attestation, attSet)
        const { gas, fees } = await this.gasAndFees(request, encodeFunctionData({ abi: SlashingManagerAbi, functionName: 'submitCertificateAndAttestation', args: request.args }))
        hash = await sender.send(fees, async (o) => await wallet.writeContract({ ...request, gas, ...o } as typeof request))
      } else {
        const [set, attSet] = [await this.operatorSet(conflict.batch.epoch), await this.operatorSet(conflict.attestation.epoch)]
        const { request } = await simulateBatchLeafAndAttestation(this.publicClient, wallet.account, this.config.slashing, signedBatchLeafOf(conflict.taskId, conflict.batch), set, conflict.attestation, attSet)
        const { gas, fees } = await this.gasAndFees(request, encodeFunctionData({ abi: SlashingManagerAbi, functionName: 'submitBatchLeafAndAttestation', args: request.args }))
        hash = await sender.send(fees, async (o) => await wallet.writeContract({ ...request, gas, ...o } as typeof request))
      }
      const receipt = await mined(this.publicClient, hash, what, { timeout: RECEIPT_TIMEOUT_MS, signal: options.signal })
      const accepted = parseEventLogs({ abi: SlashingManagerAbi, eventName: 'EquivocationSlashed', logs: receipt.logs })
        .some(l => l.args.taskId.toLowerCase() === bytesToHex(conflict.taskId))
      return { txHash: receipt.transactionHash, gasUsed: receipt.gasUsed, accepted }
    } catch (err) {
      if (err instanceof CalldataError) throw new PermanentSubmissionError(`${what}: ${err.message}`, { cause: err })
      throw classify(err, what)
    }
  }

  /** The accounts `conflict` accuses, from the operator sets of the epochs its statements name. */
  private async conflictAccused (conflict: StoredConflict): Promise<Array<`0x${string}`>> {
    try {
      if (conflict.kind === 'certificates') {
        const args = conflictingCertificatesCalldata(conflict.a, await this.operatorSet(conflict.a.epoch), conflict.b, await this.operatorSet(conflict.b.epoch))
        return args[4].map(x => x.operator)
      }
      if (conflict.kind === 'batch-attestation') {
        const args = batchLeafAndAttestationCalldata(signedBatchLeafOf(conflict.taskId, conflict.batch), await this.operatorSet(conflict.batch.epoch), conflict.attestation, await this.operatorSet(conflict.attestation.epoch))
        return [args[1]]
      }
      const args = certificateAndAttestationCalldata(conflict.certificate, await this.operatorSet(conflict.certificate.epoch), conflict.attestation, await this.operatorSet(conflict.attestation.epoch))
      return [args[2]]
    } catch (err) {
      if (err instanceof CalldataError) throw new PermanentSubmissionError(`conflict ${conflict.id} accuses no operator the chain knows: ${err.message}`, { cause: err })
      throw err
    }
  }

  private async evidenceOperator (evidence: StoredEvidence): Promise<`0x${string}`> {
    const set = await this.operatorSet(evidence.a.epoch)
    const operator = set.operators[evidence.operatorIndex]
    if (operator == null) throw new PermanentSubmissionError(`evidence names operator ${evidence.operatorIndex}, which is not in the operator set of epoch ${evidence.a.epoch} (${set.operators.length} operators)`)
    return operator.address
  }

  /** Stake the registry holds for an operator right now (after any slashing). */
  async liveStake (operator: `0x${string}`): Promise<bigint> {
    const info = await this.publicClient.readContract({ address: this.config.registry, abi: OperatorRegistryAbi, functionName: 'operators', args: [operator] })
    return info.stake
  }

  private sending (): { wallet: WalletClient<Transport, Chain, Account>, sender: AccountSender } {
    if (this.walletClient == null || this.sender == null) throw new PermanentSubmissionError('this node has no chain account configured; it cannot send transactions')
    return { wallet: this.walletClient, sender: this.sender }
  }
}

/** A named contract error will revert again on retry; anything else (RPC, nonce, timeout) may pass later. */
/**
 * The guardian paused settlement (OperatorRegistry.pause): the simulation reverted, nothing was
 * sent. Not permanent: the submitter retries (simulating only) until governance unpauses.
 */
export class SettlementPausedError extends PoiError {
  constructor (what: string, options?: { cause?: unknown }) {
    super('ERR_SETTLEMENT_PAUSED', `${what}: settlement is paused by the network's guardian (OperatorRegistry.paused); nothing was sent, retrying until governance unpauses`, options)
  }
}

function classify (err: unknown, what: string): Error {
  const name = contractErrorName(err)
  if (name === 'Paused') return new SettlementPausedError(what, { cause: err })
  if (name != null) return new PermanentSubmissionError(`${what} reverted with ${name}`, { cause: err, revert: name })
  return err instanceof Error ? err : new Error(String(err))
}

/** EIP-1559 fees of one transaction. */
export interface Fees {
  maxFeePerGas: bigint
  maxPriorityFeePerGas: bigint
}

/** What AccountSender sets on a transaction: the nonce and the fees (bumped after an underpriced refusal). */
export interface SendOverrides extends Fees {
  nonce: number
}

/** The node's refusal of a transaction as underpriced (a replacement, or fees under the base fee). */
const UNDERPRICED = /underpriced|fee cap less than block base fee|max fee per gas less than block base fee|FeeCapTooLowError/i

/**
 * One account's nonce manager. Sends go out one at a time with nonces counted here, so
 * concurrent submissions never pick the same one (issue 9: 200 certificates at once lost 9 to
 * "nonce too low" when each asked the RPC for the pending count). Only the send waits its turn;
 * simulations and receipts run in parallel. After a nonce error, or any error after which the
 * transaction may or may not have gone out, the count is read again from the chain's pending
 * state before the next send; an underpriced refusal is retried with fees bumped by
 * FEE_BUMP_PERCENT, up to MAX_FEE_BUMPS times.
 */
class AccountSender {
  private queue: Promise<unknown> = Promise.resolve()
  private next: number | undefined

  constructor (private readonly publicClient: PublicClient, private readonly address: `0x${string}`) {}

  /** Sends with the account's next nonce once the sends before it are out; `fees` as estimated by the caller. */
  async send (fees: Fees, write: (overrides: SendOverrides) => Promise<Hash>): Promise<Hash> {
    const turn = this.queue.then(async () => await this.sendNow(fees, write))
    this.queue = turn.catch(() => {})
    return await turn
  }

  private async sendNow (initialFees: Fees, write: (overrides: SendOverrides) => Promise<Hash>): Promise<Hash> {
    this.next ??= await this.publicClient.getTransactionCount({ address: this.address, blockTag: 'pending' })
    let fees = initialFees
    for (let bumps = 0; ; bumps++) {
      try {
        const hash = await write({ nonce: this.next, ...fees })
        this.next++
        return hash
      } catch (err) {
        if (bumps < MAX_FEE_BUMPS && errorMatches(err, UNDERPRICED)) {
          fees = bump(fees)
          log('transaction with nonce %d refused as underpriced, retrying with max fee %s wei', this.next, fees.maxFeePerGas.toString())
          continue
        }
        this.next = undefined
        throw err
      }
    }
  }
}

function bump (fees: Fees): Fees {
  const up = (v: bigint): bigint => v + (v * FEE_BUMP_PERCENT + 99n) / 100n + 1n
  return { maxFeePerGas: up(fees.maxFeePerGas), maxPriorityFeePerGas: up(fees.maxPriorityFeePerGas) }
}

/** Whether `err` or any error it wraps (viem nests the node's message several causes deep) matches `re`. */
function errorMatches (err: unknown, re: RegExp): boolean {
  if (err instanceof BaseError) return err.walk(e => re.test((e as Error).name) || re.test((e as Error).message)) != null
  return err instanceof Error && re.test(err.message)
}


/**
 * Registry answers by key, read through to the chain. Gossip validation asks
 * for every task, so the chain must not sit on that path: a fresh answer is
 * returned as is; a stale one that lets a task through (`keep`) is returned
 * at once and refreshed in the background, and keeps serving while the RPC
 * endpoint is down; a stale one that refuses is read again first (a model
 * just registered should run at once), falling back to the stale answer if
 * the read fails. Only a key never read waits for the chain, and fails with it.
 */
class ReadThroughCache<T> {
  private readonly entries = new Map<string, { at: number, value: T }>()
  private readonly reads = new Map<string, Promise<T>>()

  constructor (private readonly ttl: (value: T) => number, private readonly keep: (value: T) => boolean) {}

  async get (key: string, read: () => Promise<T>): Promise<T> {
    const hit = this.entries.get(key)
    if (hit != null && Date.now() - hit.at < this.ttl(hit.value)) return hit.value
    const refresh = this.refresh(key, read)
    if (hit == null) return await refresh
    if (this.keep(hit.value)) {
      refresh.catch((err: Error) => { log('registry read for %s failed, keeping the last answer: %s', key, err.message.split('\n')[0]) })
      return hit.value
    }
    return await refresh.catch(() => hit.value)
  }

  private async refresh (key: string, read: () => Promise<T>): Promise<T> {
    let pending = this.reads.get(key)
    if (pending == null) {
      pending = read().then((value) => {
        this.entries.set(key, { at: Date.now(), value })
        return value
      })
      this.reads.set(key, pending)
      pending.catch(() => {}).finally(() => this.reads.delete(key))
    }
    return await pending
  }
}
