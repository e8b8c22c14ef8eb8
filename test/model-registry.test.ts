/**
 * The ModelRegistry on a real anvil through contracts/models.ts: model ids are the CIDs of real
 * manifest blocks (node/inference), registering one takes the block as proof that the caller is
 * the owner it names, every refusal surfaces as a ModelRegistryError named after the contract's
 * custom error, and usability follows registration, the active flag and the access policy.
 */
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import * as json from 'multiformats/codecs/json'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { bytesToHex, concatBytes, hexToBytes, parseEventLogs } from 'viem'
import {
  MODEL_ID_LENGTH, ModelRegistryAbi, ModelRegistryError, isModelAllowed, isModelUsable, listModelIds, modelKeyOf, readModel, registerModel,
  setModelAccessPolicy, setModelActive, setModelAllowed, setModelFee, transferModelOwnership, type ModelRegistryErrorReason
} from '../contracts/index.js'
import { contractErrorArgs } from '../contracts/revert.js'
import { MANIFEST_OWNER_PREFIX, ModelIdError, UNOWNED, encodeManifest, modelIdOf, modelIdToString, parseManifest } from '../node/inference/index.js'
import { ModelManifestError, decodeManifestBlock } from '../node/models/index.js'
import { expectRevert, startPoiChain, type PoiChain } from './helpers/poi-chain.js'
import { ownedManifest, type OwnedManifest } from './helpers/model-manifests.js'

const CHAIN_TIMEOUT_MS = 60_000
const GWEI = 10n ** 9n
/**
 * Upper bound for register() of a one-chunk model's manifest (573 bytes, the shipped model's
 * renamed) with a fee: 21,000 + two fresh storage slots (2 × 22,100) + the manifest's calldata
 * (~16 gas a byte) + sha2-256 + the 40-digit owner read + the event; measured 96,819 (74,683 for a
 * free model, one slot) with solc 0.8.37, via IR, 200 runs. Before the ownership proof: 71,315.
 */
const REGISTER_GAS_BOUND = 105_000n

/** The CIDv1 (json codec, sha2-256) of arbitrary bytes: what a model id of those bytes would be. */
async function jsonCidOf (bytes: Uint8Array): Promise<Uint8Array> {
  return CID.create(1, json.code, await sha256.digest(bytes)).bytes
}

/** Awaits `action`, which must fail with a ModelRegistryError of `reason`; returns it. */
async function expectRefusal (action: Promise<unknown>, reason: ModelRegistryErrorReason): Promise<ModelRegistryError> {
  try {
    await action
  } catch (err) {
    assert.ok(err instanceof ModelRegistryError, `expected ModelRegistryError ${reason}, got ${String(err)}`)
    assert.equal(err.reason, reason, err.message)
    return err
  }
  assert.fail(`expected ModelRegistryError ${reason}, but the call succeeded`)
}

describe('contracts: ModelRegistry', function () {
  this.timeout(CHAIN_TIMEOUT_MS)
  let chain: PoiChain
  const models = (): `0x${string}` => chain.deployment.modelRegistry
  const address = (i: number): `0x${string}` => chain.wallets[i].account.address
  /** A fresh model whose manifest names wallets[i] as owner. */
  const modelOf = async (i: number): Promise<OwnedManifest> => await ownedManifest(address(i))
  /** Registers a fresh model owned by wallets[i]. */
  const registerAs = async (i: number, fee: bigint, policy?: 'open' | 'allowlist'): Promise<Uint8Array> => {
    const model = await modelOf(i)
    await registerModel(chain.wallets[i], chain.publicClient, models(), model.modelId, model.block, fee, policy)
    return model.modelId
  }

  before(async () => {
    chain = await startPoiChain({}, { accounts: 4 })
  })
  after(async () => { await chain?.stop() })

  it('deployPoi deploys the model registry beside the other contracts', async () => {
    const { registry, taskManager, slashing, modelRegistry } = chain.deployment
    assert.equal(new Set([registry, taskManager, slashing, modelRegistry]).size, 4)
    const code = await chain.publicClient.getCode({ address: modelRegistry })
    assert.ok(code != null && code.length > 2, 'no code at the model registry address')
    assert.equal(await chain.publicClient.readContract({ address: modelRegistry, abi: ModelRegistryAbi, functionName: 'MODEL_ID_LENGTH' }), BigInt(MODEL_ID_LENGTH))
  })

  it('registers a model under its CID with the manifest\'s owner as owner, active and open, and reads it back', async () => {
    const { modelId, block } = await modelOf(1)
    assert.equal(modelId.length, MODEL_ID_LENGTH)
    const fee = 250n * GWEI
    const { modelKey, receipt } = await registerModel(chain.wallets[1], chain.publicClient, models(), modelId, block, fee)
    assert.ok(receipt.gasUsed < REGISTER_GAS_BOUND, `register used ${receipt.gasUsed} gas for a ${block.length}-byte manifest`)
    assert.equal(modelKey, modelKeyOf(modelId))

    const [event] = parseEventLogs({ abi: ModelRegistryAbi, logs: receipt.logs, eventName: 'ModelRegistered' })
    assert.deepEqual(event.args, { modelKey, owner: address(1), modelId: bytesToHex(modelId), fee, accessPolicy: 0 })

    const block_ = await chain.publicClient.getBlock({ blockNumber: receipt.blockNumber })
    const model = await readModel(chain.publicClient, models(), modelId)
    assert.deepEqual(model, { modelId, owner: address(1), fee, active: true, accessPolicy: 'open', registeredAt: block_.timestamp, price: 0n, period: 0n })
    assert.equal(await isModelUsable(chain.publicClient, models(), modelId, address(2)), true)
    const listed = await listModelIds(chain.publicClient, models(), chain.deployment.deployedAtBlock)
    assert.ok(listed.some(id => bytesToHex(id) === bytesToHex(modelId)))
  })

  it('a free model costs one storage slot less to register', async () => {
    const paid = await modelOf(1)
    const free = await modelOf(1)
    const paidReceipt = (await registerModel(chain.wallets[1], chain.publicClient, models(), paid.modelId, paid.block, 1n)).receipt
    const freeReceipt = (await registerModel(chain.wallets[1], chain.publicClient, models(), free.modelId, free.block, 0n)).receipt
    assert.ok(freeReceipt.gasUsed < paidReceipt.gasUsed)
  })

  it('an unknown model reads as undefined and is not usable', async () => {
    const { modelId } = await modelOf(1)
    assert.equal(await readModel(chain.publicClient, models(), modelId), undefined)
    assert.equal(await isModelUsable(chain.publicClient, models(), modelId, address(1)), false)
    const err = await expectRefusal(setModelFee(chain.wallets[1], chain.publicClient, models(), modelId, 1n), 'NotRegistered')
    assert.match(err.message, /poi model publish/)
  })

  it('refuses to register an id twice, from its owner or anyone else', async () => {
    const { modelId, block } = await modelOf(1)
    await registerModel(chain.wallets[1], chain.publicClient, models(), modelId, block, 0n)
    for (const wallet of [chain.wallets[1], chain.wallets[2]]) {
      const err = await expectRefusal(registerModel(wallet, chain.publicClient, models(), modelId, block, 5n), 'AlreadyRegistered')
      assert.match(err.message, new RegExp(address(1), 'i'))
    }
    assert.equal((await readModel(chain.publicClient, models(), modelId))?.fee, 0n)
  })

  describe('registration proves the owner the manifest names (issue 10, hole 3)', function () {
    it('a front-runner replaying a published manifest is refused and changes nothing; the owner it names then registers', async () => {
      const published = await modelOf(1)
      const [owner, squatter] = [chain.wallets[1], chain.wallets[2]]
      // Fails before the fix: the old register(modelId, fee, policy) accepted any caller, so the
      // squatter's call succeeded and getModel named the squatter as owner.
      const err = await expectRefusal(registerModel(squatter, chain.publicClient, models(), published.modelId, published.block, 0n, 'allowlist'), 'NotManifestOwner')
      assert.deepEqual(contractErrorArgs(err.cause), [address(2), address(1)])
      assert.match(err.message, new RegExp(`account ${address(2)} is not the owner named in the manifest .*\\(${address(1)}\\)`, 'i'))
      // Sent anyway (no simulation, gas given so none is estimated), it reverts on-chain and leaves no trace.
      const hash = await squatter.writeContract({
        address: models(), abi: ModelRegistryAbi, functionName: 'register', args: [bytesToHex(published.modelId), bytesToHex(published.block), 0n, 1], gas: 300_000n
      })
      const reverted = await chain.publicClient.waitForTransactionReceipt({ hash })
      assert.equal(reverted.status, 'reverted')
      assert.equal(reverted.logs.length, 0)
      assert.equal(await readModel(chain.publicClient, models(), published.modelId), undefined)
      assert.equal(await isModelUsable(chain.publicClient, models(), published.modelId, address(2)), false)

      const { receipt } = await registerModel(owner, chain.publicClient, models(), published.modelId, published.block, 7n)
      const [event] = parseEventLogs({ abi: ModelRegistryAbi, logs: receipt.logs, eventName: 'ModelRegistered' })
      assert.equal(event.args.owner, address(1))
      assert.deepEqual(await readModel(chain.publicClient, models(), published.modelId).then(m => [m?.owner, m?.fee, m?.accessPolicy]), [address(1), 7n, 'open'])
      // ownership moves as before, without a manifest
      await transferModelOwnership(owner, chain.publicClient, models(), published.modelId, address(3))
      assert.equal((await readModel(chain.publicClient, models(), published.modelId))?.owner, address(3))
    })

    it('rewriting the owner in the block breaks its hash: ManifestDigestMismatch, and a block of another model too', async () => {
      const published = await modelOf(1)
      const text = new TextDecoder().decode(published.block)
      const rewritten = new TextEncoder().encode(text.replace(address(1).toLowerCase(), address(2).toLowerCase()))
      assert.notEqual(bytesToHex(rewritten), bytesToHex(published.block))
      const err = await expectRefusal(registerModel(chain.wallets[2], chain.publicClient, models(), published.modelId, rewritten, 0n), 'ManifestDigestMismatch')
      const idDigest = bytesToHex(published.modelId.subarray(MODEL_ID_LENGTH - 32))
      assert.deepEqual(contractErrorArgs(err.cause), [idDigest, bytesToHex((await sha256.digest(rewritten)).digest)])

      const other = await modelOf(1)
      const mixed = await expectRefusal(registerModel(chain.wallets[1], chain.publicClient, models(), published.modelId, other.block, 0n), 'ManifestDigestMismatch')
      assert.deepEqual(contractErrorArgs(mixed.cause), [idDigest, bytesToHex((await sha256.digest(other.block)).digest)])
      assert.match(mixed.message, /pass that model's own manifest block/)
      for (const id of [published.modelId, other.modelId]) assert.equal(await readModel(chain.publicClient, models(), id), undefined)
    })

    it('the same weights published by two owners are two model ids, each registered by its own owner', async () => {
      const one = await modelOf(1)
      const two = parseManifest({ ...one.manifest, owner: address(2).toLowerCase() })
      const twoId = modelIdOf(two)
      assert.notEqual(bytesToHex(twoId), bytesToHex(one.modelId))
      assert.equal(two.modelHash, one.manifest.modelHash)
      await registerModel(chain.wallets[1], chain.publicClient, models(), one.modelId, one.block, 0n)
      await expectRefusal(registerModel(chain.wallets[1], chain.publicClient, models(), twoId, encodeManifest(two), 0n), 'NotManifestOwner')
      await registerModel(chain.wallets[2], chain.publicClient, models(), twoId, encodeManifest(two), 0n)
      assert.deepEqual([(await readModel(chain.publicClient, models(), one.modelId))?.owner, (await readModel(chain.publicClient, models(), twoId))?.owner], [address(1), address(2)])
    })

    it('a manifest published without an owner (the zero address) is registrable by no one', async () => {
      const unowned = parseManifest({ ...(await modelOf(1)).manifest, owner: UNOWNED })
      for (const wallet of [chain.wallets[0], chain.wallets[1]]) {
        const err = await expectRefusal(registerModel(wallet, chain.publicClient, models(), modelIdOf(unowned), encodeManifest(unowned), 0n), 'UnownedManifest')
        assert.match(err.message, /--keystore/)
      }
      assert.equal(await readModel(chain.publicClient, models(), modelIdOf(unowned)), undefined)
    })

    it('a block without the canonical owner header is refused on-chain and by the nodes alike (ManifestOwnerUnreadable)', async () => {
      const { manifest, block } = await modelOf(1)
      const text = new TextDecoder().decode(block)
      const owner = manifest.owner
      assert.ok(text.startsWith(`${MANIFEST_OWNER_PREFIX}${owner.slice(2)}",`))
      const { owner: _owner, ...rest } = manifest
      const variants: Array<[string, string]> = [
        ['checksummed (mixed-case) owner', text.replace(owner, address(1))],
        ['owner among the sorted keys', JSON.stringify(Object.fromEntries(Object.entries(manifest).sort(([a], [b]) => a < b ? -1 : 1)))],
        ['whitespace after the colon', text.replace('"owner":', '"owner": ')],
        ['owner not first', `{"agreement":${JSON.stringify(rest.agreement)},${text.slice(1).replace(`"agreement":${JSON.stringify(rest.agreement)},`, '')}`],
        ['pretty-printed', JSON.stringify({ owner, ...rest }, null, 2)],
        ['non-hex digit', text.replace(owner, `0x${'g'.repeat(40)}`)],
        ['shorter than the header', `{"owner":"${owner}"}`.slice(0, 40)]
      ]
      for (const [what, variant] of variants) {
        const bytes = new TextEncoder().encode(variant)
        assert.notEqual(variant, text, what)
        const id = await jsonCidOf(bytes)
        await expectRefusal(registerModel(chain.wallets[1], chain.publicClient, models(), id, bytes, 0n), 'ManifestOwnerUnreadable')
          .catch((err: Error) => { throw new Error(`${what}: ${err.message}`) })
        assert.throws(() => decodeManifestBlock(CID.decode(id), bytes), ModelManifestError, what)
        assert.equal(await readModel(chain.publicClient, models(), id), undefined)
      }
      // the canonical block itself is read the same way by both
      assert.deepEqual(decodeManifestBlock(CID.decode(modelIdOf(manifest)), block), manifest)
    })

    it('refuses a model id that is not a CIDv1 (json, sha2-256, 32 bytes), naming what is wrong', async () => {
      const { modelId, block } = await modelOf(1)
      const digest = modelId.subarray(MODEL_ID_LENGTH - 32)
      const cases: Array<[string, Uint8Array, ModelRegistryErrorReason, unknown[]]> = [
        ['empty', new Uint8Array(0), 'EmptyModelId', []],
        ['a CIDv0', concatBytes([Uint8Array.of(0x12, 0x20), digest]), 'ModelIdNotCidV1', [0n]],
        ['a CIDv2', concatBytes([Uint8Array.of(0x02), modelId.subarray(1)]), 'ModelIdNotCidV1', [2n]],
        ['the raw codec', CID.create(1, raw.code, await sha256.digest(block)).bytes, 'ModelIdNotJsonCodec', [BigInt(raw.code)]],
        // blake2b-256 is multihash 0xb220, varint a0 e4 02
        ['a blake2b-256 multihash', concatBytes([Uint8Array.of(0x01, 0x80, 0x04, 0xa0, 0xe4, 0x02, 0x20), digest]), 'ModelIdNotSha256', [0xb220n]],
        ['a 31-byte digest', concatBytes([Uint8Array.of(0x01, 0x80, 0x04, 0x12, 0x1f), digest.subarray(1)]), 'ModelIdDigestLength', [31n]],
        ['a truncated digest', modelId.subarray(0, MODEL_ID_LENGTH - 1), 'MalformedModelId', [5n]],
        ['a trailing byte', concatBytes([modelId, Uint8Array.of(0)]), 'MalformedModelId', [5n]],
        ['a non-minimal version varint', concatBytes([Uint8Array.of(0x81, 0x00), modelId.subarray(1)]), 'MalformedModelId', [0n]],
        ['a truncated codec varint', Uint8Array.of(0x01, 0x80), 'MalformedModelId', [1n]],
        ['a varint longer than 9 bytes', new Uint8Array(12).fill(0xff), 'MalformedModelId', [0n]]
      ]
      for (const [what, id, reason, args] of cases) {
        const err = await expectRefusal(registerModel(chain.wallets[1], chain.publicClient, models(), id, block, 0n), reason)
          .catch((e: Error) => { throw new Error(`${what}: ${e.message}`) })
        assert.deepEqual(contractErrorArgs(err.cause) ?? [], args, what)
        assert.equal(await readModel(chain.publicClient, models(), id), undefined, what)
        // the nodes refuse the same bytes as a model id
        assert.throws(() => modelIdToString(id), ModelIdError, what)
      }
      // the well-formed id of the same block registers
      await registerModel(chain.wallets[1], chain.publicClient, models(), modelId, block, 0n)
      assert.deepEqual(hexToBytes(bytesToHex(modelId)).subarray(0, 5), Uint8Array.of(0x01, 0x80, 0x04, 0x12, 0x20))
    })
  })

  it('lets only the owner change a model, and ownership moves with transferOwnership', async () => {
    const { modelId, block } = await modelOf(1)
    const [owner, stranger, heir] = [chain.wallets[1], chain.wallets[2], chain.wallets[3]]
    await registerModel(owner, chain.publicClient, models(), modelId, block, 1n)
    const registered = await readModel(chain.publicClient, models(), modelId)
    const attempts: Array<() => Promise<unknown>> = [
      async () => await setModelFee(stranger, chain.publicClient, models(), modelId, 2n),
      async () => await setModelActive(stranger, chain.publicClient, models(), modelId, false),
      async () => await setModelAccessPolicy(stranger, chain.publicClient, models(), modelId, 'allowlist'),
      async () => await setModelAllowed(stranger, chain.publicClient, models(), modelId, address(2), true),
      async () => await transferModelOwnership(stranger, chain.publicClient, models(), modelId, address(2))
    ]
    for (const attempt of attempts) {
      const err = await expectRefusal(attempt(), 'NotOwner')
      assert.match(err.message, new RegExp(`its owner is ${address(1)}`, 'i'))
    }
    assert.deepEqual(await readModel(chain.publicClient, models(), modelId), registered)

    const receipt = await setModelFee(owner, chain.publicClient, models(), modelId, 3n)
    const [feeEvent] = parseEventLogs({ abi: ModelRegistryAbi, logs: receipt.logs, eventName: 'ModelFeeChanged' })
    assert.deepEqual(feeEvent.args, { modelKey: modelKeyOf(modelId), fee: 3n })
    assert.equal((await readModel(chain.publicClient, models(), modelId))?.fee, 3n)

    await expectRefusal(transferModelOwnership(owner, chain.publicClient, models(), modelId, '0x0000000000000000000000000000000000000000'), 'ZeroOwner')
    const transfer = await transferModelOwnership(owner, chain.publicClient, models(), modelId, address(3))
    const [moved] = parseEventLogs({ abi: ModelRegistryAbi, logs: transfer.logs, eventName: 'ModelOwnershipTransferred' })
    assert.deepEqual(moved.args, { modelKey: modelKeyOf(modelId), previousOwner: address(1), newOwner: address(3) })
    await expectRefusal(setModelFee(owner, chain.publicClient, models(), modelId, 4n), 'NotOwner')
    await setModelFee(heir, chain.publicClient, models(), modelId, 4n)
    assert.deepEqual(await readModel(chain.publicClient, models(), modelId).then(m => [m?.owner, m?.fee]), [address(3), 4n])
  })

  it('under the allowlist policy only the owner and allowed requesters may use the model', async () => {
    const modelId = await registerAs(1, 0n, 'allowlist')
    const [owner, allowed, stranger] = [address(1), address(2), address(3)]
    assert.equal((await readModel(chain.publicClient, models(), modelId))?.accessPolicy, 'allowlist')
    const usable = async (who: `0x${string}`): Promise<boolean> => await isModelUsable(chain.publicClient, models(), modelId, who)
    assert.deepEqual([await usable(owner), await usable(allowed), await usable(stranger)], [true, false, false])

    const receipt = await setModelAllowed(chain.wallets[1], chain.publicClient, models(), modelId, allowed, true)
    const [event] = parseEventLogs({ abi: ModelRegistryAbi, logs: receipt.logs, eventName: 'ModelAllowedChanged' })
    assert.deepEqual(event.args, { modelKey: modelKeyOf(modelId), requester: allowed, allowed: true })
    assert.equal(await isModelAllowed(chain.publicClient, models(), modelId, allowed), true)
    assert.deepEqual([await usable(owner), await usable(allowed), await usable(stranger)], [true, true, false])

    await setModelAccessPolicy(chain.wallets[1], chain.publicClient, models(), modelId, 'open')
    assert.deepEqual([await usable(owner), await usable(allowed), await usable(stranger)], [true, true, true])

    // the list survives a round trip through 'open'; removing an entry takes effect
    await setModelAccessPolicy(chain.wallets[1], chain.publicClient, models(), modelId, 'allowlist')
    await setModelAllowed(chain.wallets[1], chain.publicClient, models(), modelId, allowed, false)
    assert.deepEqual([await usable(owner), await usable(allowed), await usable(stranger)], [true, false, false])
  })

  it('an inactive model stays registered but is usable by no one until reactivated', async () => {
    const { modelId, block } = await modelOf(1)
    await registerModel(chain.wallets[1], chain.publicClient, models(), modelId, block, 0n)
    const receipt = await setModelActive(chain.wallets[1], chain.publicClient, models(), modelId, false)
    const [event] = parseEventLogs({ abi: ModelRegistryAbi, logs: receipt.logs, eventName: 'ModelActiveChanged' })
    assert.deepEqual(event.args, { modelKey: modelKeyOf(modelId), active: false })
    assert.equal((await readModel(chain.publicClient, models(), modelId))?.active, false)
    assert.equal(await isModelUsable(chain.publicClient, models(), modelId, address(1)), false)
    assert.equal(await isModelUsable(chain.publicClient, models(), modelId, address(2)), false)
    await expectRefusal(registerModel(chain.wallets[2], chain.publicClient, models(), modelId, block, 0n), 'AlreadyRegistered')

    await setModelActive(chain.wallets[1], chain.publicClient, models(), modelId, true)
    assert.equal(await isModelUsable(chain.publicClient, models(), modelId, address(2)), true)
  })

  it('rejects an unknown access policy', async () => {
    // register takes the tiers that need no terms (0..2; subscription and credits go through
    // setAccessTier) and no unknown one; a raw call shows the contract refuses them
    const { modelId, block } = await modelOf(1)
    for (const policy of [3, 5]) {
      const unknownPolicy = chain.publicClient.simulateContract({
        account: chain.wallets[1].account, address: models(), abi: ModelRegistryAbi, functionName: 'register', args: [bytesToHex(modelId), bytesToHex(block), 0n, policy]
      })
      assert.deepEqual(await expectRevert(unknownPolicy, 'UnknownAccessPolicy'), [policy])
    }
  })
})
