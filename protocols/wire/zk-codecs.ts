/**
 * The zero-knowledge tier's wire messages (issue 16, spec16n part B) as strict codecs: the proof
 * body a prover appends to its `proofs` stream channel, and the announcement the `proofs` gossip
 * topic carries (the body and its reference).
 *
 * Trust boundary: decoding checks shapes and fields only: every length exact, the output within
 * the inline limit, every proof coordinate below the BN254 base field q and the output
 * commitment below the scalar field r (so no decoded proof can make the verifier reduce a
 * number), the reference the hash of the body. Whether the proof verifies, and is about the
 * task's model, input and this output, is the node's check (node/roles/zk-proofs.ts).
 */
import { keccak256 } from 'viem'
import {
  ADDRESS_BYTES, BN254_BASE_FIELD, BN254_SCALAR_FIELD, MAX_INLINE_OUTPUT_BYTES, MAX_ZK_PROOF_ANNOUNCEMENT_BYTES, MAX_ZK_PROOF_BODY_BYTES,
  OUTPUT_COMMITMENT_BYTES, PROOF_REF_BYTES, TASK_ID_BYTES, ZK_FIELD_ELEMENT_BYTES, ZK_PROOF_BYTES
} from './constants.js'
import {
  defineCodec, ruleBoundedBytes, ruleExactBytes, ruleVersion, violation, WIRE_LENGTH_DELIMITED as L, WIRE_VARINT as V, type FieldViolation
} from './codec.js'
import { bytesEqual, toHex } from './bytes.js'
import { ZkProofAnnouncement, ZkProofBody } from './messages.pb.js'

/** The names of the proof's 8 coordinates, in wire order (for errors). */
export const ZK_PROOF_COORDINATES = ['a.x', 'a.y', 'b.x.c1', 'b.x.c0', 'b.y.c1', 'b.y.c0', 'c.x', 'c.y'] as const

/** A 32-byte big-endian number as a bigint. */
export function fieldElementOf (bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${toHex(bytes)}`)
}

/** Each 32-byte coordinate of a proof must be below q: a larger one is not a point's coordinate. */
function ruleProof (proof: Uint8Array): FieldViolation | undefined {
  const bad = ruleExactBytes('proof', proof, ZK_PROOF_BYTES)
  if (bad !== undefined) return bad
  for (let i = 0; i < ZK_PROOF_COORDINATES.length; i++) {
    const coordinate = fieldElementOf(proof.subarray(i * ZK_FIELD_ELEMENT_BYTES, (i + 1) * ZK_FIELD_ELEMENT_BYTES))
    if (coordinate >= BN254_BASE_FIELD) return violation('INVALID_FIELD', 'proof', `coordinate ${ZK_PROOF_COORDINATES[i]} is not below the BN254 base field q`)
  }
  return undefined
}

/** Every rule a ZkProofBody obeys on the wire; returns the first broken one. */
export function checkZkProofBody (body: ZkProofBody): FieldViolation | undefined {
  return ruleVersion(body.version) ??
    ruleExactBytes('taskId', body.taskId, TASK_ID_BYTES) ??
    ruleExactBytes('prover', body.prover, ADDRESS_BYTES) ??
    ruleProof(body.proof) ??
    ruleExactBytes('outputCommitment', body.outputCommitment, OUTPUT_COMMITMENT_BYTES) ??
    (fieldElementOf(body.outputCommitment) >= BN254_SCALAR_FIELD ? violation('INVALID_FIELD', 'outputCommitment', 'is not below the BN254 scalar field r, so no proof can have it as a public signal') : undefined) ??
    // A proof is checked against the output it names: a zk task's output always travels with it.
    ruleBoundedBytes('output', body.output, 1, MAX_INLINE_OUTPUT_BYTES)
}

const ZK_PROOF_BODY_CODEC = defineCodec<ZkProofBody>({
  name: 'ZkProofBody',
  maxBytes: MAX_ZK_PROOF_BODY_BYTES,
  fields: { version: [1, V], taskId: [2, L], prover: [3, L], proof: [4, L], outputCommitment: [5, L], output: [6, L] },
  proto: ZkProofBody,
  check: checkZkProofBody
})

/** Decodes a proof body (a `proofs` stream payload) from untrusted bytes; throws DecodeError. Does not verify the proof. */
export const decodeZkProofBody: (bytes: Uint8Array) => ZkProofBody = ZK_PROOF_BODY_CODEC.decode

/** Canonical encoding of a proof body; throws EncodeError if peers would reject it. */
export const encodeZkProofBody: (body: ZkProofBody) => Uint8Array<ArrayBuffer> = ZK_PROOF_BODY_CODEC.encode

/** The body an announcement carries (every field but proofRef). */
export function zkProofBodyOf (announcement: ZkProofAnnouncement): ZkProofBody {
  const { version, taskId, prover, proof, outputCommitment, output } = announcement
  return { version, taskId, prover, proof, outputCommitment, output }
}

/** The stream reference of a proof body: keccak256 of its canonical encoding (the payload reference of the stream message that carries it). */
export function proofRefOf (body: ZkProofBody): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(keccak256(encodeZkProofBody(body), 'bytes'))
}

/** Every rule a ZkProofAnnouncement obeys on the wire, its reference the hash of its body included; returns the first broken one. */
export function checkZkProofAnnouncement (announcement: ZkProofAnnouncement): FieldViolation | undefined {
  const body = zkProofBodyOf(announcement)
  return checkZkProofBody(body) ??
    ruleExactBytes('proofRef', announcement.proofRef, PROOF_REF_BYTES) ??
    (bytesEqual(announcement.proofRef, proofRefOf(body)) ? undefined : violation('INVALID_FIELD', 'proofRef', 'is not the keccak256 of the proof body (version, taskId, prover, proof, outputCommitment, output)'))
}

const ZK_PROOF_ANNOUNCEMENT_CODEC = defineCodec<ZkProofAnnouncement>({
  name: 'ZkProofAnnouncement',
  maxBytes: MAX_ZK_PROOF_ANNOUNCEMENT_BYTES,
  fields: { version: [1, V], taskId: [2, L], prover: [3, L], proof: [4, L], outputCommitment: [5, L], output: [6, L], proofRef: [7, L] },
  proto: ZkProofAnnouncement,
  check: checkZkProofAnnouncement
})

/** Decodes a proof announcement (the `proofs` topic) from untrusted bytes; throws DecodeError. Does not verify the proof. */
export const decodeZkProofAnnouncement: (bytes: Uint8Array) => ZkProofAnnouncement = ZK_PROOF_ANNOUNCEMENT_CODEC.decode

/** Canonical encoding of a proof announcement; throws EncodeError if peers would reject it. */
export const encodeZkProofAnnouncement: (announcement: ZkProofAnnouncement) => Uint8Array<ArrayBuffer> = ZK_PROOF_ANNOUNCEMENT_CODEC.encode

/** The announcement of a body: the body and its reference. */
export function zkProofAnnouncementOf (body: ZkProofBody): ZkProofAnnouncement {
  return { ...body, proofRef: proofRefOf(body) }
}
