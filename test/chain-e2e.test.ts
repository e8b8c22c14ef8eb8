import { strict as assert } from 'node:assert'
import { join } from 'node:path'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { createTestClient, createWalletClient, hexToBytes, http, keccak256 } from 'viem'
import { decodeSignerBitmap, signAttestation } from '../consensus/index.js'
import { privateKeyToAccount } from 'viem/accounts'
import { foundry } from 'viem/chains'
import { ANVIL_PRIVATE_KEYS, SlashingManagerAbi, TaskManagerAbi, deposit, readModel, registerModel, setModelActive } from '../contracts/index.js'
import { ChainClient } from '../node/chain-client.js'
import { resolveConfig } from '../node/config.js'
import { exampleInput, startLocalNetwork, type LocalNetwork } from '../node/cli/devnet.js'
import { encodeManifest, encodeTensorFile, loadModelDir, modelIdToString, SHIPPED_MODEL_DIR, type ModelDir } from '../node/inference/index.js'
import { npmModelSampleInput, resolveNpmModel, type ResolvedNpmModel } from '../node/fixtures/index.js'
import { loadKeystore, type Keystore } from '../node/keys.js'
import { ChildNode, prepareNodeDir, type PoiEvent } from '../node/cli/launcher.js'
import { claimableRewards } from '../node/cli/payment-commands.js'
import { PoiNode } from '../node/poi-node.js'
import { fetchOutput, requestInference } from '../node/requester/index.js'
import { MAX_INLINE_INPUT_BYTES, encodeAttestation, signTask, taskIdOf, to0xHex } from '../protocols/wire/index.js'
import { TOPICS } from '../protocols/gossip/index.js'
import { BlockStore, NodeStore } from '../storage/index.js'
import { importModel } from '../node/models/index.js'
import { poi, poiFails } from './helpers/cli.js'
import { directResultHash } from './helpers/direct-run.js'
import { ownedManifest } from './helpers/model-manifests.js'
import { until, waitForEvent } from './helpers/wait.js'
import { parsePromText, samples, total, type Family } from './helpers/prom-text.js'

/** A task's deadline on this network of separate processes. */
const TASK_TIMEOUT_MS = 20_000
/** From a certificate to its CertificateAccepted event: the aggregator's transaction, mined at once by anvil. */
const ACCEPTANCE_TIMEOUT_MS = 30_000
/** A model fetched through the DHT by every operator, in its own process. */
const PREFETCH_TIMEOUT_MS = 30_000
/** Gossip or a node's report that follows at once; generous for a loaded machine. */
const FOLLOW_UP_TIMEOUT_MS = 15_000
const ETHER = 10n ** 18n


/**
 * The whole network with a real anvil chain, each node its own process:
 * certificates settle on-chain, equivocators get slashed on evidence from
 * the aggregator, and an aggregator killed before it could post its
 * certificate posts it after a restart. The network and a light requester
 * are built once in `before`; every `it` passes alone (`--grep`).
 */
describe('end to end on a real chain (anvil)', function () {
  this.timeout(120_000)
  let root: string
  let net: LocalNetwork
  let model: ModelDir
  let requester: PoiNode
  let requesterKeys: Keystore
  /** A deposited keystore for `poi request` (its own peer id: the test's requester node is online). */
  let cliKeystore: string
  const nodes: PoiNode[] = []
  const extraChildren: ChildNode[] = []

  async function lightNode (name: string): Promise<PoiNode> {
    const dirs = await prepareNodeDir(root, name)
    const config = resolveConfig({ keystore: dirs.keystore, dataDir: dirs.dataDir, genesis: net.genesisPath, bootstrap: [net.bootstrapAddr], listen: [], chain: net.chain!.client.config })
    const node = await PoiNode.start({ operate: false, aggregate: false, light: true, keystore: dirs.keys, config, operatorSet: await net.chain!.client.operatorSet() })
    nodes.push(node)
    return node
  }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'poi-chain-e2e-'))
    model = await loadModelDir(SHIPPED_MODEL_DIR)
    // --http: GET /metrics is read for the chain series.
    net = await startLocalNetwork({ root, operators: 4, chain: true, nodeArgs: ['--http', '127.0.0.1:0'] })
    requester = await lightNode('requester')
    requesterKeys = await loadKeystore(join(root, 'requester', 'keys'))
    // Every task is paid, and full nodes ignore tasks whose requester's deposit does not cover the
    // fee: the test's requester and the one `poi request` runs as deposit first.
    const cliRequester = await prepareNodeDir(root, 'cli-requester')
    cliKeystore = cliRequester.keystore
    for (const account of [requesterKeys.account, cliRequester.keys.account]) {
      await net.chain!.fund(account.address, 10n * ETHER)
      const client = await ChainClient.connect(net.chain!.client.config, account)
      await deposit(client.walletClient!, client.publicClient, client.config.taskManager, ETHER)
    }
  })

  /** The least fee a task for `modelId` may offer: its owner's fee plus the network's minimum. */
  async function feeOf (modelId: Uint8Array): Promise<bigint> {
    const client = net.chain!.client
    const [registered, minTaskFee] = await Promise.all([
      readModel(client.publicClient, client.config.modelRegistry!, modelId),
      client.publicClient.readContract({ address: client.config.taskManager, abi: TaskManagerAbi, functionName: 'minTaskFee' })
    ])
    return (registered?.fee ?? 0n) + minTaskFee
  }

  after(async () => {
    await Promise.all(nodes.map(async n => await n.stop()))
    await Promise.all(extraChildren.map(async c => await c.stop()))
    await net?.stop()
    await rm(root, { recursive: true, force: true })
  })

  it('operators prefetch the model the ModelRegistry lists, before any task names it', async () => {
    // No task has been sent yet: a model event now can only come from the prefetch.
    for (const op of net.operators) {
      const fetched = await op.waitForEvent('model', () => true, PREFETCH_TIMEOUT_MS, 'model event (the prefetch of the shipped model)')
      assert.equal(fetched.modelId, modelIdToString(model.modelId))
      assert.equal(fetched.fromStore, false)
      assert.equal(op.events.some(e => e.event === 'task'), false)
    }
  })

  it('settles the certificate on-chain with the result the requester verified', async () => {
    const result = await requestInference(requester, requesterKeys.account, { modelId: model.modelId, input: exampleInput(), timeoutMs: TASK_TIMEOUT_MS, fee: await feeOf(model.modelId) })
    const accepted = await net.chain!.client.waitForAcceptance(result.taskId, ACCEPTANCE_TIMEOUT_MS)
    assert.equal(accepted.resultHash, to0xHex(result.certificate.resultHash))
    assert.equal(accepted.outputRef, to0xHex(result.certificate.outputRef))
    assert.equal(accepted.epoch, result.certificate.epoch)
    assert.ok(accepted.gasUsed > 0n)
    const stored = await net.chain!.client.result(result.taskId)
    assert.ok(stored != null)
    assert.equal(stored.resultHash, to0xHex(result.certificate.resultHash))
    // The chain holds only the reference: it resolves off-chain to the output the quorum signed.
    const output = await fetchOutput(requester, hexToBytes(stored.outputRef), hexToBytes(stored.resultHash))
    assert.equal(keccak256(output), stored.resultHash)
    assert.equal(to0xHex(output), to0xHex(result.output))
  })

  it('GET /metrics: the aggregator counts its confirmed certificate and the gas the chain reports; each signer\'s claimable rewards are what the chain says', async () => {
    const scrape = async (child: ChildNode): Promise<Map<string, Family>> => {
      const { http } = await child.ready()
      assert.ok(http != null, `${child.name} serves HTTP`)
      const res = await fetch(`${http}/metrics`)
      assert.equal(res.status, 200)
      return parsePromText(await res.text())
    }
    const confirmed = { kind: 'certificate', result: 'confirmed' }
    const before = await scrape(net.aggregator)
    const result = await requestInference(requester, requesterKeys.account, { modelId: model.modelId, input: exampleInput(3), timeoutMs: TASK_TIMEOUT_MS, fee: await feeOf(model.modelId) })
    const accepted = await net.chain!.client.waitForAcceptance(result.taskId, ACCEPTANCE_TIMEOUT_MS)
    let after = before
    await until(async () => {
      after = await scrape(net.aggregator)
      return total(after, 'poi_chain_submissions_total', confirmed) > total(before, 'poi_chain_submissions_total', confirmed)
    }, ACCEPTANCE_TIMEOUT_MS, 'the aggregator counting its confirmed certificate')
    assert.ok(total(after, 'poi_chain_gas_used_total') - total(before, 'poi_chain_gas_used_total') >= Number(accepted.gasUsed), 'the gas of the settled certificate is counted')
    assert.equal(total(after, 'poi_chain_submissions_total', { result: 'failed' }), 0)
    const decoded = decodeSignerBitmap(result.certificate.signerBitmap, net.operatorSet.operators.length)
    assert.ok(decoded.ok)
    let rewarded = 0
    for (const op of net.operators) {
      const { operatorIndex } = await op.ready()
      if (operatorIndex == null || !decoded.signers.includes(operatorIndex)) continue
      // The first scrape starts the read (never on the scrape path); a later one shows it: the chain's figure.
      const onChain = await claimableRewards(net.chain!.client, net.operatorSet.operators[operatorIndex].address)
      assert.ok(onChain > 0n, `operator ${operatorIndex} signed a paid certificate`)
      await until(async () => total(await scrape(op), 'poi_rewards_claimable') === Number(onChain), ACCEPTANCE_TIMEOUT_MS, `${op.name}'s poi_rewards_claimable showing ${onChain}`)
      rewarded++
    }
    assert.ok(rewarded >= 3, `the signers' rewards are shown: ${rewarded}`)
    assert.equal(samples(after, 'poi_rewards_claimable').length, 0, 'the aggregator is no operator: no rewards gauge')
  })

  it('poi request and poi result work with only a bootstrap address and an RPC URL', async () => {
    // No deployment file: the bootstrap node names the contracts, checked on the chain.
    const args = ['--bootstrap', net.bootstrapAddr, '--rpc', net.chain!.client.config.rpcUrl]
    const requested = await poi('request', ...args, '--keystore', cliKeystore, '--input', new TextDecoder().decode(exampleInput(21)), '--json')
    assert.match(requested.stderr, /TaskManager 0x[0-9a-fA-F]{40} \(named by the bootstrap node, checked on-chain\)/)
    const requestLine = JSON.parse(requested.stdout.trim()) as { taskId: `0x${string}`, resultHash: string, signers: number[], modelId: string, fee: string }
    assert.ok(requestLine.signers.length >= 3)
    const taskId = hexToBytes(requestLine.taskId)
    await net.chain!.client.waitForAcceptance(taskId, ACCEPTANCE_TIMEOUT_MS)
    // Pinning the registry: the right one passes, another is refused before anything else.
    const shown = await poi('result', requestLine.taskId, ...args, '--registry', net.chain!.client.config.registry, '--json')
    const pinnedWrong = await poiFails('result', requestLine.taskId, ...args, '--registry', `0x${'12'.repeat(20)}`)
    assert.equal(pinnedWrong.code, 1)
    assert.match(pinnedWrong.stderr, /not the 0x1212\S* given with --registry/)
    const line = JSON.parse(shown.stdout.trim()) as { resultHash: string, output: string, signers: number[], modelId: string | null, fee?: string, onChain: { resultHash: string, txHash?: string } | null }
    assert.equal(line.resultHash, requestLine.resultHash)
    assert.equal(keccak256(line.output as `0x${string}`), line.resultHash)
    assert.ok(line.signers.length >= 3)
    assert.equal(line.onChain?.resultHash, requestLine.resultHash)
    // The task's model and fee, read from the transaction that settled it, as poi request printed them.
    assert.equal(line.modelId, requestLine.modelId)
    assert.equal(line.fee, requestLine.fee)
    assert.equal(line.onChain?.txHash, (await net.chain!.client.waitForAcceptance(taskId, 0)).txHash)
    const unknown = await poiFails('result', to0xHex(new Uint8Array(32).fill(0xab)), ...args)
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /no connected full node has a certificate/)
  })

  it('tasks for a model the ModelRegistry does not allow are dropped with its reason, never run', async () => {
    const client = net.chain!.client
    const registry = client.config.modelRegistry!
    const owner = createWalletClient({ chain: foundry, transport: http(client.config.rpcUrl), account: privateKeyToAccount(ANVIL_PRIVATE_KEYS[0]) })
    const unregistered = (await ownedManifest(owner.account.address, 'unregistered')).modelId
    const deactivatedModel = await ownedManifest(owner.account.address, 'deactivated')
    const deactivated = deactivatedModel.modelId
    await registerModel(owner, client.publicClient, registry, deactivated, deactivatedModel.block, 0n)
    await setModelActive(owner, client.publicClient, registry, deactivated, false)
    const allowlistedModel = await ownedManifest(owner.account.address, 'allowlisted')
    const allowlisted = allowlistedModel.modelId
    await registerModel(owner, client.publicClient, registry, allowlisted, allowlistedModel.block, 0n, 'allowlist')
    const children = [net.bootstrap, net.aggregator, ...net.operators]
    const cases: Array<[Uint8Array, string]> = [[unregistered, 'is not registered'], [deactivated, 'is deactivated'], [allowlisted, 'not on the allowlist']]
    const taskIds: string[] = []
    for (const [modelId, why] of cases) {
      const task = await signTask(requesterKeys.account, client.config.taskManager, {
        chainId: net.operatorSet.domain.chainId, modelId, input: exampleInput(), fee: await feeOf(modelId), deadline: BigInt(Date.now() + TASK_TIMEOUT_MS), quorumBps: 6667, nonce: BigInt(taskIds.length + 1000)
      })
      const id = to0xHex(taskIdOf(task, client.config.taskManager)).slice(2)
      taskIds.push(id)
      await requester.announce(task)
      // The first full node that gets it drops it: it never travels further.
      const dropped = (): boolean => children.some(c => c.events.some(e => e.event === 'rejected' && String(e.reason).includes(id) && String(e.reason).includes(why)))
      await until(dropped, FOLLOW_UP_TIMEOUT_MS, `a node dropping task 0x${id} because its model ${why}`)
    }
    for (const op of net.operators) {
      assert.equal(op.events.some(e => e.event === 'attested' && taskIds.includes(String(e.taskId).toLowerCase().slice(2))), false)
    }
    // poi request reads the registry itself and says why, instead of waiting for NoQuorum.
    const cli = await poiFails('request', '--chain', net.chain!.deploymentPath, '--bootstrap', net.bootstrapAddr,
      '--model', modelIdToString(unregistered), '--input', new TextDecoder().decode(exampleInput()))
    assert.equal(cli.code, 1)
    assert.match(cli.stderr, /will not run this task: model 0x[0-9a-f]+ is not registered/)
  })

  /** The PaddleOCR classifier: put in a fresh full node's store (which announces it) and registered in the ModelRegistry, once. */
  let ocrModel: Promise<ResolvedNpmModel> | undefined
  async function registeredOcrModel (): Promise<ResolvedNpmModel> {
    ocrModel ??= (async () => {
      const client = net.chain!.client
      const cls = await resolveNpmModel('ppocr-cls')
      const dirs = await prepareNodeDir(root, 'ocr-publisher')
      const store = await NodeStore.open(dirs.dataDir)
      try {
        await importModel(BlockStore.of(store), cls.manifest, cls.modelBytes)
      } finally {
        await store.close()
      }
      nodes.push(await PoiNode.start({
        operate: false, aggregate: false, light: false, keystore: dirs.keys, operatorSet: await client.operatorSet(),
        config: resolveConfig({ keystore: dirs.keystore, dataDir: dirs.dataDir, genesis: net.genesisPath, bootstrap: [net.bootstrapAddr], chain: client.config, modelDirs: [] })
      }))
      const owner = createWalletClient({ chain: foundry, transport: http(client.config.rpcUrl), account: privateKeyToAccount(ANVIL_PRIVATE_KEYS[0]) })
      await registerModel(owner, client.publicClient, client.config.modelRegistry!, cls.modelId, encodeManifest(cls.manifest), 0n)
      return cls
    })()
    return await ocrModel
  }

  it('a model registered while the operators run is prefetched; its task, with an input by stream reference, settles and the on-chain outputRef resolves', async () => {
    const client = net.chain!.client
    const cls = await registeredOcrModel()
    const id = modelIdToString(cls.modelId)
    await Promise.all(net.operators.map(async op => await op.waitForEvent('model', e => e.modelId === id, PREFETCH_TIMEOUT_MS, `model event for the prefetch of ${id}`)))
    // No task named the model before every operator had it.
    assert.ok(net.operators.every(op => !op.events.some(e => e.event === 'failed')))

    const sample = npmModelSampleInput('ppocr-cls')
    const input = encodeTensorFile(sample)
    assert.ok(input.length > MAX_INLINE_INPUT_BYTES)
    const result = await requestInference(requester, requesterKeys.account, { modelId: cls.modelId, input, timeoutMs: TASK_TIMEOUT_MS, fee: await feeOf(cls.modelId) })
    assert.equal(to0xHex(result.certificate.resultHash), `0x${await directResultHash(cls, sample)}`)
    const accepted = await client.waitForAcceptance(result.taskId, ACCEPTANCE_TIMEOUT_MS)
    const output = await fetchOutput(requester, hexToBytes(accepted.outputRef), hexToBytes(accepted.resultHash))
    assert.equal(keccak256(output), accepted.resultHash)
  })

  it('poi request with a registered model named only by id fetches its manifest through the DHT, checks the input and gets the result of a direct run', async () => {
    const cls = await registeredOcrModel()
    const sample = npmModelSampleInput('ppocr-cls')
    const input = encodeTensorFile(sample)
    const args = ['request', '--bootstrap', net.bootstrapAddr, '--rpc', net.chain!.client.config.rpcUrl, '--keystore', cliKeystore, '--model', modelIdToString(cls.modelId)]
    const samplePath = join(root, 'ocr-sample.poit')
    await writeFile(samplePath, input)
    const viaCli = await poi(...args, '--input', `@${samplePath}`)
    assert.match(viaCli.stderr, /looking up the manifest of model/)
    assert.match(viaCli.stderr, /input of 110620 bytes goes by stream reference/)
    assert.ok(viaCli.stdout.includes(`result hash 0x${await directResultHash(cls, sample)}`), viaCli.stdout)
    const wrong = await poiFails(...args, '--input', new TextDecoder().decode(exampleInput()))
    assert.equal(wrong.code, 1)
    assert.match(wrong.stderr, /--input does not match model ppocr-mobile-v2-cls/)
  })

  it('slashes an operator that equivocates, on evidence the aggregator submits', async () => {
    const client = net.chain!.client
    const cheatKeys = await loadKeystore(join(root, 'operator-3', 'keys'))
    const set = await client.operatorSet()
    const stakeBefore = await client.liveStake(set.operators[3].address)
    // A full node that holds operator 3's keys and signs two results for the next task.
    const dirs = await prepareNodeDir(root, 'cheat')
    const cheat = await PoiNode.start({
      // its own peer identity (operator 3 itself is online), operator 3's signing key
      operate: false, aggregate: false, light: false, keystore: { ...dirs.keys, blsSecretKey: cheatKeys.blsSecretKey, blsPublicKey: cheatKeys.blsPublicKey },
      config: resolveConfig({ keystore: dirs.keystore, dataDir: dirs.dataDir, genesis: net.genesisPath, bootstrap: [net.bootstrapAddr], chain: client.config }),
      operatorSet: set
    })
    nodes.push(cheat)
    await until(() => cheat.meshPeers('tasks') > 0 && cheat.meshPeers('attestations') > 0, FOLLOW_UP_TIMEOUT_MS, 'the cheating node joining the tasks and attestations meshes')
    const taskSeen = waitForEvent(cheat, 'task', { timeoutMs: FOLLOW_UP_TIMEOUT_MS, what: 'task reaching the cheating node' })
    const request = requestInference(requester, requesterKeys.account, { modelId: model.modelId, input: exampleInput(5), timeoutMs: TASK_TIMEOUT_MS, fee: await feeOf(model.modelId) })
    request.catch(() => {}) // awaited below; until then a failing wait reports first
    const { taskId } = await taskSeen
    for (const text of ['answer A', 'answer B']) {
      const output = new TextEncoder().encode(text)
      const resultHash = keccak256(output, 'bytes')
      const att = signAttestation(cheatKeys.blsSecretKey, set.domain, { taskId, resultHash, outputRef: resultHash, epoch: set.epoch, operatorIndex: 3, output })
      await cheat.libp2p.services.pubsub.publish(TOPICS.attestations, encodeAttestation(att))
    }
    await request
    await until(async () => await client.publicClient.readContract({ address: client.config.slashing, abi: SlashingManagerAbi, functionName: 'slashed', args: [set.operators[3].address, to0xHex(taskId)] }),
      ACCEPTANCE_TIMEOUT_MS, `operator 3 slashed on-chain for task ${to0xHex(taskId)}`)
    assert.ok(await client.liveStake(set.operators[3].address) < stakeBefore, 'live stake did not go down')
    // The chain can show the slash before the aggregator's own report of it arrives.
    await net.aggregator.waitFor(e => e.event === 'submitted' && e.kind === 'evidence', FOLLOW_UP_TIMEOUT_MS, 'submitted event for the evidence')
  })

  it('two aggregators race: one certificate lands, the other notices and stands down', async () => {
    const client = net.chain!.client
    const dirs = await prepareNodeDir(root, 'aggregator-2')
    const funder = createWalletClient({ chain: foundry, transport: http(client.config.rpcUrl), account: privateKeyToAccount(ANVIL_PRIVATE_KEYS[1]) })
    await client.publicClient.waitForTransactionReceipt({ hash: await funder.sendTransaction({ to: dirs.keys.account.address, value: 10n ** 20n }) })
    const second = new ChildNode('aggregator-2', ['aggregator', '--keystore', dirs.keystore, '--data-dir', dirs.dataDir, '--chain', net.chain!.deploymentPath,
      '--listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', net.bootstrapAddr], join(root, 'aggregator-2.log'))
    extraChildren.push(second)
    try {
      await second.ready()
      await second.waitFor(e => e.event === 'mesh' && (e.attestations as number) > 0 && (e.certificates as number) > 0, FOLLOW_UP_TIMEOUT_MS, 'mesh event with attestations and certificates peers')
      const result = await requestInference(requester, requesterKeys.account, { modelId: model.modelId, input: exampleInput(7), timeoutMs: TASK_TIMEOUT_MS, fee: await feeOf(model.modelId) })
      const id = to0xHex(result.taskId).slice(2)
      await client.waitForAcceptance(result.taskId, ACCEPTANCE_TIMEOUT_MS)
      const settled = async (c: ChildNode): Promise<PoiEvent> =>
        await c.waitFor(e => (e.event === 'submitted' || e.event === 'submission-settled-by-other') && e.id === id, ACCEPTANCE_TIMEOUT_MS, `submitted or submission-settled-by-other event for task 0x${id}`)
      const outcomes = await Promise.all([settled(net.aggregator), settled(second)])
      assert.deepEqual(outcomes.map(o => o.event).sort(), ['submission-settled-by-other', 'submitted'], JSON.stringify(outcomes))
      // The one that stood down names the other's transaction, the one that settled the task.
      const posted = outcomes.find(o => o.event === 'submitted')
      const other = outcomes.find(o => o.event === 'submission-settled-by-other')
      assert.ok(posted?.event === 'submitted' && other?.event === 'submission-settled-by-other')
      assert.equal(other.txHash, posted.txHash)
    } finally {
      // Other tests count on one aggregator forming and posting its own certificates.
      await second.stop()
    }
  })

  it('an aggregator killed before posting its certificate posts it after a restart', async () => {
    const client = net.chain!.client
    // Stop mining: the aggregator forms the certificate and sends its transaction, which stays
    // pending. Reads still work, so every node keeps checking tasks against the ModelRegistry.
    const chainControl = createTestClient({ chain: foundry, mode: 'anvil', transport: http(client.config.rpcUrl) })
    await chainControl.setAutomine(false)
    let mining = false
    try {
      const result = await requestInference(requester, requesterKeys.account, { modelId: model.modelId, input: exampleInput(9), timeoutMs: TASK_TIMEOUT_MS, fee: await feeOf(model.modelId) })
      const id = to0xHex(result.taskId)
      await net.aggregator.waitForEvent('certificate', e => e.taskId === id, FOLLOW_UP_TIMEOUT_MS, `certificate event for task ${id}`)
      net.aggregator.proc.kill('SIGKILL')
      await net.aggregator.exited
      // What the crash left: the certificate and its pending submission. The transaction it may
      // have sent dies with it, as it would in a mempool that never saw it.
      const store = await NodeStore.open(join(root, 'aggregator', 'data'))
      try {
        const pending = await store.listPendingSubmissions('certificate')
        assert.ok(pending.some(p => `0x${p.id}` === id), 'no pending submission stored for the certificate')
      } finally {
        await store.close()
      }
      const { pending } = await chainControl.getTxpoolContent()
      for (const byNonce of Object.values(pending)) {
        for (const tx of Object.values(byNonce)) await chainControl.dropTransaction({ hash: tx.hash })
      }
      await chainControl.setAutomine(true)
      mining = true
      assert.equal(await client.result(result.taskId), undefined, 'the certificate reached the chain before the kill')
      const restarted = new ChildNode('aggregator-restarted', net.aggregator.args, join(root, 'aggregator-restarted.log'))
      extraChildren.push(restarted)
      await restarted.ready()
      const accepted = await client.waitForAcceptance(result.taskId, ACCEPTANCE_TIMEOUT_MS)
      assert.equal(accepted.resultHash, to0xHex(result.certificate.resultHash))
    } finally {
      if (!mining) await chainControl.setAutomine(true)
    }
  })
})
