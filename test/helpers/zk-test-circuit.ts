/**
 * A tiny hand-written circuit with the public-signal layout of poi's model circuits (spec16):
 * public inputs circuitId, inputCommitment, outputCommitment, prover in that order; a private int8
 * input x[3]; y = W·x + b (int32 [1, 2]); commitments by spec16's byte packing (int8 v → one
 * byte v+128, int32 v → four bytes big-endian of v+2^31, 31 bytes per field element, Poseidon
 * chain from h0 = 0): 3 and 8 bytes, so one element each and h = Poseidon([0, e0]).
 * It lets the ceremony and the prover be tested without the ONNX compiler.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { poseidon2 } from 'poseidon-lite'
import { generatePtau } from '../../node/inference/zk/ceremony.js'
import { compileCircuit } from '../../node/inference/zk/toolchain.js'
import { readPtauHeader } from '../../node/inference/zk/headers.js'

/** Three inputs, not more: with the prover's constraint the circuit has 500 constraints, and with its 4 public inputs it fits a 2^9 powers of tau (a 2^10 one takes twice as long to make). */
export const TEST_W: readonly (readonly number[])[] = [[1, -2, 4], [-5, 6, 7]]
export const TEST_B: readonly number[] = [10, -20]

/** Where circuitId's constant goes; sha256 of the source with 0 there names the circuit. */
const CIRCUIT_ID_SLOT = '__CIRCUIT_ID__'

const SOURCE = `pragma circom 2.1.0;
include "circomlib/circuits/poseidon.circom";
include "circomlib/circuits/bitify.circom";

template Model() {
    signal input circuitId;
    signal input inputCommitment;
    signal input outputCommitment;
    signal input prover;
    signal input x[3];

    circuitId === ${CIRCUIT_ID_SLOT};
    // the payee takes part in a constraint: an unconstrained public input could be changed in a valid proof
    signal proverSquare <== prover * prover;

    component range[3];
    var packedX = 0;
    for (var i = 0; i < 3; i++) {
        range[i] = Num2Bits(8);
        range[i].in <== x[i] + 128;
        packedX = packedX * 256 + (x[i] + 128);
    }
    component hx = Poseidon(2);
    hx.inputs[0] <== 0;
    hx.inputs[1] <== packedX;
    inputCommitment === hx.out;

    var W[2][3] = [${TEST_W.map(r => `[${r.join(', ')}]`).join(', ')}];
    var b[2] = [${TEST_B.join(', ')}];
    signal y[2];
    var packedY = 0;
    for (var j = 0; j < 2; j++) {
        var acc = b[j];
        for (var i = 0; i < 3; i++) acc += W[j][i] * x[i];
        y[j] <== acc;
        packedY = packedY * 4294967296 + (y[j] + 2147483648);
    }
    component hy = Poseidon(2);
    hy.inputs[0] <== 0;
    hy.inputs[1] <== packedY;
    outputCommitment === hy.out;
}

component main {public [circuitId, inputCommitment, outputCommitment, prover]} = Model();
`

/** spec16's circuit id: the first 31 bytes (big-endian) of sha256 of the source with the id written as 0. */
export const TEST_CIRCUIT_ID: bigint = BigInt('0x' + createHash('sha256').update(SOURCE.replace(CIRCUIT_ID_SLOT, '0')).digest('hex').slice(0, 62))
export const TEST_CIRCUIT_SOURCE = SOURCE.replace(CIRCUIT_ID_SLOT, TEST_CIRCUIT_ID.toString())

/** The circuit's y for an input (plain integer arithmetic, as onnxruntime would compute it). */
export function testModel (x: readonly number[]): number[] {
  return TEST_W.map((row, j) => row.reduce((acc, w, i) => acc + w * x[i], TEST_B[j]))
}

/** spec16's commitment of an int8 vector of at most 31 values (one field element). */
export function commitInt8 (values: readonly number[]): bigint {
  if (values.length > 31) throw new RangeError('the test commitment packs one field element: at most 31 int8 values')
  return poseidon2([0n, values.reduce((acc, v) => acc * 256n + BigInt(v + 128), 0n)])
}

/** spec16's commitment of an int32 vector of at most 7 values (one field element). */
export function commitInt32 (values: readonly number[]): bigint {
  if (values.length > 7) throw new RangeError('the test commitment packs one field element: at most 7 int32 values')
  return poseidon2([0n, values.reduce((acc, v) => acc * 2n ** 32n + BigInt(v) + 2n ** 31n, 0n)])
}

/** The prover address the tests' proofs name, unless a test names another. */
export const TEST_PROVER = 0x00000000000000000000000000000000000000a1n

/** The full witness input of the test circuit for x (the public signals it proves, then x). */
export function testCircuitInput (x: readonly number[], prover: bigint = TEST_PROVER): Record<string, string | string[]> {
  return {
    circuitId: TEST_CIRCUIT_ID.toString(),
    inputCommitment: commitInt8(x).toString(),
    outputCommitment: commitInt32(testModel(x)).toString(),
    prover: prover.toString(),
    x: x.map(String)
  }
}

export interface TestCircuit {
  r1cs: string
  /** The witness generator. */
  wasm: string
  sym: string
  dir: string
  /** Removes the compiled files. */
  remove: () => Promise<void>
}

/** Compiles the test circuit into a fresh temporary directory. */
export async function compileTestCircuit (): Promise<TestCircuit> {
  const dir = await mkdtemp(join(tmpdir(), 'poi-zk-circuit-'))
  const files = await compileCircuit(TEST_CIRCUIT_SOURCE, dir)
  return { r1cs: files.r1csPath, wasm: files.wasmPath, sym: files.symPath, dir, remove: async () => { await rm(dir, { recursive: true, force: true }) } }
}

/** The powers of tau the test circuit needs (500 constraints + 4 public inputs < 2^9). */
export const TEST_PTAU_POWER = 9

/** Per machine, outside the repository, shared by test files and worktrees; keyed by power and snarkjs version. */
const PTAU_CACHE_DIR = join(tmpdir(), 'poi-zk-test-cache')
/** snarkjs exports no package.json: it is read beside its CommonJS build (build/main.cjs). */
const SNARKJS_VERSION = (JSON.parse(readFileSync(join(dirname(createRequire(import.meta.url).resolve('snarkjs')), '..', 'package.json'), 'utf8')) as { version: string }).version

/**
 * A prepared powers of tau for the test circuit, generated by generatePtau once per machine and
 * reused: preparing even 2^9 takes 15–20 s on two loaded cores, more than the rest of a
 * ceremony. A test that needs generation itself calls generatePtau (at a small power).
 */
export async function cachedTestPtau (): Promise<string> {
  const file = join(PTAU_CACHE_DIR, `ptau-${TEST_PTAU_POWER}-snarkjs-${SNARKJS_VERSION}.ptau`)
  const cached = await readPtauHeader(file).catch(() => undefined)
  if (cached?.prepared === true && cached.power === TEST_PTAU_POWER) return file
  await mkdir(PTAU_CACHE_DIR, { recursive: true })
  const work = await mkdtemp(join(PTAU_CACHE_DIR, 'generating-'))
  try {
    const generated = await generatePtau(work, TEST_PTAU_POWER, { name: 'poi tests' })
    // Two test files generating at once: each renames a whole file, the last one stays.
    await rename(join(work, generated.file), file)
  } finally {
    await rm(work, { recursive: true, force: true })
  }
  return file
}
