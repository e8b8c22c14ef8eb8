/**
 * The zero-knowledge tier against the quorum certificate (issue 16's benchmark), in one run, for
 * the shipped int8 MLP (16→32→10) and a seeded 784→128→10 int8 model:
 *
 *  - the circuit: constraints and circom's compile time; the powers of tau it needs, generated
 *    here (one prepared ptau of the largest power serves every smaller circuit) or read from the
 *    cache; the circuit-specific setup (start, one contribution, finalize: each step verifies the
 *    chain so far, as the ceremony does);
 *  - proving: the median of --runs proofs, each in a child process (bench/zk-prove.ts) started
 *    started with --prover-flags, whose peak resident memory (`resourceUsage().maxRSS`, the whole
 *    process: node, snarkjs's curve workers and the proof) is the proof's memory; the time is the
 *    witness and the proof, the curve already built (its build time is reported apart);
 *  - verification: off-chain (verifyProof, median), and on anvil the gas of the verifier's
 *    verifyProof, of ModelRegistry.verifyZkProof, and of TaskManager.submitZkResult for zk-tier
 *    tasks (the first, then the median of the rest);
 *  - plain inference with onnxruntime (InferenceRunner, median of --inference-runs);
 *  - the quorum-certificate path in the same run: 4 operators sign, the aggregator checks their
 *    signatures and aggregates, a requester verifies the certificate (median of --qc-runs), and
 *    the gas of submitCertificate for a replicated task of the same model.
 *
 *   npm run bench:zk -- [--models int8,784] [--runs 3] [--cache /tmp/poi-zk-bench-cache] [--out bench/results/zk.json]
 *                       [--inference-runs 200] [--qc-runs 20] [--prover-flags --liftoff-only]
 *
 * The prover children run with --prover-flags (default --liftoff-only): on Node 24 a process that
 * computed a large circuit's witness otherwise waits at exit for V8 to finish optimising the
 * witness WebAssembly. Measured here (784 model, 30 Nov 2026): without the flag each child exited
 * 43–49 s after its proof and peaked at 573–598 MiB; with it 0.2–0.3 s and 359 MiB, the proving
 * time the same (3.9 s). The JSON records how long each child took to exit.
 * This process runs without it: it never runs a witness generator, and --liftoff-only would keep
 * snarkjs's own WebAssembly (the curve arithmetic of the ptau, the setup and the verification) on
 * V8's baseline compiler. Progress goes to stderr, the table and the JSON's path to stdout.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, cpus, freemem, loadavg, tmpdir, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { bytesToHex, encodeFunctionData, numberToHex, hexToBytes, type Hex } from 'viem'
import { TaskAggregation, attestationSignatureSet, generateBlsSecretKey, signAttestation, verifyCertificate, verifySignatureSets } from '../consensus/index.js'
import {
  GROTH16_VERIFIER_ABI, ModelRegistryAbi, deployVerifier, deposit, modelKeyOf, proofCalldata, readOperatorSet, registerModel, setModelZkVerifier, submitCertificate, submitZkResult,
  type OnChainOperatorSet, type ZkProof as OnChainZkProof
} from '../contracts/index.js'
import { buildSeededQuantisedModel } from '../node/fixtures/quantised-model.js'
import { InferenceRunner, SHIPPED_INT8_MODEL_DIR, loadModelDir, type ModelManifest } from '../node/inference/index.js'
import {
  circuitInputOf, compileModelCircuit, contribute, finalizeCeremony, generatePtau, ptauPowerFor, readPtauHeader, readR1csHeader, startCeremony, verifyProof, releaseCurve,
  type CompiledCircuit, type PtauRecord, type VerificationKey, type ZkProof
} from '../node/inference/zk/index.js'
import { taskIdOf, type TaskAnnouncement } from '../protocols/wire/index.js'
import { ownedManifest } from '../test/helpers/model-manifests.js'
import { anvilAccount, nextEpoch, paidTask, registerAll, startPoiChain, type PoiChain } from '../test/helpers/poi-chain.js'
import type { ProveChildResult, ProveJob } from './zk-prove.js'

const ETHER = 10n ** 18n
/** The models the bench knows, by --models name. */
const MODEL_NAMES = ['int8', '784'] as const
type ModelName = typeof MODEL_NAMES[number]
/** The larger model: issue 16's "784→128→10", int8 weights from buildSeededQuantisedMlp's default seed. */
const LARGE_MODEL = { inputSize: 784, hiddenSize: 128, classes: 10 }
/** Inference runs before the timed ones (onnxruntime's first runs allocate). */
const INFERENCE_WARMUP = 20
/** Off-chain verifications timed per model (each proof in turn); the first, which builds the curve, is not counted. */
const VERIFY_SAMPLES = 10
/** The QC path's operators: issue 16 compares against the 4-operator devnet. */
const QC_OPERATORS = 4
/** 4 stakes (ether), unequal so the quorum is a sum of different values. */
const QC_STAKES = [10n, 20n, 30n, 45n].map(s => s * ETHER)
/** anvil accounts: 0 deploys, 1..4 operators, 5 owns the models, 6 requests, 7 is the prover (payee), 8 submits. */
const OWNER = 5
const REQUESTER = 6
const PROVER = 7
const SUBMITTER = 8
const ACCOUNTS = 9
const EPOCH_SECONDS = 600n
const MODEL_FEE = 10n ** 14n
/** Gas given to a bare verifyProof / verifyZkProof transaction: above what they use (~220,000), so a valid proof verifies (it answers false when short of gas). */
const VERIFY_TX_GAS = 600_000n
/** The prover children's node flags: see the header (the exit wait it avoids, measured). */
const DEFAULT_PROVER_FLAGS = '--liftoff-only'
/** A prover child that has not printed its proof in this long is stuck. */
const PROVE_CHILD_TIMEOUT_MS = 15 * 60_000
const PTAU_FILE = 'powers-of-tau.ptau'
const PTAU_RECORD = 'record.json'

interface Machine { cores: number, cpu: string, memoryBytes: number, freeMemoryBytes: number, loadAverage: number[], node: string, execArgv: string[], platform: string }

interface PtauUse {
  power: number
  /** The cache file this run used. */
  file: string
  /** Whether this run found it in the cache, or generated it. */
  fromCache: boolean
  /** Time generatePtau took when the file was made (this run or the one that filled the cache). */
  generationMs: number
  generatedAt: string
  sha256: string
}

interface CachedPtau extends PtauRecord { generationMs: number, generatedAt: string }

interface ModelResult {
  model: string
  shape: string
  constraints: number
  wires: number
  compileMs: number
  /** The power of tau the circuit needs (2^power ≥ constraints + public inputs + 1), and the one it was set up with. */
  ptauPowerNeeded: number
  ptauPowerUsed: number
  setupMs: { start: number, contribution: number, finalize: number, total: number }
  zkeyBytes: number
  prove: {
    runs: number
    medianMs: number
    samplesMs: number[]
    curveBuildMedianMs: number
    /** Peak RSS of the prover child (whole process), median and largest over runs. */
    peakRssMedianBytes: number
    peakRssMaxBytes: number
    /** RSS of the child just before proving (node + snarkjs + its curve workers): the proof's own growth is peak − this. */
    rssBeforeProveMedianBytes: number
    /** From the child's result line to its exit: the exit hang --liftoff-only avoids. */
    childExitMedianMs: number
  }
  verify: { medianMs: number, firstMs: number, samples: number }
  inference: { runs: number, sessionMedianMs: number, runMedianMs: number }
  qc: { operators: number, runs: number, signMs: number, aggregateMs: number, verifyMs: number, totalMs: number }
  gas: { verifierVerifyProof: number, registryVerifyZkProof: number, submitZkResultFirst: number, submitZkResultSteady: number | null, submitCertificateFirst: number, submitCertificateSteady: number }
  overhead: { proveOverInference: number, proveOverQc: number, proveOverInferencePlusQc: number, submitZkResultOverSubmitCertificate: number }
}

/** A model under test: its bytes and manifest. */
interface BenchModel { name: ModelName, shape: string, modelBytes: Uint8Array, manifest: ModelManifest }

const progress = (line: string): void => { console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`) }

function median (xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** A deterministic int8 vector (xorshift32), so runs prove the same inputs. */
function int8Vector (length: number, seed: number): Int8Array {
  let s = seed >>> 0 || 1
  return Int8Array.from({ length }, () => {
    s ^= s << 13; s >>>= 0
    s ^= s >>> 17
    s ^= s << 5; s >>>= 0
    return (s % 256) - 128
  })
}

async function loadBenchModel (name: ModelName): Promise<BenchModel> {
  if (name === 'int8') {
    const dir = await loadModelDir(SHIPPED_INT8_MODEL_DIR)
    return { name, shape: '16→32→10 (shipped mlp-classifier-int8)', modelBytes: dir.modelBytes, manifest: dir.manifest }
  }
  const { modelBytes, manifest } = buildSeededQuantisedModel(LARGE_MODEL)
  return { name, shape: `${LARGE_MODEL.inputSize}→${LARGE_MODEL.hiddenSize}→${LARGE_MODEL.classes} (seeded)`, modelBytes, manifest }
}

/** The task input bytes for `x`: the JSON a requester sends. */
function taskInputOf (manifest: ModelManifest, x: Int8Array): Uint8Array {
  const input = manifest.inputs[0]
  return new TextEncoder().encode(JSON.stringify({ [input.name]: { dims: [1, x.length], data: Array.from(x) } }))
}

/**
 * A prepared ptau of at least `power` from `cache` (the smallest there), or a new one of `power`
 * generated into it. Each power has its own directory: the ptau and a record of its generation.
 */
async function ptauFor (cache: string, power: number): Promise<PtauUse> {
  await mkdir(cache, { recursive: true })
  const cached: Array<{ dir: string, record: CachedPtau }> = []
  for (const entry of await readdir(cache)) {
    const m = /^ptau-(\d+)$/.exec(entry)
    if (m === null || Number(m[1]) < power) continue
    const dir = join(cache, entry)
    const record = await readFile(join(dir, PTAU_RECORD), 'utf8').then(t => JSON.parse(t) as CachedPtau, () => undefined)
    if (record === undefined) continue
    // the header, not the name, says what the file is
    const header = await readPtauHeader(join(dir, PTAU_FILE)).catch(() => undefined)
    if (header?.prepared === true && header.power >= power) cached.push({ dir, record })
  }
  cached.sort((a, b) => a.record.power - b.record.power)
  const hit = cached[0]
  if (hit !== undefined) {
    progress(`powers of tau 2^${hit.record.power} from the cache (${hit.dir}; generated ${hit.record.generatedAt} in ${(hit.record.generationMs / 1000).toFixed(0)} s)`)
    return { power: hit.record.power, file: join(hit.dir, PTAU_FILE), fromCache: true, generationMs: hit.record.generationMs, generatedAt: hit.record.generatedAt, sha256: hit.record.sha256 }
  }
  const dir = join(cache, `ptau-${power}`)
  progress(`powers of tau 2^${power}: not in ${cache}, generating (2^14 takes several minutes on 2 cores)`)
  const started = performance.now()
  const record = await generatePtau(dir, power, { onProgress: progress })
  const generationMs = performance.now() - started
  const generatedAt = new Date().toISOString()
  const tmp = join(dir, `${PTAU_RECORD}.${process.pid}.tmp`)
  await writeFile(tmp, JSON.stringify({ ...record, generationMs, generatedAt }, null, 2) + '\n')
  await rename(tmp, join(dir, PTAU_RECORD))
  return { power, file: join(dir, PTAU_FILE), fromCache: false, generationMs, generatedAt, sha256: record.sha256 }
}

/** Runs bench/zk-prove.js on `job` in a child started with `flags`. */
async function proveInChild (job: ProveJob, jobFile: string, flags: readonly string[]): Promise<ProveChildResult & { exitMs: number }> {
  await writeFile(jobFile, JSON.stringify(job))
  const script = join(dirname(fileURLToPath(import.meta.url)), 'zk-prove.js')
  return await new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [...flags, script, jobFile], { stdio: ['ignore', 'pipe', 'pipe'], timeout: PROVE_CHILD_TIMEOUT_MS })
    let stdout = ''
    let stderr = ''
    let result: ProveChildResult | undefined
    let printedAt = 0
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8')
      const line = stdout.split('\n').find(l => l.startsWith('{'))
      if (result === undefined && line !== undefined && stdout.includes('\n')) {
        result = JSON.parse(line) as ProveChildResult
        printedAt = performance.now()
      }
    })
    child.stderr.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString('utf8')).slice(-4000) })
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (code !== 0 || result === undefined) {
        reject(new Error(`the prover child exited with ${signal ?? code} before printing a proof: ${stderr.trim() || '(no output)'}`))
        return
      }
      resolvePromise({ ...result, exitMs: performance.now() - printedAt })
    })
  })
}

/** A 32-byte commitment as the task carries it. */
const commitmentBytes = (c: bigint): Uint8Array => hexToBytes(numberToHex(c, { size: 32 }))

interface Prepared {
  model: BenchModel
  compiled: CompiledCircuit
  r1cs: string
  wasm: string
  constraints: number
  wires: number
  compileMs: number
  power: number
  dir: string
}

interface Proved {
  prepared: Prepared
  verificationKey: VerificationKey
  proofs: Array<{ x: Int8Array, proof: ZkProof }>
  result: Omit<ModelResult, 'qc' | 'gas' | 'overhead'>
  /** The canonical output and result hash of the first proved input, for the QC path. */
  qcResult: { resultHash: Uint8Array, output: Uint8Array, taskInput: Uint8Array }
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      models: { type: 'string', default: MODEL_NAMES.join(',') },
      runs: { type: 'string', default: '3' },
      'inference-runs': { type: 'string', default: '200' },
      'qc-runs': { type: 'string', default: '20' },
      cache: { type: 'string', default: join(tmpdir(), 'poi-zk-bench-cache') },
      'prover-flags': { type: 'string', default: DEFAULT_PROVER_FLAGS },
      out: { type: 'string', default: 'bench/results/zk.json' }
    }
  })
  const names = values.models.split(',').map(s => s.trim()).filter(s => s !== '')
  const unknown = names.filter(n => !(MODEL_NAMES as readonly string[]).includes(n))
  if (unknown.length > 0 || names.length === 0) {
    console.error(`--models takes a comma-separated list of ${MODEL_NAMES.join(', ')}; got ${values.models}`)
    process.exitCode = 2
    return
  }
  const count = (name: 'runs' | 'inference-runs' | 'qc-runs'): number => {
    const n = Number(values[name])
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`--${name} must be a positive integer, got ${values[name]}`)
    return n
  }
  const runs = count('runs')
  const inferenceRuns = count('inference-runs')
  const qcRuns = count('qc-runs')
  const cache = resolve(values.cache)
  const proverFlags = values['prover-flags'].split(/\s+/).filter(f => f !== '')
  const started = new Date()
  const machineAt = (): Machine => ({
    cores: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', memoryBytes: totalmem(), freeMemoryBytes: freemem(), loadAverage: loadavg(),
    node: process.version, execArgv: process.execArgv, platform: process.platform
  })
  const machineAtStart = machineAt()
  const work = await mkdtemp(join(tmpdir(), 'poi-zk-bench-'))
  const prover = anvilAccount(PROVER).address
  let chain: PoiChain | undefined
  try {
    // 1. circuits
    const prepared: Prepared[] = []
    for (const name of names as ModelName[]) {
      const model = await loadBenchModel(name)
      const dir = join(work, name)
      progress(`${name}: compiling the circuit (circom2 --O2; the 784 model takes over a minute and about 1 GB)`)
      const { circuit, files } = await compileModelCircuit(model.modelBytes, join(dir, 'circuit'), {
        onProgress: e => { if (/constraints|template instances/i.test(e.message)) progress(`${name}: circom: ${e.message.trim()}`) }
      })
      const power = ptauPowerFor(await readR1csHeader(files.r1csPath))
      progress(`${name}: ${files.constraints} constraints in ${(files.compileMs / 1000).toFixed(1)} s; needs a powers of tau of 2^${power}`)
      prepared.push({ model, compiled: circuit, r1cs: files.r1csPath, wasm: files.wasmPath, constraints: files.constraints, wires: files.wires, compileMs: files.compileMs, power, dir })
    }

    // 2. one powers of tau for every circuit: the largest power needed
    const ptau = await ptauFor(cache, Math.max(...prepared.map(p => p.power)))

    // 3. per model: setup, inference, proofs, off-chain verification
    const proved: Proved[] = []
    for (const p of prepared) {
      const name = p.model.name
      const ceremony = join(p.dir, 'ceremony')
      const onProgress = (line: string): void => { progress(`${name}: setup: ${line}`) }
      let t = performance.now()
      await startCeremony(p.r1cs, ptau.file, ceremony, { onProgress, name: 'bench' })
      const startMs = performance.now() - t
      t = performance.now()
      await contribute(ceremony, { name: 'bench contributor', onProgress })
      const contributionMs = performance.now() - t
      t = performance.now()
      const { verificationKey, record } = await finalizeCeremony(ceremony, { onProgress })
      const finalizeMs = performance.now() - t
      if (record.final === null) throw new Error(`${name}: the ceremony in ${ceremony} did not finalize`)
      const zkey = join(ceremony, record.final.zkeyFile)
      const zkeyBytes = (await readFile(zkey)).length
      const setupMs = { start: startMs, contribution: contributionMs, finalize: finalizeMs, total: startMs + contributionMs + finalizeMs }
      progress(`${name}: setup done in ${(setupMs.total / 1000).toFixed(1)} s (ptau 2^${ptau.power})`)

      // plain inference
      const runner = await InferenceRunner.load(p.model.modelBytes, p.model.manifest)
      const inputSize = p.compiled.inputShape[1]
      const outputName = p.model.manifest.outputs[0].name
      const sessionMs: number[] = []
      const runMs: number[] = []
      let qcResult: Proved['qcResult'] | undefined
      for (let i = 0; i < INFERENCE_WARMUP + inferenceRuns; i++) {
        const taskInput = taskInputOf(p.model.manifest, int8Vector(inputSize, 0x5eed + i))
        const t0 = performance.now()
        const r = await runner.run(taskInput)
        const wall = performance.now() - t0
        if (i >= INFERENCE_WARMUP) { sessionMs.push(r.inferenceMs); runMs.push(wall) }
      }
      progress(`${name}: inference median ${median(sessionMs).toFixed(3)} ms (session.run), ${median(runMs).toFixed(3)} ms (run) over ${inferenceRuns}`)

      // proofs, one child each
      const proofs: Proved['proofs'] = []
      const children: Array<ProveChildResult & { exitMs: number }> = []
      for (let r = 0; r < runs; r++) {
        const x = int8Vector(inputSize, 0x9e3779b9 + r)
        const taskInput = taskInputOf(p.model.manifest, x)
        const ran = await runner.run(taskInput)
        qcResult ??= { resultHash: ran.resultHash, output: ran.canonical, taskInput }
        const output = ran.outputs[outputName].data
        if (!(output instanceof Int32Array) && !(output instanceof Int8Array)) throw new Error(`${name}: output ${outputName} is not int8 or int32`)
        const input = circuitInputOf(p.compiled, x, output, BigInt(prover))
        const job: ProveJob = {
          wasm: p.wasm,
          zkey,
          input: { circuitId: input.circuitId.toString(), inputCommitment: input.inputCommitment.toString(), outputCommitment: input.outputCommitment.toString(), prover: input.prover.toString(), x: Array.from(x) }
        }
        progress(`${name}: proof ${r + 1}/${runs} in a child process`)
        const child = await proveInChild(job, join(p.dir, `prove-${r}.json`), proverFlags)
        progress(`${name}: proof ${r + 1}/${runs}: ${(child.proveMs / 1000).toFixed(2)} s, peak RSS ${(child.maxRssBytes / 2 ** 20).toFixed(0)} MiB, child exited ${child.exitMs.toFixed(0)} ms after its result`)
        children.push(child)
        proofs.push({ x, proof: child.proof as ZkProof })
      }
      await runner.close()

      // off-chain verification (the first builds snarkjs's curve in this process: not counted)
      const expected = (i: number): Parameters<typeof verifyProof>[2] => {
        const signals = (proofs[i].proof.publicSignals).map(BigInt)
        return { circuitId: p.compiled.circuitId, inputCommitment: signals[1], outputCommitment: signals[2], prover: BigInt(prover) }
      }
      let t1 = performance.now()
      await verifyProof(verificationKey, proofs[0].proof, expected(0))
      const firstVerifyMs = performance.now() - t1
      const verifyMs: number[] = []
      for (let i = 0; i < VERIFY_SAMPLES; i++) {
        const k = i % proofs.length
        t1 = performance.now()
        await verifyProof(verificationKey, proofs[k].proof, expected(k))
        verifyMs.push(performance.now() - t1)
      }
      progress(`${name}: off-chain verification median ${median(verifyMs).toFixed(1)} ms`)
      if (qcResult === undefined) throw new Error(`${name}: no proof run`)

      proved.push({
        prepared: p,
        verificationKey,
        proofs,
        qcResult,
        result: {
          model: name,
          shape: p.model.shape,
          constraints: p.constraints,
          wires: p.wires,
          compileMs: p.compileMs,
          ptauPowerNeeded: p.power,
          ptauPowerUsed: ptau.power,
          setupMs,
          zkeyBytes,
          prove: {
            runs,
            medianMs: median(children.map(c => c.proveMs)),
            samplesMs: children.map(c => c.proveMs),
            curveBuildMedianMs: median(children.map(c => c.curveMs)),
            peakRssMedianBytes: median(children.map(c => c.maxRssBytes)),
            peakRssMaxBytes: Math.max(...children.map(c => c.maxRssBytes)),
            rssBeforeProveMedianBytes: median(children.map(c => c.rssBeforeProveBytes)),
            childExitMedianMs: median(children.map(c => c.exitMs))
          },
          verify: { medianMs: median(verifyMs), firstMs: firstVerifyMs, samples: verifyMs.length },
          inference: { runs: inferenceRuns, sessionMedianMs: median(sessionMs), runMedianMs: median(runMs) }
        }
      })
    }
    await releaseCurve()

    // 4. the chain: the QC path beside the zk path, per model
    progress('anvil: deploying poi, registering 4 operators')
    chain = await startPoiChain({ epochDuration: EPOCH_SECONDS }, { accounts: ACCOUNTS })
    const keys = QC_STAKES.map(() => generateBlsSecretKey())
    await registerAll(chain, keys, QC_STAKES)
    const { epoch } = await nextEpoch(chain)
    const set: OnChainOperatorSet = await readOperatorSet(chain.publicClient, chain.deployment, epoch)
    const quorumBps = chain.params.quorumBps
    await deposit(chain.wallets[REQUESTER], chain.publicClient, chain.deployment.taskManager, ETHER)
    const fee = MODEL_FEE + chain.params.minTaskFee
    const owner = chain.wallets[OWNER]
    const results: ModelResult[] = []
    let label = 0
    for (const { prepared: p, verificationKey, proofs, result, qcResult } of proved) {
      const name = p.model.name
      const c = chain
      const registered = await ownedManifest(owner.account.address, `bench-zk-${name}`)
      await registerModel(owner, c.publicClient, c.deployment.modelRegistry, registered.modelId, registered.block, MODEL_FEE)
      progress(`${name}: deploying its Groth16 verifier`)
      const verifier = await deployVerifier(owner, c.publicClient, verificationKey)
      await setModelZkVerifier(owner, c.publicClient, c.deployment.modelRegistry, registered.modelId, verifier, p.compiled.circuitId)

      const onChainProof = proofs[0].proof as unknown as OnChainZkProof
      const txGas = async (to: `0x${string}`, data: Hex): Promise<number> => {
        const hash = await c.wallets[SUBMITTER].sendTransaction({ to, data, gas: VERIFY_TX_GAS })
        const receipt = await c.publicClient.waitForTransactionReceipt({ hash })
        if (receipt.status !== 'success') throw new Error(`${name}: the verification transaction ${hash} reverted`)
        return Number(receipt.gasUsed)
      }
      const verifierVerifyProof = await txGas(verifier, encodeFunctionData({ abi: GROTH16_VERIFIER_ABI, functionName: 'verifyProof', args: proofCalldata(onChainProof) }))
      const verified = await c.publicClient.readContract({ address: verifier, abi: GROTH16_VERIFIER_ABI, functionName: 'verifyProof', args: proofCalldata(onChainProof), gas: VERIFY_TX_GAS } as Parameters<typeof c.publicClient.readContract>[0])
      if (verified !== true) throw new Error(`${name}: the deployed verifier refuses the proof that verified off-chain`)
      const registryVerifyZkProof = await txGas(c.deployment.modelRegistry, encodeFunctionData({ abi: ModelRegistryAbi, functionName: 'verifyZkProof', args: [modelKeyOf(registered.modelId), ...proofCalldata(onChainProof)] }))

      // zk-tier tasks, one per proof: their input commitment is the proof's
      const zkGas: number[] = []
      for (const { x, proof } of proofs) {
        const inputCommitment = commitmentBytes(BigInt(proof.publicSignals[1]))
        const task = await paidTask(c, `bench-zk-${label++}`, { requester: REQUESTER, modelId: registered.modelId, fee, tier: 'zk', inputCommitment, input: taskInputOf(p.model.manifest, x) })
        const { accepted, receipt } = await submitZkResult(c.wallets[SUBMITTER], c.publicClient, c.deployment.taskManager, task, proof as unknown as OnChainZkProof, { outputRef: bytesToHex(randomBytes(32)), prover })
        if (!accepted) throw new Error(`${name}: submitZkResult was not accepted`)
        zkGas.push(Number(receipt.gasUsed))
      }

      // the QC path: 4 operators sign the model's real result, the aggregator checks and aggregates, a requester verifies
      const sign: number[] = []
      const aggregate: number[] = []
      const verify: number[] = []
      const certGas: number[] = []
      for (let i = 0; i < qcRuns; i++) {
        const task: TaskAnnouncement = await paidTask(c, `bench-qc-${label++}`, { requester: REQUESTER, modelId: registered.modelId, fee, input: qcResult.taskInput })
        const taskId = taskIdOf(task, c.deployment.taskManager)
        const outputRef = randomBytes(32)
        let t0 = performance.now()
        const attestations = keys.map((key, operatorIndex) => signAttestation(key, set.domain, { taskId, resultHash: qcResult.resultHash, outputRef, epoch: set.epoch, operatorIndex, output: qcResult.output }))
        sign.push(performance.now() - t0)
        t0 = performance.now()
        const sets = attestations.map(a => attestationSignatureSet(a, set))
        if (sets.some(s => s === null) || !verifySignatureSets(sets.filter(s => s !== null)).every(Boolean)) throw new Error(`${name}: an attestation did not verify`)
        const aggregation = new TaskAggregation({ operatorSet: set, taskId, quorumBps, deadline: Date.now() + 600_000 })
        for (const a of attestations) aggregation.add(a, Date.now())
        const qc = aggregation.buildCertificate(qcResult.resultHash)
        aggregate.push(performance.now() - t0)
        t0 = performance.now()
        const checked = verifyCertificate(qc, set, { quorumBps })
        verify.push(performance.now() - t0)
        if (!checked.ok) throw new Error(`${name}: the certificate did not verify: ${checked.reason}`)
        // gas of the first two (cold, then steady); the rest time the crypto only
        if (i < 2) {
          const { accepted, receipt } = await submitCertificate(c.wallets[SUBMITTER], c.publicClient, c.deployment.taskManager, qc, set, task)
          if (!accepted) throw new Error(`${name}: submitCertificate was not accepted`)
          certGas.push(Number(receipt.gasUsed))
        }
      }
      const qc = { operators: QC_OPERATORS, runs: qcRuns, signMs: median(sign), aggregateMs: median(aggregate), verifyMs: median(verify), totalMs: median(sign.map((s, i) => s + aggregate[i] + verify[i])) }
      const gas = {
        verifierVerifyProof,
        registryVerifyZkProof,
        submitZkResultFirst: zkGas[0],
        submitZkResultSteady: zkGas.length > 1 ? median(zkGas.slice(1)) : null,
        submitCertificateFirst: certGas[0],
        submitCertificateSteady: certGas[certGas.length - 1]
      }
      const proveMs = result.prove.medianMs
      results.push({
        ...result,
        qc,
        gas,
        overhead: {
          proveOverInference: proveMs / result.inference.sessionMedianMs,
          proveOverQc: proveMs / qc.totalMs,
          proveOverInferencePlusQc: proveMs / (result.inference.sessionMedianMs + qc.totalMs),
          submitZkResultOverSubmitCertificate: (gas.submitZkResultSteady ?? gas.submitZkResultFirst) / gas.submitCertificateSteady
        }
      })
      progress(`${name}: on-chain done (submitZkResult ${gas.submitZkResultFirst}, submitCertificate ${gas.submitCertificateSteady})`)
    }

    printTable(results, ptau)
    const out = resolve(values.out)
    await mkdir(dirname(out), { recursive: true })
    await writeFile(out, JSON.stringify({
      benchmark: 'zk',
      date: started.toISOString(),
      finished: new Date().toISOString(),
      machine: { atStart: machineAtStart, atEnd: machineAt() },
      chain: 'anvil prague',
      options: { models: names, runs, inferenceRuns, qcRuns, cache, proverFlags },
      notes: {
        prove: 'each proof in its own child process (bench/zk-prove.ts, node started with options.proverFlags); proveMs = witness + proof with snarkjs\'s curve already built (curveBuildMs apart); peak RSS = the child\'s process.resourceUsage().maxRSS (whole process)',
        setup: 'startCeremony (copies the ptau, groth16 setup) + one contribution (verifies the chain first) + finalizeCeremony (verifies again, exports the verification key)',
        inference: 'InferenceRunner.run on onnxruntime: sessionMedianMs = session.run only (the overhead\'s denominator), runMedianMs = the whole run (input parsing, canonical output)',
        qc: 'sign = 4 attestations signed in turn; aggregate = the 4 signatures checked (batch) + TaskAggregation + buildCertificate; verify = verifyCertificate; total = median of the sums',
        gas: 'receipt gasUsed, 21000 base and calldata included; verifyProof and verifyZkProof sent as transactions with a 600000 gas limit; submitZkResult first = the first zk result (cold prover credit for the first model), steady = median of the rest; submitCertificate first/steady likewise'
      },
      ptau,
      models: results
    }, null, 2) + '\n')
    console.log(`wrote ${out}`)
  } finally {
    await chain?.stop()
    await releaseCurve()
    await rm(work, { recursive: true, force: true })
  }
}

function printTable (results: readonly ModelResult[], ptau: PtauUse): void {
  const ms = (v: number): string => v >= 10_000 ? `${(v / 1000).toFixed(0)} s` : v >= 1000 ? `${(v / 1000).toFixed(1)} s` : v >= 10 ? `${v.toFixed(0)} ms` : `${v.toFixed(2)} ms`
  const mib = (v: number): string => `${(v / 2 ** 20).toFixed(0)} MiB`
  const times = (v: number): string => v >= 100 ? `${Math.round(v).toLocaleString('en-US')}×` : `${v.toFixed(1)}×`
  const gas = (v: number | null): string => v === null ? '–' : Math.round(v).toLocaleString('en-US')
  const rows: Array<[string, (r: ModelResult) => string]> = [
    ['model', r => r.shape],
    ['constraints', r => r.constraints.toLocaleString('en-US')],
    ['circuit compile', r => ms(r.compileMs)],
    ['powers of tau', r => `2^${r.ptauPowerUsed} (needs 2^${r.ptauPowerNeeded}), ${ptau.fromCache ? 'cached' : 'generated'}: ${ms(ptau.generationMs)}`],
    ['setup (start + 1 contribution + finalize)', r => `${ms(r.setupMs.total)} (${ms(r.setupMs.start)} + ${ms(r.setupMs.contribution)} + ${ms(r.setupMs.finalize)})`],
    ['proving key', r => mib(r.zkeyBytes)],
    [`proving (median of ${results[0]?.prove.runs ?? 0})`, r => ms(r.prove.medianMs)],
    ['prover peak RSS (child process)', r => `${mib(r.prove.peakRssMedianBytes)} (${mib(r.prove.rssBeforeProveMedianBytes)} before proving)`],
    ['prover child exit after result', r => ms(r.prove.childExitMedianMs)],
    ['verify off-chain (median)', r => ms(r.verify.medianMs)],
    ['gas: verifier verifyProof tx', r => gas(r.gas.verifierVerifyProof)],
    ['gas: ModelRegistry.verifyZkProof tx', r => gas(r.gas.registryVerifyZkProof)],
    ['gas: submitZkResult (first / steady)', r => `${gas(r.gas.submitZkResultFirst)} / ${gas(r.gas.submitZkResultSteady)}`],
    ['inference, onnxruntime (median)', r => `${ms(r.inference.sessionMedianMs)} (run() ${ms(r.inference.runMedianMs)})`],
    ['QC path: sign 4 + aggregate + verify', r => `${ms(r.qc.totalMs)} (${ms(r.qc.signMs)} + ${ms(r.qc.aggregateMs)} + ${ms(r.qc.verifyMs)})`],
    ['gas: submitCertificate (first / steady)', r => `${gas(r.gas.submitCertificateFirst)} / ${gas(r.gas.submitCertificateSteady)}`],
    ['proving ÷ inference', r => times(r.overhead.proveOverInference)],
    ['proving ÷ QC path', r => times(r.overhead.proveOverQc)],
    ['proving ÷ (inference + QC path)', r => times(r.overhead.proveOverInferencePlusQc)],
    ['gas submitZkResult ÷ submitCertificate', r => times(r.overhead.submitZkResultOverSubmitCertificate)]
  ]
  const labelWidth = Math.max(...rows.map(([l]) => l.length)) + 2
  const width = Math.max(24, ...results.flatMap(r => rows.map(([, f]) => f(r).length))) + 2
  for (const [label, f] of rows) console.log(label.padEnd(labelWidth) + results.map(r => f(r).padEnd(width)).join(''))
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
