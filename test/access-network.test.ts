/**
 * Model access tiers through a real network on anvil (each node its own process): for a
 * subscription model and a credits model, a requester's task is refused before it buys access,
 * with the node's reason delivered to it (TaskRefusedError over /poi/result/1/), served and
 * settled after, and refused again once what it bought no longer covers the task (a deadline past
 * the subscription's end; no credits left); a pay-per-use model charges its fee per task. The
 * owner is credited each purchase to the wei, at once, and withdraws exactly that. Purchases go
 * through `poi model buy --json`, the tier through `poi model access --json`, as a user would.
 * The contract-level checks (and the chain's clock moved past a subscription) are in
 * access-tiers.test.ts.
 */
import { strict as assert } from 'node:assert'
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bytesToHex, type TransactionReceipt } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { ANVIL_PRIVATE_KEYS, TaskManagerAbi, deposit, readAccess, readCredit, withdrawCredit } from '../contracts/index.js'
import { ChainClient } from '../node/chain-client.js'
import { resolveConfig } from '../node/config.js'
import { exampleInput, startLocalNetwork, type LocalNetwork } from '../node/cli/devnet.js'
import { parseEvent, type EventOf } from '../node/cli/events.js'
import { prepareNodeDir } from '../node/cli/launcher.js'
import { SHIPPED_MODEL_DIR, loadModelDir, modelIdToString } from '../node/inference/index.js'
import { KEY_FILES, generateKeystore, type Keystore } from '../node/keys.js'
import { PoiNode } from '../node/poi-node.js'
import { TaskRefusedError, requestInference, type RequestResult } from '../node/requester/index.js'
import { poi, poiFails } from './helpers/cli.js'

/** A task's deadline on this network of separate processes. */
const TASK_TIMEOUT_MS = 20_000
/** From a certificate to its CertificateAccepted event: the aggregator's transaction, mined at once by anvil. */
const ACCEPTANCE_TIMEOUT_MS = 30_000
/** How long a purchase may take to reach every node's view (ChainClient.ACCESS_CACHE_MS is 3 s), with room for a slow machine. */
const ACCESS_SEEN_TIMEOUT_MS = 20_000
const ETHER = 10n ** 18n
/** A subscription period: covers a task of TASK_TIMEOUT_MS bought now, not one with twice the period ahead. */
const PERIOD_S = 120n
const PERIOD_PRICE = 3n * 10n ** 15n + 11n
const CREDIT_PRICE = 10n ** 14n + 7n
const PER_USE_FEE = 5n * 10n ** 13n + 3n

/** The one event line of a `--json` command. */
function line<K extends 'model-access' | 'model-purchase'> (stdout: string, event: K): EventOf<K> {
  const e = parseEvent(stdout.trim().split('\n').at(-1)!)
  assert.equal(e.event, event)
  return e as EventOf<K>
}

function gasCost (r: TransactionReceipt): bigint {
  return r.gasUsed * r.effectiveGasPrice
}

/** A copy of the shipped model under another name: the same weights, its own model id (owned, like the shipped one, by anvil's first account). */
async function renamedModel (root: string, name: string): Promise<{ dir: string, modelId: Uint8Array }> {
  const shipped = await loadModelDir(SHIPPED_MODEL_DIR)
  const dir = join(root, 'models', name)
  await mkdir(dir, { recursive: true })
  await copyFile(join(SHIPPED_MODEL_DIR, 'model.onnx'), join(dir, 'model.onnx'))
  await writeFile(join(dir, 'manifest.json'), JSON.stringify({ ...shipped.manifest, name }))
  return { dir, modelId: (await loadModelDir(dir)).modelId }
}

describe('model access tiers through the network (anvil)', function () {
  this.timeout(240_000)
  let root: string
  let net: LocalNetwork
  let requester: PoiNode
  let keys: Keystore
  let keystore: string
  let owner: ChainClient
  const models = {} as Record<'subscription' | 'credits' | 'perUse', { dir: string, modelId: Uint8Array }>

  const chainArgs = (): string[] => ['--chain', net.chain!.deploymentPath]
  const ownerCredit = async (): Promise<bigint> => await readCredit(owner.publicClient, owner.config.taskManager, owner.account!)
  const minTaskFee = async (): Promise<bigint> => await owner.publicClient.readContract({ address: owner.config.taskManager, abi: TaskManagerAbi, functionName: 'minTaskFee' })

  /** The task of `modelId`, expected refused by a full node with a reason matching `why`, delivered to the requester. */
  async function refused (modelId: Uint8Array, why: RegExp, timeoutMs = TASK_TIMEOUT_MS, seed = 1): Promise<TaskRefusedError> {
    const err = await requestInference(requester, keys.account, { modelId, input: exampleInput(seed), timeoutMs, fee: await minTaskFee() }).then(() => undefined, (e: unknown) => e)
    assert.ok(err instanceof TaskRefusedError, `expected TaskRefusedError, got ${String(err)}`)
    assert.match(err.reason, why)
    return err
  }

  /**
   * The task of `modelId`, served and settled on-chain. Right after a purchase a node may still
   * hold its last reading (ACCESS_CACHE_MS): a refusal for the reason `stale` is retried until
   * the purchase is seen.
   */
  async function served (modelId: Uint8Array, stale: RegExp, fee?: bigint, seed = 2): Promise<RequestResult> {
    const end = Date.now() + ACCESS_SEEN_TIMEOUT_MS
    for (let attempt = 0; ; attempt++) {
      const outcome = await requestInference(requester, keys.account, { modelId, input: exampleInput(seed + attempt * 100), timeoutMs: TASK_TIMEOUT_MS, fee: fee ?? await minTaskFee() })
        .then(r => r, (e: unknown) => e)
      if (!(outcome instanceof TaskRefusedError) || !stale.test(outcome.reason) || Date.now() > end) {
        assert.ok(!(outcome instanceof Error), `expected the task served, got ${String(outcome)}`)
        const result = outcome as RequestResult
        await net.chain!.client.waitForAcceptance(result.taskId, ACCEPTANCE_TIMEOUT_MS)
        return result
      }
    }
  }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'poi-access-'))
    models.subscription = await renamedModel(root, 'access-subscription')
    models.credits = await renamedModel(root, 'access-credits')
    models.perUse = await renamedModel(root, 'access-per-use')
    net = await startLocalNetwork({ root, operators: 4, chain: true, extraModels: Object.values(models) })
    const dirs = await prepareNodeDir(root, 'requester')
    keys = dirs.keys
    keystore = dirs.keystore
    // The network fee still comes from the deposit; purchases come from the wallet.
    await net.chain!.fund(keys.account.address, 10n * ETHER)
    const requesterChain = await ChainClient.connect(net.chain!.client.config, keys.account)
    await deposit(requesterChain.walletClient!, requesterChain.publicClient, requesterChain.config.taskManager, ETHER)
    owner = await ChainClient.connect(net.chain!.client.config, privateKeyToAccount(ANVIL_PRIVATE_KEYS[0]))
    const config = resolveConfig({ keystore: dirs.keystore, dataDir: dirs.dataDir, genesis: net.genesisPath, bootstrap: [net.bootstrapAddr], listen: [], chain: net.chain!.client.config })
    requester = await PoiNode.start({ operate: false, aggregate: false, light: true, keystore: keys, config, operatorSet: await net.chain!.client.operatorSet() })
    // The owner is anvil's first account (it registered the models): the CLI acts for it with a
    // keystore holding its key.
    const ownerDir = join(root, 'owner-keys')
    await generateKeystore(ownerDir)
    await writeFile(join(ownerDir, KEY_FILES.eth), ANVIL_PRIVATE_KEYS[0] + '\n', { mode: 0o600 })
  })

  after(async () => {
    await requester?.stop()
    await net?.stop()
    await rm(root, { recursive: true, force: true })
  })

  it('subscription: refused before the purchase, served after it, refused for a deadline past its end; the owner is paid to the wei', async () => {
    const { modelId } = models.subscription
    const id = modelIdToString(modelId)
    await setTier(id, ['--tier', 'subscription', '--price', `${PERIOD_PRICE}wei`, '--period', `${PERIOD_S}`], { tier: 'subscription', price: PERIOD_PRICE, period: PERIOD_S, fee: 0n })
    await refused(modelId, new RegExp(`requester ${keys.account.address.toLowerCase()} has no subscription to model ${bytesToHex(modelId)}`))

    const creditBefore = await ownerCredit()
    const bought = line((await poi('model', 'buy', id, '--period', '1', ...chainArgs(), '--keystore', keystore, '--json')).stdout, 'model-purchase')
    assert.deepEqual([bought.tier, bought.units, bought.paid, bought.credits], ['subscription', '1', `${PERIOD_PRICE}`, null])
    assert.equal(await ownerCredit() - creditBefore, PERIOD_PRICE, 'the owner is credited the price at purchase, to the wei')
    const expiresAt = BigInt(bought.expiresAt!)

    await served(modelId, /has no subscription/)
    assert.equal(await ownerCredit() - creditBefore, PERIOD_PRICE, 'a served task pays the owner nothing more: access was paid at purchase')
    // a task whose deadline lies past the subscription's end
    const timeoutMs = Number(expiresAt * 1000n) - Date.now() + 30_000
    await refused(modelId, new RegExp(`subscription to model ${bytesToHex(modelId)} ends at ${new Date(Number(expiresAt) * 1000).toISOString()}, before the task's deadline`), timeoutMs, 3)
  })

  it('credits: refused before the purchase, one task served per credit, refused once they are used; the owner is paid to the wei and withdraws it', async () => {
    const { modelId } = models.credits
    const id = modelIdToString(modelId)
    await setTier(id, ['--tier', 'credits', '--price', `${CREDIT_PRICE}wei`], { tier: 'credits', price: CREDIT_PRICE, period: 0n, fee: 0n })
    const noCredits = new RegExp(`no credits left for model ${bytesToHex(modelId)}`)
    await refused(modelId, noCredits, TASK_TIMEOUT_MS, 4)

    const creditBefore = await ownerCredit()
    const bought = line((await poi('model', 'buy', id, '--credits', '2', ...chainArgs(), '--keystore', keystore, '--json')).stdout, 'model-purchase')
    assert.deepEqual([bought.tier, bought.units, bought.paid, bought.credits, bought.expiresAt], ['credits', '2', `${2n * CREDIT_PRICE}`, '2', null])
    assert.equal(await ownerCredit() - creditBefore, 2n * CREDIT_PRICE)

    // Until a node sees the previous task settled it counts that task's credit as held: retried like a stale read.
    const notYetSeen = new RegExp(`${noCredits.source}|pending tasks? here already holds?`)
    await served(modelId, notYetSeen, undefined, 5)
    await served(modelId, notYetSeen, undefined, 6)
    assert.equal((await readAccess(owner.publicClient, owner.config.modelRegistry!, modelId, keys.account.address)).credits, 0n, 'each certified task used one credit')
    await refused(modelId, noCredits, TASK_TIMEOUT_MS, 7)
    assert.equal(await ownerCredit() - creditBefore, 2n * CREDIT_PRICE)

    // the owner takes out exactly its credit (the purchases above among it)
    const credit = await ownerCredit()
    const balance = await owner.publicClient.getBalance({ address: owner.account! })
    const { amount, receipt } = await withdrawCredit(owner.walletClient!, owner.publicClient, owner.config.taskManager)
    assert.equal(amount, credit)
    assert.equal(await owner.publicClient.getBalance({ address: owner.account! }) - balance + gasCost(receipt), credit)
  })

  it('pay per use: each task pays the model fee to the owner; purchases of a tier the model does not offer are refused', async () => {
    const { modelId } = models.perUse
    const id = modelIdToString(modelId)
    await setTier(id, ['--tier', 'pay-per-use', '--price', `${PER_USE_FEE}wei`], { tier: 'pay-per-use', price: 0n, period: 0n, fee: PER_USE_FEE })
    const wrongTier = await poiFails('model', 'buy', id, '--credits', '1', ...chainArgs(), '--keystore', keystore)
    assert.equal(wrongTier.code, 1)
    assert.match(wrongTier.stderr, /is offered as pay-per-use, model fee 0\.000050000000000003 ETH \(50000000000003 wei\) per task, not credits; it needs no purchase/)
    const creditBefore = await ownerCredit()
    await served(modelId, /^$/, PER_USE_FEE + await minTaskFee(), 8)
    assert.equal(await ownerCredit() - creditBefore, PER_USE_FEE)
  })

  /** `poi model access <id> <args> --json` as the owner; its event line shows `expected`. */
  async function setTier (id: string, args: string[], expected: { tier: string, price: bigint, period: bigint, fee: bigint }): Promise<void> {
    const changed = line((await poi('model', 'access', id, ...args, ...chainArgs(), '--keystore', join(root, 'owner-keys'), '--json')).stdout, 'model-access')
    assert.deepEqual([changed.tier, changed.price, changed.period, changed.fee, changed.active], [expected.tier, `${expected.price}`, `${expected.period}`, `${expected.fee}`, true])
  }
})
