import { strict as assert } from 'node:assert'
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { GossipsubMessage } from '@chainsafe/libp2p-gossipsub'
import { TopicValidatorResult } from '@libp2p/interface'
import { hexToBytes, keccak256 } from 'viem'
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import { TaskAggregation, type OperatorSet } from '../consensus/index.js'
import { ANVIL_PRIVATE_KEYS, TaskManagerAbi, deposit, registerModel } from '../contracts/index.js'
import { ChainClient } from '../node/chain-client.js'
import { exampleInput, STAKE_WEI } from '../node/cli/devnet.js'
import { parseEvent, type EventOf } from '../node/cli/events.js'
import { resolveConfig, type ChainConfig } from '../node/config.js'
import { SHIPPED_MODEL_DIR, encodeManifest, loadModelDir, type ModelDir } from '../node/inference/index.js'
import { writeDeployment } from '../node/deployment.js'
import { generateKeystore, loadKeystore, type Keystore } from '../node/keys.js'
import { createPoiLibp2p, type PoiLibp2p } from '../node/p2p.js'
import { PoiNode } from '../node/poi-node.js'
import { requestInference, waitForNetwork } from '../node/requester/index.js'
import { TOPICS, checkCertificate } from '../protocols/gossip/index.js'
import { MAX_EPOCHS_AHEAD_READ, MAX_EPOCHS_BEHIND_READ, bytesEqual, encodeQuorumCertificate, to0xHex } from '../protocols/wire/index.js'
import { createEpochs } from '../node/roles/index.js'
import { attest, makeOperators, type TestOperators } from './consensus-fixtures.js'
import { freshKeysAsync } from './helpers/keys.js'
import { nextEpoch, registerAll, startPoiChain, type PoiChain } from './helpers/poi-chain.js'
import { until, waitForEvent } from './helpers/wait.js'

/** Gossipsub grafts on its 1 s heartbeat; generous for a loaded machine. */
const MESH_TIMEOUT_MS = 20_000
/** A task's deadline here: long enough for 4 operators to run the shipped model on a busy machine. */
const TASK_TIMEOUT_MS = 8_000
/** From a formed certificate to its CertificateAccepted event (anvil mines at once). */
const ACCEPTANCE_TIMEOUT_MS = 15_000
const OPERATORS = 4
/**
 * The censored task's deadline: far beyond the settlement (a block after the certificate), so a
 * result before it shows the requester noticed the settlement while waiting, not at the deadline.
 */
const CENSORED_TASK_TIMEOUT_MS = 25_000
/** `poi request` in its own process: it loads libp2p, onnxruntime and viem before it connects. */
const CLI_TIMEOUT_MS = 40_000
/** A requester's deposit here: far more than the few minimum fees its tasks pay. */
const REQUESTER_DEPOSIT_WEI = 10n ** 18n
const CLI = join(dirname(fileURLToPath(import.meta.url)), '../node/cli/main.js')

/**
 * A bootstrap node that forwards tasks and attestations but drops every certificate, and tells
 * nobody about its other peers (its DHT is in client mode): a libp2p node driving gossipsub by
 * hand (asynchronous validation: nothing is forwarded without a verdict). A requester behind it
 * sees only it.
 */
async function censoringRelay (bootstrap: string): Promise<PoiLibp2p> {
  const relay = await createPoiLibp2p({ privateKey: (await freshKeysAsync()).privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [bootstrap], dhtClientMode: true })
  const pubsub = relay.services.pubsub
  pubsub.addEventListener('gossipsub:message', (evt: CustomEvent<GossipsubMessage>) => {
    const { msgId, propagationSource, msg } = evt.detail
    pubsub.reportMessageValidationResult(msgId, propagationSource.toString(), msg.topic === TOPICS.certificates ? TopicValidatorResult.Ignore : TopicValidatorResult.Accept)
  })
  for (const topic of [TOPICS.tasks, TOPICS.attestations, TOPICS.certificates]) pubsub.subscribe(topic)
  await relay.start()
  return relay
}


/** A `--json` stdout of a certified task whose output no node served: its result line, then the error line. */
function resultThenError (stdout: string): EventOf<'result'> {
  const lines = stdout.trim().split('\n').map(l => parseEvent(l))
  const last = lines.at(-1)
  assert.ok(last?.event === 'error' && last.code === 'ERR_OUTPUT_NOT_FOUND', `the last line is the error:\n${stdout}`)
  const result = lines.find(e => e.event === 'result')
  assert.ok(result?.event === 'result', `a result line:\n${stdout}`)
  return result
}
describe('a requester that believes the chain', function () {
  this.timeout(60_000)
  let root: string
  let chain: PoiChain
  let chainConfig: ChainConfig
  let reader: ChainClient
  const nodes: PoiNode[] = []
  const relays: PoiLibp2p[] = []
  let operatorKeys: Keystore[]
  let shipped: ModelDir
  let modelId: Uint8Array
  let bootstrapAddr: string
  let fullNodes: PoiNode[]
  let aggregator: PoiNode

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'poi-requester-chain-'))
    shipped = await loadModelDir(SHIPPED_MODEL_DIR)
    modelId = shipped.modelId
    chain = await startPoiChain({ epochDuration: 0n, exitDelay: 60n }, { accounts: OPERATORS + 2 })
    operatorKeys = await Promise.all(Array.from({ length: OPERATORS }, async () => await freshKeysAsync()))
    await registerAll(chain, operatorKeys.map(k => k.blsSecretKey), operatorKeys.map(() => STAKE_WEI))
    await nextEpoch(chain)
    chainConfig = { rpcUrl: chain.anvil.rpcUrl, ...chain.deployment }
    reader = await ChainClient.connect(chainConfig)
    const set = await reader.operatorSet()
    const config = (name: string, bootstrap: string[], light = false): ReturnType<typeof resolveConfig> => resolveConfig({
      keystore: join(root, name, 'keys'),
      dataDir: join(root, name, 'data'),
      genesis: join(root, 'unused-genesis.json'),
      listen: light ? [] : ['/ip4/127.0.0.1/tcp/0'],
      bootstrap,
      graceMs: 250,
      chain: chainConfig
    })
    const start = async (name: string, keystore: Keystore, role: { operate?: boolean, aggregate?: boolean }, bootstrap: string[]): Promise<PoiNode> => {
      const node = await PoiNode.start({
        operate: role.operate === true, aggregate: role.aggregate === true, light: false, keystore, config: config(name, bootstrap), operatorSet: set,
        settlement: role.aggregate === true ? await ChainClient.connect(chainConfig, privateKeyToAccount(ANVIL_PRIVATE_KEYS[OPERATORS + 1])) : undefined
      })
      nodes.push(node)
      return node
    }
    const bootstrap = await start('bootstrap', await freshKeysAsync(), {}, [])
    bootstrapAddr = bootstrap.addresses()[0]
    const operators: PoiNode[] = []
    for (let i = 0; i < OPERATORS; i++) operators.push(await start(`op${i}`, operatorKeys[i], { operate: true }, [bootstrapAddr]))
    aggregator = await start('aggregator', await freshKeysAsync(), { aggregate: true }, [bootstrapAddr])
    fullNodes = [bootstrap, ...operators, aggregator]
    await until(() => fullNodes.every(n => n.meshPeers('tasks') > 0 && n.meshPeers('certificates') > 0 &&
      (operators.includes(n) ? n.topicPeers('attestations') > 0 : n.meshPeers('attestations') > 0)), MESH_TIMEOUT_MS, 'gossip meshes on every full node')
  })

  after(async () => {
    await Promise.all(nodes.map(async n => await n.stop()))
    await Promise.all(relays.map(async r => await r.stop()))
    await chain?.stop()
    if (root !== undefined) await rm(root, { recursive: true, force: true })
  })

  /** The censoring relay, started once, in the certificates mesh of the network. */
  let censorStarted: Promise<PoiLibp2p> | undefined
  async function censor (): Promise<PoiLibp2p> {
    censorStarted ??= (async () => {
      const relay = await censoringRelay(bootstrapAddr)
      relays.push(relay)
      await until(() => relay.services.pubsub.getMeshPeers(TOPICS.certificates).length > 0, MESH_TIMEOUT_MS, 'the censoring relay in the certificates mesh')
      return relay
    })()
    return await censorStarted
  }

  /**
   * Every task is paid and full nodes ignore a requester whose deposit does not cover the fee:
   * sends `account` ETH from the deployer and deposits REQUESTER_DEPOSIT_WEI of it.
   */
  async function fundAndDeposit (account: PrivateKeyAccount): Promise<void> {
    await chain.publicClient.waitForTransactionReceipt({ hash: await chain.wallets[0].sendTransaction({ to: account.address, value: 2n * REQUESTER_DEPOSIT_WEI }) })
    const client = await ChainClient.connect(chainConfig, account)
    await deposit(client.walletClient!, client.publicClient, chainConfig.taskManager, REQUESTER_DEPOSIT_WEI)
  }

  /** The fee of a task for the (free) shipped model: the network's minimum. */
  async function minimumFee (): Promise<bigint> {
    return await chain.publicClient.readContract({ address: chainConfig.taskManager, abi: TaskManagerAbi, functionName: 'minTaskFee' })
  }

  async function lightNode (name: string, bootstrap: string[], readOperatorSet?: (epoch: bigint) => Promise<OperatorSet>): Promise<{ node: PoiNode, keys: Keystore }> {
    const keys = await freshKeysAsync()
    await fundAndDeposit(keys.account)
    const node = await PoiNode.start({
      operate: false, aggregate: false, light: true, keystore: keys, operatorSet: await reader.operatorSet(), readOperatorSet,
      config: resolveConfig({ keystore: join(root, name, 'keys'), dataDir: join(root, name, 'data'), genesis: join(root, 'unused-genesis.json'), listen: [], bootstrap, chain: chainConfig })
    })
    nodes.push(node)
    return { node, keys }
  }

  it('behind a relay that drops certificates, a task settled on-chain is returned as settled, not NoQuorum', async () => {
    const relay = await censor()
    const { node: requester, keys } = await lightNode('censored-requester', [relay.getMultiaddrs()[0].toString()])
    await waitForNetwork(requester, { timeoutMs: MESH_TIMEOUT_MS })
    const formed = waitForEvent(aggregator, 'certificate', { timeoutMs: CENSORED_TASK_TIMEOUT_MS, what: 'the aggregator forming a certificate' })
    const progress: string[] = []
    const result = await requestInference(requester, keys.account, { modelId, input: exampleInput(31), timeoutMs: CENSORED_TASK_TIMEOUT_MS, fee: await minimumFee() }, { onProgress: (l) => progress.push(l), chain: reader })
    assert.ok(result.certifiedAt - result.announcedAt < CENSORED_TASK_TIMEOUT_MS, 'the settlement was noticed only at the deadline')
    // The network did certify it, and the relay kept that from the requester.
    assert.ok(bytesEqual((await formed).certificate.taskId, result.taskId))
    assert.deepEqual(requester.libp2p.getConnections().map(c => c.remotePeer.toString()), [relay.peerId.toString()])
    assert.equal(result.source, 'chain', progress.join('\n'))
    const accepted = await reader.waitForAcceptance(result.taskId, 0)
    assert.equal(to0xHex(result.resultHash), accepted.resultHash)
    assert.equal(result.epoch, 1n)
    assert.equal(result.signedStake, STAKE_WEI * BigInt(OPERATORS))
    assert.equal(result.totalStake, STAKE_WEI * BigInt(OPERATORS))
    assert.equal(result.settlement.submitter.toLowerCase(), accepted.submitter.toLowerCase())
    // The relay hides every full node: the output cannot be had, and the result says who was asked.
    assert.equal(result.output, undefined)
    assert.deepEqual(result.outputFailures.map(f => f.peer), [relay.peerId.toString()])
    assert.ok(progress.some(l => l.includes('settled on-chain with result')), progress.join('\n'))
  })

  it('poi request behind that relay prints the settled result with its transaction and fails for want of the output', async () => {
    const relay = await censor()
    // poi request checks the ModelRegistry first; the in-process nodes have no model gate.
    // wallets[0] is the owner the shipped manifest names (DEVNET_MODEL_OWNER)
    await registerModel(chain.wallets[0], chain.publicClient, chain.deployment.modelRegistry, modelId, encodeManifest(shipped.manifest), 0n)
    const deploymentPath = join(root, 'deployment.json')
    await writeDeployment(deploymentPath, { rpcUrl: chain.anvil.rpcUrl, ...chain.deployment })
    const keystore = join(root, 'cli-requester', 'keys')
    await generateKeystore(keystore)
    await fundAndDeposit((await loadKeystore(keystore)).account)
    const failed = await promisify(execFile)(process.execPath, [CLI, 'request', '--bootstrap', relay.getMultiaddrs()[0].toString(), '--chain', deploymentPath, '--keystore', keystore,
      '--input', new TextDecoder().decode(exampleInput(33)), '--timeout', String(TASK_TIMEOUT_MS / 1000), '--json'], { timeout: CLI_TIMEOUT_MS })
      .then(() => undefined, (err: { code: number, stdout: string, stderr: string }) => err)
    assert.ok(failed !== undefined, 'poi request succeeded without the output')
    assert.equal(failed.code, 1, failed.stderr)
    // The result it learned, then (last) the error it exits with.
    const line = resultThenError(failed.stdout)
    assert.equal(line.source, 'chain')
    assert.equal(line.signers, null)
    assert.equal(line.output, null)
    const accepted = await reader.waitForAcceptance(hexToBytes(line.taskId), 0)
    assert.equal(line.resultHash, accepted.resultHash)
    assert.equal(line.onChain?.txHash, accepted.txHash)
    assert.match(failed.stderr, /no connected full node could serve output/)
    // poi result says the same of the task: settled, and by whom, not "no certificate".
    const looked = await promisify(execFile)(process.execPath, [CLI, 'result', line.taskId, '--bootstrap', relay.getMultiaddrs()[0].toString(), '--chain', deploymentPath, '--json'], { timeout: CLI_TIMEOUT_MS })
      .then(() => undefined, (err: { code: number, stdout: string, stderr: string }) => err)
    assert.ok(looked !== undefined, 'poi result succeeded without the output')
    assert.equal(looked.code, 1, looked.stderr)
    const shown = resultThenError(looked.stdout)
    assert.equal(shown.source, 'chain')
    assert.equal(shown.resultHash, accepted.resultHash)
    assert.equal(shown.onChain?.submitter?.toLowerCase(), accepted.submitter.toLowerCase())
  })

  it('a requester that loaded epoch N accepts a certificate of epoch N+1, verified against that epoch\'s set', async () => {
    const { node: requester, keys } = await lightNode('epoch-requester', [bootstrapAddr], async (epoch) => await reader.operatorSet(epoch))
    await waitForNetwork(requester, { timeoutMs: MESH_TIMEOUT_MS })
    const loaded = requester.operatorSet.epoch
    const { epoch } = await nextEpoch(chain)
    assert.equal(epoch, loaded + 1n)
    // The full nodes follow the chain (their epoch watchers); the requester has not looked yet.
    const next = await reader.operatorSet(epoch)
    for (const n of fullNodes) n.useOperatorSet(next)
    const refused: string[] = []
    requester.addEventListener('rejected', (evt) => { refused.push(`${evt.detail.verdict}: ${evt.detail.reason}`) })
    const result = await requestInference(requester, keys.account, { modelId, input: exampleInput(32), timeoutMs: TASK_TIMEOUT_MS, fee: await minimumFee() })
    assert.deepEqual(refused, [])
    assert.equal(result.source, 'gossip')
    assert.equal(result.certificate.epoch, epoch)
    assert.equal(requester.operatorSet.epoch, loaded, 'the requester adopted the new epoch: the test no longer tests reading it on demand')
    assert.equal(result.signers.length, OPERATORS)
    assert.equal(keccak256(result.output), to0xHex(result.resultHash))
  })
})

describe('operator sets of epochs a certificate names (no network)', () => {
  const NOW = 1_800_000_000_000
  /** A certificate of `ops`'s epoch, signed by operators 0..2. */
  function certificateOf (ops: TestOperators, task: string): Uint8Array {
    const output = new TextEncoder().encode(`out:${task}`)
    const hash = keccak256(output, 'bytes')
    const result = { taskId: keccak256(new TextEncoder().encode(task), 'bytes'), resultHash: hash, outputRef: hash, output }
    const agg = new TaskAggregation({ operatorSet: ops.set, taskId: result.taskId, quorumBps: 6667, deadline: NOW + 10_000 })
    for (const i of [0, 1, 2]) agg.add(attest(ops, i, result), NOW)
    return encodeQuorumCertificate(agg.buildCertificate(result.resultHash))
  }

  it('a certificate of an epoch the node cannot judge is ignored, not rejected; one whose set is read on demand is accepted', async () => {
    const next = makeOperators([32n, 32n, 32n, 32n], { epoch: 6n })
    const context = { settled: () => false, quorumBpsOf: () => undefined }
    const unknown = await checkCertificate(certificateOf(next, 'a'), { ...context, operatorSetOf: async () => undefined })
    assert.equal(unknown.verdict, 'ignore')
    const read = await checkCertificate(certificateOf(next, 'a'), { ...context, operatorSetOf: async (epoch) => epoch === 6n ? next.set : undefined })
    assert.equal(read.verdict, 'accept')
  })

  it('Epochs reads only epochs near the current one, each once at a time, and does not read a missing one again at once', async () => {
    const current = makeOperators([32n, 32n, 32n], { epoch: 5n }).set
    const next = makeOperators([32n, 32n, 32n], { epoch: 6n }).set
    const asked: bigint[] = []
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    const epochs = createEpochs({ blsPublicKey: new Uint8Array(48) }, {
      operatorSet: current,
      readSet: async (epoch) => {
        asked.push(epoch)
        await gate
        return epoch === 6n ? next : undefined
      }
    })
    // Far ahead or far behind: never read (a peer naming epochs cannot make the node read the chain).
    assert.equal(await epochs.resolveSet(5n + MAX_EPOCHS_AHEAD_READ + 1n), undefined)
    assert.equal(await epochs.resolveSet(5n - MAX_EPOCHS_BEHIND_READ - 1n), undefined)
    assert.deepEqual(asked, [])
    // The next epoch, asked for by two certificates at once: one read, and it is kept.
    const both = Promise.all([epochs.resolveSet(6n), epochs.resolveSet(6n)])
    // An epoch the chain does not have yet: read once, then not again within EPOCH_MISS_RETRY_MS.
    const missing = epochs.resolveSet(4n)
    release()
    assert.deepEqual(await both, [next, next])
    assert.equal(await missing, undefined)
    assert.equal(await epochs.resolveSet(4n), undefined)
    assert.equal(await epochs.resolveSet(6n), next)
    assert.deepEqual(asked, [6n, 4n])
    // Read, not adopted: the epoch watcher decides the current epoch.
    assert.equal(epochs.current.epoch, 5n)
  })
})
