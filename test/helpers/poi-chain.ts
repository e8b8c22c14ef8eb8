/**
 * A fresh anvil with the poi contracts deployed, wallets for its funded accounts, and time travel
 * for epochs. Shared by the contract tests and the gas benchmark (bench/gas.ts).
 *
 * Test scaffolding, not deployment logic: the deployment itself is contracts' deployPoi, the
 * transactions are contracts' actions; what lives here (anvil's mnemonic wallets, moving the
 * chain's clock with anvil's test methods) only makes sense on a throwaway development chain.
 */
import bls from '../../consensus/bls.js'
import {
  createPublicClient, createTestClient, createWalletClient, http, type Account, type Chain,
  type PublicClient, type TestClient, type TransactionReceipt, type Transport, type WalletClient
} from 'viem'
import { mnemonicToAccount, type HDAccount } from 'viem/accounts'
import { foundry } from 'viem/chains'
import {
  OperatorRegistryAbi, TestTokenAbi, TestTokenBytecode, advanceEpoch, contractErrorArgs, contractErrorName,
  deployParameters, deployPoi, registerOperator, startAnvil, type Anvil, type AnvilOptions, type DeployPoiParameters,
  type Deployment, type PoiDeployment
} from '../../contracts/index.js'
import { CERTIFICATE_VERSION, encodeSignerBitmap, signAttestation, type OperatorSet, type SigningDomain } from '../../consensus/index.js'
import { signTask, taskIdOf, uint256ToBytes, type QuorumCertificate, type TaskAnnouncement, type TaskFields } from '../../protocols/wire/index.js'
import { hash32, taskResult, type TaskResult } from '../consensus-fixtures.js'

/** anvil's well-known development mnemonic (public; devnets only). */
const ANVIL_MNEMONIC = 'test test test test test test test test test test test junk'
const ANVIL_ACCOUNTS = 10

export type Wallet = WalletClient<Transport, Chain, Account>

export type PoiChain = {
  anvil: Anvil
  publicClient: PublicClient
  testClient: TestClient<'anvil'>
  /** wallets[i] = anvil account i; wallets[0] deployed the contracts. */
  wallets: Wallet[]
  deployment: PoiDeployment
  params: Required<DeployPoiParameters>
  stop: () => Promise<void>
}

export type PoiChainOptions = {
  /** Deploy a TestToken (anyone may mint it) from account 0 first and make it the payment asset (overrides params.asset). */
  testToken?: boolean
}

/**
 * Starts anvil (anvilOptions.accounts funded accounts, default 10) and deploys the contracts from
 * account 0 with `params`; with options.testToken the payment asset is a fresh TestToken
 * (deployment.paymentAsset).
 */
export async function startPoiChain (params: DeployPoiParameters = {}, anvilOptions: AnvilOptions = {}, options: PoiChainOptions = {}): Promise<PoiChain> {
  const anvil = await startAnvil(anvilOptions)
  try {
    const transport = http(anvil.rpcUrl)
    const publicClient = createPublicClient({ chain: foundry, transport }) as PublicClient
    const testClient = createTestClient({ chain: foundry, mode: 'anvil', transport })
    // derived from anvil's mnemonic, which funds as many accounts as asked (ANVIL_PRIVATE_KEYS lists the first 10)
    const wallets = Array.from({ length: anvilOptions.accounts ?? ANVIL_ACCOUNTS }, (_, i) => walletFor(anvil.rpcUrl, mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: i })))
    if (options.testToken === true) {
      const hash = await wallets[0].deployContract({ abi: TestTokenAbi, bytecode: TestTokenBytecode, args: ['poi test token', 'POIT'] })
      const { contractAddress } = await publicClient.waitForTransactionReceipt({ hash })
      if (contractAddress == null) throw new Error(`deploying TestToken: receipt of ${hash} has no contract address`)
      params = { ...params, asset: contractAddress }
    }
    const deployment = await deployPoi(wallets[0], publicClient, params)
    return { anvil, publicClient, testClient, wallets, deployment, params: deployParameters(params), stop: anvil.stop }
  } catch (err) {
    await anvil.stop()
    throw err
  }
}

/** anvil account `index` as a local signer (what signTask needs). */
export function anvilAccount (index: number): HDAccount {
  return mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: index })
}

/** The chain's clock in unix milliseconds (anvil's time moves with increaseTime, not with Date.now()). */
export async function chainNowMs (chain: PoiChain): Promise<bigint> {
  const block = await chain.publicClient.getBlock({ blockTag: 'latest' })
  return block.timestamp * 1000n
}

/** How far ahead of the chain's clock a test task's deadline lies by default: the node's longest task TTL. */
export const TEST_TASK_LIFE_MS = 600_000n

export type PaidTaskOptions = Partial<TaskFields> & {
  /** anvil account index of the requester (default the last account). */
  requester?: number
  /** The TaskManager the task is signed for (default the chain's). */
  taskManager?: `0x${string}`
}

/**
 * A task `label` signed by an anvil account for the chain's TaskManager: fee the network minimum,
 * an unregistered model, inline input, deadline TEST_TASK_LIFE_MS ahead of the chain's clock,
 * nonce from the label (so one label is one task; a single task's nonce, ≥ 2**40). Fields in `options` override these.
 */
export async function paidTask (chain: PoiChain, label: string, options: PaidTaskOptions = {}): Promise<TaskAnnouncement> {
  const { requester, taskManager, ...fields } = options
  const account = anvilAccount(requester ?? chain.wallets.length - 1)
  // bit 63 set: a single task, never a tab task (TaskManager.TAB_SEQUENCE_LIMIT, 2**40), whatever the label
  const nonce = BigInt('0x' + Buffer.from(hash32(`nonce:${label}`).subarray(0, 8)).toString('hex')) | (1n << 63n)
  return await signTask(account, taskManager ?? chain.deployment.taskManager, {
    chainId: BigInt(await chain.publicClient.getChainId()),
    modelId: new TextEncoder().encode('test-model'),
    input: new TextEncoder().encode(`input:${label}`),
    fee: chain.params.minTaskFee,
    deadline: (await chainNowMs(chain)) + TEST_TASK_LIFE_MS,
    quorumBps: 1, // the network's quorum applies (the contract takes the larger)
    nonce,
    ...fields
  })
}

/** taskResult(label, result) for `task`: the same result and output, the task's real id. */
export function resultOf (chain: PoiChain, task: TaskAnnouncement, label: string, result: string): TaskResult {
  return { ...taskResult(label, result), taskId: taskIdOf(task, chain.deployment.taskManager) }
}

export function walletFor (rpcUrl: string, account: Account): Wallet {
  return createWalletClient({ account, chain: foundry, transport: http(rpcUrl) })
}

/** Moves the chain's clock past the epoch duration and starts the next epoch: its number and the advanceEpoch receipt. */
export async function nextEpoch (chain: PoiChain, by: Wallet = chain.wallets[0]): Promise<{ epoch: bigint, receipt: TransactionReceipt }> {
  await chain.testClient.increaseTime({ seconds: Number(chain.params.epochDuration) })
  await chain.testClient.mine({ blocks: 1 })
  return await advanceEpoch(by, chain.publicClient, chain.deployment.registry)
}

/** Registers wallets[first + i] with secretKeys[i] and stakes[i] wei, in order; returns the receipts. */
export async function registerAll (chain: PoiChain, secretKeys: readonly Uint8Array[], stakes: readonly bigint[], first = 1): Promise<TransactionReceipt[]> {
  if (first + secretKeys.length > chain.wallets.length) {
    throw new Error(`registering ${secretKeys.length} operators from account ${first} needs ${first + secretKeys.length} accounts; start the chain with { accounts: ${first + secretKeys.length} } or more`)
  }
  const receipts: TransactionReceipt[] = []
  for (let i = 0; i < secretKeys.length; i++) {
    receipts.push(await registerOperator(chain.wallets[first + i], chain.publicClient, chain.deployment.registry, secretKeys[i], stakes[i]))
  }
  return receipts
}

export async function currentEpoch (chain: PoiChain): Promise<bigint> {
  return await chain.publicClient.readContract({ address: chain.deployment.registry, abi: OperatorRegistryAbi, functionName: 'currentEpoch' })
}

/** Awaits `action`, which must revert with custom error `errorName`; returns the error's arguments. */
export async function expectRevert (action: Promise<unknown>, errorName: string): Promise<readonly unknown[]> {
  let outcome: unknown
  try {
    outcome = await action
  } catch (err) {
    const name = contractErrorName(err)
    if (name !== errorName) throw new Error(`expected revert ${errorName}, got ${name ?? 'no custom error'}: ${(err as Error).message.split('\n')[0]}`)
    return contractErrorArgs(err) ?? []
  }
  throw new Error(`expected revert ${errorName}, but the call returned ${String(outcome)}`)
}

/**
 * A QC over `result` by `signers` of `set`, signed for `domain` (default the set's own) with the
 * signatures of `signatureFrom` (default `signers`): lets tests forge what an attacker could send.
 */
export function makeCertificate (
  set: OperatorSet, secretKeys: readonly Uint8Array[], signers: readonly number[], result: TaskResult,
  options: { domain?: SigningDomain, signatureFrom?: readonly number[], signedResult?: TaskResult } = {}
): QuorumCertificate {
  const domain = options.domain ?? set.domain
  const signed = options.signedResult ?? result
  const signatures = (options.signatureFrom ?? signers).map(i =>
    signAttestation(secretKeys[i], domain, { ...signed, epoch: set.epoch, operatorIndex: i }).blsSig)
  const signedStake = signers.reduce((sum, i) => sum + (set.operators[i]?.stake ?? 0n), 0n)
  return {
    version: CERTIFICATE_VERSION,
    taskId: Uint8Array.from(result.taskId),
    resultHash: Uint8Array.from(result.resultHash),
    outputRef: Uint8Array.from(result.outputRef),
    epoch: set.epoch,
    signerBitmap: encodeSignerBitmap(signers),
    aggregateSig: Uint8Array.from(bls.aggregateSignatures(signatures)),
    signedStake: uint256ToBytes(signedStake),
    totalStake: uint256ToBytes(set.totalStake),
    output: Uint8Array.from(result.output)
  }
}
