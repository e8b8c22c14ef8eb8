/**
 * Groth16 proofs of inference off-chain: proving with a circuit's witness generator and key,
 * and verifying a proof someone else made.
 *
 * Trust: a proof and its public signals come from the network (a stream, gossip, HTTP) and are
 * untrusted: parseZkProof checks their shape before any curve arithmetic. The verification key is
 * trusted (the ceremony's, or one fetched by content id); parseVerificationKey only checks that it
 * is a key for poi's four public signals.
 */
import { readFile } from 'node:fs/promises'
import { PUBLIC_SIGNALS } from './circuit.js'
import { ProofRejectedError, ProvingError, VerificationKeyError } from './errors.js'
import { BN254_BASE_FIELD, BN254_SCALAR_FIELD, ZK_FIELD_ELEMENT_BYTES, ZK_PROOF_BYTES, fieldElementOf, uint256ToBytes } from '../../../protocols/wire/index.js'
import { fullProve, verifyGroth16, type CircuitInput, type Decimal, type Groth16Proof, type VerificationKey } from './snarkjs.js'



export { PUBLIC_SIGNALS }

/** A field element in decimal has at most 77 digits; a longer string is refused before it is parsed. */
const MAX_DECIMAL_DIGITS = 78
const DECIMAL = /^(0|[1-9][0-9]*)$/

/** A proof as snarkjs writes it, with its public signals [circuitId, inputCommitment, outputCommitment, prover]. */
export interface ZkProof {
  proof: Groth16Proof
  publicSignals: [Decimal, Decimal, Decimal, Decimal]
}

/** The public signals of a proof, as numbers. */
export interface PublicSignals {
  circuitId: bigint
  inputCommitment: bigint
  outputCommitment: bigint
  /** The payee's 20-byte Ethereum address as a number. */
  prover: bigint
}

/**
 * What a verifier expects the proof to be about: the model's circuit, the task's input and
 * output commitments, and the prover when it matters to the verifier (the TaskManager pays it).
 */
export type ExpectedSignals = Omit<PublicSignals, 'prover'> & { prover?: bigint }

export interface ProveOptions { onProgress?: (line: string) => void }

/**
 * Computes the witness of `input` with the circuit's generator (`wasm`) and proves it with the
 * ceremony's final key. The input holds the public signals as well as the private tensor; an
 * input that does not satisfy the circuit (a wrong commitment, a value out of range) is a
 * ProvingError.
 */
export async function prove (wasm: string | Uint8Array, zkey: string | Uint8Array, input: CircuitInput, opts: ProveOptions = {}): Promise<ZkProof> {
  const started = Date.now()
  opts.onProgress?.('computing the witness and the proof')
  let result: { proof: unknown, publicSignals: unknown }
  try {
    result = await fullProve(input, wasm, zkey)
  } catch (err) {
    const files = typeof wasm === 'string' && typeof zkey === 'string' ? ` with ${wasm} and ${zkey}` : ''
    throw new ProvingError(`no proof for this input${files}: ${(err as Error).message.split('\n')[0]} ` +
      '(the input must satisfy the circuit: its public signals the commitments of its own tensors, every value in range)', { cause: err })
  }
  const proof = parseZkProof(result)
  opts.onProgress?.(`proved in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  return proof
}

/**
 * Verifies `proof` (untrusted JSON) with `vkey` and, when given, that it is about the expected
 * circuit, input and output. Resolves when it holds; else throws ProofRejectedError with its
 * reason. The cheap checks run first: shape, field, expected signals, then the pairing.
 */
export async function verifyProof (vkey: VerificationKey, proof: unknown, expected?: ExpectedSignals): Promise<void> {
  const p = parseZkProof(proof)
  const signals = publicSignalsOf(p)
  if (expected !== undefined) {
    for (const [name, reason] of [['circuitId', 'circuit'], ['inputCommitment', 'input'], ['outputCommitment', 'output'], ['prover', 'prover']] as const) {
      const want = expected[name]
      if (want !== undefined && signals[name] !== want) {
        throw new ProofRejectedError(reason, `the proof is about another ${reason} (${name} ${signals[name]}, expected ${want})`)
      }
    }
  }
  let valid: boolean
  try {
    valid = await verifyGroth16(vkey, p.publicSignals, p.proof)
  } catch (err) {
    throw new ProofRejectedError('invalid', `the proof's points are not points of BN254: ${(err as Error).message}`)
  }
  if (!valid) throw new ProofRejectedError('invalid', 'the proof does not verify with this verification key (tampered, made for other public signals, or with another key)')
}

/** The public signals of a checked proof, as numbers. */
export function publicSignalsOf (proof: ZkProof): PublicSignals {
  const [circuitId, inputCommitment, outputCommitment, prover] = proof.publicSignals.map(BigInt)
  return { circuitId, inputCommitment, outputCommitment, prover }
}

/**
 * Checks untrusted proof JSON: snarkjs's Groth16 shape (affine points with z = 1, coordinates in
 * decimal below q) and four public signals in decimal below r. A bad shape is rejected as
 * `invalid`, a signal ≥ r as `field`.
 */
export function parseZkProof (json: unknown): ZkProof {
  const fail = (what: string): never => { throw new ProofRejectedError('invalid', `malformed proof: ${what}`) }
  const obj = (v: unknown, what: string): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : fail(`${what} must be an object`))
  const decimal = (v: unknown, what: string): Decimal => {
    if (typeof v !== 'string' || v.length > MAX_DECIMAL_DIGITS || !DECIMAL.test(v)) fail(`${what} must be a decimal string of at most ${MAX_DECIMAL_DIGITS - 1} digits, got ${JSON.stringify(v)?.slice(0, 100)}`)
    return v as Decimal
  }
  const coordinate = (v: unknown, what: string): Decimal => {
    const d = decimal(v, what)
    if (BigInt(d) >= BN254_BASE_FIELD) fail(`${what} is not below the BN254 base field modulus q`)
    return d
  }
  const tuple = (v: unknown, n: number, what: string): unknown[] => (Array.isArray(v) && v.length === n ? v : fail(`${what} must be an array of ${n}`))
  const exactly = (v: unknown, value: string, what: string): Decimal => (v === value ? value : fail(`${what} must be "${value}" (snarkjs's affine form), got ${JSON.stringify(v)?.slice(0, 100)}`))

  const top = obj(json, 'the proof object')
  const p = obj(top.proof, 'proof')
  if (p.protocol !== 'groth16') fail(`proof.protocol must be "groth16", got ${JSON.stringify(p.protocol)?.slice(0, 100)}`)
  if (p.curve !== 'bn128') fail(`proof.curve must be "bn128", got ${JSON.stringify(p.curve)?.slice(0, 100)}`)
  const g1 = (v: unknown, what: string): [Decimal, Decimal, Decimal] => {
    const [x, y, z] = tuple(v, 3, what)
    return [coordinate(x, `${what}[0]`), coordinate(y, `${what}[1]`), exactly(z, '1', `${what}[2]`)]
  }
  const [bx, by, bz] = tuple(p.pi_b, 3, 'proof.pi_b')
  const fp2 = (v: unknown, what: string): [Decimal, Decimal] => {
    const [c0, c1] = tuple(v, 2, what)
    return [coordinate(c0, `${what}[0]`), coordinate(c1, `${what}[1]`)]
  }
  const [z0, z1] = tuple(bz, 2, 'proof.pi_b[2]')
  const proof: Groth16Proof = {
    pi_a: g1(p.pi_a, 'proof.pi_a'),
    pi_b: [fp2(bx, 'proof.pi_b[0]'), fp2(by, 'proof.pi_b[1]'), [exactly(z0, '1', 'proof.pi_b[2][0]'), exactly(z1, '0', 'proof.pi_b[2][1]')]],
    pi_c: g1(p.pi_c, 'proof.pi_c'),
    protocol: 'groth16',
    curve: 'bn128'
  }
  const signals = tuple(top.publicSignals, PUBLIC_SIGNALS.length, 'publicSignals').map((s, i) => decimal(s, `publicSignals[${i}] (${PUBLIC_SIGNALS[i]})`))
  signals.forEach((s, i) => {
    if (BigInt(s) >= BN254_SCALAR_FIELD) throw new ProofRejectedError('field', `publicSignals[${i}] (${PUBLIC_SIGNALS[i]}) is ${s}, not below the BN254 scalar field modulus r: no circuit can have it as a signal`)
  })
  return { proof, publicSignals: [signals[0], signals[1], signals[2], signals[3]] }
}

/** Checks that `json` is a Groth16 BN254 verification key with poi's four public signals. */
export function parseVerificationKey (json: unknown): VerificationKey {
  const fail = (what: string): never => { throw new VerificationKeyError(`not a verification key for poi's circuits: ${what}`) }
  if (typeof json !== 'object' || json === null) fail('it must be an object')
  const k = json as Record<string, unknown>
  if (k.protocol !== 'groth16') fail(`protocol must be "groth16", got ${JSON.stringify(k.protocol)}`)
  if (k.curve !== 'bn128') fail(`curve must be "bn128", got ${JSON.stringify(k.curve)}`)
  if (k.nPublic !== PUBLIC_SIGNALS.length) fail(`nPublic must be ${PUBLIC_SIGNALS.length} (${PUBLIC_SIGNALS.join(', ')}), got ${JSON.stringify(k.nPublic)}`)
  if (!Array.isArray(k.IC) || k.IC.length !== PUBLIC_SIGNALS.length + 1) fail(`IC must hold ${PUBLIC_SIGNALS.length + 1} points`)
  for (const field of ['vk_alpha_1', 'vk_beta_2', 'vk_gamma_2', 'vk_delta_2']) {
    if (!Array.isArray(k[field])) fail(`${field} must be an array`)
  }
  return json as VerificationKey
}

/**
 * A proof's points as the 256 bytes the `proofs` topic carries (ZkProofAnnouncement.proof):
 * a.x a.y b.x.c1 b.x.c0 b.y.c1 b.y.c0 c.x c.y, 32 bytes big-endian each, the order of the
 * on-chain verifier's calldata (contracts/zk-verifier.ts proofCalldata). The public signals are
 * not in it: a receiver knows them from the task (circuit, input) and the announcement (output,
 * prover). Throws ProofRejectedError for a proof parseZkProof refuses.
 */
export function proofToBytes (proof: ZkProof): Uint8Array {
  const { pi_a: a, pi_b: b, pi_c: c } = parseZkProof(proof).proof
  const coordinates = [a[0], a[1], b[0][1], b[0][0], b[1][1], b[1][0], c[0], c[1]]
  const bytes = new Uint8Array(ZK_PROOF_BYTES)
  coordinates.forEach((d, i) => {
    const be = uint256ToBytes(BigInt(d))
    // uint256ToBytes writes no leading zero bytes: right-align in the 32-byte slot
    bytes.set(be, (i + 1) * ZK_FIELD_ELEMENT_BYTES - be.length)
  })
  return bytes
}

/**
 * The proof object of 256 wire bytes (proofToBytes's layout) and the public signals it is
 * claimed to prove, checked like any untrusted proof (parseZkProof: coordinates below q, signals
 * below r). Throws ProofRejectedError (`invalid` for the bytes, `field` for a signal).
 */
export function proofFromBytes (bytes: Uint8Array, publicSignals: PublicSignals): ZkProof {
  if (!(bytes instanceof Uint8Array) || bytes.length !== ZK_PROOF_BYTES) {
    throw new ProofRejectedError('invalid', `malformed proof: expected ${ZK_PROOF_BYTES} bytes (8 coordinates of ${ZK_FIELD_ELEMENT_BYTES}), got ${bytes instanceof Uint8Array ? bytes.length : typeof bytes}`)
  }
  const at = (i: number): Decimal => fieldElementOf(bytes.subarray(i * ZK_FIELD_ELEMENT_BYTES, (i + 1) * ZK_FIELD_ELEMENT_BYTES)).toString()
  const { circuitId, inputCommitment, outputCommitment, prover } = publicSignals
  return parseZkProof({
    proof: {
      pi_a: [at(0), at(1), '1'],
      pi_b: [[at(3), at(2)], [at(5), at(4)], ['1', '0']],
      pi_c: [at(6), at(7), '1'],
      protocol: 'groth16',
      curve: 'bn128'
    },
    publicSignals: [circuitId, inputCommitment, outputCommitment, prover].map(s => s.toString())
  })
}

/** Reads and checks a verification key file (`verification_key.json`, as the ceremony's finalize writes it). */
export async function readVerificationKey (file: string): Promise<VerificationKey> {
  let json: unknown
  try {
    json = JSON.parse(await readFile(file, 'utf8'))
  } catch (err) {
    throw new VerificationKeyError(`cannot read the verification key ${file}: ${(err as Error).message}`, { cause: err })
  }
  return parseVerificationKey(json)
}
