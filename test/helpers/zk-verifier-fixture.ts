/**
 * A tiny Groth16 circuit with poi's four public inputs (circuitId, inputCommitment,
 * outputCommitment, prover, in that order), its verification key and one proof: what the on-chain
 * verifier tests need, without the ONNX compiler or the ceremony (other parts of issue 16; the
 * lead may replace this with their fixture).
 *
 * Built once per machine and kept under the OS temp dir, keyed by the circuit's source and the
 * circom2 and snarkjs versions: a cold build (circom2 compile, a 2^8 powers of tau, setup, one
 * proof) takes about ten seconds, a warm one reads four files. Each build writes into its own
 * directory and renames it into place, so parallel test processes never see half a fixture.
 * fixtureProof proves the circuit for any input commitment and prover (a task's, for settlement
 * tests) with the cached key: about a second.
 */
import { createHash } from 'node:crypto'
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import type { Groth16VerificationKey, ZkProof } from '../../contracts/zk-verifier.js'

const require = createRequire(import.meta.url)
const execFileAsync = promisify(execFile)

/** The circuit id the fixture circuit constrains its first public input to (31 bytes, below the field). */
export const FIXTURE_CIRCUIT_ID = BigInt('0x' + createHash('sha256').update('poi zk-verifier fixture circuit').digest('hex').slice(0, 62))
/** The private input of the one proof, and the public commitments it implies (see SOURCE). */
const FIXTURE_X = 5n
export const FIXTURE_INPUT_COMMITMENT = FIXTURE_X + 7n
export const FIXTURE_OUTPUT_COMMITMENT = FIXTURE_X ** 3n + FIXTURE_INPUT_COMMITMENT
/** The payee the fixture's one proof names (anvil's account 9; any address works). */
export const FIXTURE_PROVER: `0x${string}` = '0xa0Ee7A142d267C1f36714E4a8F75612F20a79720'
/** BN254's scalar field: the circuit's arithmetic is modulo it. */
const FIELD = 21888242871839275222246405745257275088548364400416034343698204186575808495617n
/** 2^8 = 256 rows: far above the circuit's few constraints, and a ptau that builds in seconds. */
const PTAU_POWER = 8
const CACHE_ROOT = join(tmpdir(), 'poi-zk-verifier-fixture')

/**
 * Public inputs declared in the order the spec fixes; x is private. Four constraints: prover is
 * constrained by its square (spec 16's change: an unconstrained public input would be malleable).
 */
const SOURCE = `pragma circom 2.1.0;

template Model() {
    signal input circuitId;
    signal input inputCommitment;
    signal input outputCommitment;
    signal input prover;
    signal input x;

    circuitId === ${FIXTURE_CIRCUIT_ID};
    inputCommitment === x + 7;
    signal square <== x * x;
    outputCommitment - inputCommitment === square * x;
    signal proverSquare <== prover * prover;
}

component main {public [circuitId, inputCommitment, outputCommitment, prover]} = Model();
`

export interface ZkVerifierFixture {
  /** The cache directory holding circuit.zkey, vkey.json and proof.json. */
  dir: string
  zkeyFile: string
  vkey: Groth16VerificationKey
  /** snarkjs's JSON: publicSignals = [circuitId, inputCommitment, outputCommitment, prover]. */
  proof: ZkProof
}

/** The untyped snarkjs calls the fixture makes. */
interface Snarkjs {
  powersOfTau: {
    newAccumulator: (curve: unknown, power: number, file: string) => Promise<unknown>
    contribute: (from: string, to: string, name: string, entropy: string) => Promise<unknown>
    preparePhase2: (from: string, to: string) => Promise<unknown>
  }
  zKey: {
    newZKey: (r1cs: string, ptau: string, zkey: string) => Promise<unknown>
    exportVerificationKey: (zkey: string) => Promise<Groth16VerificationKey>
    exportSolidityVerifier: (zkey: string, templates: { groth16: string }) => Promise<string>
  }
  groth16: {
    fullProve: (input: Record<string, string>, wasm: string, zkey: string) => Promise<ZkProof>
    exportSolidityCallData: (proof: ZkProof['proof'], publicSignals: string[]) => Promise<string>
    verify: (vkey: Groth16VerificationKey, publicSignals: string[], proof: ZkProof['proof']) => Promise<boolean>
  }
  curves: { getCurveFromName: (name: string) => Promise<{ terminate: () => Promise<void> }> }
}

/** A non-literal specifier: snarkjs ships no types, and this helper states the few it uses above. */
const SNARKJS = 'snarkjs'

export async function loadSnarkjs (): Promise<Snarkjs> {
  return await import(SNARKJS) as Snarkjs
}

let built: Promise<ZkVerifierFixture> | undefined

/** The fixture, built on first use on this machine and read from the cache afterwards. */
export async function zkVerifierFixture (): Promise<ZkVerifierFixture> {
  built ??= loadOrBuild()
  return await built
}

async function loadOrBuild (): Promise<ZkVerifierFixture> {
  const versions = await Promise.all(['circom2', 'snarkjs'].map(packageVersion))
  const key = createHash('sha256').update(JSON.stringify([SOURCE, PTAU_POWER, FIXTURE_X.toString(), versions])).digest('hex').slice(0, 16)
  const dir = join(CACHE_ROOT, key)
  const cached = await read(dir).catch(() => undefined)
  if (cached !== undefined) return cached
  await mkdir(CACHE_ROOT, { recursive: true })
  const work = await mkdtemp(join(CACHE_ROOT, `${key}.building-`))
  try {
    await build(work)
    await rename(work, dir).catch(async (err: NodeJS.ErrnoException) => {
      // another process finished first: its fixture is as good as ours
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err
      await rm(work, { recursive: true, force: true })
    })
  } catch (err) {
    await rm(work, { recursive: true, force: true })
    throw err
  }
  return await read(dir)
}

/** An installed package's version (snarkjs's exports map hides its package.json from require). */
async function packageVersion (name: string): Promise<string> {
  for (let dir = dirname(require.resolve(name)); dir !== dirname(dir); dir = dirname(dir)) {
    const pkg = await readFile(join(dir, 'package.json'), 'utf8').then(t => JSON.parse(t) as { name?: string, version?: string }, () => undefined)
    if (pkg?.name === name && pkg.version !== undefined) return pkg.version
  }
  throw new Error(`no package.json of ${name} above ${require.resolve(name)}`)
}

async function read (dir: string): Promise<ZkVerifierFixture> {
  const [vkey, proof] = await Promise.all(['vkey.json', 'proof.json'].map(async f => JSON.parse(await readFile(join(dir, f), 'utf8')) as unknown))
  return { dir, zkeyFile: join(dir, 'circuit.zkey'), vkey: vkey as Groth16VerificationKey, proof: proof as ZkProof }
}

/** The circuit's inputs for `inputCommitment` (below the field) and `prover`: x = inputCommitment - 7, outputCommitment = x³ + inputCommitment (mod r). */
function fixtureWitnessInput (inputCommitment: bigint, prover: `0x${string}`): Record<string, string> {
  const x = ((inputCommitment - 7n) % FIELD + FIELD) % FIELD
  const output = (x * x % FIELD * x + inputCommitment) % FIELD
  return { circuitId: FIXTURE_CIRCUIT_ID.toString(), inputCommitment: inputCommitment.toString(), outputCommitment: output.toString(), prover: BigInt(prover).toString(), x: x.toString() }
}

/** The output commitment the fixture circuit proves for `inputCommitment`. */
export function fixtureOutputCommitment (inputCommitment: bigint): bigint {
  return BigInt(fixtureWitnessInput(inputCommitment, FIXTURE_PROVER).outputCommitment)
}

/**
 * A proof of the fixture circuit for `inputCommitment` (a task's, below the field) made for
 * `prover`, with the cached key. snarkjs builds its curve on globalThis (curve_bn128): the caller
 * terminates it when done, or its worker threads keep the process alive.
 */
export async function fixtureProof (inputCommitment: bigint, prover: `0x${string}`): Promise<ZkProof> {
  const { dir, zkeyFile } = await zkVerifierFixture()
  const snarkjs = await loadSnarkjs()
  return await snarkjs.groth16.fullProve(fixtureWitnessInput(inputCommitment, prover), join(dir, 'circuit_js', 'circuit.wasm'), zkeyFile)
}

async function build (dir: string): Promise<void> {
  const circuit = join(dir, 'circuit.circom')
  await writeFile(circuit, SOURCE)
  // circom2 runs in a WASI sandbox that maps the filesystem root: cwd '/', absolute paths
  await execFileAsync(process.execPath, [require.resolve('circom2/cli.js'), circuit, '--O2', '--r1cs', '--wasm', '--sym', '-o', dir], { cwd: '/' })
  const snarkjs = await loadSnarkjs()
  const curve = await snarkjs.curves.getCurveFromName('bn128')
  try {
    const ptau0 = join(dir, 'pot0.ptau')
    const ptau1 = join(dir, 'pot1.ptau')
    const ptau = join(dir, 'final.ptau')
    await snarkjs.powersOfTau.newAccumulator(curve, PTAU_POWER, ptau0)
    await snarkjs.powersOfTau.contribute(ptau0, ptau1, 'fixture', createHash('sha256').update(dir).digest('hex'))
    await snarkjs.powersOfTau.preparePhase2(ptau1, ptau)
    const zkey = join(dir, 'circuit.zkey')
    await snarkjs.zKey.newZKey(join(dir, 'circuit.r1cs'), ptau, zkey)
    const vkey = await snarkjs.zKey.exportVerificationKey(zkey)
    const proof = await snarkjs.groth16.fullProve(fixtureWitnessInput(FIXTURE_INPUT_COMMITMENT, FIXTURE_PROVER), join(dir, 'circuit_js', 'circuit.wasm'), zkey)
    await writeFile(join(dir, 'vkey.json'), JSON.stringify(vkey))
    await writeFile(join(dir, 'proof.json'), JSON.stringify(proof))
    await Promise.all([ptau0, ptau1].map(async f => await rm(f)))
  } finally {
    // snarkjs's curve runs worker threads that keep the process alive until terminated
    await curve.terminate()
  }
}
