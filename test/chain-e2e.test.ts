import { strict as assert } from 'node:assert'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CID } from 'multiformats/cid'
import * as json from 'multiformats/codecs/json'
import { sha256 } from 'multiformats/hashes/sha2'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { bytesToHex, hexToBytes, keccak256, createWalletClient, http } from 'viem'
import { signAttestation } from '../consensus/index.js'
import { privateKeyToAccount } from 'viem/accounts'
import { foundry } from 'viem/chains'
import { ANVIL_PRIVATE_KEYS, SlashingManagerAbi, registerModel, setModelActive } from '../contracts/index.js'
import { resolveConfig } from '../node/config.js'
import { exampleInput, startLocalNetwork, type LocalNetwork } from '../node/cli/devnet.js'
import { encodeTensorFile, loadModelDir, modelIdToString, SHIPPED_MODEL_DIR, type ModelDir } from '../node/inference/index.js'
import { npmModelSampleInput, resolveNpmModel } from '../node/fixtures/index.js'
import { loadKeystore, type Keystore } from '../node/keys.js'
import { ChildNode, prepareNodeDir } from '../node/cli/launcher.js'
import { PoiNode } from '../node/poi-node.js'
import { fetchOutput, requestInference, waitForNetwork } from '../node/requester/requester.js'
import { MAX_INLINE_INPUT_BYTES, encodeAttestation, signTask, taskIdOf } from '../protocols/wire/index.js'
import { TOPICS } from '../protocols/gossip/index.js'
import { BlockStore, NodeStore } from '../storage/index.js'
import { importModel } from '../node/models/index.js'
import { directResultHash } from './helpers/direct-run.js'

const hex = (b: Uint8Array): `0x${string}` => bytesToHex(b)

const execFileAsync = promisify(execFile)
const CLI = join(dirname(fileURLToPath(import.meta.url)), '../node/cli/main.js')

/** Runs `poi <args>` and returns its output. */
async function poi (...args: string[]): Promise<{ stdout: string, stderr: string }> {
  return await execFileAsync(process.execPath, [CLI, ...args])
}

/** Runs `poi <args>`, which must fail: returns its exit code and stderr. */
async function poiFails (...args: string[]): Promise<{ code: number, stderr: string }> {
  const failed = await poi(...args).then(() => undefined, (err: { code: number, stderr: string }) => err)
  assert.ok(failed != null, `poi ${args.join(' ')} succeeded`)
  return failed
}

let fresh = 0
/** A model id (CIDv1, json codec, sha2-256) that nobody has registered or published. */
async function newModelId (): Promise<Uint8Array> {
  return CID.create(1, json.code, await sha256.digest(json.encode({ name: 'unregistered', n: fresh++ }))).bytes
}

/**
 * The whole network with a real anvil chain, each node its own process:
 * certificates settle on-chain, equivocators get slashed on evidence from
 * the aggregator, and an aggregator killed before it could post its
 * certificate posts it after a restart.
 */
describe('end to end on a real chain (anvil)', function () {
  this.timeout(120_000)
  let root: string
  let net: LocalNetwork
  let model: ModelDir
  let requesterKeys: Keystore
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
    net = await startLocalNetwork({ root, operators: 4, chain: true })
  })

  after(async () => {
    await Promise.all(nodes.map(async n => await n.stop()))
    await Promise.all(extraChildren.map(async c => await c.stop()))
    await net?.stop()
    await rm(root, { recursive: true, force: true })
  })

  it('operators prefetch the model the ModelRegistry lists, before any task names it', async () => {
    // No task has been sent yet: a model event now can only come from the prefetch.
    for (const op of net.operators) {
      const fetched = await op.waitFor(e => e.event === 'model', 30_000, 'the prefetched model')
      assert.equal(fetched.modelId, modelIdToString(model.modelId))
      assert.equal(fetched.fromStore, false)
      assert.equal(op.events.some(e => e.event === 'task'), false)
    }
  })

  it('settles the certificate on-chain with the result the requester verified', async () => {
    const requester = await lightNode('requester')
    requesterKeys = (await loadKeystore(join(root, 'requester', 'keys')))
    await waitForNetwork(requester)
    const result = await requestInference(requester, requesterKeys.account, { modelId: model.modelId, input: exampleInput(), timeoutMs: 20_000 })
    const accepted = await net.chain!.client.waitForAcceptance(result.taskId, 30_000)
    assert.equal(accepted.resultHash, hex(result.certificate.resultHash))
    assert.equal(accepted.outputRef, hex(result.certificate.outputRef))
    assert.equal(accepted.epoch, result.certificate.epoch)
    assert.ok(accepted.gasUsed > 0n)
    const stored = await net.chain!.client.result(result.taskId)
    assert.ok(stored != null)
    assert.equal(stored.resultHash, hex(result.certificate.resultHash))
    // The chain holds only the reference: it resolves off-chain to the output the quorum signed.
    const output = await fetchOutput(requester, hexToBytes(stored.outputRef), hexToBytes(stored.resultHash))
    assert.equal(keccak256(output), stored.resultHash)
    assert.equal(hex(output), hex(result.output))
  })

  it('poi request and poi result work with only a bootstrap address and an RPC URL', async () => {
    // No deployment file: the bootstrap node names the contracts, checked on the chain.
    const args = ['--bootstrap', net.bootstrapAddr, '--rpc', net.chain!.client.config.rpcUrl]
    const requested = await poi('request', ...args, '--input', new TextDecoder().decode(exampleInput(21)), '--json')
    assert.match(requested.stderr, /TaskManager 0x[0-9a-fA-F]{40} \(named by the bootstrap node, checked on-chain\)/)
    const requestLine = JSON.parse(requested.stdout.trim()) as { taskId: `0x${string}`, resultHash: string, signers: number[] }
    assert.ok(requestLine.signers.length >= 3)
    const taskId = hexToBytes(requestLine.taskId)
    await net.chain!.client.waitForAcceptance(taskId, 30_000)
    // Pinning the registry: the right one passes, another is refused before anything else.
    const shown = await poi('result', requestLine.taskId, ...args, '--registry', net.chain!.client.config.registry, '--json')
    const pinnedWrong = await poiFails('result', requestLine.taskId, ...args, '--registry', `0x${'12'.repeat(20)}`)
    assert.equal(pinnedWrong.code, 1)
    assert.match(pinnedWrong.stderr, /not the 0x1212\S* given with --registry/)
    const line = JSON.parse(shown.stdout.trim()) as { resultHash: string, output: string, signers: number[], onChain: { resultHash: string } | null }
    assert.equal(line.resultHash, requestLine.resultHash)
    assert.equal(keccak256(line.output as `0x${string}`), line.resultHash)
    assert.ok(line.signers.length >= 3)
    assert.equal(line.onChain?.resultHash, requestLine.resultHash)
    const unknown = await poiFails('result', hex(new Uint8Array(32).fill(0xab)), ...args)
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /no connected full node has a certificate/)
  })

  it('tasks for a model the ModelRegistry does not allow are dropped with its reason, never run', async () => {
    const client = net.chain!.client
    const registry = client.config.modelRegistry!
    const owner = createWalletClient({ chain: foundry, transport: http(client.config.rpcUrl), account: privateKeyToAccount(ANVIL_PRIVATE_KEYS[0]) })
    const unregistered = await newModelId()
    const deactivated = await newModelId()
    await registerModel(owner, client.publicClient, registry, deactivated, 0n)
    await setModelActive(owner, client.publicClient, registry, deactivated, false)
    const allowlisted = await newModelId()
    await registerModel(owner, client.publicClient, registry, allowlisted, 0n, 'allowlist')
    const requester = nodes[0]
    const children = [net.bootstrap, net.aggregator, ...net.operators]
    const cases: Array<[Uint8Array, string]> = [[unregistered, 'is not registered'], [deactivated, 'is deactivated'], [allowlisted, 'not on the allowlist']]
    const taskIds: string[] = []
    for (const [modelId, why] of cases) {
      const task = await signTask(requesterKeys.account, client.config.taskManager, {
        chainId: net.operatorSet.domain.chainId, modelId, input: exampleInput(), fee: 0n, deadline: BigInt(Date.now() + 20_000), quorumBps: 6667, nonce: BigInt(taskIds.length + 1000)
      })
      const id = hex(taskIdOf(task)).slice(2)
      taskIds.push(id)
      await requester.announce(task)
      // The first full node that gets it drops it: it never travels further.
      const end = Date.now() + 15_000
      const dropped = (): boolean => children.some(c => c.events.some(e => e.event === 'rejected' && String(e.reason).includes(id) && String(e.reason).includes(why)))
      while (!dropped() && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 100))
      assert.ok(dropped(), `no node dropped the task for ${why}`)
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

  it('a model registered while the operators run is prefetched; its task, with an input by stream reference, settles and the on-chain outputRef resolves', async () => {
    const client = net.chain!.client
    const cls = await resolveNpmModel('ppocr-cls')
    const dirs = await prepareNodeDir(root, 'ocr-publisher')
    const store = await NodeStore.open(dirs.dataDir)
    try {
      await importModel(BlockStore.of(store), cls.manifest, cls.modelBytes)
    } finally {
      await store.close()
    }
    const publisher = await PoiNode.start({
      operate: false, aggregate: false, light: false, keystore: dirs.keys, operatorSet: await client.operatorSet(),
      config: resolveConfig({ keystore: dirs.keystore, dataDir: dirs.dataDir, genesis: net.genesisPath, bootstrap: [net.bootstrapAddr], chain: client.config, modelDirs: [] })
    })
    nodes.push(publisher)
    const owner = createWalletClient({ chain: foundry, transport: http(client.config.rpcUrl), account: privateKeyToAccount(ANVIL_PRIVATE_KEYS[0]) })
    await registerModel(owner, client.publicClient, client.config.modelRegistry!, cls.modelId, 0n)
    const id = modelIdToString(cls.modelId)
    for (const op of net.operators) await op.waitFor(e => e.event === 'model' && e.modelId === id, 30_000, `prefetch of ${id}`)
    // No task named the model before every operator had it.
    assert.ok(net.operators.every(op => !op.events.some(e => e.event === 'failed')))

    const sample = npmModelSampleInput('ppocr-cls')
    const input = encodeTensorFile(sample)
    assert.ok(input.length > MAX_INLINE_INPUT_BYTES)
    const result = await requestInference(nodes[0], requesterKeys.account, { modelId: cls.modelId, input, timeoutMs: 20_000 })
    assert.equal(hex(result.certificate.resultHash), `0x${await directResultHash(cls, sample)}`)
    const accepted = await client.waitForAcceptance(result.taskId, 30_000)
    const output = await fetchOutput(nodes[0], hexToBytes(accepted.outputRef), hexToBytes(accepted.resultHash))
    assert.equal(keccak256(output), accepted.resultHash)

    // The same through the CLI, with the model named only by id: the requester fetches its
    // manifest through the DHT and checks the input before announcing anything.
    const args = ['request', '--bootstrap', net.bootstrapAddr, '--rpc', client.config.rpcUrl, '--model', id]
    const samplePath = join(root, 'ocr-sample.poit')
    await writeFile(samplePath, input)
    const viaCli = await poi(...args, '--input', `@${samplePath}`)
    assert.match(viaCli.stderr, /looking up the manifest of model/)
    assert.match(viaCli.stderr, /input of 110620 bytes goes by stream reference/)
    assert.ok(viaCli.stdout.includes(`result hash ${hex(result.certificate.resultHash)}`), viaCli.stdout)
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
    const meshEnd = Date.now() + 20_000
    while (!(cheat.meshPeers('tasks') > 0 && cheat.meshPeers('attestations') > 0) && Date.now() < meshEnd) await new Promise(resolve => setTimeout(resolve, 50))
    assert.ok(cheat.meshPeers('tasks') > 0 && cheat.meshPeers('attestations') > 0, 'the cheating node never joined the gossip meshes')
    const taskSeen = new Promise<Uint8Array>(resolve => cheat.addEventListener('task', (e) => resolve(e.detail.taskId), { once: true }))
    const requester = nodes[0]
    const request = requestInference(requester, requesterKeys.account, { modelId: model.modelId, input: exampleInput(5), timeoutMs: 20_000 })
    const taskId = await taskSeen
    for (const text of ['answer A', 'answer B']) {
      const output = new TextEncoder().encode(text)
      const resultHash = keccak256(output, 'bytes')
      const att = signAttestation(cheatKeys.blsSecretKey, set.domain, { taskId, resultHash, outputRef: resultHash, epoch: set.epoch, operatorIndex: 3, output })
      await cheat.libp2p.services.pubsub.publish(TOPICS.attestations, encodeAttestation(att))
    }
    await request
    const end = Date.now() + 30_000
    let slashed = false
    while (!slashed && Date.now() < end) {
      slashed = await client.publicClient.readContract({ address: client.config.slashing, abi: SlashingManagerAbi, functionName: 'slashed', args: [set.operators[3].address, hex(taskId)] })
      if (!slashed) await new Promise(resolve => setTimeout(resolve, 200))
    }
    assert.ok(slashed, 'operator 3 was not slashed within 30 s')
    assert.ok(await client.liveStake(set.operators[3].address) < stakeBefore, 'live stake did not go down')
    // The chain can show the slash before the aggregator's own report of it arrives.
    await net.aggregator.waitFor(e => e.event === 'submitted' && e.kind === 'evidence', 10_000, 'report of the submitted evidence')
  })

  it('two aggregators race: one certificate lands, the other notices and stands down', async () => {
    const client = net.chain!.client
    const dirs = await prepareNodeDir(root, 'aggregator-2')
    const funder = createWalletClient({ chain: foundry, transport: http(client.config.rpcUrl), account: privateKeyToAccount(ANVIL_PRIVATE_KEYS[1]) })
    await client.publicClient.waitForTransactionReceipt({ hash: await funder.sendTransaction({ to: dirs.keys.account.address, value: 10n ** 20n }) })
    const second = new ChildNode('aggregator-2', ['aggregator', '--keystore', dirs.keystore, '--data-dir', dirs.dataDir, '--chain', net.chain!.deploymentPath,
      '--listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', net.bootstrapAddr], join(root, 'aggregator-2.log'))
    extraChildren.push(second)
    await second.ready()
    await second.waitFor(e => e.event === 'mesh' && (e.attestations as number) > 0 && (e.certificates as number) > 0, 20_000, 'gossip mesh')
    const result = await requestInference(nodes[0], requesterKeys.account, { modelId: model.modelId, input: exampleInput(7), timeoutMs: 20_000 })
    const id = hex(result.taskId).slice(2)
    await client.waitForAcceptance(result.taskId, 30_000)
    const settled = (c: ChildNode) => async () => await c.waitFor(e => (e.event === 'submitted' || e.event === 'submission-moot') && e.id === id, 30_000, 'settlement outcome')
    const outcomes = await Promise.all([settled(net.aggregator)(), settled(second)()])
    assert.deepEqual(outcomes.map(o => o.event).sort(), ['submission-moot', 'submitted'], JSON.stringify(outcomes))
    // The next test needs the first aggregator to form its own certificate.
    await second.stop()
  })

  it('an aggregator killed before posting its certificate posts it after a restart', async () => {
    const client = net.chain!.client
    const requester = nodes[0]
    // Freeze the chain: the aggregator forms the certificate, but its transaction cannot go out.
    net.chain!.anvil.process.kill('SIGSTOP')
    let resumed = false
    try {
      const result = await requestInference(requester, requesterKeys.account, { modelId: model.modelId, input: exampleInput(9), timeoutMs: 20_000 })
      const id = hex(result.taskId)
      await net.aggregator.waitFor(e => e.event === 'certificate' && e.taskId === id, 10_000, 'certificate event')
      net.aggregator.proc.kill('SIGKILL')
      await net.aggregator.exited
      // What the crash left: the certificate and its pending submission.
      const store = await NodeStore.open(join(root, 'aggregator', 'data'))
      try {
        const pending = await store.listPendingSubmissions('certificate')
        assert.ok(pending.some(p => `0x${p.id}` === id), 'no pending submission stored for the certificate')
      } finally {
        await store.close()
      }
      net.chain!.anvil.process.kill('SIGCONT')
      resumed = true
      assert.equal(await client.result(result.taskId), undefined, 'the certificate reached the chain before the kill')
      const restarted = new ChildNode('aggregator-restarted', [...net.aggregator.proc.spawnargs.slice(2).filter(a => a !== '--json')], join(root, 'aggregator-restarted.log'))
      extraChildren.push(restarted)
      await restarted.ready()
      const accepted = await client.waitForAcceptance(result.taskId, 30_000)
      assert.equal(accepted.resultHash, hex(result.certificate.resultHash))
    } finally {
      if (!resumed) net.chain!.anvil.process.kill('SIGCONT')
    }
  })
})
