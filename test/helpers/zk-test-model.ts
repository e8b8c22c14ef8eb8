/**
 * The zk tier's test model (spec16n, "Test fixture"): a real tiny int8 model, its circuit
 * compiled from the ONNX graph, and a ceremony with two contributions, finalized. What tests of
 * proofs on the network, manifests with a `zk` section and settlement need, without each
 * building its own.
 *
 * Built once per machine under the OS temp dir (/tmp/poi-zk-test-cache), keyed by the model's
 * bytes, its circuit's source and the circom2, circomlib and snarkjs versions: the prepared powers of tau 2^10 is made once (a
 * lock, so two test files never both make it), the circuit and ceremony once per key. Each build
 * writes into its own directory and renames it into place, under a lock, so parallel test
 * processes wait for one build and never see half a fixture. A warm fixture reads four files.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { InferenceRunner, type ModelManifest } from '../../node/inference/index.js'
import { buildSeededQuantisedModel } from '../../node/fixtures/index.js'
import {
  circuitInputOf, commitTensor, compileModelCircuit, compileOnnxToCircom, contribute, finalizeCeremony, generatePtau, parseVerificationKey, prove, readPtauHeader, startCeremony,
  type VerificationKey, type ZkProof
} from '../../node/inference/zk/index.js'

/** The smallest model the compiler takes that still has a hidden layer: 2 → 2 → 2. */
export const ZK_TEST_MODEL_SIZES = { inputSize: 2, hiddenSize: 2, classes: 2 } as const
/** 2^10 rows: the 2→2→2 circuit with its commitments fits with room (spec16n). */
export const ZK_TEST_PTAU_POWER = 10
const CACHE_DIR = join(tmpdir(), 'poi-zk-test-cache')
/** A lock older than this is from a process that died mid-build (a cold build takes about a minute). */
const STALE_LOCK_MS = 10 * 60_000
const LOCK_POLL_MS = 250

const require = createRequire(import.meta.url)

export interface ZkTestModel {
  modelBytes: Uint8Array
  /** The model's manifest, without a `zk` section. */
  manifest: ModelManifest
  circuitId: bigint
  /** circom's witness generator (model.wasm). */
  wasm: Uint8Array
  /** The ceremony's final proving key. */
  zkey: Uint8Array
  /** verification_key.json as finalize wrote it. */
  vkey: Uint8Array
  verificationKey: VerificationKey
  /** The cache directory holding model.wasm, model.zkey and verification_key.json (for prove(), which reads files). */
  dir: string
  wasmPath: string
  zkeyPath: string
}

let loaded: Promise<ZkTestModel> | undefined

/** The fixture: built on first use on this machine (about a minute on two loaded cores), read from the cache afterwards. */
export async function zkTestModel (onProgress?: (line: string) => void): Promise<ZkTestModel> {
  loaded ??= loadOrBuild(onProgress)
  return await loaded
}

function packageVersion (name: string): string {
  for (let dir = dirname(require.resolve(name)); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string, version?: string }
      if (pkg.name === name && pkg.version !== undefined) return pkg.version
    } catch {}
  }
  throw new Error(`no package.json of ${name} above ${require.resolve(name)}`)
}

async function loadOrBuild (onProgress?: (line: string) => void): Promise<ZkTestModel> {
  const { modelBytes, manifest } = buildSeededQuantisedModel(ZK_TEST_MODEL_SIZES)
  const versions = ['circom2', 'snarkjs', 'circomlib'].map(packageVersion)
  // the circuit's source too: a change of the compiler makes another circuit of the same model
  const key = createHash('sha256').update(modelBytes).update(compileOnnxToCircom(modelBytes).source).update(JSON.stringify(versions)).digest('hex').slice(0, 16)
  const dir = join(CACHE_DIR, `model-${key}`)
  const cached = await read(dir, modelBytes, manifest).catch(() => undefined)
  if (cached !== undefined) return cached
  await mkdir(CACHE_DIR, { recursive: true })
  await withLock(join(CACHE_DIR, `model-${key}.lock`), async () => {
    if (await read(dir, modelBytes, manifest).catch(() => undefined) !== undefined) return
    const ptau = await cachedPtau(onProgress)
    const work = await mkdtemp(join(CACHE_DIR, `model-${key}.building-`))
    try {
      await build(work, modelBytes, ptau, onProgress)
      await rm(dir, { recursive: true, force: true })
      await rename(work, dir)
    } catch (err) {
      await rm(work, { recursive: true, force: true })
      throw err
    }
  })
  return await read(dir, modelBytes, manifest)
}

async function build (work: string, modelBytes: Uint8Array, ptau: string, onProgress?: (line: string) => void): Promise<void> {
  const started = Date.now()
  const { circuit, files } = await compileModelCircuit(modelBytes, join(work, 'circuit'))
  onProgress?.(`zk test model: circuit ${files.constraints} constraints in ${Math.round(files.compileMs)} ms`)
  const ceremony = join(work, 'ceremony')
  await startCeremony(files.r1csPath, ptau, ceremony, { name: 'poi tests', onProgress })
  await contribute(ceremony, { name: 'first contributor', onProgress })
  await contribute(ceremony, { name: 'second contributor', onProgress })
  const { record } = await finalizeCeremony(ceremony, { onProgress })
  if (record.final === null) throw new Error('the ceremony did not finalize')
  await copyFile(files.wasmPath, join(work, 'model.wasm'))
  await copyFile(join(ceremony, record.final.zkeyFile), join(work, 'model.zkey'))
  await copyFile(join(ceremony, record.final.verificationKeyFile), join(work, 'verification_key.json'))
  await writeFile(join(work, 'circuit.json'), JSON.stringify({ circuitId: circuit.circuitId.toString(), constraints: files.constraints }) + '\n')
  await rm(join(work, 'circuit'), { recursive: true, force: true })
  await rm(join(work, 'ceremony'), { recursive: true, force: true })
  onProgress?.(`zk test model: built in ${((Date.now() - started) / 1000).toFixed(1)} s`)
}

async function read (dir: string, modelBytes: Uint8Array, manifest: ModelManifest): Promise<ZkTestModel> {
  const [wasm, zkey, vkey, circuit] = await Promise.all(['model.wasm', 'model.zkey', 'verification_key.json', 'circuit.json'].map(async f => new Uint8Array(await readFile(join(dir, f)))))
  const { circuitId } = JSON.parse(Buffer.from(circuit).toString('utf8')) as { circuitId: string }
  return {
    modelBytes,
    manifest,
    circuitId: BigInt(circuitId),
    wasm,
    zkey,
    vkey,
    verificationKey: parseVerificationKey(JSON.parse(Buffer.from(vkey).toString('utf8'))),
    dir,
    wasmPath: join(dir, 'model.wasm'),
    zkeyPath: join(dir, 'model.zkey')
  }
}

/** One run of the test model, proved: what a prover would announce for a task with this input. */
export interface ZkTestRun {
  /** The int8 input values. */
  x: Int8Array
  /** The task input bytes (the JSON the runner reads: { x: { dims, data } }). */
  input: Uint8Array
  /** commitTensor(x, 'int8'): a zk task's inputCommitment. */
  inputCommitment: bigint
  /** The canonical output (as attestations and proof announcements carry it). */
  output: Uint8Array
  logits: Int32Array
  outputCommitment: bigint
  proof: ZkProof
  proveMs: number
}

/** The task input bytes of int8 values x for the test model. */
export function zkTestInput (x: readonly number[]): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ x: { dims: [1, x.length], data: x } }))
}

/**
 * Runs the test model on `x` with onnxruntime and proves the run for `prover` with the cached
 * key (about a second). snarkjs builds its curve on globalThis: the caller ends with releaseCurve().
 */
export async function zkTestRun (values: readonly number[], prover: bigint): Promise<ZkTestRun> {
  const model = await zkTestModel()
  const x = Int8Array.from(values)
  const input = zkTestInput(values)
  const runner = await InferenceRunner.load(model.modelBytes, model.manifest)
  let output: Uint8Array
  let logits: Int32Array
  try {
    const result = await runner.run(input)
    output = result.canonical
    logits = Int32Array.from(result.outputs[model.manifest.outputs[0].name].data as ArrayLike<number>)
  } finally {
    await runner.close()
  }
  const circuitInput = circuitInputOf({ circuitId: model.circuitId, inputShape: [1, x.length], outputShape: [1, logits.length], outputDtype: 'int32' }, x, logits, prover)
  const started = Date.now()
  const proof = await prove(model.wasmPath, model.zkeyPath, {
    circuitId: circuitInput.circuitId,
    inputCommitment: circuitInput.inputCommitment,
    outputCommitment: circuitInput.outputCommitment,
    prover: circuitInput.prover,
    x: Array.from(x, Number)
  })
  return { x, input, inputCommitment: commitTensor(x, 'int8'), output, logits, outputCommitment: circuitInput.outputCommitment, proof, proveMs: Date.now() - started }
}

/** A prepared powers of tau 2^10, made once per machine (preparing it takes about half a minute on two loaded cores). */
async function cachedPtau (onProgress?: (line: string) => void): Promise<string> {
  const file = join(CACHE_DIR, `ptau-${ZK_TEST_PTAU_POWER}-snarkjs-${packageVersion('snarkjs')}.ptau`)
  const ready = async (): Promise<boolean> => {
    const header = await readPtauHeader(file).catch(() => undefined)
    return header?.prepared === true && header.power === ZK_TEST_PTAU_POWER
  }
  if (await ready()) return file
  await withLock(`${file}.lock`, async () => {
    if (await ready()) return
    const work = await mkdtemp(join(CACHE_DIR, 'ptau-generating-'))
    try {
      const generated = await generatePtau(work, ZK_TEST_PTAU_POWER, { name: 'poi tests', onProgress })
      await rename(join(work, generated.file), file)
    } finally {
      await rm(work, { recursive: true, force: true })
    }
  })
  return file
}

/** Runs `fn` holding the lock file `lock` (created exclusively); waits while another process holds it, takes over a stale one. */
async function withLock (lock: string, fn: () => Promise<void>): Promise<void> {
  for (;;) {
    try {
      await writeFile(lock, String(process.pid), { flag: 'wx' })
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const age = await stat(lock).then(s => Date.now() - s.mtimeMs, () => 0)
      const holder = Number(await readFile(lock, 'utf8').catch(() => ''))
      if (age > STALE_LOCK_MS || (holder > 0 && !isRunning(holder))) { await rm(lock, { force: true }); continue }
      await new Promise(resolve => setTimeout(resolve, LOCK_POLL_MS))
    }
  }
  try {
    await fn()
  } finally {
    await rm(lock, { force: true })
  }
}

function isRunning (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
