/**
 * The circom2 toolchain: compile a generated circuit (Circom 2 in WebAssembly, run as a CLI)
 * and compute witnesses with the witness calculator circom generates beside the wasm.
 *
 * circom2's WASI sandbox maps the file system relative to its working directory, so it runs
 * with cwd `/` and absolute paths (spec16); circomlib's includes resolve through
 * `-l <repo>/node_modules`.
 */
import { spawn } from 'node:child_process'
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CIRCUIT_OUTPUT_SIGNAL, type CircuitInput, type CompiledCircuit, MODEL_TEMPLATE, PUBLIC_SIGNALS, compileOnnxToCircom } from './circuit.js'
import { BN254_SCALAR_FIELD, toFieldElement } from './commitments.js'
import { CircomError, WitnessError } from './errors.js'
import { readR1csHeader } from './headers.js'

/** File stem of every compiled circuit in its work directory. */
export const CIRCUIT_FILE_STEM = 'model'

/**
 * The repo root: compiled code runs from dist/node/inference/zk/, sources from node/inference/zk/.
 * circom's includes resolve against its node_modules.
 */
export const REPO_ROOT: string = (() => {
  const here = dirname(fileURLToPath(import.meta.url))
  const up = resolve(here, '../../..')
  return up.endsWith('/dist') ? dirname(up) : up
})()

export interface CompileProgress {
  stage: 'circom'
  /** One line circom printed (template instances, constraint counts, files written). */
  message: string
}

export interface CompileCircuitOptions {
  onProgress?: (event: CompileProgress) => void
  /** Directory holding circomlib (default: the repo's node_modules). */
  includeDir?: string
  signal?: AbortSignal
}

export interface CompiledCircuitFiles {
  circomPath: string
  r1csPath: string
  wasmPath: string
  symPath: string
  /** Constraints in the r1cs after --O2 (what sizes the powers of tau). */
  constraints: number
  /** Wires of the r1cs: the witness length. */
  wires: number
  /** Public inputs (always PUBLIC_SIGNALS.length here). */
  publicInputs: number
  /** Wall time of circom, ms. */
  compileMs: number
}

const CIRCOM_CLI = (): string => createRequire(import.meta.url).resolve('circom2/cli.js')

/** Tail of circom's output kept in a CircomError: its message is at the end. */
const MAX_CIRCOM_OUTPUT_CHARS = 8000

/**
 * Write `source` to <workDir>/model.circom and compile it with circom2 (--O2 --r1cs --wasm
 * --sym). Throws CircomError with circom's message if it refuses the source or fails.
 */
export async function compileCircuit (source: string, workDir: string, options: CompileCircuitOptions = {}): Promise<CompiledCircuitFiles> {
  const dir = resolve(workDir)
  await mkdir(dir, { recursive: true })
  const circomPath = join(dir, `${CIRCUIT_FILE_STEM}.circom`)
  await writeFile(circomPath, source)
  const includeDir = resolve(options.includeDir ?? join(REPO_ROOT, 'node_modules'))
  const started = performance.now()
  const output = await runCircom([circomPath, '--O2', '--r1cs', '--wasm', '--sym', '-o', dir, '-l', includeDir], options)
  const compileMs = performance.now() - started
  const r1csPath = join(dir, `${CIRCUIT_FILE_STEM}.r1cs`)
  const header = await readR1csHeader(r1csPath).catch((err: unknown) => {
    throw new CircomError(`circom finished but ${r1csPath} is unreadable (${(err as Error).message})`, output)
  })
  return {
    circomPath,
    r1csPath,
    wasmPath: join(dir, `${CIRCUIT_FILE_STEM}_js`, `${CIRCUIT_FILE_STEM}.wasm`),
    symPath: join(dir, `${CIRCUIT_FILE_STEM}.sym`),
    constraints: header.constraints,
    wires: header.wires,
    publicInputs: header.publicInputs,
    compileMs
  }
}

/** compileOnnxToCircom then compileCircuit: an ONNX model to r1cs, wasm and sym in workDir. */
export async function compileModelCircuit (modelBytes: Uint8Array, workDir: string, options: CompileCircuitOptions = {}): Promise<{ circuit: CompiledCircuit, files: CompiledCircuitFiles }> {
  const circuit = compileOnnxToCircom(modelBytes)
  return { circuit, files: await compileCircuit(circuit.source, workDir, options) }
}

async function runCircom (args: string[], options: CompileCircuitOptions): Promise<string> {
  return await new Promise((resolvePromise, reject) => {
    // cwd '/': circom2's WASI preopens map paths relative to it, so absolute paths resolve
    const child = spawn(process.execPath, [CIRCOM_CLI(), ...args], { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal })
    let output = ''
    let pending = ''
    const onData = (chunk: Buffer): void => {
      const text = chunk.toString('utf8')
      output = (output + text).slice(-MAX_CIRCOM_OUTPUT_CHARS)
      pending += text
      const lines = pending.split('\n')
      pending = lines.pop() ?? ''
      // circom colours its output; progress listeners get plain text
      // eslint-disable-next-line no-control-regex
      for (const line of lines) if (line.trim() !== '') options.onProgress?.({ stage: 'circom', message: line.replace(/\x1b\[[0-9;]*m/g, '') })
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.on('error', err => { reject(new CircomError(`could not run circom2 (${CIRCOM_CLI()})`, output, { cause: err })) })
    child.on('close', code => {
      // eslint-disable-next-line no-control-regex
      const plain = output.replace(/\x1b\[[0-9;]*m/g, '').trim()
      if (code === 0 && !/error\[/i.test(plain)) resolvePromise(plain)
      else reject(new CircomError(`circom2 refused the circuit (exit code ${code})`, plain))
    })
  })
}


interface WitnessCalculator {
  calculateWitness: (input: Record<string, unknown>, sanityCheck: boolean) => Promise<bigint[]>
  calculateWTNSBin: (input: Record<string, unknown>, sanityCheck: boolean) => Promise<Uint8Array>
}
type WitnessCalculatorBuilder = (code: Uint8Array, options?: Record<string, unknown>) => Promise<WitnessCalculator>

/**
 * circom writes witness_calculator.js as CommonJS beside the wasm; the repo is an ES module
 * package, so it is loaded through a .cjs copy.
 */
async function loadWitnessCalculator (wasmPath: string): Promise<WitnessCalculator> {
  const dir = dirname(wasmPath)
  const cjs = join(dir, 'witness_calculator.cjs')
  try {
    await copyFile(join(dir, 'witness_calculator.js'), cjs)
    const builder = createRequire(import.meta.url)(cjs) as WitnessCalculatorBuilder
    return await builder(await readFile(wasmPath))
  } catch (err) {
    throw new WitnessError(`cannot load the witness calculator of ${wasmPath}: ${(err as Error).message}`, { cause: err })
  }
}

function witnessInput (input: CircuitInput): Record<string, unknown> {
  // the witness calculator would reduce a value ≥ r mod r: refuse it, as the verifier does
  const [circuitId, inputCommitment, outputCommitment, prover] = PUBLIC_SIGNALS.map(name => toFieldElement(name, input[name]))
  return {
    circuitId: circuitId.toString(),
    inputCommitment: inputCommitment.toString(),
    outputCommitment: outputCommitment.toString(),
    prover: prover.toString(),
    x: Array.from(input.x, v => v.toString())
  }
}

function witnessFailure (err: unknown): WitnessError {
  const message = (err as Error).message ?? String(err)
  const hint = /assert failed/i.test(message)
    ? ' (a constraint failed: the circuit id, input commitment or output commitment does not match the model run on this input, or an input is out of the int8 range)'
    : ''
  return new WitnessError(`the circuit's witness could not be computed${hint}: ${message.trim()}`, { cause: err })
}

/**
 * Compute the full witness (every wire, wire 0 = 1) for an input. Throws SignalOutOfField for a
 * public signal outside [0, r), WitnessError when a constraint fails (e.g. a wrong output
 * commitment or an input value outside int8).
 */
export async function computeWitness (wasmPath: string, input: CircuitInput): Promise<bigint[]> {
  const signals = witnessInput(input)
  const calculator = await loadWitnessCalculator(wasmPath)
  try {
    return await calculator.calculateWitness(signals, true)
  } catch (err) {
    throw witnessFailure(err)
  }
}

/** Same as computeWitness, written as a .wtns file (what snarkjs's groth16.prove reads). */
export async function writeWitnessFile (wasmPath: string, input: CircuitInput, wtnsPath: string): Promise<void> {
  const signals = witnessInput(input)
  const calculator = await loadWitnessCalculator(wasmPath)
  let bin: Uint8Array
  try {
    bin = await calculator.calculateWTNSBin(signals, true)
  } catch (err) {
    throw witnessFailure(err)
  }
  await writeFile(wtnsPath, bin)
}

/** Witness index of each named signal of the main template, from circom's .sym file (-1: optimised away). */
export async function readSignalIndex (symPath: string): Promise<Map<string, number>> {
  const index = new Map<string, number>()
  for (const line of (await readFile(symPath, 'utf8')).split('\n')) {
    // <label>,<witness index or -1>,<component>,<name>
    const parts = line.split(',')
    if (parts.length < 4) continue
    index.set(parts.slice(3).join(','), Number(parts[1]))
  }
  return index
}

/** Signed integer value of a field element that encodes one (|v| < r/2). */
export function fieldToSigned (v: bigint): bigint {
  return v > BN254_SCALAR_FIELD / 2n ? v - BN254_SCALAR_FIELD : v
}

/**
 * The model's output values as the circuit computed them, read from a witness through the
 * .sym file (signal `main.y[j]`). Throws WitnessError if --O2 removed them from the witness.
 */
export async function readCircuitOutputs (symPath: string, witness: readonly bigint[], outputSize: number): Promise<bigint[]> {
  const index = await readSignalIndex(symPath)
  return Array.from({ length: outputSize }, (_, j) => {
    const name = `main.${CIRCUIT_OUTPUT_SIGNAL}[${j}]`
    const at = index.get(name)
    if (at === undefined) throw new WitnessError(`${symPath} has no signal ${name}; is it a circuit compiled from ${MODEL_TEMPLATE}?`)
    if (at < 0 || at >= witness.length) throw new WitnessError(`signal ${name} is not in the witness (circom optimised it away)`)
    return fieldToSigned(witness[at])
  })
}
