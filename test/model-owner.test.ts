/**
 * `poi model publish` names the model's owner in its manifest, and with a chain registers the id
 * with the manifest block as proof (issue 10, hole 3): the real CLI in child processes against a
 * real anvil with the poi contracts.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createWalletClient, http, parseEther } from 'viem'
import { foundry } from 'viem/chains'
import { readModel, registerModel } from '../contracts/index.js'
import { prepareNodeDir } from '../node/cli/launcher.js'
import { writeDeployment } from '../node/deployment.js'
import { MODEL_FILE, SHIPPED_MODEL_DIR, UNOWNED, encodeManifest, parseModelId } from '../node/inference/index.js'
import type { Keystore } from '../node/keys.js'
import { loadModel } from '../node/models/index.js'
import { BlockStore, NodeStore } from '../storage/index.js'
import { startPoiChain, type PoiChain } from './helpers/poi-chain.js'

/** Each CLI run loads onnxruntime and viem; several seconds apiece on a loaded 2-core machine. */
const TEST_TIMEOUT_MS = 120_000
const CLI = join(dirname(fileURLToPath(import.meta.url)), '../node/cli/main.js')
const MODEL = join(SHIPPED_MODEL_DIR, MODEL_FILE)

interface Published { event: 'published', modelId: string, owner: `0x${string}`, chunks: number, registeredTx: `0x${string}` | null }

async function poi (...args: string[]): Promise<{ stdout: string, stderr: string }> {
  return await promisify(execFile)(process.execPath, [CLI, ...args])
}

async function poiFails (...args: string[]): Promise<{ code: number, stderr: string }> {
  const failed = await poi(...args).then(() => undefined, (err: { code: number, stderr: string }) => err)
  assert.ok(failed != null, `poi ${args.join(' ')} succeeded`)
  return failed
}

/** `poi model publish … --json`: the published line. */
async function publish (...args: string[]): Promise<Published> {
  const { stdout } = await poi('model', 'publish', MODEL, '--rule', 'argmax', '--json', ...args)
  const line = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Published
  assert.equal(line.event, 'published')
  return line
}

describe('poi model publish: the manifest names its owner, who alone registers it', function () {
  this.timeout(TEST_TIMEOUT_MS)
  let chain: PoiChain
  let root: string
  let deploymentPath: string
  let alice: { keystore: string, dataDir: string, keys: Keystore }
  let mallory: { keystore: string, dataDir: string, keys: Keystore }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'poi-model-owner-'))
    chain = await startPoiChain({}, { accounts: 2 })
    deploymentPath = join(root, 'deployment.json')
    await writeDeployment(deploymentPath, { rpcUrl: chain.anvil.rpcUrl, ...chain.deployment })
    alice = await prepareNodeDir(root, 'alice')
    mallory = await prepareNodeDir(root, 'mallory')
    for (const k of [alice.keys, mallory.keys]) {
      const hash = await chain.wallets[0].sendTransaction({ to: k.account.address, value: parseEther('1') })
      await chain.publicClient.waitForTransactionReceipt({ hash })
    }
  })
  after(async () => {
    await chain?.stop()
    if (root !== undefined) await rm(root, { recursive: true, force: true })
  })

  it('with --chain and --keystore: the keystore account is the owner and registers the id with the proof', async () => {
    const line = await publish('--data-dir', alice.dataDir, '--keystore', alice.keystore, '--chain', deploymentPath, '--fee', '5')
    assert.equal(line.owner, alice.keys.account.address.toLowerCase())
    assert.ok(line.registeredTx !== null)
    const modelId = parseModelId(line.modelId)
    const onChain = await readModel(chain.publicClient, chain.deployment.modelRegistry, modelId)
    assert.deepEqual([onChain?.owner, onChain?.fee], [alice.keys.account.address, 5n])
    // the stored manifest is the block the chain checked, and names alice
    const store = await NodeStore.open(alice.dataDir)
    try {
      assert.equal((await loadModel(BlockStore.of(store), modelId))?.manifest.owner, line.owner)
    } finally {
      await store.close()
    }

    // Mallory publishing the same weights gets a model of her own, not alice's id.
    const copy = await publish('--data-dir', mallory.dataDir, '--keystore', mallory.keystore, '--chain', deploymentPath)
    assert.notEqual(copy.modelId, line.modelId)
    assert.equal((await readModel(chain.publicClient, chain.deployment.modelRegistry, parseModelId(copy.modelId)))?.owner, mallory.keys.account.address)
    assert.equal((await readModel(chain.publicClient, chain.deployment.modelRegistry, modelId))?.owner, alice.keys.account.address)
  })

  it('with --owner and no chain: the manifest names that owner, who registers the stored block later', async () => {
    const dataDir = join(root, 'publisher-for-alice')
    const owner = alice.keys.account.address
    const line = await publish('--data-dir', dataDir, '--owner', owner, '--name', 'for-alice')
    assert.equal(line.owner, owner.toLowerCase())
    assert.equal(line.registeredTx, null)
    const modelId = parseModelId(line.modelId)
    assert.equal(await readModel(chain.publicClient, chain.deployment.modelRegistry, modelId), undefined)
    const store = await NodeStore.open(dataDir)
    let block: Uint8Array
    try {
      const stored = await loadModel(BlockStore.of(store), modelId)
      assert.ok(stored !== undefined)
      block = encodeManifest(stored.manifest)
    } finally {
      await store.close()
    }
    const wallet = createWalletClient({ chain: { ...foundry, id: chain.anvil.chainId }, transport: http(chain.anvil.rpcUrl), account: alice.keys.account })
    await registerModel(wallet, chain.publicClient, chain.deployment.modelRegistry, modelId, block, 0n)
    assert.equal((await readModel(chain.publicClient, chain.deployment.modelRegistry, modelId))?.owner, owner)
  })

  it('without a keystore or --owner the manifest names no owner, and says so', async () => {
    const dataDir = join(root, 'anonymous')
    const line = await publish('--data-dir', dataDir, '--name', 'anonymous')
    assert.equal(line.owner, UNOWNED)
    const { stderr } = await poi('model', 'publish', MODEL, '--rule', 'argmax', '--data-dir', dataDir, '--name', 'anonymous')
    assert.match(stderr, /names no owner .* no account can register it on a chain; publish with --keystore/)
  })

  it('refuses --chain without a keystore, and an --owner the registering keystore is not, before storing anything', async () => {
    const noKey = await poiFails('model', 'publish', MODEL, '--rule', 'argmax', '--data-dir', join(root, 'refused-1'), '--chain', deploymentPath)
    assert.equal(noKey.code, 1)
    assert.match(noKey.stderr, /registering on-chain needs --keystore/)
    const mismatch = await poiFails('model', 'publish', MODEL, '--rule', 'argmax', '--data-dir', join(root, 'refused-2'),
      '--keystore', mallory.keystore, '--owner', alice.keys.account.address, '--chain', deploymentPath)
    assert.equal(mismatch.code, 1)
    assert.match(mismatch.stderr, new RegExp(`--owner ${alice.keys.account.address.toLowerCase()} is not the --keystore account ${mallory.keys.account.address.toLowerCase()}`))
    assert.equal(existsSync(join(root, 'refused-1')) || existsSync(join(root, 'refused-2')), false, 'a refused publish stored blocks')
    const badOwner = await poiFails('model', 'publish', MODEL, '--rule', 'argmax', '--data-dir', join(root, 'refused-3'), '--owner', '0x1234')
    assert.match(badOwner.stderr, /--owner must be an Ethereum address/)
  })
})
