/**
 * Byzantine behaviour on purpose, for the chaos suite (bench/chaos/byzantine.ts) only: an
 * operator started with `POI_TEST_FAULT=wrong-result` signs a wrong result for every task, one
 * started with `POI_TEST_FAULT=equivocate` signs a wrong result and then the right one for every
 * task (two different results for one task: slashable equivocation). Nothing else changes: the
 * node runs the model, stores its own attestation and gossips as an honest operator does.
 *
 * It cannot be switched on by accident: the variable is read once, when the operator starts; a
 * value other than those two, or either value without `POI_TEST_FAULTS_ALLOWED=1` beside it,
 * stops the node at start (TestFaultRefusedError); and an operator that runs with a fault says so
 * on stderr as a process warning, which no log setting hides.
 */
import { keccak256 } from 'viem'
import { PoiError } from '../../protocols/wire/index.js'

/** Names the fault an operator plays (values below). */
export const TEST_FAULT_ENV = 'POI_TEST_FAULT'
/** Must be `1` beside TEST_FAULT_ENV: a second, deliberate switch. */
export const TEST_FAULTS_ALLOWED_ENV = 'POI_TEST_FAULTS_ALLOWED'

export const TEST_FAULTS = ['wrong-result', 'equivocate'] as const
export type TestFault = typeof TEST_FAULTS[number]

/** A fault was asked for without the second switch, or with a name no fault has. */
export class TestFaultRefusedError extends PoiError {
  constructor (message: string) {
    super('ERR_TEST_FAULT_REFUSED', message)
  }
}

/**
 * The fault `env` asks for, or undefined when TEST_FAULT_ENV is unset or empty. Throws
 * TestFaultRefusedError for an unknown fault or a missing TEST_FAULTS_ALLOWED_ENV=1.
 */
export function testFaultFromEnv (env: NodeJS.ProcessEnv): TestFault | undefined {
  const value = env[TEST_FAULT_ENV]
  if (value === undefined || value === '') return undefined
  if (!(TEST_FAULTS as readonly string[]).includes(value)) {
    throw new TestFaultRefusedError(`${TEST_FAULT_ENV}=${value} names no test fault (one of ${TEST_FAULTS.join(', ')}); unset it to run an honest operator`)
  }
  if (env[TEST_FAULTS_ALLOWED_ENV] !== '1') {
    throw new TestFaultRefusedError(`${TEST_FAULT_ENV}=${value} makes this operator sign wrong results and get slashed; it is for the chaos suite only and needs ${TEST_FAULTS_ALLOWED_ENV}=1 beside it. Unset ${TEST_FAULT_ENV} to run an honest operator`)
  }
  return value as TestFault
}

/** Says on stderr, whatever the log settings, that this operator misbehaves on purpose. */
export function warnTestFault (fault: TestFault): void {
  process.emitWarning(`${TEST_FAULT_ENV}=${fault}: this operator signs ${fault === 'wrong-result' ? 'a wrong result for every task' : 'two different results for every task (equivocation)'} on purpose, and will be slashed or left out of certificates`, { code: 'POI_TEST_FAULT' })
}

/**
 * A wrong output for `canonical`: its last byte flipped (a valid-looking output of the same
 * size), with the result hash that goes with it, so the attestation is well-formed and only
 * its result is wrong.
 */
export function wrongResult (canonical: Uint8Array): { canonical: Uint8Array, resultHash: Uint8Array } {
  const wrong = Uint8Array.from(canonical.length > 0 ? canonical : [0])
  wrong[wrong.length - 1] ^= 0xff
  return { canonical: wrong, resultHash: keccak256(wrong, 'bytes') }
}
