/**
 * Wire-message fixtures shared by the codec and task-signing suites: valid messages with
 * overrides, seeded random bytes, and assertions on the strict codec's typed errors.
 */
import assert from 'node:assert/strict'
import { mulberry32 } from '../../node/fixtures/build-model.js'
import {
  DecodeError, EncodeError, PROTOCOL_VERSION, uint256ToBytes, type Attestation, type DecodeErrorCode,
  type QuorumCertificate, type TaskAnnouncement, type ZkProofBody
} from '../../protocols/wire/index.js'

export const CHAIN_ID = 31337n

/** Seeded floats in [0, 1), so fuzz failures replay exactly. */
export function prng (seed: number): () => number {
  const next = mulberry32(seed)
  return () => next() / 2 ** 32
}

export function randomBytes (rand: () => number, length: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) out[i] = Math.floor(rand() * 256)
  return out
}

export function filled (length: number, byte: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(length).fill(byte)
}

export function concat (...parts: Array<ArrayLike<number>>): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}

export function task (overrides: Partial<TaskAnnouncement> = {}): TaskAnnouncement {
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
    validationRequest: new Uint8Array(0),
    tier: 0,
    inputCommitment: new Uint8Array(0),
    ...overrides
  }
}

/** The fields an attestation and a certificate both carry: which result of which task, in which epoch. */
function resultFields (firstByte: number): Pick<Attestation & QuorumCertificate, 'version' | 'taskId' | 'resultHash' | 'outputRef' | 'epoch'> {
  return {
    version: PROTOCOL_VERSION,
    taskId: filled(32, firstByte),
    resultHash: filled(32, firstByte + 1),
    outputRef: filled(32, firstByte + 2),
    epoch: 3n
  }
}

export function attestation (overrides: Partial<Attestation> = {}): Attestation {
  return {
    ...resultFields(0x11),
    operatorIndex: 5,
    blsSig: filled(96, 0x14),
    output: filled(50, 0x15),
    ...overrides
  }
}

export function certificate (overrides: Partial<QuorumCertificate> = {}): QuorumCertificate {
  return {
    ...resultFields(0x21),
    signerBitmap: Uint8Array.from([0b1011_0111, 0x01]),
    aggregateSig: filled(96, 0x24),
    signedStake: uint256ToBytes(70n * 10n ** 18n),
    totalStake: uint256ToBytes(100n * 10n ** 18n),
    output: filled(50, 0x25),
    ...overrides
  }
}

/** A zk proof body (issue 16): every proof coordinate and the commitment below their fields (0x11… < q, 0x0b… < r). */
export function zkProofBody (overrides: Partial<ZkProofBody> = {}): ZkProofBody {
  return {
    version: PROTOCOL_VERSION,
    taskId: filled(32, 0x31),
    prover: filled(20, 0x32),
    proof: filled(256, 0x11),
    outputCommitment: filled(32, 0x0b),
    output: filled(50, 0x35),
    ...overrides
  }
}

/** Runs `fn` and asserts it throws a `type` with `code` (and `field`, when given). */
function expectCodecError<E extends DecodeError | EncodeError> (type: new (...args: never[]) => E, fn: () => unknown, code: DecodeErrorCode, field?: string): E {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  assert.ok(caught instanceof type, `expected ${type.name} ${code}, got ${caught === undefined ? 'no error' : String(caught)}`)
  assert.equal(caught.code, code, caught.message)
  if (field !== undefined) assert.equal(caught.field, field, caught.message)
  return caught
}

/** Asserts that `fn` throws a DecodeError with `code` (and `field`) whose message names the message type. */
export function expectDecodeError (fn: () => unknown, code: DecodeErrorCode, field?: string): DecodeError {
  const caught = expectCodecError(DecodeError, fn, code, field)
  assert.match(caught.message, new RegExp(caught.messageType))
  return caught
}

/** Asserts that `fn` refuses to encode with an EncodeError with `code` (and `field`). */
export function expectEncodeError (fn: () => unknown, code: DecodeErrorCode, field?: string): void {
  expectCodecError(EncodeError, fn, code, field)
}
