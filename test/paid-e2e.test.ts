import { strict as assert } from 'node:assert'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bytesToHex, hexToBytes, type TransactionReceipt } from 'viem'
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import {
  ANVIL_PRIVATE_KEYS, TaskManagerAbi, claimRewards, contractErrorName, deposit, nonSignerArgs, readCredit, readModel, readReputation, readVault,
  withdrawCredit, type OnChainOperatorSet
} from '../contracts/index.js'
import { ChainClient } from '../node/chain-client.js'
import { resolveConfig } from '../node/config.js'
import { DEVNET_TREASURY, exampleInput, startLocalNetwork, type LocalNetwork } from '../node/cli/devnet.js'
import { parseEvent, type EventOf } from '../node/cli/events.js'
import { prepareNodeDir } from '../node/cli/launcher.js'
import { loadModelDir, SHIPPED_MODEL_DIR, type ModelDir } from '../node/inference/index.js'
import { loadKeystore, type Keystore } from '../node/keys.js'
import { PoiNode } from '../node/poi-node.js'
import { requestInference } from '../node/requester/index.js'
import { poi, poiFails } from './helpers/cli.js'

/** A task's deadline on this network of separate processes. */
const TASK_TIMEOUT_MS = 20_000
/** From a certificate to its CertificateAccepted event: the aggregator's transaction, mined at once by anvil. */
const ACCEPTANCE_TIMEOUT_MS = 30_000
const ETHER = 10n ** 18n
const BPS = 10_000n


/** The one event line of a `--json` command. */
function line<K extends 'rewards' | 'network' | 'result' | 'deposit'> (stdout: string, event: K): EventOf<K> {
  const e = parseEvent(stdout.trim().split('\n').at(-1)!)
  assert.equal(e.event, event)
  return e as EventOf<K>
}

function gasCost (r: TransactionReceipt): bigint {
  return r.gasUsed * r.effectiveGasPrice
}

/**
 * The fee split computed here from its terms, not by the contract's code: the model owner's fee
 * first, the protocol's basis points of the rest, and the signers' share spread over the stake
 * that signed through one reward-per-stake index (fixed point REWARD_SCALE, both divisions
 * rounding down, as DESIGN §9 describes the index).
 */
function expectedSplit (fee: bigint, modelFee: bigint, protocolFeeBps: bigint, rewardScale: bigint, set: OnChainOperatorSet, signers: number[]): { owner: bigint, treasury: bigint, signers: Map<number, bigint>, signersShare: bigint } {
  const owner = fee < modelFee ? fee : modelFee
  const rest = fee - owner
  const treasury = rest * protocolFeeBps / BPS
  const signersShare = rest - treasury
  const signedStake = signers.reduce((sum, i) => sum + set.operators[i].stake, 0n)
  const index = signersShare * rewardScale / signedStake
  return { owner, treasury, signersShare, signers: new Map(signers.map(i => [i, set.operators[i].stake * index / rewardScale])) }
}

/**
 * A paid task through a real network on anvil: the requester deposits, the task carries the
 * model's fee plus the network minimum, and once its certificate settles the model owner, the
 * treasury and every signer can take out exactly their share (balance deltas net of gas),
 * while the requester's deposit fell by exactly the fee.
 */
describe('paid tasks end to end on a real chain (anvil)', function () {
  this.timeout(180_000)
  let root: string
  let net: LocalNetwork
  let model: ModelDir
  let requester: PoiNode
  let requesterKeys: Keystore
  let requesterChain: ChainClient

  async function clientFor (account: PrivateKeyAccount): Promise<ChainClient> {
    return await ChainClient.connect(net.chain!.client.config, account)
  }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'poi-paid-e2e-'))
    model = await loadModelDir(SHIPPED_MODEL_DIR)
    net = await startLocalNetwork({ root, operators: 4, chain: true })
    const dirs = await prepareNodeDir(root, 'requester')
    requesterKeys = dirs.keys
    // Full nodes ignore tasks whose requester's deposit does not cover the fee: deposit first.
    await net.chain!.fund(requesterKeys.account.address, 10n * ETHER)
    requesterChain = await clientFor(requesterKeys.account)
    await deposit(requesterChain.walletClient!, requesterChain.publicClient, net.chain!.client.config.taskManager, ETHER)
    const config = resolveConfig({ keystore: dirs.keystore, dataDir: dirs.dataDir, genesis: net.genesisPath, bootstrap: [net.bootstrapAddr], listen: [], chain: net.chain!.client.config })
    requester = await PoiNode.start({ operate: false, aggregate: false, light: true, keystore: requesterKeys, config, operatorSet: await net.chain!.client.operatorSet() })
  })

  after(async () => {
    await requester?.stop()
    await net?.stop()
    await rm(root, { recursive: true, force: true })
  })

  it('pays the model owner, the treasury and each signer their share to the wei, and charges the requester exactly the fee', async () => {
    const chain = net.chain!.client
    const tm = chain.config.taskManager
    const read = async <T>(functionName: 'protocolFeeBps' | 'minTaskFee' | 'REWARD_SCALE' | 'treasury'): Promise<T> =>
      await chain.publicClient.readContract({ address: tm, abi: TaskManagerAbi, functionName }) as T
    const [protocolFeeBps, minTaskFee, rewardScale, treasury, registered] = await Promise.all([
      read<number>('protocolFeeBps'), read<bigint>('minTaskFee'), read<bigint>('REWARD_SCALE'), read<`0x${string}`>('treasury'),
      readModel(chain.publicClient, chain.config.modelRegistry!, model.modelId)
    ])
    assert.ok(registered != null && registered.fee > 0n, 'the devnet registers the shipped model with an owner fee')
    assert.equal(treasury, DEVNET_TREASURY)
    const fee = registered.fee + minTaskFee
    const owner = registered.owner
    assert.equal(await readCredit(chain.publicClient, tm, owner), 0n)
    assert.equal(await readCredit(chain.publicClient, tm, treasury), 0n)
    const vaultBefore = await readVault(chain.publicClient, tm, requesterKeys.account.address)

    const result = await requestInference(requester, requesterKeys.account, { modelId: model.modelId, input: exampleInput(31), timeoutMs: TASK_TIMEOUT_MS, fee })
    const accepted = await chain.waitForAcceptance(result.taskId, ACCEPTANCE_TIMEOUT_MS)
    assert.equal(accepted.resultHash, bytesToHex(result.certificate.resultHash))

    const vaultAfter = await readVault(chain.publicClient, tm, requesterKeys.account.address)
    assert.equal(vaultBefore.balance - vaultAfter.balance, fee, 'the requester paid exactly the fee')
    assert.equal(vaultAfter.shortfall, 0n)

    const set = await chain.operatorSet(result.certificate.epoch)
    const expected = expectedSplit(fee, registered.fee, BigInt(protocolFeeBps), rewardScale, set, result.signers)
    // Pro rata to stake: each signer within a wei of its exact share.
    const signedStake = result.signers.reduce((sum, i) => sum + set.operators[i].stake, 0n)
    for (const [i, amount] of expected.signers) {
      const exact = expected.signersShare * set.operators[i].stake / signedStake
      assert.ok(amount <= exact && exact - amount <= 1n, `signer ${i}: ${amount} vs ${exact}`)
    }

    // Owner and treasury: their credit, then the ETH it pays out.
    for (const [who, key, share] of [['owner', ANVIL_PRIVATE_KEYS[0], expected.owner], ['treasury', ANVIL_PRIVATE_KEYS[1], expected.treasury]] as const) {
      const c = await clientFor(privateKeyToAccount(key))
      assert.equal(await readCredit(c.publicClient, tm, c.account!), share, `${who} credit`)
      const balance = await c.publicClient.getBalance({ address: c.account! })
      const { amount, receipt } = await withdrawCredit(c.walletClient!, c.publicClient, tm)
      assert.equal(amount, share)
      assert.equal(await c.publicClient.getBalance({ address: c.account! }) - balance + gasCost(receipt), share, `${who} paid out`)
    }

    // Signers: the first through `poi rewards --claim`, the others through the library; the non-signer has nothing.
    const keystores = net.operators.map((_, i) => join(root, `operator-${i}`, 'keys'))
    let viaCli = true
    for (let i = 0; i < set.operators.length; i++) {
      const op = set.operators[i]
      const dir = await keystoreOf(keystores, op.address)
      const share = expected.signers.get(i)
      const balance = await chain.publicClient.getBalance({ address: op.address })
      if (share === undefined) {
        const { operator: _, ...leaf } = nonSignerArgs(set, i)
        const pending = await chain.publicClient.readContract({ address: tm, abi: TaskManagerAbi, functionName: 'pendingRewards', args: [op.address, [{ epoch: set.epoch, ...leaf }]] })
        assert.equal(pending, 0n, `operator ${i} did not sign and earned nothing`)
        const r = await readReputation(chain.publicClient, tm, op.address)
        assert.equal(r.missed, 1n)
        continue
      }
      let receipt: TransactionReceipt
      if (viaCli) {
        viaCli = false
        const shown = line((await poi('rewards', '--chain', net.chain!.deploymentPath, '--keystore', dir, '--json')).stdout, 'rewards')
        assert.equal(BigInt(shown.pending), share)
        assert.deepEqual(shown.epochs, [{ epoch: `${set.epoch}`, pending: `${share}` }])
        assert.equal(shown.reputation.signed, '1')
        const claimed = line((await poi('rewards', '--claim', '--chain', net.chain!.deploymentPath, '--keystore', dir, '--json')).stdout, 'rewards')
        assert.ok(claimed.claimed !== null)
        assert.equal(BigInt(claimed.claimed.amount), share)
        receipt = await chain.publicClient.getTransactionReceipt({ hash: claimed.claimed.txHash })
        // A second claim has nothing left: refused before any transaction, saying so.
        const again = await poiFails('rewards', '--claim', '--chain', net.chain!.deploymentPath, '--keystore', dir)
        assert.equal(again.code, 1)
        assert.match(again.stderr, /has no rewards to claim in epochs 1/)
      } else {
        const c = await clientFor((await loadKeystore(dir)).account)
        const r = await claimRewards(c.walletClient!, c.publicClient, c.config, [set.epoch])
        assert.equal(r.amount, share)
        receipt = r.receipt
        // The contract itself refuses a double claim with its named error.
        const double = await claimRewards(c.walletClient!, c.publicClient, c.config, [set.epoch]).then(() => undefined, (err: unknown) => err)
        assert.equal(contractErrorName(double), 'NothingToClaim')
      }
      assert.equal(await chain.publicClient.getBalance({ address: op.address }) - balance + gasCost(receipt), share, `signer ${i} paid out`)
    }

    // Each operator printed its record when it started: nothing signed or missed yet.
    for (const op of net.operators) {
      const started = await op.waitForEvent('reputation', () => true, ACCEPTANCE_TIMEOUT_MS, 'reputation event at start')
      assert.deepEqual([started.signed, started.missed, started.slashings], ['0', '0', 0])
    }
    // poi network: every operator with its stake and reputation from the chain.
    const human = (await poi('network', '--chain', net.chain!.deploymentPath)).stdout
    assert.match(human, new RegExp(`^epoch ${set.epoch}: 4 operators, total stake ${Number(set.totalStake / ETHER)} ETH`))
    for (const [i, op] of set.operators.entries()) {
      const [signed, missed] = expected.signers.has(i) ? [1, 0] : [0, 1]
      assert.match(human, new RegExp(`\\n  ${i} +${op.address} +${Number(op.stake / ETHER)} +${signed} +${missed} +0 +0 ETH \\(0 wei\\)`))
    }
    // the network's task life on-chain and its ERC-8004 registries, which a node's /poi/network/1/ answer does not carry
    assert.match(human, /\ntask life +deadlines up to \d+ s ahead settle on-chain \(TaskManager\.maxTaskLife\); each node accepts up to its own maximum task TTL \(default 600 s\)/)
    assert.match(human, /\nERC-8004 +IdentityRegistry 0x[0-9a-fA-F]{40}, ValidationRegistry 0x[0-9a-fA-F]{40}/)
    const network = line((await poi('network', '--chain', net.chain!.deploymentPath, '--json')).stdout, 'network')
    assert.equal(network.epoch, `${set.epoch}`)
    assert.match(network.maxTaskLife, /^[1-9]\d*$/)
    assert.ok(network.identityRegistry !== null && network.validationRegistry !== null, 'the deployment file names both ERC-8004 registries')
    assert.equal(network.operators.length, 4)
    for (const o of network.operators) {
      const signed = expected.signers.has(o.index)
      assert.equal(o.stake, `${set.operators[o.index].stake}`)
      assert.deepEqual([o.signed, o.missed, o.pendingRewards], signed ? ['1', '0', '0'] : ['0', '1', '0'])
    }
  })

  it('poi request pays the model fee plus the minimum by default, from a deposit made with poi deposit', async () => {
    const chain = net.chain!.client
    const tm = chain.config.taskManager
    const dirs = await prepareNodeDir(root, 'cli-requester')
    const chainArgs = ['--chain', net.chain!.deploymentPath, '--keystore', dirs.keystore]
    const args = [...chainArgs, '--bootstrap', net.bootstrapAddr, '--input', new TextDecoder().decode(exampleInput(32))]
    // No deposit yet: refused before anything is announced, saying what to do.
    await net.chain!.fund(dirs.keys.account.address, ETHER)
    const uncovered = await poiFails('request', ...args)
    assert.match(uncovered.stderr, /does not cover the fee .*: run `poi deposit <amount>` with this keystore first/)
    const deposited = line((await poi('deposit', '0.01', ...chainArgs, '--json')).stdout, 'deposit')
    assert.equal(deposited.balance, `${10n ** 16n}`)
    const tooLow = await poiFails('request', ...args, '--fee', '1wei')
    assert.match(tooLow.stderr, /--fee 0\.000000000000000001 ETH \(1 wei\) is below this model's least fee/)

    const registered = (await readModel(chain.publicClient, chain.config.modelRegistry!, model.modelId))!
    const minTaskFee = await chain.publicClient.readContract({ address: tm, abi: TaskManagerAbi, functionName: 'minTaskFee' })
    const requested = await poi('request', ...args, '--json')
    const result = line(requested.stdout, 'result')
    assert.equal(result.fee, `${registered.fee + minTaskFee}`)
    await chain.waitForAcceptance(hexToBytes(result.taskId), ACCEPTANCE_TIMEOUT_MS)
    const vault = await readVault(chain.publicClient, tm, dirs.keys.account.address)
    assert.equal(vault.balance, 10n ** 16n - registered.fee - minTaskFee)
  })
})

/** The keystore directory (of `dirs`) whose Ethereum account is `address`. */
async function keystoreOf (dirs: string[], address: `0x${string}`): Promise<string> {
  for (const dir of dirs) {
    if ((await loadKeystore(dir)).account.address.toLowerCase() === address.toLowerCase()) return dir
  }
  throw new Error(`no operator keystore holds ${address}`)
}
