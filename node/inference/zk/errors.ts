/**
 * Errors of the zk toolchain (ONNX → Circom compiler, circom2, witnesses). The ceremony and the
 * verifier keep theirs in ceremony-errors.ts / verifier-errors.ts (spec16).
 */
import { PoiError } from '../../../protocols/wire/index.js'

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
