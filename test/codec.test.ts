/**
 * The strict codec on the three gossip messages: round trips, every structural fault of the
 * bytes, and every field rule, on the decoder and the encoder alike.
 */
import assert from 'node:assert/strict'
import { bytesToHex } from 'viem'
import {
  DecodeError, decodeAttestation, decodeQuorumCertificate, decodeTaskAnnouncement,
  encodeAttestation, encodeQuorumCertificate, encodeTaskAnnouncement, type DecodeErrorCode,
  MAX_ATTESTATION_BYTES, MAX_INLINE_INPUT_BYTES, MAX_INLINE_OUTPUT_BYTES, MAX_MODEL_ID_BYTES,
  MAX_OPERATORS, MAX_PARAMS_BYTES, MAX_QUORUM_CERTIFICATE_BYTES, MAX_SIGNER_BITMAP_BYTES,
  MAX_TASK_ANNOUNCEMENT_BYTES, PROTOCOL_VERSION, UINT64_MAX, Attestation, QuorumCertificate,
  TaskAnnouncement, uint256ToBytes, BN254_SCALAR_FIELD, ZkProofBody, decodeZkProofBody, MAX_ZK_PROOF_BODY_BYTES
} from '../protocols/wire/index.js'
import {
  attestation, certificate, concat, expectDecodeError, expectEncodeError, filled, prng, randomBytes, task, zkProofBody
} from './helpers/wire-fixtures.js'

const UINT256_MAX = (1n << 256n) - 1n

/** The three codecs behind one shape, so the structural tests run on each. */
const CODECS = [
  { name: 'TaskAnnouncement', valid: () => TaskAnnouncement.encode(task()), decode: decodeTaskAnnouncement, max: MAX_TASK_ANNOUNCEMENT_BYTES, raw: (o: object) => TaskAnnouncement.encode(o) },
  { name: 'Attestation', valid: () => Attestation.encode(attestation()), decode: decodeAttestation, max: MAX_ATTESTATION_BYTES, raw: (o: object) => Attestation.encode(o) },
  { name: 'QuorumCertificate', valid: () => QuorumCertificate.encode(certificate()), decode: decodeQuorumCertificate, max: MAX_QUORUM_CERTIFICATE_BYTES, raw: (o: object) => QuorumCertificate.encode(o) },
  // the zk announcement's own structural tests are in zk-wire.test.ts (its proofRef makes every payload mutation invalid)
  { name: 'ZkProofBody', valid: () => ZkProofBody.encode(zkProofBody()), decode: decodeZkProofBody, max: MAX_ZK_PROOF_BODY_BYTES, raw: (o: object) => ZkProofBody.encode(o) }
] as const

/** Each case encodes within `maxBytes` and decodes back to itself. */
function roundTrips<T> (cases: T[], encode: (value: T) => Uint8Array, decode: (bytes: Uint8Array) => T, maxBytes: number): void {
  for (const value of cases) {
    const bytes = encode(value)
    assert.ok(bytes.length <= maxBytes, `${bytes.length} bytes, over ${maxBytes}`)
    assert.deepEqual(decode(bytes), value)
  }
}

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
        task({ input: new Uint8Array(0), inputRef: filled(32, 0x09) }),
        task({ validationRequest: filled(32, 0x0a) }),
        task({ tier: 1, nonce: 1n << 40n, inputCommitment: uint256ToBytes(BN254_SCALAR_FIELD - 1n) }),
        task({ tier: 2, nonce: (1n << 64n) - 1n, inputCommitment: filled(32, 0x0b) }),
        // a commitment below 2^248 (about 1 in 49 of them) starts with a zero byte: still 32 bytes, accepted
        task({ tier: 1, nonce: 1n << 40n, inputCommitment: concat([0, 0], filled(30, 0x2f)) })
      ]
      roundTrips(cases, encodeTaskAnnouncement, decodeTaskAnnouncement, MAX_TASK_ANNOUNCEMENT_BYTES)
    })

    it('attestations: typical, max output and indices, zero values', () => {
      const cases = [
        attestation(),
        attestation({ epoch: UINT64_MAX, operatorIndex: MAX_OPERATORS - 1, output: filled(MAX_INLINE_OUTPUT_BYTES, 0xff) }),
        attestation({ epoch: 0n, operatorIndex: 0, output: new Uint8Array(0) })
      ]
      roundTrips(cases, encodeAttestation, decodeAttestation, MAX_ATTESTATION_BYTES)
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
      roundTrips(cases, encodeQuorumCertificate, decodeQuorumCertificate, MAX_QUORUM_CERTIFICATE_BYTES)
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
      ['validationRequest of 31 bytes', { validationRequest: filled(31, 1) }, 'INVALID_FIELD', 'validationRequest'],
      ['validationRequest all zero', { validationRequest: filled(32, 0) }, 'INVALID_FIELD', 'validationRequest'],
      ['tier 3', { tier: 3 }, 'INVALID_FIELD', 'tier'],
      ['a replicated task with an input commitment', { inputCommitment: filled(32, 1) }, 'INVALID_FIELD', 'inputCommitment'],
      ['a zk task without an input commitment', { tier: 1, nonce: 1n << 40n }, 'INVALID_FIELD', 'inputCommitment'],
      ['a both task with a 31-byte input commitment', { tier: 2, nonce: 1n << 40n, inputCommitment: filled(31, 1) }, 'INVALID_FIELD', 'inputCommitment'],
      ['an input commitment not below the BN254 field', { tier: 1, nonce: 1n << 40n, inputCommitment: uint256ToBytes(BN254_SCALAR_FIELD) }, 'INVALID_FIELD', 'inputCommitment'],
      ['a zk task with a tab sequence for nonce', { tier: 1, nonce: (1n << 40n) - 1n, inputCommitment: filled(32, 1) }, 'INVALID_FIELD', 'nonce'],
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
