import assert from 'node:assert/strict'
import { bytesToHex, keccak256, type Address } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { mulberry32 } from '../node/fixtures/build-model.js'
// The modules under test are imported directly (not through protocols/index.ts) so this suite
// does not load libp2p; index.ts re-exports all of them.
import {
  DecodeError, EncodeError, decodeAttestation, decodeQuorumCertificate, decodeTaskAnnouncement,
  encodeAttestation, encodeQuorumCertificate, encodeTaskAnnouncement, type DecodeErrorCode,
  MAX_ATTESTATION_BYTES, MAX_INLINE_INPUT_BYTES, MAX_INLINE_OUTPUT_BYTES, MAX_MODEL_ID_BYTES,
  MAX_OPERATORS, MAX_PARAMS_BYTES, MAX_QUORUM_CERTIFICATE_BYTES, MAX_SIGNER_BITMAP_BYTES,
  MAX_TASK_ANNOUNCEMENT_BYTES, PROTOCOL_VERSION, UINT64_MAX, Attestation, QuorumCertificate,
  TaskAnnouncement, signTask, taskDomain, taskIdOf, verifyTaskSignature, type TaskFields, uint256ToBytes
} from '../protocols/wire/index.js'

// anvil's first two default accounts: public test keys, never funded outside a devnet.
const KEY_A = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80'
const KEY_B = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d'
const TASK_MANAGER: Address = '0x5FbDB2315678afecb367f032d93F642f64180aa3'
const OTHER_TASK_MANAGER: Address = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512'
const CHAIN_ID = 31337n
const UINT256_MAX = (1n << 256n) - 1n

/** Seeded floats in [0, 1), so fuzz failures replay exactly. */
function prng (seed: number): () => number {
  const next = mulberry32(seed)
  return () => next() / 2 ** 32
}

function randomBytes (rand: () => number, length: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) out[i] = Math.floor(rand() * 256)
  return out
}

function filled (length: number, byte: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(length).fill(byte)
}

function concat (...parts: Array<ArrayLike<number>>): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}

function task (overrides: Partial<TaskAnnouncement> = {}): TaskAnnouncement {
  return {
    version: PROTOCOL_VERSION,
    chainId: CHAIN_ID,
    modelId: filled(36, 0x01),
    input: filled(100, 0x02),
    inputRef: new Uint8Array(0),
    params: filled(10, 0x03),
    fee: uint256ToBytes(10n ** 18n),
    deadline: 1_700_000_000_000n,
    quorumBps: 6667,
    nonce: 7n,
    requester: filled(20, 0x04),
    requesterSig: filled(65, 0x05),
    ...overrides
  }
}

function attestation (overrides: Partial<Attestation> = {}): Attestation {
  return {
    version: PROTOCOL_VERSION,
    taskId: filled(32, 0x11),
    resultHash: filled(32, 0x12),
    outputRef: filled(32, 0x13),
    epoch: 3n,
    operatorIndex: 5,
    blsSig: filled(96, 0x14),
    output: filled(50, 0x15),
    ...overrides
  }
}

function certificate (overrides: Partial<QuorumCertificate> = {}): QuorumCertificate {
  return {
    version: PROTOCOL_VERSION,
    taskId: filled(32, 0x21),
    resultHash: filled(32, 0x22),
    outputRef: filled(32, 0x23),
    epoch: 3n,
    signerBitmap: Uint8Array.from([0b1011_0111, 0x01]),
    aggregateSig: filled(96, 0x24),
    signedStake: uint256ToBytes(70n * 10n ** 18n),
    totalStake: uint256ToBytes(100n * 10n ** 18n),
    output: filled(50, 0x25),
    ...overrides
  }
}

function expectDecodeError (fn: () => unknown, code: DecodeErrorCode, field?: string): DecodeError {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  assert.ok(caught instanceof DecodeError, `expected DecodeError ${code}, got ${caught === undefined ? 'no error' : String(caught)}`)
  assert.equal(caught.code, code, caught.message)
  if (field !== undefined) assert.equal(caught.field, field, caught.message)
  assert.match(caught.message, new RegExp(caught.messageType))
  return caught
}

function expectEncodeError (fn: () => unknown, code: DecodeErrorCode, field?: string): void {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  assert.ok(caught instanceof EncodeError, `expected EncodeError ${code}, got ${caught === undefined ? 'no error' : String(caught)}`)
  assert.equal(caught.code, code, caught.message)
  if (field !== undefined) assert.equal(caught.field, field, caught.message)
}

/** The three codecs behind one shape, so the structural tests run on each. */
const CODECS = [
  { name: 'TaskAnnouncement', valid: () => TaskAnnouncement.encode(task()), decode: decodeTaskAnnouncement, max: MAX_TASK_ANNOUNCEMENT_BYTES, raw: (o: object) => TaskAnnouncement.encode(o) },
  { name: 'Attestation', valid: () => Attestation.encode(attestation()), decode: decodeAttestation, max: MAX_ATTESTATION_BYTES, raw: (o: object) => Attestation.encode(o) },
  { name: 'QuorumCertificate', valid: () => QuorumCertificate.encode(certificate()), decode: decodeQuorumCertificate, max: MAX_QUORUM_CERTIFICATE_BYTES, raw: (o: object) => QuorumCertificate.encode(o) }
] as const

describe('wire codecs', () => {
  describe('round trips', () => {
    it('task announcements: typical, max-size fields, zero values, inputRef', () => {
      const cases = [
        task(),
        task({
          chainId: UINT64_MAX,
          modelId: filled(MAX_MODEL_ID_BYTES, 0xff),
          input: filled(MAX_INLINE_INPUT_BYTES, 0xff),
          params: filled(MAX_PARAMS_BYTES, 0xff),
          fee: uint256ToBytes(UINT256_MAX),
          deadline: UINT64_MAX,
          quorumBps: 10_000,
          nonce: UINT64_MAX,
          requester: filled(20, 0xff),
          requesterSig: filled(65, 0xff)
        }),
        task({ fee: new Uint8Array(0), nonce: 0n, params: new Uint8Array(0), quorumBps: 1, deadline: 1n, chainId: 1n, modelId: filled(1, 9) }),
        task({ input: new Uint8Array(0), inputRef: filled(32, 0x09) })
      ]
      for (const t of cases) {
        const bytes = encodeTaskAnnouncement(t)
        assert.ok(bytes.length <= MAX_TASK_ANNOUNCEMENT_BYTES)
        assert.deepEqual(decodeTaskAnnouncement(bytes), t)
      }
    })

    it('attestations: typical, max output and indices, zero values', () => {
      const cases = [
        attestation(),
        attestation({ epoch: UINT64_MAX, operatorIndex: MAX_OPERATORS - 1, output: filled(MAX_INLINE_OUTPUT_BYTES, 0xff) }),
        attestation({ epoch: 0n, operatorIndex: 0, output: new Uint8Array(0) })
      ]
      for (const a of cases) {
        const bytes = encodeAttestation(a)
        assert.ok(bytes.length <= MAX_ATTESTATION_BYTES)
        assert.deepEqual(decodeAttestation(bytes), a)
      }
    })

    it('certificates: full bitmap, big uint256 stakes, zero stakes, max output', () => {
      const cases = [
        certificate(),
        certificate({
          epoch: UINT64_MAX,
          signerBitmap: filled(MAX_SIGNER_BITMAP_BYTES, 0xff),
          signedStake: uint256ToBytes(UINT256_MAX),
          totalStake: uint256ToBytes(UINT256_MAX),
          output: filled(MAX_INLINE_OUTPUT_BYTES, 0xff)
        }),
        certificate({ epoch: 0n, signerBitmap: Uint8Array.from([1]), signedStake: new Uint8Array(0), totalStake: new Uint8Array(0), output: new Uint8Array(0) })
      ]
      for (const c of cases) {
        const bytes = encodeQuorumCertificate(c)
        assert.ok(bytes.length <= MAX_QUORUM_CERTIFICATE_BYTES)
        const decoded = decodeQuorumCertificate(bytes)
        assert.deepEqual(decoded, c)
      }
    })
  })

  for (const codec of CODECS) {
    describe(`${codec.name} rejects bad bytes`, () => {
      it('accepts no prefix of a valid message as that message', () => {
        const valid = codec.valid()
        const original = codec.decode(valid)
        const codes = new Set<string>()
        for (let n = 0; n < valid.length; n++) {
          try {
            const decoded = codec.decode(valid.subarray(0, n))
            // Only a cut exactly before an optional last field can decode; it is then a different message.
            assert.notDeepEqual(decoded, original, `prefix of ${n} bytes decoded as the full message`)
          } catch (err) {
            assert.ok(err instanceof DecodeError, `prefix of ${n} bytes threw ${String(err)}`)
            codes.add(err.code)
          }
        }
        assert.ok(codes.has('TRUNCATED'), 'cuts inside a field are reported as TRUNCATED')
        assert.ok(codes.has('UNKNOWN_VERSION'), 'the empty prefix has no version')
      })

      it('rejects a message over the size limit before decoding', () => {
        expectDecodeError(() => codec.decode(new Uint8Array(codec.max + 1)), 'OVERSIZED')
      })

      it('rejects unknown versions, including a newer version with new fields', () => {
        const valid = codec.valid()
        // version is field 1, the first two bytes: 0x08 0x01
        assert.deepEqual([...valid.subarray(0, 2)], [0x08, PROTOCOL_VERSION])
        expectDecodeError(() => codec.decode(concat([0x08, 2], valid.subarray(2))), 'UNKNOWN_VERSION', 'version')
        expectDecodeError(() => codec.decode(valid.subarray(2)), 'UNKNOWN_VERSION', 'version')
        const newField = Uint8Array.from([0xfa, 0x01, 0x01, 0x00]) // field 31, bytes, length 1
        expectDecodeError(() => codec.decode(concat([0x08, 2], valid.subarray(2), newField)), 'UNKNOWN_VERSION')
      })

      it('throws only DecodeError on seeded random garbage', () => {
        const rand = prng(0xc0dec + codec.name.length)
        for (let i = 0; i < 3000; i++) {
          const bytes = randomBytes(rand, Math.floor(rand() * 400))
          assert.throws(() => codec.decode(bytes), DecodeError, `garbage #${i} ${bytesToHex(bytes)}`)
        }
      })

      it('on seeded mutations of a valid message, either throws DecodeError or decodes canonically', () => {
        const rand = prng(0xbadbad + codec.name.length)
        const valid = codec.valid()
        let accepted = 0
        for (let i = 0; i < 3000; i++) {
          const bytes = Uint8Array.from(valid)
          const flips = 1 + Math.floor(rand() * 3)
          for (let f = 0; f < flips; f++) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256)
          try {
            const decoded = codec.decode(bytes)
            assert.deepEqual(codec.raw(decoded), bytes, 'an accepted message is its own canonical encoding')
            accepted++
          } catch (err) {
            assert.ok(err instanceof DecodeError, `mutation #${i} ${bytesToHex(bytes)} threw ${String(err)}`)
          }
        }
        // Flips inside payload bytes keep the message valid: the fuzz is not all rejections.
        assert.ok(accepted > 0)
      })

      it('rejects trailing garbage, unknown and repeated fields as NON_CANONICAL', () => {
        const valid = codec.valid()
        expectDecodeError(() => codec.decode(concat(valid, [0xfa, 0x01, 0x01, 0x00])), 'NON_CANONICAL') // unknown field 31, bytes
        expectDecodeError(() => codec.decode(concat(valid, [0xf8, 0x01, 0x05])), 'NON_CANONICAL') // unknown field 31, varint
        expectDecodeError(() => codec.decode(concat(valid, [0x08, PROTOCOL_VERSION])), 'NON_CANONICAL') // version repeated
        expectDecodeError(() => codec.decode(concat([0x08, 0x81, 0x00], valid.subarray(2))), 'NON_CANONICAL') // overlong varint 1
        // Random trailing bytes: always a DecodeError, whatever the code.
        const rand = prng(7)
        for (let i = 0; i < 200; i++) {
          assert.throws(() => codec.decode(concat(valid, randomBytes(rand, 1 + Math.floor(rand() * 20)))), DecodeError)
        }
        expectDecodeError(() => codec.decode(concat(valid, [0x00])), 'MALFORMED') // field number 0
      })

      it('rejects groups and wrong wire types as MALFORMED, deep nesting included', () => {
        const valid = codec.valid()
        expectDecodeError(() => codec.decode(concat([0x0a, 0x01, 0x01], valid.subarray(2))), 'MALFORMED', 'version') // version as bytes
        expectDecodeError(() => codec.decode(concat(valid, [0xfb, 0x01, 0xfc, 0x01])), 'MALFORMED') // group field 31
        // 60 000 nested group starts would overflow the stack of a recursive skipper.
        expectDecodeError(() => codec.decode(concat(valid.subarray(0, 2), filled(60_000, 0x6b))), 'MALFORMED')
        expectDecodeError(() => codec.decode(concat(valid, [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])), 'MALFORMED') // 11-byte varint
      })
    })
  }

  describe('field checks (decoder and encoder agree)', () => {
    type Case<T> = [string, Partial<T>, DecodeErrorCode, string]
    const taskCases: Array<Case<TaskAnnouncement>> = [
      ['chainId 0', { chainId: 0n }, 'INVALID_FIELD', 'chainId'],
      ['empty modelId', { modelId: new Uint8Array(0) }, 'INVALID_FIELD', 'modelId'],
      ['modelId too long', { modelId: filled(MAX_MODEL_ID_BYTES + 1, 1) }, 'OVERSIZED', 'modelId'],
      ['input over 64 KiB', { input: filled(MAX_INLINE_INPUT_BYTES + 1, 1) }, 'OVERSIZED', 'input'],
      ['no input at all', { input: new Uint8Array(0) }, 'INVALID_FIELD', 'input'],
      ['both input and inputRef', { inputRef: filled(32, 1) }, 'INVALID_FIELD', 'inputRef'],
      ['inputRef of 31 bytes', { input: new Uint8Array(0), inputRef: filled(31, 1) }, 'INVALID_FIELD', 'inputRef'],
      ['inputRef all zero', { input: new Uint8Array(0), inputRef: filled(32, 0) }, 'INVALID_FIELD', 'inputRef'],
      ['params over 4 KiB', { params: filled(MAX_PARAMS_BYTES + 1, 1) }, 'OVERSIZED', 'params'],
      ['fee with a leading zero', { fee: Uint8Array.from([0, 1]) }, 'NON_CANONICAL', 'fee'],
      ['fee of 33 bytes', { fee: filled(33, 1) }, 'OVERSIZED', 'fee'],
      ['deadline 0', { deadline: 0n }, 'INVALID_FIELD', 'deadline'],
      ['quorumBps 0', { quorumBps: 0 }, 'INVALID_FIELD', 'quorumBps'],
      ['quorumBps 10001', { quorumBps: 10_001 }, 'INVALID_FIELD', 'quorumBps'],
      ['requester of 19 bytes', { requester: filled(19, 1) }, 'INVALID_FIELD', 'requester'],
      ['requesterSig of 64 bytes', { requesterSig: filled(64, 1) }, 'INVALID_FIELD', 'requesterSig'],
      ['no requesterSig', { requesterSig: new Uint8Array(0) }, 'INVALID_FIELD', 'requesterSig']
    ]
    const attestationCases: Array<Case<Attestation>> = [
      ['taskId of 31 bytes', { taskId: filled(31, 1) }, 'INVALID_FIELD', 'taskId'],
      ['taskId of 33 bytes', { taskId: filled(33, 1) }, 'INVALID_FIELD', 'taskId'],
      ['missing resultHash', { resultHash: new Uint8Array(0) }, 'INVALID_FIELD', 'resultHash'],
      ['outputRef of 20 bytes', { outputRef: filled(20, 1) }, 'INVALID_FIELD', 'outputRef'],
      ['operatorIndex out of range', { operatorIndex: MAX_OPERATORS }, 'INVALID_FIELD', 'operatorIndex'],
      ['blsSig of 95 bytes', { blsSig: filled(95, 1) }, 'INVALID_FIELD', 'blsSig'],
      ['output over 64 KiB', { output: filled(MAX_INLINE_OUTPUT_BYTES + 1, 1) }, 'OVERSIZED', 'output']
    ]
    const certificateCases: Array<Case<QuorumCertificate>> = [
      ['resultHash of 33 bytes', { resultHash: filled(33, 1) }, 'INVALID_FIELD', 'resultHash'],
      ['empty signerBitmap', { signerBitmap: new Uint8Array(0) }, 'INVALID_FIELD', 'signerBitmap'],
      ['signerBitmap over MAX_OPERATORS bits', { signerBitmap: filled(MAX_SIGNER_BITMAP_BYTES + 1, 1) }, 'OVERSIZED', 'signerBitmap'],
      ['signerBitmap with a trailing zero byte', { signerBitmap: Uint8Array.from([1, 0]) }, 'NON_CANONICAL', 'signerBitmap'],
      ['aggregateSig of 97 bytes', { aggregateSig: filled(97, 1) }, 'INVALID_FIELD', 'aggregateSig'],
      ['signedStake with a leading zero', { signedStake: Uint8Array.from([0, 1]) }, 'NON_CANONICAL', 'signedStake'],
      ['totalStake of 33 bytes', { totalStake: filled(33, 1) }, 'OVERSIZED', 'totalStake'],
      ['signedStake above totalStake', { signedStake: uint256ToBytes(101n * 10n ** 18n) }, 'INVALID_FIELD', 'signedStake']
    ]

    for (const [name, change, code, field] of taskCases) {
      it(`TaskAnnouncement: ${name} → ${code}`, () => {
        const bad = task(change)
        expectDecodeError(() => decodeTaskAnnouncement(TaskAnnouncement.encode(bad)), code, field)
        expectEncodeError(() => encodeTaskAnnouncement(bad), code, field)
      })
    }
    for (const [name, change, code, field] of attestationCases) {
      it(`Attestation: ${name} → ${code}`, () => {
        const bad = attestation(change)
        expectDecodeError(() => decodeAttestation(Attestation.encode(bad)), code, field)
        expectEncodeError(() => encodeAttestation(bad), code, field)
      })
    }
    for (const [name, change, code, field] of certificateCases) {
      it(`QuorumCertificate: ${name} → ${code}`, () => {
        const bad = certificate(change)
        expectDecodeError(() => decodeQuorumCertificate(QuorumCertificate.encode(bad)), code, field)
        expectEncodeError(() => encodeQuorumCertificate(bad), code, field)
      })
    }

    it('encoders refuse other versions and out-of-range integers', () => {
      expectEncodeError(() => encodeTaskAnnouncement(task({ version: 2 })), 'UNKNOWN_VERSION', 'version')
      expectEncodeError(() => encodeAttestation(attestation({ version: 0 })), 'UNKNOWN_VERSION', 'version')
      expectEncodeError(() => encodeTaskAnnouncement(task({ nonce: UINT64_MAX + 1n })), 'INVALID_FIELD', 'nonce')
      expectEncodeError(() => encodeTaskAnnouncement(task({ quorumBps: 66.5 })), 'INVALID_FIELD', 'quorumBps')
      expectEncodeError(() => encodeAttestation(attestation({ epoch: -1n })), 'INVALID_FIELD', 'epoch')
    })

    it('rejects a default value written out explicitly', () => {
      // nonce 0 is omitted by the canonical encoding; writing it as field 10 = 0 is a second spelling.
      const bytes = TaskAnnouncement.encode(task({ nonce: 0n }))
      const explicit = TaskAnnouncement.encode(task({ nonce: 0n, requester: new Uint8Array(0), requesterSig: new Uint8Array(0) }))
      const withZero = concat(explicit, [0x50, 0x00], bytes.subarray(explicit.length))
      expectDecodeError(() => decodeTaskAnnouncement(withZero), 'NON_CANONICAL')
      assert.deepEqual(decodeTaskAnnouncement(bytes).nonce, 0n)
    })
  })
})

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
    ['requester', { requester: Uint8Array.from(Buffer.from(accountB.address.slice(2), 'hex')) }]
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

  it('taskIdOf is stable, covers every field, and ignores the signature', async () => {
    const signed = await signTask(accountA, TASK_MANAGER, fields)
    const id = taskIdOf(signed)
    assert.equal(id.length, 32)
    assert.deepEqual(taskIdOf(signed), id)
    assert.deepEqual(taskIdOf(decodeTaskAnnouncement(encodeTaskAnnouncement(signed))), id)
    // Documented definition: keccak256 of the canonical encoding without the signature.
    assert.deepEqual(id, keccak256(TaskAnnouncement.encode({ ...signed, requesterSig: new Uint8Array(0) }), 'bytes'))
    assert.deepEqual(taskIdOf({ ...signed, requesterSig: filled(65, 0x42) }), id)
    assert.deepEqual(taskIdOf({ ...signed, requesterSig: new Uint8Array(0) }), id)

    const seen = new Set([bytesToHex(id)])
    for (const [name, change] of CHANGES) {
      const other = bytesToHex(taskIdOf({ ...signed, ...change }))
      assert.ok(!seen.has(other), `changing ${name} did not change the taskId`)
      seen.add(other)
    }
  })
})
