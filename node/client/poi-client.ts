/**
 * PoiClient: a requester as a library. It joins a poi network as a light peer (the same setup
 * as `poi request`: config, key, operator set from the chain or a genesis file, a light
 * PoiNode that follows the chain's epochs), checks a task as the network's nodes would before
 * announcing it, and hands back results it verified itself.
 *
 * Trust boundary: nothing a peer says is trusted. Certificates are verified here against the
 * operator set of their epoch (from the node, or the chain), outputs against the certified
 * result hash. The chain, when configured, is trusted as far as its RPC endpoint.
 */
import { resolve } from 'node:path'
import { logger } from '@libp2p/logger'
import { DEFAULT_QUORUM_BPS, verifyCertificate as verifyQuorumCertificate, type OperatorSet } from '../../consensus/index.js'
import { readModelZkVerifier, readVault, verifierMatchesKey } from '../../contracts/index.js'
import { MAX_STREAM_PAYLOAD_BYTES, fromHex, to0xHex, type QuorumCertificate } from '../../protocols/wire/index.js'
import type { ChainClient } from '../chain-client.js'
import { resolveConfig, type NodeConfig } from '../config.js'
import { readDeployment } from '../deployment.js'
import { InputError, ModelIdError, modelIdToString, parseModelId, parseTaskInput, verificationKeyOf, type ModelManifest } from '../inference/index.js'
import { loadKeystore, type Keystore } from '../keys.js'
import { fetchManifest, fetchVerificationKey } from '../models/index.js'
import type { VerificationKey } from '../inference/zk/index.js'
import { PoiNode } from '../poi-node.js'
import {
  CertificateRejectedError, DEFAULT_TASK_TIMEOUT_MS, InputTooLargeError, OutputNotFoundError, ResultNotFoundError, announceTask,
  checkRequestBounds, fetchOutput, readSettlement, waitForNetwork, NotZkCapableError, requestZkInference, type ZkResult, type PeerFailure, type RequestResult, type SettledResult, type Settlement,
  RequesterTab, type TabReader
} from '../requester/index.js'
import { operatorSource, readChain } from './chain-read.js'
import {
  ClientOptionsError, DepositTooLowError, FeeRefusedError, InvalidModelIdError, InvalidTaskIdError, ModelRefusedError, OnChainResultMismatchError
} from './errors.js'
import { chainFromBootstrap, throwawayKeystore } from './network-config.js'
import { outputTensorLines, type OutputTensorLine } from './output-tensors.js'
import { formatAmount, readAsset, readTaskFee, type PaymentAsset } from './payment.js'
import { findResult, settledTask } from './result-lookup.js'

const log = logger('poi:client')

/** How long a model's manifest is looked for through the DHT before ModelNotFoundError (one small block from its providers). */
export const MANIFEST_LOOKUP_TIMEOUT_MS = 15_000

type Hex = `0x${string}`

export interface PoiClientOptions {
  /** Multiaddrs of full nodes to join through (at least one). */
  bootstrap: string[]
  /**
   * Where the operator set comes from: exactly one of rpc (the bootstrap node names the
   * contracts, checked on this chain), chain (a deployment file path) or genesis (a genesis
   * file path, a network without a chain). With chain, rpc may also be given: it points the
   * deployment at another endpoint of the same chain.
   */
  rpc?: string
  chain?: string
  genesis?: string
  /** The requester's keystore directory (`poi keys`); without it a throwaway key (no deposit: fee-less networks only). */
  keystore?: string
  /** How long connect() waits for a full node; default the requester's DEFAULT_CONNECT_TIMEOUT_MS. */
  connectTimeoutMs?: number
  /** Lines a person can follow (the CLI prints them). */
  onProgress?: (line: string) => void
  /** Gives up connecting when it fires (RequestAbortedError), with everything started so far stopped. */
  signal?: AbortSignal
  /**
   * Reads the requester's on-chain tab when a tab is first used, so a tab whose file was lost
   * continues above the last settled sequence. Default: the chain's (contracts/batches.ts
   * readTab) when the client has a chain; without one the tab continues from its file alone.
   */
  readTab?: TabReader
  /**
   * A resolved node configuration to start from, as the CLI builds it from its flags and
   * `--config` file (listen addresses, its chain and genesis). When given, its chain and genesis
   * are used as they are (chain, genesis and rpc above only add a chain it lacks, through the
   * bootstrap node) and `bootstrap` replaces its bootstrap list when not empty.
   */
  config?: NodeConfig
}

/** Input tensors as JSON, the same shape `poi request --input '{...}'` takes: `{ [name]: { data: number[], dims?: number[] } }`. */
export type JsonTensors = Record<string, unknown>

export interface TaskRequest {
  /** Model id (string form, as `poi model ls` prints it) or its bytes. */
  model: string | Uint8Array
  /** The canonical input bytes (binary tensor format) or JSON tensors; checked against the model's manifest before announcing. */
  input: Uint8Array | JsonTensors
  /** Default: the model's fee plus the network minimum read from the chain; 0 without a chain. */
  fee?: bigint
  /** From the announcement to the task's deadline; default DEFAULT_TASK_TIMEOUT_MS, at most the network's maximum task TTL. */
  timeoutMs?: number
  /** Stake share the certificate must carry, 1..10000 bps; default DEFAULT_QUORUM_BPS. */
  quorumBps?: number
  /** Aborts the checks, the announcement and the wait (RequestAbortedError). */
  signal?: AbortSignal
  /** The model's manifest when the caller holds it (a model directory): then it is not fetched through the DHT. */
  manifest?: ModelManifest
  /**
   * Pay from this requester's credit tab (issue 15): the task takes the tab's next sequence as
   * its nonce (kept in the keystore directory, written before the task is sent) and carries a
   * cumulative voucher; full nodes check the voucher against the tab and the deposit. Default
   * false: a tab task settles only in a batch, so it needs aggregators that batch and a
   * TaskManager with submitBatch; without the tab the task settles by its own certificate, as
   * before issue 15. Needs the requester's own keystore.
   */
  tab?: boolean
}

export interface PoiResult {
  taskId: Hex
  modelId?: string
  source: 'gossip' | 'full-node' | 'chain'
  resultHash: Hex
  outputRef: Hex
  /** Canonical output bytes; undefined only for a chain-settled result whose output no full node served. */
  output: Uint8Array | undefined
  /** The output decoded into tensors (same shape as the `result` --json event's outputTensors). */
  outputTensors: OutputTensorLine[] | null
  /** The verified certificate (absent when known only from the chain). */
  certificate?: QuorumCertificate
  signers?: number[]
  epoch: bigint
  signedStake: bigint
  totalStake: bigint
  /** Announcement to certificate, ms (submit/request only). */
  latencyMs?: number
  fee?: bigint
  /** The operator set the certificate verified against (signer i is `operatorSet.operators[i]`); absent when known only from the chain. */
  operatorSet?: OperatorSet
  /** How the chain settled the task: with source `chain` always; from result() when the chain settled it. */
  settlement?: Settlement
  /** With an undefined `output`: every full node asked for it, and why it could not serve it. */
  outputFailures?: PeerFailure[]
  /**
   * result() with a chain: the on-chain result (null: not settled yet), checked to be the
   * certified one, with who posted it and its transaction when known.
   */
  onChain?: { resultHash: Hex, outputRef: Hex, epoch: bigint, submitter?: Hex, txHash?: Hex } | null
}

export interface SubmittedTask {
  taskId: Hex
  /** Wall-clock ms. */
  deadline: number
  /** Settles with the verified result or a typed error; never an unhandled rejection if nobody awaits it. */
  result: Promise<PoiResult>
  /** The fee the task offers (wei of the payment asset; 0 without a chain). */
  fee: bigint
  /** The fee as a person reads it, and how it was made up: e.g. `0.001 ETH (… wei) (model fee … + network minimum …), paid from the deposit of 0x…`. */
  feeDescription: string
  /** With `tab`: the task's tab sequence (its nonce) and the voucher's cumulative amount, wei. */
  tab?: { sequence: bigint, cumulative: bigint }
}

/** The verdict of verifyCertificate. */
export type CertificateVerdict = { ok: true, signers: number[] } | { ok: false, reason: string }

/**
 * A requester on a poi network. `connect` joins it; `submit` checks and announces a task and
 * returns at once with its id; `request` also waits for the verified result; `result` finds the
 * result of any task; `close` leaves the network (no handle stays open).
 */
export class PoiClient {
  /** The requester account: it signs tasks and pays their fees from its deposit. */
  readonly address: Hex
  /** This light peer's libp2p peer id. */
  readonly peerId: string
  /** The light node underneath: its events (`certificate`, ...) and operator sets, for programs that need more. */
  readonly node: PoiNode
  readonly #keystore: Keystore
  readonly #ownKey: boolean
  readonly #chain: ChainClient | undefined
  readonly #unwatch: (() => void) | undefined
  readonly #progress: (line: string) => void
  readonly #manifests = new Map<string, ModelManifest>()
  readonly #readTab: TabReader | undefined
  /** The credit tab, opened when the first tab task is submitted. */
  #tab: Promise<RequesterTab> | undefined
  #closed: Promise<void> | undefined

  private constructor (node: PoiNode, keystore: Keystore, ownKey: boolean, chain: ChainClient | undefined, unwatch: (() => void) | undefined, progress: (line: string) => void, readTab?: TabReader) {
    this.#readTab = readTab
    this.node = node
    this.#keystore = keystore
    this.#ownKey = ownKey
    this.#chain = chain
    this.#unwatch = unwatch
    this.#progress = progress
    this.address = keystore.account.address
    this.peerId = node.libp2p.peerId.toString()
  }

  /**
   * Starts a light peer and waits until it has a full node and a tasks-topic peer to talk to.
   * Throws ClientOptionsError (an option that cannot be used, naming it), the chain's and the
   * keystore's typed errors, NetworkDiscoveryError (rpc: the bootstrap node did not name
   * contracts that check out), NotConnectedError (no peer within connectTimeoutMs). On any
   * failure everything it started is stopped.
   */
  static async connect (options: PoiClientOptions): Promise<PoiClient> {
    const progress = options.onProgress ?? (() => {})
    let config = await clientConfig(options)
    if (config.chain == null && options.rpc !== undefined) {
      config = { ...config, chain: await chainFromBootstrap(options.rpc, config.bootstrap, undefined, progress) }
    }
    const ownKey = options.keystore !== undefined
    const keystore = options.keystore !== undefined ? await loadKeystore(resolve(options.keystore)) : await throwawayKeystore()
    const { operatorSet, chain } = await operatorSource(config, keystore)
    // With a chain, a certificate of an epoch the node has not adopted yet is checked against that
    // epoch's set read from the chain, and the node follows the chain's epochs while it runs.
    const node = await PoiNode.start({
      operate: false, aggregate: false, light: true, keystore, config, operatorSet,
      readOperatorSet: chain != null ? async (epoch) => await chain.operatorSet(epoch) : undefined
    })
    const unwatch = chain?.watchEpochs(set => { node.useOperatorSet(set) }, operatorSet.epoch)
    try {
      progress(`connecting to ${config.bootstrap.join(', ')} …`)
      await waitForNetwork(node, { timeoutMs: options.connectTimeoutMs, signal: options.signal })
    } catch (err) {
      unwatch?.()
      await node.stop()
      throw err
    }
    log('connected as %s (account %s)', node.libp2p.peerId, keystore.account.address)
    return new PoiClient(node, keystore, ownKey, chain, unwatch, progress, options.readTab)
  }

  /** The network's payment asset (ETH or an ERC-20, with its symbol and decimals); undefined without a chain. */
  async paymentAsset (): Promise<PaymentAsset | undefined> {
    return this.#chain != null ? await readAsset(this.#chain) : undefined
  }

  /** The model's manifest (model directory not needed: fetched through the DHT, cached). Throws ModelNotFoundError. */
  async manifest (model: string | Uint8Array, options: { signal?: AbortSignal } = {}): Promise<ModelManifest> {
    const modelId = modelIdOf(model)
    const id = modelIdToString(modelId)
    const cached = this.#manifests.get(id)
    if (cached !== undefined) return cached
    this.#progress(`looking up the manifest of model ${id} through the DHT …`)
    const timeout = AbortSignal.timeout(MANIFEST_LOOKUP_TIMEOUT_MS)
    const manifest = await fetchManifest(this.node.libp2p, modelId, { signal: options.signal !== undefined ? AbortSignal.any([options.signal, timeout]) : timeout })
    this.#manifests.set(id, manifest)
    return manifest
  }

  /**
   * Checks (bounds, TTL, input against manifest, model access, fee vs deposit), signs,
   * announces; resolves once announced. What `poi request` checks is checked here, before
   * anything is announced: InvalidRequestError (timeoutMs, quorumBps), InvalidModelIdError,
   * InputError (its `field` names the input tensor), InputTooLargeError, ModelRefusedError,
   * ModelNotFoundError, FeeRefusedError, DepositTooLowError; then the network's errors
   * (NotConnectedError, AnnounceError, RequestAbortedError).
   */
  async submit (request: TaskRequest): Promise<SubmittedTask> {
    this.#checkOpen()
    const { signal } = request
    const quorumBps = request.quorumBps ?? DEFAULT_QUORUM_BPS
    const { timeoutMs, modelId, id, input, fee } = await this.#checked(request, quorumBps)
    const tab = request.tab === true ? await this.#openTab() : undefined
    const announced = await announceTask(this.node, this.#keystore.account, { modelId, input, timeoutMs, quorumBps, fee: fee.fee, tab }, {
      onProgress: this.#progress, signal, chain: this.#chain
    })
    const result = announced.result.then(r => poiResult(r, id, fee.fee))
    result.catch(() => {})
    return {
      taskId: to0xHex(announced.taskId), deadline: announced.deadline, result, fee: fee.fee, feeDescription: fee.description,
      ...(announced.tab !== undefined ? { tab: announced.tab } : {})
    }
  }

  /**
   * A zk-tier task (issue 16): the same checks as submit (access, fee, input against the
   * manifest), then the task commits to its input and the answer is a Groth16 proof verified here
   * with the model's verification key (the manifest's zk section: `verificationKey` when the
   * caller holds it, else fetched through the DHT by its content id), not a certificate.
   * NotZkCapableError for a model without a circuit; NoProofError when no valid proof comes by
   * the deadline.
   */
  async requestZk (request: Omit<TaskRequest, 'quorumBps' | 'tab'> & { verificationKey?: VerificationKey, onProgress?: (line: string) => void }): Promise<ZkResult & { fee: bigint, feeDescription: string }> {
    this.#checkOpen()
    const { signal } = request
    const { timeoutMs, modelId, id, input, fee, manifest } = await this.#checked(request, DEFAULT_QUORUM_BPS)
    if (manifest.zk === undefined) throw new NotZkCapableError(`model ${manifest.name} (${id}) names no zk circuit in its manifest: ask for the replicated tier, or have its owner attach a circuit (poi model zk-attach)`)
    const circuitId = BigInt(manifest.zk.circuitId)
    this.#progress(request.verificationKey !== undefined ? 'using the given verification key' : `fetching the verification key of model ${id} through the DHT …`)
    const verificationKey = request.verificationKey ?? await this.#verificationKey(modelId, manifest, signal)
    const chain = this.#chain
    if (chain?.config.modelRegistry != null) {
      // The chain pays the prover on whatever the registered verifier accepts: it must be this key's verifier, or a valid-looking settlement proves nothing.
      const registry = chain.config.modelRegistry
      const registered = await readChain(`the zk verifier of model ${id}`, chain.config.rpcUrl, async () => await readModelZkVerifier(chain.publicClient, registry, modelId))
      if (registered === undefined) throw new NotZkCapableError(`model ${id} has no zk verifier registered in the ModelRegistry ${registry}: its owner registers one (setZkVerifier) before zk tasks can settle`)
      if (registered.circuitId !== circuitId) throw new NotZkCapableError(`the ModelRegistry names circuit ${registered.circuitId} for model ${id}, but its manifest names ${circuitId}`)
      this.#progress(`checking that the registered verifier ${registered.verifier} is the manifest's verification key's (solc) …`)
      if (!await verifierMatchesKey(chain.publicClient, registered.verifier, verificationKey)) {
        throw new NotZkCapableError(`the verifier ${registered.verifier} registered for model ${id} is not the verifier of the verification key its manifest names: the chain would accept other proofs than this key does, so no zk task is sent`)
      }
    }
    const result = await requestZkInference(this.node, this.#keystore.account, { modelId, input, manifest, verificationKey, circuitId, timeoutMs, fee: fee.fee }, {
      onProgress: request.onProgress ?? this.#progress, signal
    })
    return { ...result, fee: fee.fee, feeDescription: fee.description }
  }

  /**
   * What submit and requestZk check before anything is announced: the bounds, the input's size,
   * the registry's leave to use the model, the fee, and the input against the model's manifest.
   */
  async #checked (request: Pick<TaskRequest, 'model' | 'input' | 'timeoutMs' | 'fee' | 'manifest' | 'signal'>, quorumBps: number): Promise<{
    timeoutMs: number, modelId: Uint8Array, id: string, input: Uint8Array, fee: { fee: bigint, description: string }, manifest: ModelManifest
  }> {
    const timeoutMs = request.timeoutMs ?? DEFAULT_TASK_TIMEOUT_MS
    checkRequestBounds({ timeoutMs, quorumBps })
    const modelId = modelIdOf(request.model)
    const id = modelIdToString(modelId)
    const input = encodeInput(request.input)
    if (input.length > MAX_STREAM_PAYLOAD_BYTES) throw new InputTooLargeError(input.length)
    // Nodes drop tasks for models the registry does not allow; say why now rather than NoQuorum later.
    const refusal = this.#chain != null
      ? await readChain(`whether the ModelRegistry lets ${this.address} use model ${id}`, this.#chain.config.rpcUrl, async () => await this.#chain!.modelRefusal(modelId, this.address, Date.now() + timeoutMs))
      : undefined
    if (refusal !== undefined) throw new ModelRefusedError(refusal)
    const fee = await this.#taskFee(modelId, request.fee)
    // A wrong input is a clear error now instead of NoQuorum at the deadline.
    const manifest = request.manifest ?? await this.manifest(modelId, { signal: request.signal })
    parseTaskInput(input, manifest.inputs)
    return { timeoutMs, modelId, id, input, fee, manifest }
  }

  /** The model's verification key fetched through the DHT by its content id (the manifest's zk section; the manifest is refetched with it). */
  async #verificationKey (modelId: Uint8Array, manifest: ModelManifest, signal: AbortSignal | undefined): Promise<VerificationKey> {
    const timeout = AbortSignal.timeout(MANIFEST_LOOKUP_TIMEOUT_MS)
    const found = await fetchVerificationKey(this.node.libp2p, modelId, { signal: signal !== undefined ? AbortSignal.any([signal, timeout]) : timeout })
    if (found.manifest.zk === undefined || found.vkey === undefined || manifest.zk === undefined) throw new NotZkCapableError(`model ${modelIdToString(modelId)} names no verification key`)
    return verificationKeyOf(manifest.zk, found.vkey)
  }

  /** submit() and await its result. */
  async request (request: TaskRequest): Promise<PoiResult> {
    return await (await this.submit(request)).result
  }

  /**
   * The certified result of any task, looked up from full nodes (and the chain when configured),
   * verified here. Throws ResultNotFoundError when none has it, CertificateRejectedError,
   * OnChainResultMismatchError (the chain settled another result), ChainReadError. A result the
   * chain settled whose output no full node serves comes back with `output` undefined and
   * `outputFailures`.
   */
  async result (taskId: string | Uint8Array, options: { signal?: AbortSignal, quorumBps?: number } = {}): Promise<PoiResult> {
    this.#checkOpen()
    const id = taskIdOf(taskId)
    const hex = to0xHex(id)
    const { quorumBps, signal } = options
    const chain = this.#chain
    let found
    try {
      found = await findResult(this.node, id, { quorumBps, signal, operatorSet: this.node.operatorSet, chain })
    } catch (err) {
      // No full node shows a certificate (a relay may hide it): the chain may still have settled the task.
      if (chain == null || !(err instanceof ResultNotFoundError)) throw err
      const settled = await this.#settledResult(chain, id, signal)
      if (settled === undefined) throw err
      return settled
    }
    const verdict = verifyQuorumCertificate(found.certificate, found.set, { quorumBps })
    if (!verdict.ok) throw new CertificateRejectedError(id, verdict.reason)
    const onChain = chain != null ? await readChain(`the on-chain result of task ${hex}`, chain.config.rpcUrl, async () => await chain.result(id)) : undefined
    const certified = to0xHex(found.certificate.resultHash)
    if (onChain != null && onChain.resultHash.toLowerCase() !== certified) throw new OnChainResultMismatchError(hex, onChain.resultHash, certified)
    const task = chain != null && onChain != null
      ? await readChain(`the settling transaction of task ${hex}`, chain.config.rpcUrl, async () => await settledTask(chain, id))
      : undefined
    return {
      taskId: hex,
      // The certificate does not name its model: only the settling transaction's task does.
      ...(task !== undefined ? { modelId: task.modelId, fee: task.fee } : {}),
      source: 'full-node',
      resultHash: certified,
      outputRef: to0xHex(found.certificate.outputRef),
      output: found.output,
      outputTensors: outputTensorLines(found.output),
      certificate: found.certificate,
      signers: verdict.signers,
      epoch: found.certificate.epoch,
      signedStake: verdict.signedStake,
      totalStake: found.set.totalStake,
      operatorSet: found.set,
      ...(chain != null ? { onChain: onChain != null ? { ...onChain, ...(task !== undefined ? { submitter: task.submitter, txHash: task.txHash } : {}) } : null } : {})
    }
  }

  /**
   * Verifies a certificate against the operator set of its epoch (from the node, or the chain).
   * Never throws for a bad certificate: `{ ok: false, reason }` says what is wrong with it, or
   * that its epoch's operator set cannot be known here.
   */
  async verifyCertificate (certificate: QuorumCertificate, options: { quorumBps?: number } = {}): Promise<CertificateVerdict> {
    this.#checkOpen()
    let set: OperatorSet | undefined
    try {
      set = await this.node.operatorSetOf(certificate.epoch) ?? await this.#chain?.operatorSet(certificate.epoch)
    } catch (err) {
      return { ok: false, reason: `the operator set of epoch ${certificate.epoch} cannot be read: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}` }
    }
    if (set === undefined) {
      return { ok: false, reason: `it names epoch ${certificate.epoch}, whose operator set is not known here (this client follows epoch ${this.node.operatorSet.epoch}${this.#chain == null ? ', from a genesis file' : ''})` }
    }
    const verdict = verifyQuorumCertificate(certificate, set, { quorumBps: options.quorumBps })
    return verdict.ok ? { ok: true, signers: verdict.signers } : { ok: false, reason: verdict.reason }
  }

  /** Leaves the network: stops the light node and the chain's epoch watch. Idempotent; the client cannot be used after. */
  async close (): Promise<void> {
    this.#closed ??= (async () => {
      this.#unwatch?.()
      await this.node.stop()
    })()
    await this.#closed
  }

  /** The requester's tab on this network, kept in its keystore directory (ClientOptionsError without one). */
  async #openTab (): Promise<RequesterTab> {
    if (!this.#ownKey) {
      throw new ClientOptionsError('keystore', 'a tab task needs the requester\'s own keystore (--keystore <dir>, or PoiClient\'s keystore option): ' +
        'its tab state (the sequences used) is kept there, and its deposit pays the tab')
    }
    if (this.#tab === undefined) {
      const { domain } = this.node.operatorSet
      // The chain's tab, when there is a chain: a lost tab file then continues above what it settled.
      const readTab = this.#readTab ?? this.#chain?.tabs.readTab
      this.#tab = RequesterTab.open({ dir: this.#keystore.dir, account: this.#keystore.account, chainId: domain.chainId, taskManager: domain.taskManager, readTab })
      this.#tab.catch(() => { this.#tab = undefined })
    }
    return await this.#tab
  }

  #checkOpen (): void {
    if (this.#closed !== undefined) throw new ClientOptionsError('client', 'this PoiClient is closed: connect a new one')
  }

  /**
   * The task's fee: the given one, or by default the model's fee plus the network's minimum,
   * read from the chain (0 without a chain: nothing is charged). With a chain, the requester's
   * available deposit must cover it (full nodes ignore tasks it does not cover), and a fee
   * below the minimum is refused here as the TaskManager would refuse its certificate.
   */
  async #taskFee (modelId: Uint8Array, given: bigint | undefined): Promise<{ fee: bigint, description: string }> {
    if (given !== undefined && given < 0n) throw new FeeRefusedError(given, 0n, `fee must not be negative, got ${given} wei`)
    const chain = this.#chain
    if (chain == null) {
      if (given !== undefined && given !== 0n) throw new FeeRefusedError(given, 0n, `fee ${given} wei needs a chain (rpc or chain): on a network without one nothing is charged`)
      return { fee: 0n, description: 'none (no chain)' }
    }
    const [asset, terms] = await Promise.all([readAsset(chain), readTaskFee(chain, modelId)])
    const fee = given ?? terms.fee
    const parts = `model fee ${formatAmount(terms.modelFee, asset)} + network minimum ${formatAmount(terms.minTaskFee, asset)}`
    if (fee < terms.fee) throw new FeeRefusedError(fee, terms.fee, `fee ${formatAmount(fee, asset)} is below this model's least fee ${formatAmount(terms.fee, asset)} (${parts}): nodes refuse it`)
    const vault = await readChain(`the deposit of ${this.address}`, chain.config.rpcUrl, async () => await readVault(chain.publicClient, chain.config.taskManager, this.address))
    if (vault.available < fee) {
      throw new DepositTooLowError(`the deposit of ${this.address} (${formatAmount(vault.available, asset)} available) does not cover the fee ${formatAmount(fee, asset)}: ` +
        (this.#ownKey ? 'run `poi deposit <amount>` with this keystore first' : 'give the keystore of an account that has deposited with `poi deposit <amount>` (--keystore <dir>, or PoiClient\'s keystore option); without it the task is signed by a throwaway key with no deposit'))
    }
    const description = `${formatAmount(fee, asset)}${given === undefined ? ` (${parts})` : ''}, paid from the deposit of ${this.address}`
    this.#progress(`fee ${description}`)
    return { fee, description }
  }

  /** The task as the chain settled it, with its output when a full node serves it; undefined when the chain holds no result for it. */
  async #settledResult (chain: ChainClient, taskId: Uint8Array, signal?: AbortSignal): Promise<PoiResult | undefined> {
    const settlement = await readChain(`the on-chain result of task ${to0xHex(taskId)}`, chain.config.rpcUrl, async () => await readSettlement(chain, taskId))
    if (settlement === undefined) return undefined
    let output: Uint8Array | undefined
    let outputFailures: PeerFailure[] = []
    try {
      output = await fetchOutput(this.node, settlement.outputRef, settlement.resultHash, { signal })
    } catch (err) {
      if (!(err instanceof OutputNotFoundError)) throw err
      outputFailures = err.failures
    }
    return settledPoiResult(taskId, settlement, output, outputFailures)
  }
}

/**
 * The options as a node configuration: the caller's (`options.config`), or one built from the
 * options alone. Refuses what cannot name a network: no bootstrap address, no source of
 * operators, both a deployment and a genesis file.
 */
async function clientConfig (options: PoiClientOptions): Promise<NodeConfig> {
  const bootstrap = options.bootstrap ?? []
  if (!Array.isArray(bootstrap) || bootstrap.some(a => typeof a !== 'string')) throw new ClientOptionsError('bootstrap', 'bootstrap must be an array of multiaddrs of full nodes')
  if (options.config !== undefined) {
    const config = bootstrap.length > 0 ? { ...options.config, bootstrap } : options.config
    if (config.bootstrap.length === 0) throw new ClientOptionsError('bootstrap', 'PoiClient needs at least one bootstrap multiaddr of a running full node')
    return config
  }
  if (bootstrap.length === 0) throw new ClientOptionsError('bootstrap', 'PoiClient needs at least one bootstrap multiaddr of a running full node')
  if (options.chain !== undefined && options.genesis !== undefined) {
    throw new ClientOptionsError('genesis', 'chain and genesis are mutually exclusive: chain (a deployment file) reads the operators from the chain, genesis is for a network without one')
  }
  if (options.chain === undefined && options.genesis === undefined && options.rpc === undefined) {
    throw new ClientOptionsError('rpc', 'PoiClient needs to know the network\'s operators: give rpc (the bootstrap node names the contracts, checked on that chain), chain (a deployment file) or genesis (a network without a chain)')
  }
  const deployment = options.chain !== undefined ? await readDeployment(resolve(options.chain)) : undefined
  return resolveConfig({
    bootstrap,
    keystore: options.keystore !== undefined ? resolve(options.keystore) : undefined,
    genesis: options.genesis !== undefined ? resolve(options.genesis) : undefined,
    // rpc with a deployment points it at another endpoint of the same chain.
    chain: deployment != null && options.rpc !== undefined ? { ...deployment, rpcUrl: options.rpc } : deployment
  })
}

/** A model id from its string form or its bytes; InvalidModelIdError (`field`: `model`) otherwise. */
export function modelIdOf (model: string | Uint8Array): Uint8Array {
  if (typeof model !== 'string' && !(model instanceof Uint8Array)) throw new InvalidModelIdError(String(model), 'give the model id as a string or its bytes')
  try {
    if (typeof model === 'string') return parseModelId(model)
    modelIdToString(model)
    return model
  } catch (err) {
    if (err instanceof ModelIdError) throw new InvalidModelIdError(typeof model === 'string' ? model : to0xHex(model), err.message)
    throw err
  }
}

/**
 * The task input's bytes: given bytes as they are (a tensor file, or JSON already encoded), JSON
 * tensors encoded as JSON. InputError (`field`: `input`) for what is neither.
 */
export function encodeInput (input: Uint8Array | JsonTensors): Uint8Array {
  if (input instanceof Uint8Array) return input
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InputError('must be the input bytes (a tensor file) or JSON tensors: an object mapping each input name to {"data": [...], "dims": [...]}')
  }
  let json: string
  try {
    json = JSON.stringify(input)
  } catch (err) {
    throw new InputError(`cannot be written as JSON: ${(err as Error).message}`)
  }
  return new TextEncoder().encode(json)
}

/** A task id from 32 bytes or their hex (with or without 0x); InvalidTaskIdError (`field`: `taskId`) otherwise. */
export function taskIdOf (taskId: string | Uint8Array): Uint8Array {
  if (taskId instanceof Uint8Array) {
    if (taskId.length !== 32) throw new InvalidTaskIdError(to0xHex(taskId))
    return taskId
  }
  const bytes = typeof taskId === 'string' && /^(0x)?[0-9a-fA-F]{64}$/.test(taskId) ? fromHex(taskId) : undefined
  if (bytes === undefined) throw new InvalidTaskIdError(String(taskId))
  return bytes
}

/** The requester's result as the library hands it out. */
function poiResult (r: RequestResult | SettledResult, modelId: string, fee: bigint): PoiResult {
  if (r.source === 'chain') {
    return { ...settledPoiResult(r.taskId, r.settlement, r.output, r.outputFailures), modelId, latencyMs: r.certifiedAt - r.announcedAt, fee }
  }
  return {
    taskId: to0xHex(r.taskId),
    modelId,
    source: r.source,
    resultHash: to0xHex(r.resultHash),
    outputRef: to0xHex(r.outputRef),
    output: r.output,
    outputTensors: outputTensorLines(r.output),
    certificate: r.certificate,
    signers: r.signers,
    epoch: r.epoch,
    signedStake: r.signedStake,
    totalStake: r.totalStake,
    latencyMs: r.certifiedAt - r.announcedAt,
    fee,
    operatorSet: r.set
  }
}

function settledPoiResult (taskId: Uint8Array, settlement: Settlement, output: Uint8Array | undefined, outputFailures: PeerFailure[]): PoiResult {
  return {
    taskId: to0xHex(taskId),
    source: 'chain',
    resultHash: to0xHex(settlement.resultHash),
    outputRef: to0xHex(settlement.outputRef),
    output,
    outputTensors: outputTensorLines(output),
    epoch: settlement.epoch,
    signedStake: settlement.signedStake,
    totalStake: settlement.totalStake,
    settlement,
    ...(output === undefined ? { outputFailures } : {})
  }
}
