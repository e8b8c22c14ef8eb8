/**
 * Errors of the zk tier (issue 16): the ONNX → Circom compiler, circom2 and witnesses; the setup
 * ceremony; proving and off-chain verification. Each has an ERR_ZK_* code.
 */
import { errorWithCode, PoiError } from '../../../protocols/wire/index.js'

/** The model uses an op, dtype or shape outside the supported int8 fully connected subset. */
export class UnsupportedOnnxError extends PoiError {
  static readonly code = 'ERR_ZK_UNSUPPORTED_ONNX'
  declare readonly code: typeof UnsupportedOnnxError.code
  constructor (
    /** The node's name (or `input x`, `initializer W`…) where the compiler stopped. */
    readonly node: string,
    /** The node's op type, or '' for a graph input, output or initializer. */
    readonly op: string,
    readonly reason: string
  ) {
    super(UnsupportedOnnxError.code, `cannot compile the model to a circuit: ${op === '' ? node : `node "${node}" (${op})`} ${reason}; ` +
      'the zk tier supports int8 fully connected models (MatMulInteger, Add, Relu, Mul/Add/Div requantisation, Clip, Cast to int8)')
  }
}

/**
 * A value could leave the BN254 scalar field's signed range (-r/2, r/2), where circuit
 * arithmetic would wrap; or a public signal handed in is not below r.
 */
export class SignalOutOfField extends PoiError {
  static readonly code = 'ERR_ZK_SIGNAL_OUT_OF_FIELD'
  declare readonly code: typeof SignalOutOfField.code
  constructor (readonly signal: string, message: string) {
    super(SignalOutOfField.code, message)
  }
}

/** circom2 refused the generated source or did not run; `output` is what circom printed. */
export class CircomError extends PoiError {
  static readonly code = 'ERR_ZK_CIRCOM'
  declare readonly code: typeof CircomError.code
  constructor (message: string, readonly output: string, options?: { cause?: unknown }) {
    super(CircomError.code, output === '' ? message : `${message}:\n${output}`, options)
  }
}

/**
 * The circuit's witness could not be computed: an input is malformed, or a constraint failed
 * (e.g. the claimed output commitment is not the commitment of the outputs the model computes).
 */
export class WitnessError extends PoiError {
  static readonly code = 'ERR_ZK_WITNESS'
  declare readonly code: typeof WitnessError.code
  constructor (message: string, options?: { cause?: unknown }) {
    super(WitnessError.code, message, options)
  }
}

/**
 * A circuit needs more powers of tau than this node generates locally (2^maxPower): preparing a
 * larger ptau takes hours on a small machine, so a prepared one must be supplied.
 */
export class CircuitTooLargeError extends errorWithCode('ERR_ZK_CIRCUIT_TOO_LARGE') {
  /** The circuit's constraints, when a circuit asked for the power. */
  readonly constraints: number | undefined
  readonly power: number
  readonly maxPower: number

  constructor (power: number, maxPower: number, circuit?: { constraints: number, name: string }) {
    super(`${circuit !== undefined ? `${circuit.name} has ${circuit.constraints} constraints and needs` : 'asked for'} powers of tau 2^${power}, above the 2^${maxPower} this node generates locally ` +
      `(preparing 2^${maxPower} takes minutes on 2 cores, each power more doubles it): make the model smaller, or start the ceremony with a prepared ptau of power ≥ ${power} (--ptau <file>)`)
    this.constraints = circuit?.constraints
    this.power = power
    this.maxPower = maxPower
  }
}

/** The ceremony directory is missing, unreadable, or in the wrong state for the step asked. */
export class CeremonyError extends errorWithCode('ERR_ZK_CEREMONY') {}

/**
 * Which check a contribution failed:
 * - `hash`: the latest key file's sha256 is not the one the record names (the file changed after it was recorded);
 * - `verify`: snarkjs does not verify the latest key against the circuit and the powers of tau;
 * - `chain`: the latest key's own list of contributions is not the record's (it does not extend the previous one).
 */
export type ContributionCheck = 'hash' | 'verify' | 'chain'

/** The chain of contributions so far does not hold: nothing is added to it. */
export class ContributionRejectedError extends errorWithCode('ERR_ZK_CONTRIBUTION_REJECTED') {
  readonly check: ContributionCheck

  constructor (check: ContributionCheck, message: string) {
    super(message)
    this.check = check
  }
}

/**
 * Why a proof was refused:
 * - `circuit`, `input`, `output`, `prover`: a valid-looking proof about another circuit, input,
 *   output or payee than expected;
 * - `invalid`: malformed proof JSON, or the pairing check fails (tampered, or made with another key);
 * - `field`: a public signal is not below the BN254 scalar field modulus.
 */
export type ProofRejection = 'circuit' | 'input' | 'output' | 'prover' | 'invalid' | 'field'

export class ProofRejectedError extends errorWithCode('ERR_ZK_PROOF_REJECTED') {
  readonly reason: ProofRejection

  constructor (reason: ProofRejection, message: string) {
    super(message)
    this.reason = reason
  }
}

/** The witness or the proof could not be computed: the input does not satisfy the circuit, or a file is not the circuit's. */
export class ProvingError extends errorWithCode('ERR_ZK_PROVING') {}

/** A verification key that is not a Groth16 BN254 key with the four public signals poi's circuits have. */
export class VerificationKeyError extends errorWithCode('ERR_ZK_VERIFICATION_KEY') {}
