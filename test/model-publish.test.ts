/**
 * Publishing to a running node, atomically (issue 11 item 6): `poi model publish --data-dir <d>`
 * goes through the node running on <d> (its control socket) and the model is announced at once;
 * a node's ready line lists every model it announces, its store's too; a socket left by a killed
 * node is replaced; with a chain, a registration that cannot be paid leaves nothing behind, and a
 * store failing after a registration is finished by a rerun without a second registration.
 * Real parts: in-process libp2p nodes, the CLI in child processes, anvil with the contracts.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { copyFile, mkdtemp, readFile, rm, stat, unlink } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseEther } from 'viem'
import { createOperatorSet, signProofOfPossession, writeGenesis } from '../consensus/index.js'
import { listModelIds, readModel, transferModelOwnership } from '../contracts/index.js'
import { ControlClient, MAX_CONTROL_REQUEST_BYTES, controlSocketPath, parseControlReply, type ControlReply } from '../node/api/index.js'
import { ChildNode, prepareNodeDir } from '../node/cli/launcher.js'
import { PublishError, publishModelFile } from '../node/cli/model-commands.js'
import { exampleInput } from '../node/cli/devnet.js'
import { parseEvent, type EventOf } from '../node/cli/events.js'
import { resolveConfig } from '../node/config.js'
import { writeDeployment } from '../node/deployment.js'
import { MODEL_FILE, SHIPPED_MODEL_DIR, attachZkArtifacts, loadModelDir, modelIdOf, modelIdToString, parseModelId } from '../node/inference/index.js'
import { loadKeystore } from '../node/keys.js'
import { hasModel, listModels, loadModel } from '../node/models/index.js'
import { PoiNode } from '../node/poi-node.js'
import { requestInference } from '../node/requester/index.js'
import { bytesEqual, toHex } from '../protocols/wire/index.js'
import { BlockStore, NodeStore } from '../storage/index.js'
import { runPoi } from './helpers/cli.js'
import { directResultHash, tensorsOfJsonInput } from './helpers/direct-run.js'
import { freshKeysAsync } from './helpers/keys.js'
import { startTestNetwork, TEST_CHAIN_ID, TEST_TASK_MANAGER, type TestNetwork } from './helpers/network.js'
import { startPoiChain, walletFor, type PoiChain } from './helpers/poi-chain.js'
import { until } from './helpers/wait.js'
import { writeModelDir, zkTestModel } from './helpers/zk-model-files.js'

const MODEL = join(SHIPPED_MODEL_DIR, MODEL_FILE)
/** A CLI run loads onnxruntime and viem: several seconds on a loaded 2-core machine. */
const CLI_TIMEOUT_MS = 60_000
/** Operators find the model through the DHT, fetch it and run it. */
const FETCHING_TASK_TIMEOUT_MS = 40_000
const READY_TIMEOUT_MS = 40_000

type Published = EventOf<'published'>

/** Sends raw bytes to a control socket and collects the reply lines until the node closes. */
async function rawControl (path: string, bytes: string): Promise<ControlReply[]> {
  return await new Promise((resolve, reject) => {
    const socket = createConnection(path)
    let text = ''
    socket.on('data', (d: Buffer) => { text += d.toString() })
    // The node may close while an oversized request is still being written: its reply came first.
    socket.on('error', (err: NodeJS.ErrnoException) => { if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err) })
    socket.on('close', () => { resolve(text.trim().split('\n').filter(l => l !== '').map(parseControlReply)) })
    socket.write(bytes)
  })
}

/** The last `published` line of a `poi model publish --json` run that must succeed. */
async function publish (home: string, ...args: string[]): Promise<Published> {
  const r = await runPoi(home, CLI_TIMEOUT_MS, 'model', 'publish', ...args, '--json')
  assert.equal(r.code, 0, `poi model publish failed:\n${r.stderr}`)
  const line = parseEvent(r.stdout.trim().split('\n').at(-1) ?? '')
  assert.equal(line.event, 'published')
  return line as Published
}

describe('poi model publish to a running node', function () {
  this.timeout(120_000)
  let net: TestNetwork
  let publisher: PoiNode
  let publisherData: string

  before(async () => {
    net = await startTestNetwork({ operators: 3, operatorsWithoutModels: true })
    publisher = await net.extraNode(await freshKeysAsync(), 'publisher')
    publisherData = join(net.root, 'publisher', 'data')
    await until(() => publisher.meshPeers('tasks') > 0, 20_000, 'the publisher joining the tasks mesh')
  })
  after(async () => { await net?.stop() })

  it('goes through the node (no LevelDB lock), which announces it at once; operators fetch and run it without a restart', async () => {
    const line = await publish(net.root, MODEL, '--rule', 'argmax', '--name', 'published-live', '--data-dir', publisherData)
    assert.equal(line.via, 'node')
    assert.equal(line.announced, true)
    assert.ok(publisher.modelIds.includes(line.modelId), 'the node holds the model, ready for tasks')
    assert.ok(publisher.announcedModelIds.includes(line.modelId))
    const manifest = (await listModels(publisher.blocks!)).find(m => m.modelId === line.modelId)?.manifest
    assert.ok(manifest != null, 'the model is in the running node\'s store')
    // Only the publisher holds this id (name and rule differ from the shipped model's): the operators must fetch it from it.
    const input = exampleInput(2)
    const result = await requestInference(net.requester, net.requesterKeys.account, { modelId: parseModelId(line.modelId), input, timeoutMs: FETCHING_TASK_TIMEOUT_MS })
    assert.ok(result.signers.length >= 2, `signers: ${result.signers.join(',')}`)
    assert.equal(toHex(result.certificate.resultHash), await directResultHash({ modelBytes: new Uint8Array(await readFile(MODEL)), manifest }, tensorsOfJsonInput(input, manifest)))
  })

  it('a model directory with zk/ goes through the node with its circuit files, which the node stores and holds', async () => {
    const zk = zkTestModel('published-live-zk')
    const manifest = attachZkArtifacts(zk.manifest, { circuitId: zk.circuitId, ...zk.files }).manifest
    const dir = join(net.root, 'zk-model-dir')
    await writeModelDir(dir, manifest, zk.modelBytes, zk.files)
    const line = await publish(net.root, dir, '--data-dir', publisherData)
    assert.equal(line.via, 'node')
    assert.equal(line.modelId, modelIdToString(modelIdOf(manifest)))
    assert.ok(publisher.modelIds.includes(line.modelId))
    const stored = await loadModel(publisher.blocks!, line.modelId)
    assert.ok(stored?.zk !== undefined, 'the node stored the zk files with the model')
    assert.ok(bytesEqual(stored.zk.zkey, zk.files.zkey) && bytesEqual(stored.zk.vkey, zk.files.vkey))
    const refused = await runPoi(net.root, CLI_TIMEOUT_MS, 'model', 'publish', dir, '--rule', 'exact', '--data-dir', publisherData)
    assert.notEqual(refused.code, 0)
    assert.match(refused.stderr, /--rule: .* is a model directory/)
  })

  it('poi model ls and poi model show ask the running node', async () => {
    const r = await runPoi(net.root, CLI_TIMEOUT_MS, 'model', 'ls', '--data-dir', publisherData)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /from the node running on/)
    for (const id of publisher.announcedModelIds) assert.ok(r.stdout.includes(id), `${id} in:\n${r.stdout}`)
    const id = publisher.announcedModelIds[0]
    const show = await runPoi(net.root, CLI_TIMEOUT_MS, 'model', 'show', id, '--data-dir', publisherData)
    assert.equal(show.code, 0, show.stderr)
    assert.equal((JSON.parse(show.stdout) as { size: number }).size, (await listModels(publisher.blocks!)).find(m => m.modelId === id)?.manifest.size)
  })

  it('the control channel refuses a malformed request, another version and a file that does not match the manifest, by name', async () => {
    const path = controlSocketPath(publisherData)
    const refused = async (bytes: string): Promise<{ code: string, message: string }> => {
      const replies = await rawControl(path, bytes)
      assert.equal(replies.length, 1, JSON.stringify(replies))
      const [reply] = replies
      assert.ok(reply.type === 'error', JSON.stringify(reply))
      return reply
    }
    assert.equal((await refused('{"v":1,"op":"publish"\n')).code, 'ERR_CONTROL_REQUEST')
    assert.match((await refused('{"v":1,"op":"publish","file":"relative.onnx","manifest":{}}\n')).message, /absolute path/)
    assert.match((await refused('{"v":1,"op":"delete"}\n')).message, /unknown op "delete"/)
    const version = await refused('{"v":2,"op":"models"}\n')
    assert.equal(version.code, 'ERR_CONTROL_VERSION')
    // A line over the bound is refused without the node buffering the rest.
    assert.match((await refused('x'.repeat(MAX_CONTROL_REQUEST_BYTES + 1))).message, /larger than/)
    const client = await ControlClient.find(publisherData)
    assert.ok(client != null)
    const manifest = (await loadModelDir(SHIPPED_MODEL_DIR)).manifest
    await assert.rejects(client.publish('/nonexistent/model.onnx', manifest), (err: Error & { code?: string }) => err.code === 'ERR_PUBLISH' && /cannot read \/nonexistent\/model\.onnx: ENOENT/.test(err.message))
    const other = join(net.root, 'not-the-model.onnx')
    await copyFile(join(SHIPPED_MODEL_DIR, 'manifest.json'), other)
    await assert.rejects(client.publish(other, manifest), (err: Error & { code?: string }) => err.code === 'ERR_MODEL_INTEGRITY')
  })
})

describe('a node started with the CLI: its ready line and its control socket', function () {
  this.timeout(180_000)
  let root: string
  let dataDir: string
  let args: string[]

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'poi-publish-'))
    const op = await prepareNodeDir(root, 'op')
    const node = await prepareNodeDir(root, 'node')
    dataDir = node.dataDir
    const genesis = join(root, 'genesis.json')
    const set = createOperatorSet({ epoch: 0n, domain: { chainId: TEST_CHAIN_ID, taskManager: TEST_TASK_MANAGER }, operators: [{ address: op.keys.account.address, blsPublicKey: op.keys.blsPublicKey, stake: 1n }] })
    await writeGenesis(genesis, set, [signProofOfPossession(op.keys.blsSecretKey, op.keys.account.address)])
    args = ['bootstrap', '--keystore', node.keystore, '--data-dir', dataDir, '--genesis', genesis, '--listen', '/ip4/127.0.0.1/tcp/0']
  })
  after(async () => { if (root !== undefined) await rm(root, { recursive: true, force: true }) })

  it('lists a model published to its store while it was down; a socket left by SIGKILL is replaced; a stop removes it', async () => {
    const stored = await publish(root, MODEL, '--rule', 'grid:16', '--name', 'stored-offline', '--data-dir', dataDir)
    assert.equal(stored.via, 'store')
    assert.equal(stored.announced, false)
    const shipped = modelIdToString((await loadModelDir(SHIPPED_MODEL_DIR)).modelId)

    const first = new ChildNode('node', args, join(root, 'node-1.log'))
    try {
      const ready = await first.ready(READY_TIMEOUT_MS)
      assert.deepEqual(ready.models, [shipped], 'models: the model directories\'')
      assert.deepEqual([...ready.announced].sort(), [shipped, stored.modelId].sort(), 'announced: the store\'s too')
      assert.ok(await ControlClient.find(dataDir) != null, 'the node answers on its control socket')
      assert.equal((await stat(controlSocketPath(dataDir))).mode & 0o777, 0o600, 'only the node\'s user may connect')
    } finally {
      await first.stop('SIGKILL')
    }
    assert.ok(existsSync(controlSocketPath(dataDir)), 'SIGKILL leaves the socket file')
    assert.equal(await ControlClient.find(dataDir), undefined, 'a socket nobody accepts on is no node')
    // With no node answering, ls opens the store itself.
    const ls = await runPoi(root, CLI_TIMEOUT_MS, 'model', 'ls', '--data-dir', dataDir)
    assert.equal(ls.code, 0, ls.stderr)
    assert.ok(ls.stdout.includes(stored.modelId))
    assert.doesNotMatch(ls.stderr, /from the node running/)

    const second = new ChildNode('node', args, join(root, 'node-2.log'))
    try {
      await second.ready(READY_TIMEOUT_MS)
      const live = await publish(root, MODEL, '--rule', 'exact', '--name', 'after-restart', '--data-dir', dataDir)
      assert.equal(live.via, 'node', 'the restarted node replaced the stale socket and answers on it')
    } finally {
      await second.stop()
    }
    assert.equal((await second.exited).code, 0)
    assert.equal(existsSync(controlSocketPath(dataDir)), false, 'a stopped node removes its socket')
  })
})

describe('poi model publish --chain: registration and storage, atomic from the user\'s view', function () {
  this.timeout(120_000)
  let chain: PoiChain
  let root: string
  let deploymentPath: string

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'poi-publish-chain-'))
    chain = await startPoiChain()
    deploymentPath = join(root, 'deployment.json')
    await writeDeployment(deploymentPath, { rpcUrl: chain.anvil.rpcUrl, ...chain.deployment })
  })
  after(async () => {
    await chain?.stop()
    if (root !== undefined) await rm(root, { recursive: true, force: true })
  })

  it('an unfunded key: one line saying to fund it, nothing stored, nothing registered', async () => {
    const poor = await prepareNodeDir(root, 'poor')
    const r = await runPoi(root, CLI_TIMEOUT_MS, 'model', 'publish', MODEL, '--rule', 'argmax', '--data-dir', poor.dataDir, '--keystore', poor.keystore, '--chain', deploymentPath)
    assert.equal(r.code, 1, r.stderr)
    const lines = r.stderr.trim().split('\n')
    assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`)
    assert.match(lines[0], new RegExp(`account ${poor.keys.account.address} has 0 ETH on chain ${await chain.publicClient.getChainId()}.*fund it, then rerun \`poi model publish `))
    assert.deepEqual(await listModelIds(chain.publicClient, chain.deployment.modelRegistry), [], 'nothing registered')
    const store = await NodeStore.open(poor.dataDir)
    try {
      assert.deepEqual(await listModels(BlockStore.of(store)), [], 'nothing stored')
    } finally {
      await store.close()
    }
  })

  it('a store failing after the registration names the tx and the rerun; the rerun stores without registering again; once the id has another owner a publish is refused by name, storing nothing', async () => {
    const alice = await prepareNodeDir(root, 'alice')
    const fund = await chain.wallets[0].sendTransaction({ to: alice.keys.account.address, value: parseEther('1') })
    await chain.publicClient.waitForTransactionReceipt({ hash: fund })
    const keystore = await loadKeystore(alice.keystore)
    const set = createOperatorSet({ epoch: 0n, domain: { chainId: TEST_CHAIN_ID, taskManager: TEST_TASK_MANAGER }, operators: [{ address: keystore.account.address, blsPublicKey: keystore.blsPublicKey, stake: 1n }] })
    const node = await PoiNode.start({
      operate: false,
      aggregate: false,
      light: false,
      keystore,
      operatorSet: set,
      config: resolveConfig({ modelDirs: [], keystore: alice.keystore, dataDir: alice.dataDir, genesis: join(root, 'unused-genesis.json'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [] })
    })
    try {
      const file = join(root, 'model-copy.onnx')
      await copyFile(MODEL, file)
      const params = { file, rule: 'argmax', dataDir: alice.dataDir, chain: { rpcUrl: chain.anvil.rpcUrl, ...chain.deployment }, keystore, rerun: '`poi model publish (the same)`' }
      // The model file disappears between the registration and the node reading it: a real store failure.
      const failed = await publishModelFile(params, (line) => { if (line.startsWith('registered in ModelRegistry')) void unlink(file) })
        .then(() => undefined, (err: unknown) => err)
      assert.ok(failed instanceof PublishError, `expected a PublishError, got ${String(failed)}`)
      const tx = /registered on-chain \(tx (0x[0-9a-f]{64})\) but not stored/.exec(failed.message)?.[1]
      assert.ok(tx !== undefined, failed.message)
      assert.match(failed.message, /rerun `poi model publish \(the same\)`: it finds the registration and only stores the model/)
      assert.equal(failed.message.includes('\n'), false, 'one line')
      const ids = await listModelIds(chain.publicClient, chain.deployment.modelRegistry)
      assert.equal(ids.length, 1)
      assert.equal(await hasModel(node.blocks!, ids[0]), false, 'registered, not stored')

      await copyFile(MODEL, file)
      const lines: string[] = []
      const rerun = await publishModelFile(params, (line) => lines.push(line))
      assert.equal(rerun.registeredTx, undefined, 'no second registration')
      assert.equal(rerun.path, 'node')
      assert.ok(lines.some(l => /already registered on chain \d+ by 0x[0-9a-fA-F]{40} .*not registering again/.test(l)), lines.join('\n'))
      assert.equal(toHex(parseModelId(rerun.modelId)), toHex(ids[0]))
      assert.equal((await listModelIds(chain.publicClient, chain.deployment.modelRegistry)).length, 1)
      assert.ok(await hasModel(node.blocks!, ids[0]), 'stored by the running node')
      assert.equal((await readModel(chain.publicClient, chain.deployment.modelRegistry, ids[0]))?.owner.toLowerCase(), keystore.account.address.toLowerCase())

      // Handed to another account: the manifest's owner can no longer register or skip it as its own.
      const other = chain.wallets[1].account.address
      await transferModelOwnership(walletFor(chain.anvil.rpcUrl, keystore.account), chain.publicClient, chain.deployment.modelRegistry, ids[0], other)
      const elsewhere = join(root, 'elsewhere')
      const chainId = await chain.publicClient.getChainId()
      await assert.rejects(publishModelFile({ ...params, dataDir: elsewhere }),
        (err: Error) => err instanceof PublishError && err.message.includes(`is registered on chain ${chainId} by ${other}, not by ${keystore.account.address}`))
      const store = await NodeStore.open(elsewhere)
      try {
        assert.deepEqual(await listModels(BlockStore.of(store)), [], 'nothing stored')
      } finally {
        await store.close()
      }
    } finally {
      await node.stop()
    }
  })
})
