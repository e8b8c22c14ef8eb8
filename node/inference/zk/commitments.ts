/**
 * Poseidon commitments to tensors, as the circuits compute them (spec16), off-chain with
 * poseidon-lite (the same permutation and constants as circomlib's Poseidon).
 *
 *   bytes:    int8 v → one byte v + 128; int32 v → four bytes, big-endian, of v + 2^31
 *   elements: the bytes in groups of 31 (the last group shorter, not padded), each group read
 *             as a big-endian integer (< 2^248, so always below the field order)
 *   chain:    h = 0; for each run of up to 15 elements: h = Poseidon([h, ...run])
 *
 * The byte count is not hashed: a circuit commits to a tensor of a fixed shape, so both sides
 * know it.
 */
import {
  poseidon2, poseidon3, poseidon4, poseidon5, poseidon6, poseidon7, poseidon8, poseidon9,
  poseidon10, poseidon11, poseidon12, poseidon13, poseidon14, poseidon15, poseidon16
} from 'poseidon-lite'
import { BN254_SCALAR_FIELD } from '../../../protocols/wire/index.js'
import { SignalOutOfField } from './errors.js'

export { BN254_SCALAR_FIELD }


/** Bytes per field element: 31 bytes (248 bits) always fit below r (254 bits). */
export const COMMITMENT_BYTES_PER_ELEMENT = 31
/** Elements absorbed per Poseidon call; with the chaining value that is 16 inputs, circomlib's largest Poseidon. */
export const COMMITMENT_ELEMENTS_PER_HASH = 15

export type CommittedDtype = 'int8' | 'int32'

const POSEIDON_BY_ARITY: ReadonlyArray<(inputs: bigint[]) => bigint> = [
  poseidon2, poseidon3, poseidon4, poseidon5, poseidon6, poseidon7, poseidon8, poseidon9,
  poseidon10, poseidon11, poseidon12, poseidon13, poseidon14, poseidon15, poseidon16
]

const INT8_OFFSET = 128
const INT32_OFFSET = 2 ** 31

/** The commitment's byte string of a tensor (exported so tests can check the layout). */
export function tensorCommitmentBytes (values: Int8Array | Int32Array, dtype: CommittedDtype): Uint8Array {
  if (dtype === 'int8') {
    if (!(values instanceof Int8Array)) throw new TypeError(`an int8 tensor must be an Int8Array, got ${values.constructor.name}`)
    return Uint8Array.from(values, v => v + INT8_OFFSET)
  }
  if (!(values instanceof Int32Array)) throw new TypeError(`an int32 tensor must be an Int32Array, got ${values.constructor.name}`)
  const bytes = new Uint8Array(values.length * 4)
  const view = new DataView(bytes.buffer)
  values.forEach((v, i) => { view.setUint32(i * 4, v + INT32_OFFSET, false) })
  return bytes
}

/** Field elements of the commitment: big-endian 31-byte groups. */
export function packCommitmentElements (bytes: Uint8Array): bigint[] {
  const elements: bigint[] = []
  for (let start = 0; start < bytes.length; start += COMMITMENT_BYTES_PER_ELEMENT) {
    let e = 0n
    for (const b of bytes.subarray(start, start + COMMITMENT_BYTES_PER_ELEMENT)) e = (e << 8n) | BigInt(b)
    elements.push(e)
  }
  return elements
}

/** h = 0; h = Poseidon([h, ...run]) for each run of up to 15 elements. */
export function poseidonChain (elements: readonly bigint[]): bigint {
  let h = 0n
  for (let start = 0; start < elements.length; start += COMMITMENT_ELEMENTS_PER_HASH) {
    const run = elements.slice(start, start + COMMITMENT_ELEMENTS_PER_HASH)
    h = POSEIDON_BY_ARITY[run.length - 1]([h, ...run])
  }
  return h
}

/** The commitment a circuit computes for a tensor of these values (a field element, < r). */
export function commitTensor (values: Int8Array | Int32Array, dtype: CommittedDtype): bigint {
  if (values.length === 0) throw new RangeError('cannot commit to an empty tensor')
  return poseidonChain(packCommitmentElements(tensorCommitmentBytes(values, dtype)))
}

/**
 * A public signal as a field element: a decimal string or bigint in [0, r). Anything else is
 * refused with SignalOutOfField (snarkjs would reduce it mod r, making two values prove one claim).
 */
export function toFieldElement (name: string, value: bigint | string): bigint {
  let v: bigint
  if (typeof value === 'bigint') {
    v = value
  } else {
    if (!/^(0|[1-9][0-9]{0,77})$/.test(value)) throw new SignalOutOfField(name, `public signal ${name} must be a decimal integer in [0, r), got "${value.length > 90 ? `${value.slice(0, 90)}…` : value}"`)
    v = BigInt(value)
  }
  if (v < 0n || v >= BN254_SCALAR_FIELD) throw new SignalOutOfField(name, `public signal ${name} = ${v} is outside the BN254 scalar field [0, r); r = ${BN254_SCALAR_FIELD}`)
  return v
}
