/**
 * ONNX → Circom: compiles an int8 fully connected model (spec16's subset) into a circuit that
 * proves "the model with these weights maps the input committed in `inputCommitment` to the
 * output committed in `outputCommitment`".
 *
 * Supported graph: one input int8 [1, N]; nodes in order, each one of
 *   MatMulInteger  dynamic int8 [1,K] × int8 initializer [K,H] (no zero points) → int32 [1,H]
 *   Add            dynamic int32 + int32 initializer (scalar, [H] or [1,H])
 *   Mul            dynamic int32 × int32 initializer (same shapes)
 *   Div            dynamic int32 / int32 scalar initializer 2^s, dividend proven ≥ 0
 *   Relu           int32 (opset ≥ 14)
 *   Clip           int32/int8 with int32/int8 scalar initializer min/max
 *   Cast           int32 → int8 after a Clip into [-128, 127]; int8 → int32
 * and one output, int32 or int8 [1, M].
 *
 * Weights are circuit constants, so W·x and every Add/Mul by a constant cost no constraints
 * (they are linear and circom --O2 folds them); constraints come from Relu and Clip (a sign
 * bit: Num2Bits of the value's bit width + 1), Div (quotient and remainder range checks) and
 * the commitments (Poseidon, and 8 or 32 range bits per committed value).
 *
 * Soundness rests on bounds: every value's interval is tracked exactly from the int8 input
 * range and the constant weights. A value that could overflow int32 is refused (onnxruntime
 * wraps, the field would not); one that could leave (-r/2, r/2) raises SignalOutOfField; bit
 * widths of comparators and range checks are derived from the intervals.
 */
import { createHash } from 'node:crypto'
import { ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from '../onnx.pb.js'
import { dtypeFromOnnxCode } from '../tensor.js'
import { BN254_SCALAR_FIELD, COMMITMENT_BYTES_PER_ELEMENT, COMMITMENT_ELEMENTS_PER_HASH, type CommittedDtype, commitTensor } from './commitments.js'
import { SignalOutOfField, UnsupportedOnnxError } from './errors.js'

/**
 * Public inputs of every compiled circuit, in the order snarkjs lists them (spec16): the circuit,
 * the input and output commitments, and the prover, the address the TaskManager pays (bound by
 * the proof, so a copy submitted by someone else still pays the prover).
 */
export const PUBLIC_SIGNALS = ['circuitId', 'inputCommitment', 'outputCommitment', 'prover'] as const
/** The circuit's private input (the model input's values) and the signal array holding its outputs. */
export const CIRCUIT_INPUT_SIGNAL = 'x'
export const CIRCUIT_OUTPUT_SIGNAL = 'y'
/** Name of the main template; its signals appear as `main.<name>` in the .sym file. */
export const MODEL_TEMPLATE = 'Model'

/** Num2Bits of 254 bits or more can alias modulo r (circomlib's Num2Bits_strict exists for that). */
const MAX_RANGE_BITS = 252
const CIRCUIT_ID_BYTES = 31
const INT8_MIN = -128n
const INT8_MAX = 127n
const INT32_MIN = -(2n ** 31n)
const INT32_MAX = 2n ** 31n - 1n
const HALF_FIELD = BN254_SCALAR_FIELD / 2n
const SUPPORTED_OPS: readonly string[] = ['MatMulInteger', 'Add', 'Mul', 'Div', 'Relu', 'Clip', 'Cast']
/** Relu on int32 is in the ONNX schema from opset 14. */
const MIN_INT_RELU_OPSET = 14n

type IntDtype = CommittedDtype

/** One value's interval, as the compiler proved it. */
export interface TensorBounds {
  /** ONNX tensor name. */
  tensor: string
  /** The node that produced it ('' for the graph input). */
  node: string
  op: string
  dtype: IntDtype
  /** Smallest and largest value of any element. */
  min: bigint
  max: bigint
}

export interface CompiledCircuit {
  /** Circom 2 source; include paths are relative to circom's `-l <repo>/node_modules`. */
  source: string
  /** First 31 bytes (big-endian) of sha256 of `source` with the id written as 0. */
  circuitId: bigint
  inputName: string
  inputDtype: 'int8'
  inputShape: number[]
  outputName: string
  outputDtype: IntDtype
  outputShape: number[]
  /** Interval of every tensor the graph computes, in node order. */
  bounds: TensorBounds[]
}

interface Tensor {
  name: string
  dtype: IntDtype
  /** Circom signal array holding the values. */
  signal: string
  lo: bigint[]
  hi: bigint[]
}

interface Constant {
  name: string
  dtype: IntDtype
  dims: number[]
  values: bigint[]
}

function bitLength (v: bigint): number {
  return v <= 0n ? 0 : v.toString(2).length
}

function maxOf (values: readonly bigint[]): bigint {
  return values.reduce((m, v) => (v > m ? v : m))
}

function minOf (values: readonly bigint[]): bigint {
  return values.reduce((m, v) => (v < m ? v : m))
}

/** circom writes negative constants as -v (the field element r - v). */
function lit (v: bigint): string {
  return v.toString()
}

function nodeName (node: NodeProto, index: number): string {
  return node.name !== undefined && node.name !== '' ? node.name : `#${index}`
}

function intDtypeOf (code: number | undefined, where: string, op: string, what: string): IntDtype {
  const dtype = code === undefined ? undefined : dtypeFromOnnxCode(code)
  if (dtype !== 'int8' && dtype !== 'int32') throw new UnsupportedOnnxError(where, op, `${what === '' ? '' : `${what} `}has dtype ${dtype ?? `code ${code}`}, not int8 or int32`)
  return dtype
}

/** A [1, n] shape (the only layout the subset has), read from a graph input or output. */
function rowShapeOf (info: ValueInfoProto, what: string): { dtype: IntDtype, size: number } {
  const where = `${what} "${info.name ?? ''}"`
  const tensorType = info.type?.tensorType
  if (tensorType === undefined) throw new UnsupportedOnnxError(where, '', 'is not a tensor')
  const dtype = intDtypeOf(tensorType.elemType, where, '', '')
  const dims = tensorType.shape?.dim ?? []
  const values = dims.map(d => d.dimValue)
  if (values.length !== 2 || values[0] !== 1n || values[1] === undefined || values[1] < 1n) {
    throw new UnsupportedOnnxError(where, '', `has shape [${dims.map(d => d.dimValue?.toString() ?? d.dimParam ?? '?').join(', ')}], not [1, n] with a fixed n`)
  }
  return { dtype, size: Number(values[1]) }
}

function decodeConstant (t: TensorProto): Constant {
  const name = t.name ?? ''
  const where = `initializer "${name}"`
  const dtype = intDtypeOf(t.dataType, where, '', '')
  const dims = t.dims.map(Number)
  const count = dims.reduce((a, b) => a * b, 1)
  const width = dtype === 'int8' ? 1 : 4
  const raw = t.rawData
  if (raw === undefined) throw new UnsupportedOnnxError(where, '', 'has no raw_data (typed data fields are not read)')
  if (raw.length !== count * width) throw new UnsupportedOnnxError(where, '', `has ${raw.length} bytes of raw_data for shape [${dims.join(', ')}] of ${dtype}`)
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength)
  const values = Array.from({ length: count }, (_, i) => BigInt(dtype === 'int8' ? view.getInt8(i) : view.getInt32(i * 4, true)))
  return { name, dtype, dims, values }
}

/**
 * Compile an int8 fully connected ONNX model to a Circom circuit. Throws UnsupportedOnnxError
 * (naming the node, op and reason) for anything outside the subset, SignalOutOfField when a
 * value could leave the field.
 */
export function compileOnnxToCircom (modelBytes: Uint8Array): CompiledCircuit {
  let model: ModelProto
  try {
    model = ModelProto.decode(modelBytes)
  } catch (err) {
    throw new UnsupportedOnnxError('model', '', `is not an ONNX ModelProto: ${(err as Error).message}`)
  }
  const graph = model.graph
  if (graph === undefined) throw new UnsupportedOnnxError('model', '', 'has no graph')
  const opset = model.opsetImport.find(o => (o.domain ?? '') === '' || o.domain === 'ai.onnx')?.version ?? 0n

  // ops first: "node fc1 (Gemm) is not supported" says more about a float model than its float weights do
  graph.node.forEach((node, index) => {
    const op = node.opType ?? ''
    if (!SUPPORTED_OPS.includes(op)) {
      throw new UnsupportedOnnxError(nodeName(node, index), op, `is not supported (the subset: ${SUPPORTED_OPS.join(', ')})${op === 'MatMul' || op === 'Gemm' ? '; quantise the model and use MatMulInteger' : ''}`)
    }
  })

  const constants = new Map<string, Constant>()
  for (const init of graph.initializer) constants.set(init.name ?? '', decodeConstant(init))

  const inputs = graph.input.filter(i => !constants.has(i.name ?? ''))
  if (inputs.length !== 1) throw new UnsupportedOnnxError('graph', '', `has ${inputs.length} inputs besides initializers; the subset takes exactly one`)
  if (graph.output.length !== 1) throw new UnsupportedOnnxError('graph', '', `has ${graph.output.length} outputs; the subset gives exactly one`)
  const inputInfo = inputs[0]
  const input = rowShapeOf(inputInfo, 'input')
  if (input.dtype !== 'int8') throw new UnsupportedOnnxError(`input "${inputInfo.name ?? ''}"`, '', 'is int32; the circuit takes an int8 input (quantise it first)')
  const outputInfo = graph.output[0]
  const output = rowShapeOf(outputInfo, 'output')

  const body: string[] = []
  const bounds: TensorBounds[] = []
  const tensors = new Map<string, Tensor>()
  const inputName = inputInfo.name ?? ''
  tensors.set(inputName, {
    name: inputName,
    dtype: 'int8',
    signal: CIRCUIT_INPUT_SIGNAL,
    lo: Array(input.size).fill(INT8_MIN),
    hi: Array(input.size).fill(INT8_MAX)
  })
  bounds.push({ tensor: inputName, node: '', op: '', dtype: 'int8', min: INT8_MIN, max: INT8_MAX })

  // how many nodes read each tensor (and the graph output): a Div read only by a Clip can leave its quotient's range check to the Clip's comparator
  const readers = new Map<string, number>()
  for (const n of graph.node) for (const name of n.input) readers.set(name, (readers.get(name) ?? 0) + 1)
  readers.set(outputInfo.name ?? '', (readers.get(outputInfo.name ?? '') ?? 0) + 1)
  /** Quotient signals whose range check is deferred to the comparator of the Clip that reads them. */
  const deferredRangeChecks = new Set<string>()
  /** Signals a comparator (IsNonNegative) has been applied to. */
  const compared = new Set<string>()

  let nextSignal = 0
  const freshSignal = (size: number, comment: string): string => {
    const name = `t${nextSignal++}`
    body.push('', `  // ${comment.replace(/[\r\n]/g, ' ')}`, `  signal ${name}[${size}];`)
    return name
  }

  graph.node.forEach((node, index) => {
    const where = nodeName(node, index)
    const op = node.opType ?? ''
    const refuse = (reason: string): never => { throw new UnsupportedOnnxError(where, op, reason) }
    if ((node.domain ?? '') !== '' && node.domain !== 'ai.onnx') refuse(`is in domain "${node.domain}", not the default ONNX domain`)
    if (node.output.length !== 1) refuse(`has ${node.output.length} outputs; supported ops have one`)
    const outName = node.output[0]

    const dynamic = (i: number): Tensor => {
      const name = node.input[i]
      const t = name === undefined ? undefined : tensors.get(name)
      if (t === undefined) {
        if (name !== undefined && constants.has(name)) refuse(`takes initializer "${name}" as input ${i}, where the subset needs a computed tensor`)
        refuse(`input ${i} "${name ?? ''}" is not a tensor computed earlier in the graph`)
      }
      return t as Tensor
    }
    const constant = (i: number, dtype: IntDtype): Constant => {
      const name = node.input[i]
      const c = name === undefined ? undefined : constants.get(name)
      if (c === undefined) return refuse(`input ${i} "${name ?? ''}" must be an initializer (weights are circuit constants)`)
      if (c.dtype !== dtype) refuse(`initializer "${c.name}" is ${c.dtype}, expected ${dtype}`)
      return c
    }
    /** A constant broadcast along a [1, n] row: scalar, [1], [n] or [1, n]. */
    const rowConstant = (c: Constant, n: number): bigint[] => {
      const size = c.values.length
      const rowLike = c.dims.length <= 2 && (c.dims.length < 2 || c.dims[0] === 1)
      if (size === 1 && rowLike) return Array(n).fill(c.values[0])
      if (size === n && rowLike) return c.values
      return refuse(`initializer "${c.name}" has shape [${c.dims.join(', ')}], which does not broadcast to [1, ${n}]`)
    }
    const noAttributes = (): void => {
      if (node.attribute.length > 0) refuse(`has attributes (${node.attribute.map(a => a.name ?? '?').join(', ')}) the subset does not read`)
    }
    const scalarConstant = (i: number, dtype: IntDtype): bigint => {
      const c = constant(i, dtype)
      if (c.values.length !== 1) refuse(`initializer "${c.name}" must be a scalar, has shape [${c.dims.join(', ')}]`)
      return c.values[0]
    }
    const emit = (t: Tensor): void => {
      checkBounds(where, op, t)
      if (tensors.has(t.name)) refuse(`writes tensor "${t.name}" a second time`)
      tensors.set(t.name, t)
      bounds.push({ tensor: t.name, node: where, op, dtype: t.dtype, min: minOf(t.lo), max: maxOf(t.hi) })
    }

    switch (op) {
      case 'MatMulInteger': {
        noAttributes()
        if (node.input.length > 2 && node.input.slice(2).some(z => z !== '')) refuse('has zero points; the subset is symmetric (zero point 0)')
        const a = dynamic(0)
        if (a.dtype !== 'int8') refuse(`input "${a.name}" is ${a.dtype}, expected int8`)
        const w = constant(1, 'int8')
        const k = a.lo.length
        if (w.dims.length !== 2 || w.dims[0] !== k) refuse(`weight "${w.name}" has shape [${w.dims.join(', ')}], expected [${k}, n] for an input of [1, ${k}]`)
        const h = w.dims[1]
        const lo: bigint[] = []
        const hi: bigint[] = []
        for (let j = 0; j < h; j++) {
          let l = 0n
          let u = 0n
          for (let i = 0; i < k; i++) {
            const wij = w.values[i * h + j]
            l += wij >= 0n ? wij * a.lo[i] : wij * a.hi[i]
            u += wij >= 0n ? wij * a.hi[i] : wij * a.lo[i]
          }
          lo.push(l)
          hi.push(u)
        }
        const signal = freshSignal(h, `${where}: MatMulInteger ${a.name} × ${w.name}`)
        const weights = `w${signal}`
        const rows: string[] = []
        for (let i = 0; i < k; i++) rows.push(`[${w.values.slice(i * h, (i + 1) * h).map(lit).join(',')}]`)
        body.push(
          `  var ${weights}[${k}][${h}] = [${rows.join(',\n    ')}];`,
          `  for (var j = 0; j < ${h}; j++) {`,
          '    var acc = 0;',
          `    for (var i = 0; i < ${k}; i++) { acc += ${weights}[i][j] * ${a.signal}[i]; }`,
          `    ${signal}[j] <== acc;`,
          '  }'
        )
        emit({ name: outName, dtype: 'int32', signal, lo, hi })
        return
      }
      case 'Add':
      case 'Mul': {
        noAttributes()
        if (node.input.length !== 2) refuse(`has ${node.input.length} inputs, expected 2`)
        const dynamicFirst = tensors.has(node.input[0])
        const a = dynamic(dynamicFirst ? 0 : 1)
        if (a.dtype !== 'int32') refuse(`input "${a.name}" is ${a.dtype}; ${op} is supported on int32`)
        const c = rowConstant(constant(dynamicFirst ? 1 : 0, 'int32'), a.lo.length)
        const lo: bigint[] = []
        const hi: bigint[] = []
        a.lo.forEach((l, j) => {
          const u = a.hi[j]
          if (op === 'Add') {
            lo.push(l + c[j])
            hi.push(u + c[j])
          } else {
            lo.push(c[j] >= 0n ? l * c[j] : u * c[j])
            hi.push(c[j] >= 0n ? u * c[j] : l * c[j])
          }
        })
        const signal = freshSignal(a.lo.length, `${where}: ${op} ${a.name} ${op === 'Add' ? '+' : '×'} constant`)
        const constName = `c${signal}`
        body.push(
          `  var ${constName}[${c.length}] = [${c.map(lit).join(',')}];`,
          `  for (var j = 0; j < ${c.length}; j++) { ${signal}[j] <== ${a.signal}[j] ${op === 'Add' ? '+' : '*'} ${constName}[j]; }`
        )
        emit({ name: outName, dtype: 'int32', signal, lo, hi })
        return
      }
      case 'Relu': {
        noAttributes()
        const a = dynamic(0)
        if (a.dtype === 'int32' && opset < MIN_INT_RELU_OPSET) refuse(`on int32 needs opset ≥ ${MIN_INT_RELU_OPSET}, the model imports opset ${opset}`)
        emit(clampBelow(a, 0n, outName, `${where}: Relu ${a.name}`))
        return
      }
      case 'Clip': {
        noAttributes()
        const a = dynamic(0)
        const bound = (i: number): bigint | undefined => {
          const name = node.input[i]
          if (name === undefined || name === '') return undefined
          const c = constants.get(name)
          if (c === undefined) return refuse(`bound "${name}" must be an initializer`)
          return scalarConstant(i, c.dtype === a.dtype ? a.dtype : refuse(`bound "${name}" is ${c.dtype}, the input is ${a.dtype}`))
        }
        const min = bound(1)
        const max = bound(2)
        if (min !== undefined && max !== undefined && min > max) refuse(`has min ${min} > max ${max}`)
        let t = a
        if (min !== undefined) t = clampBelow(t, min, max === undefined ? outName : `${outName}.min`, `${where}: Clip ${a.name} below at ${min}`)
        if (max !== undefined) t = clampAbove(t, max, outName, `${where}: Clip ${a.name} above at ${max}`)
        if (deferredRangeChecks.has(a.signal) && !compared.has(a.signal)) {
          throw new Error(`internal: the quotient ${a.signal} left its range check to Clip "${where}", which applied no comparator to it`)
        }
        emit({ ...t, name: outName })
        return
      }
      case 'Div': {
        noAttributes()
        const a = dynamic(0)
        if (a.dtype !== 'int32') refuse(`input "${a.name}" is ${a.dtype}; Div is supported on int32`)
        const d = scalarConstant(1, 'int32')
        if (d < 1n || (d & (d - 1n)) !== 0n) refuse(`divides by ${d}; the subset divides by a positive power of two`)
        const lo = minOf(a.lo)
        if (lo < 0n) refuse(`divides "${a.name}", which may be negative (down to ${lo}); onnxruntime truncates toward zero and the circuit floors, so the dividend must be proven ≥ 0 (put a Relu before the requantisation)`)
        const shift = bitLength(d) - 1
        if (shift === 0) {
          emit({ ...a, name: outName })
          return
        }
        const qlo = a.lo.map(l => l / d)
        const qhi = a.hi.map(u => u / d)
        const qBits = Math.max(1, bitLength(maxOf(qhi)))
        checkRangeBits(where, op, qBits)
        const deferred = clipComparesDirectly(graph.node[index + 1], outName, minOf(qlo), maxOf(qhi))
        const signal = freshSignal(a.lo.length, `${where}: Div ${a.name} by 2^${shift} (floor; dividend ≥ 0)${deferred ? '; the quotient is range-checked by the next Clip\'s comparator' : ''}`)
        if (deferred) deferredRangeChecks.add(signal)
        body.push(
          `  component ${signal}_div[${a.lo.length}];`,
          `  for (var j = 0; j < ${a.lo.length}; j++) {`,
          `    ${signal}_div[j] = ${deferred ? `FloorDivPow2Unchecked(${shift})` : `FloorDivPow2(${shift}, ${qBits})`};`,
          `    ${signal}_div[j].in <== ${a.signal}[j];`,
          `    ${signal}[j] <== ${signal}_div[j].out;`,
          '  }'
        )
        emit({ name: outName, dtype: 'int32', signal, lo: qlo, hi: qhi })
        return
      }
      case 'Cast': {
        const to = node.attribute.find(attr => attr.name === 'to')
        if (to === undefined || node.attribute.length !== 1) refuse('must have exactly the attribute "to"')
        const a = dynamic(0)
        const target = intDtypeOf(Number(to?.i ?? -1n), where, op, 'its target type')
        if (target === 'int8' && a.dtype === 'int32') {
          const lo = minOf(a.lo)
          const hi = maxOf(a.hi)
          if (lo < INT8_MIN || hi > INT8_MAX) refuse(`casts "${a.name}" with values in [${lo}, ${hi}] to int8, which wraps; clip it to [-128, 127] first`)
        }
        // same integers in the field: no constraint, the tensor keeps its signals
        emit({ ...a, name: outName, dtype: target })
        return
      }
      default:
        refuse('is not supported') // unreachable: SUPPORTED_OPS was checked above
    }

    function clampBelow (a: Tensor, floor: bigint, name: string, comment: string): Tensor {
      const lo = a.lo.map(l => (l > floor ? l : floor))
      const hi = a.hi.map(u => (u > floor ? u : floor))
      if (minOf(a.lo) >= floor) return { ...a, name } // nothing to clamp: same signals
      if (maxOf(a.hi) <= floor) return constantTensor(name, a.dtype, lo, comment)
      const bits = comparatorBits(a, floor)
      compared.add(a.signal)
      const signal = freshSignal(a.lo.length, comment)
      body.push(
        `  component ${signal}_ge[${a.lo.length}];`,
        `  for (var j = 0; j < ${a.lo.length}; j++) {`,
        `    ${signal}_ge[j] = IsNonNegative(${bits});`,
        `    ${signal}_ge[j].in <== ${a.signal}[j] - (${lit(floor)});`,
        `    ${signal}[j] <== ${signal}_ge[j].out * (${a.signal}[j] - (${lit(floor)})) + (${lit(floor)});`,
        '  }'
      )
      return { name, dtype: a.dtype, signal, lo, hi }
    }

    function clampAbove (a: Tensor, ceiling: bigint, name: string, comment: string): Tensor {
      const lo = a.lo.map(l => (l < ceiling ? l : ceiling))
      const hi = a.hi.map(u => (u < ceiling ? u : ceiling))
      if (maxOf(a.hi) <= ceiling) return { ...a, name }
      if (minOf(a.lo) >= ceiling) return constantTensor(name, a.dtype, hi, comment)
      const bits = comparatorBits(a, ceiling)
      compared.add(a.signal)
      const signal = freshSignal(a.lo.length, comment)
      body.push(
        `  component ${signal}_le[${a.lo.length}];`,
        `  for (var j = 0; j < ${a.lo.length}; j++) {`,
        `    ${signal}_le[j] = IsNonNegative(${bits});`,
        `    ${signal}_le[j].in <== (${lit(ceiling)}) - ${a.signal}[j];`,
        `    ${signal}[j] <== ${signal}_le[j].out * (${a.signal}[j] - (${lit(ceiling)})) + (${lit(ceiling)});`,
        '  }'
      )
      return { name, dtype: a.dtype, signal, lo, hi }
    }

    function constantTensor (name: string, dtype: IntDtype, values: bigint[], comment: string): Tensor {
      const signal = freshSignal(values.length, `${comment} (always ${values[0]})`)
      values.forEach((v, j) => body.push(`  ${signal}[${j}] <== ${lit(v)};`))
      return { name, dtype, signal, lo: values, hi: values }
    }

    /**
     * Whether `next` is a Clip that alone reads `name` and applies a comparator to it (a bound
     * strictly inside [lo, hi]). The comparator's Num2Bits confines the quotient to
     * (pivot - 2^n, pivot + 2^n], far below r, which pins floor division as well as a separate
     * range check would: in = q·2^s + rem then holds over the integers, so q is unique.
     */
    function clipComparesDirectly (next: NodeProto | undefined, name: string, lo: bigint, hi: bigint): boolean {
      if (next?.opType !== 'Clip' || next.input[0] !== name || readers.get(name) !== 1) return false
      if (next.attribute.length > 0) return false
      const scalar = (i: number): bigint | undefined => {
        const c = constants.get(next.input[i] ?? '')
        return c !== undefined && c.dtype === 'int32' && c.values.length === 1 ? c.values[0] : undefined
      }
      const min = scalar(1)
      const max = scalar(2)
      return (min !== undefined && lo < min && hi > min) || (max !== undefined && lo < max && hi > max)
    }

    /** n with -2^n ≤ v - pivot < 2^n for every element: IsNonNegative(n) then decides the sign exactly. */
    function comparatorBits (a: Tensor, pivot: bigint): number {
      const reach = [...a.lo.map(l => pivot - l), ...a.hi.map(u => u - pivot)].reduce((m, v) => (v > m ? v : m), 0n)
      const bits = Math.max(1, bitLength(reach))
      checkRangeBits(where, op, bits + 1)
      return bits
    }
  })

  const outputName = outputInfo.name ?? ''
  const result = tensors.get(outputName)
  if (result === undefined) throw new UnsupportedOnnxError(`output "${outputName}"`, '', 'is not computed by any node')
  if (result.dtype !== output.dtype) throw new UnsupportedOnnxError(`output "${outputName}"`, '', `is declared ${output.dtype} but computed as ${result.dtype}`)
  if (result.lo.length !== output.size) throw new UnsupportedOnnxError(`output "${outputName}"`, '', `is declared [1, ${output.size}] but computed with ${result.lo.length} values`)

  const render = (circuitId: bigint): string => renderSource({
    circuitId,
    inputSize: input.size,
    outputSize: output.size,
    outputSignal: result.signal,
    outputDtype: output.dtype,
    body
  })
  const digest = createHash('sha256').update(render(0n)).digest()
  const circuitId = BigInt(`0x${digest.subarray(0, CIRCUIT_ID_BYTES).toString('hex')}`)
  return {
    source: render(circuitId),
    circuitId,
    inputName,
    inputDtype: 'int8',
    inputShape: [1, input.size],
    outputName,
    outputDtype: output.dtype,
    outputShape: [1, output.size],
    bounds
  }
}

function checkRangeBits (where: string, op: string, bits: number): void {
  if (bits > MAX_RANGE_BITS) throw new SignalOutOfField(where, `node "${where}" (${op}) needs a ${bits}-bit range check; above ${MAX_RANGE_BITS} bits Num2Bits can alias modulo the field order`)
}

/** Values must fit int32 (onnxruntime wraps on overflow, the circuit would not) and the field's signed range. */
function checkBounds (where: string, op: string, t: Tensor): void {
  const lo = minOf(t.lo)
  const hi = maxOf(t.hi)
  if (lo <= -HALF_FIELD || hi >= HALF_FIELD) {
    throw new SignalOutOfField(t.name, `node "${where}" (${op}) computes "${t.name}" with values in [${lo}, ${hi}], which may leave the field's range (-r/2, r/2)`)
  }
  if (lo < INT32_MIN || hi > INT32_MAX) {
    throw new UnsupportedOnnxError(where, op, `computes "${t.name}" with values in [${lo}, ${hi}], which may overflow int32 (onnxruntime wraps, the circuit would not); use smaller weights or a smaller requantisation multiplier`)
  }
}

interface SourceParts {
  circuitId: bigint
  inputSize: number
  outputSize: number
  outputSignal: string
  outputDtype: IntDtype
  body: string[]
}

/** Fixed helper templates; every compiled circuit carries the same text. */
const HELPER_TEMPLATES = `// 1 if in >= 0, else 0, for -2^n <= in < 2^n
template IsNonNegative(n) {
  signal input in;
  signal output out;
  component bits = Num2Bits(n + 1);
  bits.in <== in + 2 ** n;
  out <== bits.out[n];
}

// floor(in / 2^s) for 0 <= in < 2^(s + qBits): in = out * 2^s + rem with rem < 2^s and out < 2^qBits
template FloorDivPow2(s, qBits) {
  signal input in;
  signal output out;
  signal rem;
  out <-- in \\ (2 ** s);
  rem <-- in % (2 ** s);
  in === out * (2 ** s) + rem;
  component remBits = Num2Bits(s);
  remBits.in <== rem;
  component outBits = Num2Bits(qBits);
  outBits.in <== out;
}

// floor(in / 2^s) for in >= 0 WITHOUT a range check on out: only where a comparator on out follows
// (a Clip), whose Num2Bits bounds out and so pins the division (see clipComparesDirectly in circuit.ts)
template FloorDivPow2Unchecked(s) {
  signal input in;
  signal output out;
  signal rem;
  out <-- in \\ (2 ** s);
  rem <-- in % (2 ** s);
  in === out * (2 ** s) + rem;
  component remBits = Num2Bits(s);
  remBits.in <== rem;
}

// h = 0; h = Poseidon([h, ...run]) for each run of up to ${COMMITMENT_ELEMENTS_PER_HASH} elements
template PoseidonChain(n) {
  signal input in[n];
  signal output out;
  var runs = (n + ${COMMITMENT_ELEMENTS_PER_HASH - 1}) \\ ${COMMITMENT_ELEMENTS_PER_HASH};
  component h[runs];
  for (var g = 0; g < runs; g++) {
    var len = n - ${COMMITMENT_ELEMENTS_PER_HASH} * g;
    if (len > ${COMMITMENT_ELEMENTS_PER_HASH}) { len = ${COMMITMENT_ELEMENTS_PER_HASH}; }
    h[g] = Poseidon(len + 1);
    if (g == 0) { h[g].inputs[0] <== 0; } else { h[g].inputs[0] <== h[g - 1].out; }
    for (var k = 0; k < len; k++) { h[g].inputs[k + 1] <== in[${COMMITMENT_ELEMENTS_PER_HASH} * g + k]; }
  }
  out <== h[runs - 1].out;
}

// int8 values as bytes v + 128, ${COMMITMENT_BYTES_PER_ELEMENT} bytes big-endian per element; range-checks every value
template CommitInt8(n) {
  signal input in[n];
  signal output out;
  component range[n];
  for (var i = 0; i < n; i++) {
    range[i] = Num2Bits(8);
    range[i].in <== in[i] + 128;
  }
  var elements = (n + ${COMMITMENT_BYTES_PER_ELEMENT - 1}) \\ ${COMMITMENT_BYTES_PER_ELEMENT};
  component chain = PoseidonChain(elements);
  for (var e = 0; e < elements; e++) {
    var acc = 0;
    for (var i = ${COMMITMENT_BYTES_PER_ELEMENT} * e; i < n && i < ${COMMITMENT_BYTES_PER_ELEMENT} * (e + 1); i++) { acc = acc * 256 + in[i] + 128; }
    chain.in[e] <== acc;
  }
  out <== chain.out;
}

// int32 values as four bytes big-endian of v + 2^31, ${COMMITMENT_BYTES_PER_ELEMENT} bytes big-endian per element; range-checks every value
template CommitInt32(n) {
  signal input in[n];
  signal output out;
  component bits[n];
  for (var i = 0; i < n; i++) {
    bits[i] = Num2Bits(32);
    bits[i].in <== in[i] + 2 ** 31;
  }
  var bytes = 4 * n;
  var elements = (bytes + ${COMMITMENT_BYTES_PER_ELEMENT - 1}) \\ ${COMMITMENT_BYTES_PER_ELEMENT};
  component chain = PoseidonChain(elements);
  var value = 0;
  var position = 0;
  var byte = 0;
  for (var e = 0; e < elements; e++) {
    var acc = 0;
    for (var b = ${COMMITMENT_BYTES_PER_ELEMENT} * e; b < bytes && b < ${COMMITMENT_BYTES_PER_ELEMENT} * (e + 1); b++) {
      value = b \\ 4;
      position = 3 - b % 4;
      byte = 0;
      for (var t = 0; t < 8; t++) { byte += bits[value].out[8 * position + t] * 2 ** t; }
      acc = acc * 256 + byte;
    }
    chain.in[e] <== acc;
  }
  out <== chain.out;
}`

function renderSource (p: SourceParts): string {
  const commit = p.outputDtype === 'int8' ? 'CommitInt8' : 'CommitInt32'
  return `// Generated by poi (node/inference/zk/circuit.ts) from an ONNX model: do not edit.
pragma circom 2.1.0;

include "circomlib/circuits/poseidon.circom";
include "circomlib/circuits/bitify.circom";

${HELPER_TEMPLATES}

template ${MODEL_TEMPLATE}() {
  signal input circuitId;
  signal input inputCommitment;
  signal input outputCommitment;
  signal input prover;
  signal input ${CIRCUIT_INPUT_SIGNAL}[${p.inputSize}];
  // the model's output; declared before the layers so that --O2, which removes the newest signal
  // of each linear constraint, removes a hidden value rather than this one and it stays readable in the witness
  signal ${CIRCUIT_OUTPUT_SIGNAL}[${p.outputSize}];

  circuitId === ${p.circuitId};
  // the payee takes part in a constraint: an unconstrained public input could be changed in a valid proof
  signal proverSquare <== prover * prover;

  component inputCommit = CommitInt8(${p.inputSize});
  for (var i = 0; i < ${p.inputSize}; i++) { inputCommit.in[i] <== ${CIRCUIT_INPUT_SIGNAL}[i]; }
  inputCommitment === inputCommit.out;
${p.body.join('\n')}

  // the model's output, committed
  component outputCommit = ${commit}(${p.outputSize});
  for (var j = 0; j < ${p.outputSize}; j++) {
    ${CIRCUIT_OUTPUT_SIGNAL}[j] <== ${p.outputSignal}[j];
    outputCommit.in[j] <== ${CIRCUIT_OUTPUT_SIGNAL}[j];
  }
  outputCommitment === outputCommit.out;
}

component main {public [${PUBLIC_SIGNALS.join(', ')}]} = ${MODEL_TEMPLATE}();
`
}

/** What a circuit proves about one run: its public signals and the private input (spec16's order). */
export interface CircuitInput {
  circuitId: bigint
  /** commitTensor(x, 'int8') */
  inputCommitment: bigint
  /** commitTensor(output, outputDtype) */
  outputCommitment: bigint
  /** The payee's 20-byte Ethereum address as a number. */
  prover: bigint
  /** The model input (int8 values). */
  x: ArrayLike<number>
}

/**
 * The circuit input for a model run: the circuit id and the commitments to the input and to the
 * output onnxruntime gave. Throws RangeError if the tensors do not fit the circuit's shapes.
 */
export function circuitInputOf (circuit: Pick<CompiledCircuit, 'circuitId' | 'inputShape' | 'outputShape' | 'outputDtype'>, x: Int8Array, output: Int8Array | Int32Array, prover: bigint): CircuitInput {
  if (prover < 0n || prover >= 1n << 160n) throw new RangeError(`the prover must be a 20-byte address, got ${prover}`)
  if (x.length !== circuit.inputShape[1]) throw new RangeError(`the circuit takes ${circuit.inputShape[1]} input values, got ${x.length}`)
  if (output.length !== circuit.outputShape[1]) throw new RangeError(`the circuit gives ${circuit.outputShape[1]} output values, got ${output.length}`)
  return {
    circuitId: circuit.circuitId,
    inputCommitment: commitTensor(x, 'int8'),
    outputCommitment: commitTensor(output, circuit.outputDtype),
    prover,
    x
  }
}

/** The public signals snarkjs lists for this input: [circuitId, inputCommitment, outputCommitment, prover] as decimal strings. */
export function circuitPublicSignals (input: Pick<CircuitInput, typeof PUBLIC_SIGNALS[number]>): [string, string, string, string] {
  return [input.circuitId.toString(), input.inputCommitment.toString(), input.outputCommitment.toString(), input.prover.toString()]
}
