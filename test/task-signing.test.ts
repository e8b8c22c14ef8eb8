/**
 * EIP-712 task signing: signatures that verify and survive the wire, that break when any
 * signed field, the chain or the TaskManager changes, and task ids that ignore the signature.
 */
import assert from 'node:assert/strict'
import { bytesToHex, recoverAddress, type Address } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import {
  DecodeError, EncodeError, decodeTaskAnnouncement, encodeTaskAnnouncement, MAX_INLINE_INPUT_BYTES,
  PROTOCOL_VERSION, TaskAnnouncement, signTask, taskDomain, taskIdOf, verifyTaskSignature, type TaskFields,
  uint256ToBytes, TASK_TIERS
} from '../protocols/wire/index.js'
import { CHAIN_ID, concat, filled, prng, randomBytes } from './helpers/wire-fixtures.js'

// anvil's first two default accounts: public test keys, never funded outside a devnet.
const KEY_A = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80'
const KEY_B = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d'
const TASK_MANAGER: Address = '0x5FbDB2315678afecb367f032d93F642f64180aa3'
const OTHER_TASK_MANAGER: Address = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512'

describe('task signing (EIP-712)', () => {
  const accountA = privateKeyToAccount(KEY_A)
  const accountB = privateKeyToAccount(KEY_B)
  const fields: TaskFields = {
    chainId: CHAIN_ID,
    modelId: filled(36, 0x01),
    input: Uint8Array.from([1, 2, 3, 4]),
    params: Uint8Array.from([9]),
    fee: 5n * 10n ** 17n,
    deadline: 1_700_000_060_000n,
    quorumBps: 6667,
    nonce: 1n
  }

  /** A valid replacement value for every signed field. */
  const CHANGES: Array<[string, Partial<TaskAnnouncement>]> = [
    ['chainId', { chainId: 1n }],
    ['modelId', { modelId: filled(36, 0x02) }],
    ['input', { input: Uint8Array.from([1, 2, 3, 5]) }],
    ['inputRef', { input: new Uint8Array(0), inputRef: filled(32, 0x07) }],
    ['params', { params: Uint8Array.from([8]) }],
    ['fee', { fee: uint256ToBytes(5n * 10n ** 17n + 1n) }],
    ['deadline', { deadline: 1_700_000_060_001n }],
    ['quorumBps', { quorumBps: 6668 }],
    ['nonce', { nonce: 2n }],
    ['requester', { requester: Uint8Array.from(Buffer.from(accountB.address.slice(2), 'hex')) }],
    ['validationRequest', { validationRequest: filled(32, 0x09) }],
    ['tier', { tier: 1, nonce: 1n << 40n, inputCommitment: filled(32, 0x0c) }],
    ['inputCommitment', { tier: 2, nonce: 1n << 40n, inputCommitment: filled(32, 0x0d) }]
  ]

  it('signs a task that verifies, and survives the wire', async () => {
    const signed = await signTask(accountA, TASK_MANAGER, fields)
    assert.equal(signed.version, PROTOCOL_VERSION)
    assert.equal(bytesToHex(signed.requester), accountA.address.toLowerCase())
    assert.equal(signed.requesterSig.length, 65)
    assert.equal(await verifyTaskSignature(signed, TASK_MANAGER), true)
    const received = decodeTaskAnnouncement(encodeTaskAnnouncement(signed))
    assert.equal(await verifyTaskSignature(received, TASK_MANAGER), true)
  })

  it('signs a zk and a both task with their input commitment (issue 16); refuses one a peer would reject', async () => {
    for (const tier of ['zk', 'both'] as const) {
      const signed = await signTask(accountA, TASK_MANAGER, { ...fields, nonce: 1n << 40n, tier, inputCommitment: filled(32, 0x0e) })
      assert.equal(signed.tier, TASK_TIERS[tier])
      const received = decodeTaskAnnouncement(encodeTaskAnnouncement(signed))
      assert.deepEqual([received.tier, received.inputCommitment], [TASK_TIERS[tier], filled(32, 0x0e)])
      assert.equal(await verifyTaskSignature(received, TASK_MANAGER), true)
      assert.equal(await verifyTaskSignature({ ...received, tier: TASK_TIERS[tier] === 1 ? 2 : 1 }, TASK_MANAGER), false, 'another tier kept the signature valid')
    }
    await assert.rejects(signTask(accountA, TASK_MANAGER, { ...fields, nonce: 1n << 40n, tier: 'zk' }), /inputCommitment/)
    await assert.rejects(signTask(accountA, TASK_MANAGER, { ...fields, tier: 'zk', inputCommitment: filled(32, 0x0e) }), /nonce.*credit tab/)
    await assert.rejects(signTask(accountA, TASK_MANAGER, { ...fields, inputCommitment: filled(32, 0x0e) }), /replicated task leaves it empty/)
  })

  it('signs tasks with a stream inputRef', async () => {
    const signed = await signTask(accountA, TASK_MANAGER, { ...fields, input: undefined, inputRef: filled(32, 0x33) })
    assert.equal(await verifyTaskSignature(signed, TASK_MANAGER), true)
    assert.equal(await verifyTaskSignature({ ...signed, inputRef: filled(32, 0x34) }, TASK_MANAGER), false)
  })

  it('fails verification when any signed field changes', async () => {
    const signed = await signTask(accountA, TASK_MANAGER, fields)
    for (const [name, change] of CHANGES) {
      const changed = { ...signed, ...change }
      assert.equal(await verifyTaskSignature(changed, TASK_MANAGER), false, `changing ${name} kept the signature valid`)
    }
  })

  it('fails verification for another chain or another TaskManager', async () => {
    const signedElsewhere = await signTask(accountA, TASK_MANAGER, { ...fields, chainId: 1n })
    assert.equal(await verifyTaskSignature({ ...signedElsewhere, chainId: CHAIN_ID }, TASK_MANAGER), false)
    const signed = await signTask(accountA, TASK_MANAGER, fields)
    assert.equal(await verifyTaskSignature(signed, OTHER_TASK_MANAGER), false)
    const signedForOther = await signTask(accountA, OTHER_TASK_MANAGER, fields)
    assert.equal(await verifyTaskSignature(signedForOther, TASK_MANAGER), false)
    assert.equal(await verifyTaskSignature(signedForOther, OTHER_TASK_MANAGER), true)
  })

  it('fails verification when another account signed for the requester', async () => {
    const byB = await signTask(accountB, TASK_MANAGER, fields)
    const signedA = await signTask(accountA, TASK_MANAGER, fields)
    assert.equal(await verifyTaskSignature({ ...signedA, requesterSig: byB.requesterSig }, TASK_MANAGER), false)
  })

  it('returns false, never throws, for malformed signature bytes', async () => {
    const signed = await signTask(accountA, TASK_MANAGER, fields)
    const sig = signed.requesterSig
    // The malleable twin (r, n - s, other v) recovers the same signer; it is refused as non-canonical.
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
    const s = BigInt(bytesToHex(sig.subarray(32, 64)))
    const twin = concat(sig.subarray(0, 32), Uint8Array.from(Buffer.from((n - s).toString(16).padStart(64, '0'), 'hex')), [sig[64] === 27 ? 28 : 27])
    const bad = [
      new Uint8Array(0),
      sig.subarray(0, 64),
      concat(sig, [0]),
      filled(65, 0),
      concat(sig.subarray(0, 64), [29]),
      concat(sig.subarray(0, 64), [0]),
      twin,
      concat(filled(32, 0xff), sig.subarray(32)) // r ≥ n
    ]
    const rand = prng(65)
    for (let i = 0; i < 50; i++) bad.push(randomBytes(rand, 65))
    for (const requesterSig of bad) {
      assert.equal(await verifyTaskSignature({ ...signed, requesterSig }, TASK_MANAGER), false, bytesToHex(requesterSig))
    }
  })

  it('throws DecodeError when asked to verify a task with invalid fields', async () => {
    const signed = await signTask(accountA, TASK_MANAGER, fields)
    await assert.rejects(verifyTaskSignature({ ...signed, quorumBps: 0 }, TASK_MANAGER), (err) => err instanceof DecodeError && err.field === 'quorumBps')
  })

  it('refuses to sign a task peers would reject', async () => {
    await assert.rejects(signTask(accountA, TASK_MANAGER, { ...fields, input: filled(MAX_INLINE_INPUT_BYTES + 1, 1) }),
      (err) => err instanceof EncodeError && err.code === 'OVERSIZED' && err.field === 'input')
    await assert.rejects(signTask(accountA, TASK_MANAGER, { ...fields, inputRef: filled(32, 1) }),
      (err) => err instanceof EncodeError && err.field === 'inputRef')
    await assert.rejects(signTask(accountA, TASK_MANAGER, { ...fields, fee: -1n }),
      (err) => err instanceof EncodeError && err.field === 'fee')
    await assert.rejects(signTask(accountA, '0x1234' as Address, fields),
      (err) => err instanceof EncodeError && err.field === 'verifyingContract')
  })

  it('taskDomain names the chain and contract', () => {
    assert.deepEqual(taskDomain(CHAIN_ID, TASK_MANAGER), { name: 'poi', version: '1', chainId: CHAIN_ID, verifyingContract: TASK_MANAGER })
  })

  it('taskIdOf is the EIP-712 digest the requester signs: stable, covers every field and the domain, ignores the signature', async () => {
    const signed = await signTask(accountA, TASK_MANAGER, fields)
    const id = taskIdOf(signed, TASK_MANAGER)
    assert.equal(id.length, 32)
    assert.deepEqual(taskIdOf(signed, TASK_MANAGER), id)
    assert.deepEqual(taskIdOf(decodeTaskAnnouncement(encodeTaskAnnouncement(signed)), TASK_MANAGER), id)
    // Documented definition: the digest the signature recovers from.
    assert.equal(await recoverAddress({ hash: bytesToHex(id), signature: bytesToHex(signed.requesterSig) }), accountA.address)
    assert.deepEqual(taskIdOf({ ...signed, requesterSig: filled(65, 0x42) }, TASK_MANAGER), id)
    assert.deepEqual(taskIdOf({ ...signed, requesterSig: new Uint8Array(0) }, TASK_MANAGER), id)
    // The same task for another contract (or chain, in CHANGES) is another task.
    assert.notDeepEqual(taskIdOf(signed, OTHER_TASK_MANAGER), id)

    const seen = new Set([bytesToHex(id)])
    for (const [name, change] of CHANGES) {
      const other = bytesToHex(taskIdOf({ ...signed, ...change }, TASK_MANAGER))
      assert.ok(!seen.has(other), `changing ${name} did not change the taskId`)
      seen.add(other)
    }
  })
})
