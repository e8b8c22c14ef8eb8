/**
 * The zk tier on the wire (issue 16, spec16n part B): the ZkProofAnnouncement codec (its body's
 * structural tests run with the other codecs in codec.test.ts), and a real proof's 256 bytes,
 * held against the on-chain calldata contracts/zk-verifier.ts builds from the same proof.
 */
import assert from 'node:assert/strict'
import { proofCalldata } from '../contracts/zk-verifier.js'
import {
  ProofRejectedError, parseZkProof, proofFromBytes, proofToBytes, publicSignalsOf, releaseCurve, verifyProof, type ZkProof
} from '../node/inference/zk/index.js'
import {
  BN254_BASE_FIELD, BN254_SCALAR_FIELD, DecodeError, MAX_INLINE_OUTPUT_BYTES, MAX_ZK_PROOF_ANNOUNCEMENT_BYTES, PROTOCOL_VERSION, ZK_PROOF_COORDINATES,
  ZkProofAnnouncement, decodeZkProofAnnouncement, decodeZkProofBody, encodeZkProofAnnouncement, encodeZkProofBody, proofRefOf, uint256ToBytes,
  zkProofAnnouncementOf, zkProofBodyOf, type ZkProofBody
} from '../protocols/wire/index.js'
import { concat, expectDecodeError, expectEncodeError, filled, zkProofBody } from './helpers/wire-fixtures.js'
import { zkTestModel, zkTestRun } from './helpers/zk-test-model.js'

/** A 32-byte big-endian field element. */
const word = (v: bigint): Uint8Array<ArrayBuffer> => concat(new Uint8Array(32 - uint256ToBytes(v).length), uint256ToBytes(v))

/** A proof whose coordinate `i` is `v`, the others the fixture's. */
function withCoordinate (i: number, v: bigint): Uint8Array<ArrayBuffer> {
  const proof = filled(256, 0x11)
  proof.set(word(v), i * 32)
  return proof
}

/** An announcement of `body` whose fields are then overridden (proofRef kept unless overridden). */
function announcement (body: Partial<ZkProofBody> = {}, overrides: Partial<ZkProofAnnouncement> = {}): ZkProofAnnouncement {
  return { ...zkProofAnnouncementOf(zkProofBody(body)), ...overrides }
}

/** A valid announcement with fields then broken (its proofRef is the valid body's: the broken field is reported first). */
function broken (fields: Partial<ZkProofAnnouncement>): ZkProofAnnouncement {
  return { ...announcement(), ...fields }
}

describe('zk proofs on the wire', function () {
  describe('ZkProofAnnouncement codec', function () {
    it('round-trips typical and extreme announcements; proofRef is the keccak256 of the body', function () {
      const cases = [
        announcement(),
        announcement({ output: filled(MAX_INLINE_OUTPUT_BYTES, 0xff), outputCommitment: word(BN254_SCALAR_FIELD - 1n) }),
        announcement({ outputCommitment: new Uint8Array(32), proof: new Uint8Array(256), output: Uint8Array.from([1]) }),
        ...ZK_PROOF_COORDINATES.map((_, i) => announcement({ proof: withCoordinate(i, BN254_BASE_FIELD - 1n) }))
      ]
      for (const a of cases) {
        const bytes = encodeZkProofAnnouncement(a)
        assert.ok(bytes.length <= MAX_ZK_PROOF_ANNOUNCEMENT_BYTES)
        assert.deepEqual(decodeZkProofAnnouncement(bytes), a)
        const body = zkProofBodyOf(a)
        assert.deepEqual(a.proofRef, proofRefOf(body))
        assert.deepEqual(decodeZkProofBody(encodeZkProofBody(body)), body)
      }
    })

    const bad: Array<[string, () => ZkProofAnnouncement, DecodeError['code'], string | undefined]> = [
      ['version 2', () => broken({ version: 2 }), 'UNKNOWN_VERSION', 'version'],
      ['version 0 (absent)', () => broken({ version: 0 }), 'UNKNOWN_VERSION', 'version'],
      ['a 31-byte taskId', () => broken({ taskId: filled(31, 1) }), 'INVALID_FIELD', 'taskId'],
      ['a 33-byte taskId', () => broken({ taskId: filled(33, 1) }), 'INVALID_FIELD', 'taskId'],
      ['a 21-byte prover', () => broken({ prover: filled(21, 2) }), 'INVALID_FIELD', 'prover'],
      ['no prover', () => broken({ prover: new Uint8Array(0) }), 'INVALID_FIELD', 'prover'],
      ['a 255-byte proof', () => broken({ proof: filled(255, 0x11) }), 'INVALID_FIELD', 'proof'],
      ['a 257-byte proof', () => broken({ proof: filled(257, 0x11) }), 'INVALID_FIELD', 'proof'],
      ...ZK_PROOF_COORDINATES.map((name, i): [string, () => ZkProofAnnouncement, DecodeError['code'], string] =>
        [`proof coordinate ${name} = q`, () => broken({ proof: withCoordinate(i, BN254_BASE_FIELD) }), 'INVALID_FIELD', 'proof']),
      ['a proof coordinate of all ones', () => broken({ proof: withCoordinate(7, (1n << 256n) - 1n) }), 'INVALID_FIELD', 'proof'],
      ['outputCommitment = r', () => broken({ outputCommitment: word(BN254_SCALAR_FIELD) }), 'INVALID_FIELD', 'outputCommitment'],
      ['a 31-byte outputCommitment', () => broken({ outputCommitment: filled(31, 0x0b) }), 'INVALID_FIELD', 'outputCommitment'],
      ['no output', () => broken({ output: new Uint8Array(0) }), 'INVALID_FIELD', 'output'],
      ['an output over 64 KiB', () => broken({ output: filled(MAX_INLINE_OUTPUT_BYTES + 1, 1) }), 'OVERSIZED', 'output'],
      ['a proofRef of another body', () => announcement({}, { proofRef: proofRefOf(zkProofBody({ output: filled(50, 0x36) })) }), 'INVALID_FIELD', 'proofRef'],
      ['a body changed after its proofRef', () => ({ ...announcement(), output: filled(50, 0x36) }), 'INVALID_FIELD', 'proofRef'],
      ['a 31-byte proofRef', () => announcement({}, { proofRef: filled(31, 3) }), 'INVALID_FIELD', 'proofRef']
    ]
    for (const [name, make, code, field] of bad) {
      it(`refuses ${name} (${code}), decoding and encoding alike`, function () {
        const a = make()
        expectDecodeError(() => decodeZkProofAnnouncement(ZkProofAnnouncement.encode(a)), code, field)
        expectEncodeError(() => encodeZkProofAnnouncement(a), code, field)
      })
    }

    it('refuses trailing bytes, a repeated field, an unknown field, an oversized message and every prefix', function () {
      const valid = encodeZkProofAnnouncement(announcement())
      expectDecodeError(() => decodeZkProofAnnouncement(concat(valid, [0x00])), 'MALFORMED')
      expectDecodeError(() => decodeZkProofAnnouncement(concat(valid, [0xfa, 0x01, 0x01, 0x00])), 'NON_CANONICAL')
      expectDecodeError(() => decodeZkProofAnnouncement(concat(valid, [0x08, PROTOCOL_VERSION])), 'NON_CANONICAL')
      expectDecodeError(() => decodeZkProofAnnouncement(new Uint8Array(MAX_ZK_PROOF_ANNOUNCEMENT_BYTES + 1)), 'OVERSIZED')
      for (let n = 0; n < valid.length; n++) assert.throws(() => decodeZkProofAnnouncement(valid.subarray(0, n)), DecodeError, `prefix of ${n} bytes`)
    })
  })

  describe('proof bytes (a real proof of the zk test model)', function () {
    this.timeout(300_000)
    let proof: ZkProof

    before(async function () {
      const started = Date.now()
      await zkTestModel()
      const run = await zkTestRun([3, -100], 0xa1n)
      proof = run.proof
      console.log(`      (fixture and one proof in ${Date.now() - started} ms, proving ${run.proveMs} ms)`)
    })
    after(async function () { await releaseCurve() })

    it('writes the 8 coordinates in the on-chain calldata order, and reads them back into the same proof', async function () {
      const bytes = proofToBytes(proof)
      assert.equal(bytes.length, 256)
      const [a, b, c] = proofCalldata(proof)
      const words = Array.from({ length: 8 }, (_, i) => BigInt(`0x${Buffer.from(bytes.subarray(i * 32, i * 32 + 32)).toString('hex')}`))
      assert.deepEqual(words, [a[0], a[1], b[0][0], b[0][1], b[1][0], b[1][1], c[0], c[1]])
      const back = proofFromBytes(bytes, publicSignalsOf(proof))
      assert.deepEqual(back, parseZkProof(proof))
      await verifyProof((await zkTestModel()).verificationKey, back, publicSignalsOf(proof))
    })

    it('refuses bytes of another length, a coordinate ≥ q and a signal ≥ r; a flipped coordinate no longer verifies', async function () {
      const bytes = proofToBytes(proof)
      const signals = publicSignalsOf(proof)
      const reasonOf = (fn: () => unknown): string => {
        try { fn() } catch (err) { assert.ok(err instanceof ProofRejectedError, String(err)); return err.reason }
        assert.fail('accepted')
      }
      assert.equal(reasonOf(() => proofFromBytes(bytes.subarray(1), signals)), 'invalid')
      const big = Uint8Array.from(bytes)
      big.set(word(BN254_BASE_FIELD), 32)
      assert.equal(reasonOf(() => proofFromBytes(big, signals)), 'invalid')
      assert.equal(reasonOf(() => proofFromBytes(bytes, { ...signals, outputCommitment: BN254_SCALAR_FIELD })), 'field')
      const flipped = Uint8Array.from(bytes)
      flipped[31] ^= 1
      await assert.rejects(verifyProof((await zkTestModel()).verificationKey, proofFromBytes(flipped, signals), signals), (err: unknown) => err instanceof ProofRejectedError && err.reason === 'invalid')
    })
  })
})
