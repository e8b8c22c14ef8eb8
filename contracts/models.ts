/**
 * The on-chain ModelRegistry from TypeScript (DESIGN §7, §9): register a model under its id (the
 * bytes of its manifest's CID) with its manifest block as proof that the caller is the owner the
 * manifest names, read it back, change its fee, active flag, access tier and
 * allowlist, buy a subscription or credits, and ask whether a requester may use it.
 *
 * Transactions simulate first (a revert costs no gas and surfaces as a ModelRegistryError named
 * after the contract's custom error), then send and wait for the receipt. Chain data is untrusted:
 * readModel rejects an access policy this code does not know instead of guessing.
 * `registry` below is always the ModelRegistry's address (Deployment.modelRegistry).
 */
import { bytesToHex, erc20Abi, hexToBytes, isAddressEqual, keccak256, parseEventLogs, zeroAddress, type Account, type Chain, type PublicClient, type TransactionReceipt, type Transport, type WalletClient } from 'viem'
import { TransactionFailedError } from './actions.js'
import { ModelRegistryAbi, TaskManagerAbi } from './generated/artifacts.js'
import { contractErrorArgs, contractErrorName } from './revert.js'
import { PoiError } from '../protocols/wire/index.js'

type Wallet = WalletClient<Transport, Chain, Account>

/** Mirrors ModelRegistry.MODEL_ID_LENGTH: CIDv1 + json codec + sha2-256 multihash + 32-byte digest. */
export const MODEL_ID_LENGTH = 37

/**
 * The model's access tier (ModelRegistry.setAccessTier): open, anyone; allowlist, only its owner
 * and the requesters it allowed; pay-per-use, anyone, paying the model fee per task (open and
 * allowlist charge the fee too, 0 = free); subscription, requesters who bought a period
 * covering the task's deadline; credits, requesters holding a credit (each certified task uses one).
 */
export type ModelAccessPolicy = 'open' | 'allowlist' | 'pay-per-use' | 'subscription' | 'credits'
export type ModelAccessTier = ModelAccessPolicy

/** The contract's uint8 for each tier (ModelRegistry.POLICY_OPEN, POLICY_ALLOWLIST, TIER_PAY_PER_USE, TIER_SUBSCRIPTION, TIER_CREDITS). */
export const MODEL_ACCESS_POLICY_CODE: Readonly<Record<ModelAccessPolicy, number>> = { open: 0, allowlist: 1, 'pay-per-use': 2, subscription: 3, credits: 4 }
export const MODEL_ACCESS_TIERS = Object.keys(MODEL_ACCESS_POLICY_CODE) as readonly ModelAccessTier[]

export type OnChainModel = {
  modelId: Uint8Array
  owner: `0x${string}`
  /** Per task, wei. */
  fee: bigint
  active: boolean
  accessPolicy: ModelAccessPolicy
  /** Block timestamp of the registration, seconds. */
  registeredAt: bigint
  /** subscription: wei per period; credits: wei per credit; 0 for the other tiers. */
  price: bigint
  /** subscription: seconds one period buys; 0 otherwise. */
  period: bigint
}

/** A requester's standing under a model's tier (ModelRegistry.accessOf). */
export type RequesterAccess = {
  tier: ModelAccessTier
  active: boolean
  /** The model's owner always has access. */
  isOwner: boolean
  /** On the allowlist (meaningful under 'allowlist'). */
  allowed: boolean
  /** End of the subscription, unix seconds (0: never bought); it covers tasks whose deadline is before it. */
  expiresAt: bigint
  credits: bigint
}

/** The contract's custom errors, each a reason a caller can branch on. */
export type ModelRegistryErrorReason =
  'EmptyModelId' | 'ModelIdNotCidV1' | 'ModelIdNotJsonCodec' | 'ModelIdNotSha256' | 'ModelIdDigestLength' | 'MalformedModelId' |
  'ManifestDigestMismatch' | 'ManifestOwnerUnreadable' | 'UnownedManifest' | 'NotManifestOwner' |
  'AlreadyRegistered' | 'NotRegistered' | 'NotOwner' | 'UnknownAccessPolicy' | 'ZeroOwner' |
  'ModelInactive' | 'TierNotOffered' | 'InvalidTierTerms' | 'ZeroUnits' | 'NotTaskManager' | 'WrongDepositValue' |
  'ZkVerifierHasNoCode' | 'ZkCircuitIdOutOfField'

const REASONS: ReadonlySet<string> = new Set<ModelRegistryErrorReason>([
  'EmptyModelId', 'ModelIdNotCidV1', 'ModelIdNotJsonCodec', 'ModelIdNotSha256', 'ModelIdDigestLength', 'MalformedModelId',
  'ManifestDigestMismatch', 'ManifestOwnerUnreadable', 'UnownedManifest', 'NotManifestOwner',
  'AlreadyRegistered', 'NotRegistered', 'NotOwner', 'UnknownAccessPolicy', 'ZeroOwner',
  'ModelInactive', 'TierNotOffered', 'InvalidTierTerms', 'ZeroUnits', 'NotTaskManager', 'WrongDepositValue',
  'ZkVerifierHasNoCode', 'ZkCircuitIdOutOfField'
])

/** A ModelRegistry call the contract refused; `reason` is its custom error. */
export class ModelRegistryError extends PoiError {
  readonly reason: ModelRegistryErrorReason

  constructor (reason: ModelRegistryErrorReason, message: string, options?: { cause?: unknown }) {
    super('ERR_MODEL_REGISTRY', message, options)
    this.reason = reason
  }
}

/** Chain data about a model that this code cannot interpret (e.g. a policy from a newer contract). */
export class ModelReadError extends PoiError {
  constructor (message: string) {
    super('ERR_MODEL_READ', message)
  }
}

/** keccak256(modelId): the registry's key for the model and the `modelKey` topic of its events. */
export function modelKeyOf (modelId: Uint8Array): `0x${string}` {
  return keccak256(modelId)
}

/**
 * Registers `modelId` with the wallet's account as owner, active at once. `manifestBlock` is the
 * block whose CID `modelId` is (the canonical manifest JSON); the wallet's account must be the
 * owner it names, or the contract refuses with NotManifestOwner.
 */
export async function registerModel (
  walletClient: Wallet, publicClient: PublicClient, registry: `0x${string}`, modelId: Uint8Array, manifestBlock: Uint8Array,
  fee: bigint, policy: ModelAccessPolicy = 'open'
): Promise<{ modelKey: `0x${string}`, receipt: TransactionReceipt }> {
  const { request, result } = await refusals(publicClient.simulateContract({
    account: walletClient.account,
    address: registry,
    abi: ModelRegistryAbi,
    functionName: 'register',
    args: [bytesToHex(modelId), bytesToHex(manifestBlock), fee, MODEL_ACCESS_POLICY_CODE[policy]]
  }), 'register', registry, modelId)
  return { modelKey: result, receipt: await mined(publicClient, await walletClient.writeContract(request), 'register') }
}

/**
 * What `registerModel` would cost, without sending it: the contract's refusals surface as
 * ModelRegistryErrors (as registerModel's), otherwise the gas the transaction needs. A
 * publisher checks this against its balance before it stores anything (`poi model publish`).
 */
export async function estimateRegisterModel (
  publicClient: PublicClient, account: `0x${string}`, registry: `0x${string}`, modelId: Uint8Array, manifestBlock: Uint8Array,
  fee: bigint, policy: ModelAccessPolicy = 'open'
): Promise<bigint> {
  return await refusals(publicClient.estimateContractGas({
    account,
    address: registry,
    abi: ModelRegistryAbi,
    functionName: 'register',
    args: [bytesToHex(modelId), bytesToHex(manifestBlock), fee, MODEL_ACCESS_POLICY_CODE[policy]]
  }), 'register', registry, modelId)
}

/** Sets the per-task fee (wei); owner only. */
export async function setModelFee (
  walletClient: Wallet, publicClient: PublicClient, registry: `0x${string}`, modelId: Uint8Array, fee: bigint
): Promise<TransactionReceipt> {
  const { request } = await refusals(publicClient.simulateContract({
    account: walletClient.account, address: registry, abi: ModelRegistryAbi, functionName: 'setFee', args: [bytesToHex(modelId), fee]
  }), 'setFee', registry, modelId)
  return await mined(publicClient, await walletClient.writeContract(request), 'setFee')
}

/** Switches the model on or off; owner only. An inactive model keeps its id but is not usable. */
export async function setModelActive (
  walletClient: Wallet, publicClient: PublicClient, registry: `0x${string}`, modelId: Uint8Array, active: boolean
): Promise<TransactionReceipt> {
  const { request } = await refusals(publicClient.simulateContract({
    account: walletClient.account, address: registry, abi: ModelRegistryAbi, functionName: 'setActive', args: [bytesToHex(modelId), active]
  }), 'setActive', registry, modelId)
  return await mined(publicClient, await walletClient.writeContract(request), 'setActive')
}

/** Owner only. The allowlist is kept while the policy is 'open' and applies again when it returns. */
export async function setModelAccessPolicy (
  walletClient: Wallet, publicClient: PublicClient, registry: `0x${string}`, modelId: Uint8Array, policy: ModelAccessPolicy
): Promise<TransactionReceipt> {
  const { request } = await refusals(publicClient.simulateContract({
    account: walletClient.account, address: registry, abi: ModelRegistryAbi, functionName: 'setAccessPolicy', args: [bytesToHex(modelId), MODEL_ACCESS_POLICY_CODE[policy]]
  }), 'setAccessPolicy', registry, modelId)
  return await mined(publicClient, await walletClient.writeContract(request), 'setAccessPolicy')
}

/** Adds `requester` to (or removes it from) the model's allowlist; owner only. */
export async function setModelAllowed (
  walletClient: Wallet, publicClient: PublicClient, registry: `0x${string}`, modelId: Uint8Array, requester: `0x${string}`, allowed: boolean
): Promise<TransactionReceipt> {
  const { request } = await refusals(publicClient.simulateContract({
    account: walletClient.account, address: registry, abi: ModelRegistryAbi, functionName: 'setAllowed', args: [bytesToHex(modelId), requester, allowed]
  }), 'setAllowed', registry, modelId)
  return await mined(publicClient, await walletClient.writeContract(request), 'setAllowed')
}

/** Hands the model to `newOwner`; owner only. */
export async function transferModelOwnership (
  walletClient: Wallet, publicClient: PublicClient, registry: `0x${string}`, modelId: Uint8Array, newOwner: `0x${string}`
): Promise<TransactionReceipt> {
  const { request } = await refusals(publicClient.simulateContract({
    account: walletClient.account, address: registry, abi: ModelRegistryAbi, functionName: 'transferOwnership', args: [bytesToHex(modelId), newOwner]
  }), 'transferOwnership', registry, modelId)
  return await mined(publicClient, await walletClient.writeContract(request), 'transferOwnership')
}

/** The registered model, or undefined when `modelId` is not registered. */
export async function readModel (publicClient: PublicClient, registry: `0x${string}`, modelId: Uint8Array): Promise<OnChainModel | undefined> {
  const m = await publicClient.readContract({ address: registry, abi: ModelRegistryAbi, functionName: 'getModel', args: [bytesToHex(modelId)] })
  if (/^0x0{40}$/.test(m.owner)) return undefined
  const accessPolicy = policyOf(m.accessPolicy)
  if (accessPolicy === undefined) {
    throw new ModelReadError(`model ${bytesToHex(modelId)} on registry ${registry} has access tier ${m.accessPolicy}, which this version does not know (${TIER_CODES}); upgrade poi`)
  }
  return { modelId: Uint8Array.from(modelId), owner: m.owner, fee: m.fee, active: m.active, accessPolicy, registeredAt: m.registeredAt, price: m.price, period: m.period }
}

/**
 * The model's tier and `requester`'s standing under it, read at one block. Throws ModelReadError
 * for a tier this version does not know.
 */
export async function readAccess (publicClient: PublicClient, registry: `0x${string}`, modelId: Uint8Array, requester: `0x${string}`): Promise<RequesterAccess> {
  const a = await publicClient.readContract({ address: registry, abi: ModelRegistryAbi, functionName: 'accessOf', args: [bytesToHex(modelId), requester] })
  const tier = policyOf(a.tier)
  if (tier === undefined) throw new ModelReadError(`model ${bytesToHex(modelId)} on registry ${registry} has access tier ${a.tier}, which this version does not know (${TIER_CODES}); upgrade poi`)
  return { tier, active: a.active, isOwner: a.isOwner, allowed: a.allowed, expiresAt: a.expiresAt, credits: a.credits }
}

/** Whether `requester` may have a task of `modelId` with deadline `atTime` (unix seconds) served (ModelRegistry.hasAccess). */
export async function hasModelAccess (publicClient: PublicClient, registry: `0x${string}`, modelId: Uint8Array, requester: `0x${string}`, atTime: bigint): Promise<boolean> {
  return await publicClient.readContract({ address: registry, abi: ModelRegistryAbi, functionName: 'hasAccess', args: [bytesToHex(modelId), requester, atTime] })
}

/**
 * Sets the model's tier and terms in one transaction; owner only. open, allowlist, pay-per-use:
 * `price` is the per-task fee (pay-per-use needs one above 0); subscription: `price` wei per
 * `period` seconds; credits: `price` wei per credit. The contract refuses other terms (InvalidTierTerms).
 */
export async function setModelAccessTier (
  walletClient: Wallet, publicClient: PublicClient, registry: `0x${string}`, modelId: Uint8Array, tier: ModelAccessTier, price: bigint, period = 0n
): Promise<TransactionReceipt> {
  const { request } = await refusals(publicClient.simulateContract({
    account: walletClient.account, address: registry, abi: ModelRegistryAbi, functionName: 'setAccessTier', args: [bytesToHex(modelId), MODEL_ACCESS_POLICY_CODE[tier], price, period]
  }), 'setAccessTier', registry, modelId)
  return await mined(publicClient, await walletClient.writeContract(request), 'setAccessTier')
}

/** What a purchase bought: the price paid (credited to the owner) and the access it gives now. */
export type AccessPurchase = {
  /** Wei of the payment asset that reached the owner's credit. */
  paid: bigint
  /** subscription: the new end, unix seconds. */
  expiresAt?: bigint
  /** credits: the requester's credits after the purchase. */
  credits?: bigint
  receipt: TransactionReceipt
}

/**
 * Buys `units` periods (subscription) or credits (credits) of `modelId` for the wallet's account,
 * at the model's price × units, paid straight from the wallet (ETH as value; an ERC-20 after
 * approving the TaskManager for the shortfall of its allowance), not from its vault deposit.
 */
export async function buyModelAccess (
  walletClient: Wallet, publicClient: PublicClient, registry: `0x${string}`, modelId: Uint8Array, kind: 'subscription' | 'credits', units: bigint
): Promise<AccessPurchase> {
  const account = walletClient.account
  const [model, taskManager] = await Promise.all([
    readModel(publicClient, registry, modelId),
    publicClient.readContract({ address: registry, abi: ModelRegistryAbi, functionName: 'taskManager' })
  ])
  const cost = (model?.price ?? 0n) * units
  const asset = await publicClient.readContract({ address: taskManager, abi: TaskManagerAbi, functionName: 'asset' })
  const eth = isAddressEqual(asset, zeroAddress)
  if (!eth && model?.accessPolicy === kind && cost > 0n) {
    const allowance = await publicClient.readContract({ address: asset, abi: erc20Abi, functionName: 'allowance', args: [account.address, taskManager] })
    if (allowance < cost) {
      const { request } = await publicClient.simulateContract({ account, address: asset, abi: erc20Abi, functionName: 'approve', args: [taskManager, cost] })
      const hash = await walletClient.writeContract(request)
      const receipt = await publicClient.waitForTransactionReceipt({ hash })
      if (receipt.status !== 'success') throw new TransactionFailedError('ERC20.approve', hash)
    }
  }
  const functionName = kind === 'subscription' ? 'buySubscription' : 'buyCredits'
  const { request } = await refusals(publicClient.simulateContract({
    account, address: registry, abi: ModelRegistryAbi, functionName, args: [bytesToHex(modelId), units], value: eth ? cost : 0n
  }), functionName, registry, modelId)
  const receipt = await mined(publicClient, await walletClient.writeContract(request), functionName)
  if (kind === 'subscription') {
    const [e] = parseEventLogs({ abi: ModelRegistryAbi, eventName: 'SubscriptionPurchased', logs: receipt.logs })
    return { paid: e.args.paid, expiresAt: e.args.expiresAt, receipt }
  }
  const [e] = parseEventLogs({ abi: ModelRegistryAbi, eventName: 'CreditsPurchased', logs: receipt.logs })
  return { paid: e.args.paid, credits: e.args.balance, receipt }
}

/** Registered, active, and `requester` may use it now under the model's tier (the owner always may). */
export async function isModelUsable (publicClient: PublicClient, registry: `0x${string}`, modelId: Uint8Array, requester: `0x${string}`): Promise<boolean> {
  return await publicClient.readContract({ address: registry, abi: ModelRegistryAbi, functionName: 'isUsable', args: [bytesToHex(modelId), requester] })
}

/** Whether `requester` is on the model's allowlist (which applies while the policy is 'allowlist'). */
export async function isModelAllowed (publicClient: PublicClient, registry: `0x${string}`, modelId: Uint8Array, requester: `0x${string}`): Promise<boolean> {
  return await publicClient.readContract({ address: registry, abi: ModelRegistryAbi, functionName: 'isAllowed', args: [bytesToHex(modelId), requester] })
}

/** A model's zk verifier (ModelRegistry.zkVerifierOf): the Groth16 verifier contract and the circuit id its proofs carry as public signal 0. */
export type ModelZkVerifier = {
  verifier: `0x${string}`
  circuitId: bigint
}

/**
 * Registers `verifier` (deployVerifier's contract for the model's circuit) and the circuit's id
 * as the model's zk verifier, replacing any earlier one; owner only. zeroAddress removes it.
 * Refusals: NotOwner, NotRegistered, ZkVerifierHasNoCode, ZkCircuitIdOutOfField (ModelRegistryError).
 */
export async function setModelZkVerifier (
  walletClient: Wallet, publicClient: PublicClient, registry: `0x${string}`, modelId: Uint8Array, verifier: `0x${string}`, circuitId: bigint
): Promise<TransactionReceipt> {
  const { request } = await refusals(publicClient.simulateContract({
    account: walletClient.account, address: registry, abi: ModelRegistryAbi, functionName: 'setZkVerifier', args: [bytesToHex(modelId), verifier, circuitId]
  }), 'setZkVerifier', registry, modelId)
  return await mined(publicClient, await walletClient.writeContract(request), 'setZkVerifier')
}

/** The model's zk verifier, or undefined when none is registered (or the model is not). */
export async function readModelZkVerifier (publicClient: PublicClient, registry: `0x${string}`, modelId: Uint8Array): Promise<ModelZkVerifier | undefined> {
  const z = await publicClient.readContract({ address: registry, abi: ModelRegistryAbi, functionName: 'zkVerifierOf', args: [bytesToHex(modelId)] })
  return isAddressEqual(z.verifier, zeroAddress) ? undefined : { verifier: z.verifier, circuitId: z.circuitId }
}

/** The model ids registered since `fromBlock` (e.g. the deployment's deployedAtBlock), in registration order. */
export async function listModelIds (publicClient: PublicClient, registry: `0x${string}`, fromBlock = 0n): Promise<Uint8Array[]> {
  const events = await publicClient.getContractEvents({
    address: registry, abi: ModelRegistryAbi, eventName: 'ModelRegistered', fromBlock, toBlock: 'latest', strict: true
  })
  return events.map(e => hexToBytes(e.args.modelId))
}

function hexArg (v: unknown): string {
  return typeof v === 'bigint' ? v.toString(16) : String(v)
}

const TIER_CODES = Object.entries(MODEL_ACCESS_POLICY_CODE).map(([name, code]) => `${code} = ${name}`).join(', ')

function policyOf (code: number): ModelAccessPolicy | undefined {
  for (const [name, value] of Object.entries(MODEL_ACCESS_POLICY_CODE)) if (value === code) return name as ModelAccessPolicy
  return undefined
}

type WriteFunction = 'register' | 'setFee' | 'setActive' | 'setAccessPolicy' | 'setAllowed' | 'transferOwnership' | 'setAccessTier' | 'buySubscription' | 'buyCredits' | 'setZkVerifier'

async function mined (publicClient: PublicClient, hash: `0x${string}`, functionName: WriteFunction): Promise<TransactionReceipt> {
  const receipt = await publicClient.waitForTransactionReceipt({ hash })
  if (receipt.status !== 'success') throw new TransactionFailedError(`ModelRegistry.${functionName}`, hash)
  return receipt
}

/** Awaits a simulation, turning the registry's custom-error reverts into ModelRegistryErrors (anything else passes through). */
async function refusals<T> (simulation: Promise<T>, functionName: WriteFunction, registry: `0x${string}`, modelId: Uint8Array): Promise<T> {
  try {
    return await simulation
  } catch (err) {
    throw toModelRegistryError(err, functionName, registry, modelId) ?? err
  }
}

function tierName (code: unknown): string {
  return policyOf(Number(code)) ?? `tier ${String(code)}`
}

function tierHint (code: unknown): string {
  const tier = policyOf(Number(code))
  if (tier === 'subscription') return 'buy periods (`poi model buy <id> --period N`)'
  if (tier === 'credits') return 'buy credits (`poi model buy <id> --credits N`)'
  return 'it needs no purchase: request tasks directly'
}

function toModelRegistryError (err: unknown, functionName: WriteFunction, registry: `0x${string}`, modelId: Uint8Array): ModelRegistryError | undefined {
  const name = contractErrorName(err)
  if (name === undefined || !REASONS.has(name)) return undefined
  const reason = name as ModelRegistryErrorReason
  const args = contractErrorArgs(err) ?? []
  const id = bytesToHex(modelId)
  const where = `ModelRegistry ${registry}`
  const messages: Record<ModelRegistryErrorReason, string> = {
    EmptyModelId: `${functionName}: the model id is empty; pass the bytes of the model manifest's CID`,
    ModelIdNotCidV1: `${functionName}: model id ${id} is a CIDv${String(args[0])}; ${where} takes the CIDv1 (json codec, sha2-256) of the manifest block`,
    ModelIdNotJsonCodec: `${functionName}: model id ${id} has codec 0x${hexArg(args[0])}, not json (0x200); pass the CID of the manifest block`,
    ModelIdNotSha256: `${functionName}: model id ${id} hashes with multihash 0x${hexArg(args[0])}, not sha2-256 (0x12); pass the CID \`poi model publish\` printed`,
    ModelIdDigestLength: `${functionName}: model id ${id} declares a ${String(args[0])}-byte digest; sha2-256 ids carry 32 bytes`,
    MalformedModelId: `${functionName}: model id ${id} is not a well-formed CID (at byte ${String(args[0])}); pass the bytes of the manifest's CID`,
    ManifestDigestMismatch: `${functionName}: the manifest block passed hashes to ${String(args[1])}, but model id ${id} is the CID of ${String(args[0])}; pass that model's own manifest block`,
    ManifestOwnerUnreadable: `${functionName}: the manifest of model ${id} does not start with {"owner":"0x<40 lowercase hex>", so it names no owner ${where} can read; republish it with \`poi model publish\``,
    UnownedManifest: `${functionName}: the manifest of model ${id} names no owner (the zero address), so nobody can register it; republish it with \`poi model publish --keystore\` or \`--owner\``,
    NotManifestOwner: `${functionName}: account ${String(args[0])} is not the owner named in the manifest of model ${id} (${String(args[1])}); only that account can register it`,
    AlreadyRegistered: `model ${id} is already registered on ${where} (owner ${String(args[1])}); its owner can change it with setModelFee/setModelActive`,
    NotRegistered: `model ${id} is not registered on ${where}; register it with \`poi model publish\``,
    NotOwner: `${functionName}: account ${String(args[0])} does not own model ${id} on ${where}; its owner is ${String(args[1])}`,
    UnknownAccessPolicy: `${functionName}: access tier ${String(args[0])} is not one ${functionName} takes on ${where} (${TIER_CODES}; register and setAccessPolicy take 0..2, setAccessTier all)`,
    ZeroOwner: `${functionName}: cannot transfer model ${id} to the zero address; to retire a model, make it inactive with setModelActive`,
    ModelInactive: `${functionName}: model ${id} is inactive on ${where}: its owner switched it off, so access to it cannot be bought`,
    TierNotOffered: `${functionName}: model ${id} is offered as ${tierName(args[1])}, not ${tierName(args[2])}; ${tierHint(args[1])}`,
    InvalidTierTerms: `${functionName}: terms price ${String(args[1])} wei, period ${String(args[2])} s do not fit tier ${tierName(args[0])}: subscription needs a price and a period, credits a price and no period, pay-per-use a price (the per-task fee), open and allowlist no period`,
    ZeroUnits: `${functionName}: buy at least one period or credit`,
    NotTaskManager: `${functionName}: ${where} has no TaskManager bound (deployed outside deployPoi?), so it cannot take payments; redeploy with \`poi chain deploy\``,
    WrongDepositValue: `${functionName}: sent ${String(args[0])} wei of ETH for a price of ${String(args[1])} wei (an ERC-20 network takes no ETH: the TaskManager pulls the token)`,
    ZkVerifierHasNoCode: `${functionName}: there is no contract at ${String(args[0])}; deploy the model's verifier first (deployVerifier) and register its address`,
    ZkCircuitIdOutOfField: `${functionName}: circuit id ${String(args[0])} is not below the BN254 scalar field, so no proof can carry it; use the circuit's id (31 bytes of sha256)`
  }
  return new ModelRegistryError(reason, messages[reason], { cause: err })
}
