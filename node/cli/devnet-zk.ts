/**
 * `poi devnet --zk` (issue 16): one zk-tier task on the devnet. The shipped quantised MLP's
 * circuit is compiled, set up by a chain of two contributions (operators 0 and 1) on a powers of
 * tau made here, and attached to the model's manifest (a new model id); the bootstrap node serves
 * the model with its circuit files, the chain registers it and its Groth16 verifier; operator 0
 * runs with `--prove`. The requester asks for the zk tier, checks the proof itself, and the
 * aggregator settles it on chain with `submitZkResult`. The devnet prints the proving time, the
 * verification time and the gas beside the certificate's.
 *
 * The powers of tau and the finished setup are cached (DEVNET_ZK_CACHE, keyed by the model and
 * the toolchain's versions), so only a devnet's first `--zk` pays for them.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { PrivateKeyAccount } from 'viem/accounts'
import { deployVerifier, readModel, readModelZkVerifier, registerModel, setModelZkVerifier, verifierMatchesKey } from '../../contracts/index.js'
import { to0xHex, uint256ToBytes32 } from '../../protocols/wire/index.js'
import type { ChainClient } from '../chain-client.js'
import { readTaskFee, formatAmount, type PaymentAsset } from '../client/index.js'
import { MANIFEST_FILE, MODEL_FILE, attachZkArtifacts, encodeManifest, loadModelDir, modelIdToString, type ModelDir } from '../inference/index.js'
import {
  compileModelCircuit, contribute, finalizeCeremony, generatePtau, ptauPowerFor, readR1csHeader, releaseCurve, startCeremony, type VerificationKey
} from '../inference/zk/index.js'
import { MLP_INT8_MODEL_NAME, buildMlpClassifierInt8Manifest, buildMlpClassifierInt8Model, quantiseMlpInput } from '../fixtures/index.js'
import type { PoiNode } from '../poi-node.js'
import { requestZkInference, type ZkResult } from '../requester/index.js'
import type { ChildNode } from './launcher.js'
import { anvilClients, type LocalNetwork } from './local-network.js'

/** Which operator proves (`--prove`); operators 0 and 1 contribute to the setup. */
export const DEVNET_PROVER = 0
export const DEVNET_ZK_CONTRIBUTORS = [0, 1]
/** Where the setup is kept between devnets: POI_ZK_CACHE, else $XDG_CACHE_HOME/poi/zk (~/.cache/poi/zk). */
export const DEVNET_ZK_CACHE = process.env.POI_ZK_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'poi', 'zk')
/** The zk model's directory under the devnet's. */
export const DEVNET_ZK_MODEL_DIR = join('models', `${MLP_INT8_MODEL_NAME}-zk`)
const PROOF_TIMEOUT_MS = 120_000
const SETTLEMENT_TIMEOUT_MS = 60_000

/** The zk model, with how its setup was obtained. */
export interface DevnetZkModel {
  dir: string
  model: ModelDir
  circuitId: bigint
  verificationKey: VerificationKey
  constraints: number
  ptauPower: number
  /** ms of each step this run did; undefined for a step served from the cache. */
  compileMs?: number
  ptauMs?: number
  setupMs?: number
  cached: boolean
}

const versionOf = (pkg: string): string => {
  try {
    return (JSON.parse(readFileSync(createRequire(import.meta.url).resolve(`${pkg}/package.json`), 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

const exists = async (path: string): Promise<boolean> => await stat(path).then(() => true, () => false)

/**
 * The shipped quantised MLP with its circuit attached, in `<root>/models/…-zk`: from the cache,
 * or compiled and set up now (the powers of tau alone takes minutes the first time).
 */
export async function prepareZkModel (root: string, progress: (line: string) => void): Promise<DevnetZkModel> {
  const modelBytes = buildMlpClassifierInt8Model()
  const manifest = buildMlpClassifierInt8Manifest(modelBytes)
  const key = createHash('sha256').update(modelBytes).update(`circom2@${versionOf('circom2')} snarkjs@${versionOf('snarkjs')} circomlib@${versionOf('circomlib')}`).digest('hex').slice(0, 16)
  const setupDir = join(DEVNET_ZK_CACHE, 'setup', key)
  const out: Partial<DevnetZkModel> = {}
  if (!await exists(join(setupDir, 'verification_key.json'))) {
    await mkdir(join(DEVNET_ZK_CACHE, 'setup'), { recursive: true })
    const work = await mkdtemp(join(DEVNET_ZK_CACHE, 'setup', `.${key}-`))
    try {
      progress('zk: compiling the quantised MLP\'s circuit (circom 2, WebAssembly)')
      let started = Date.now()
      const { files } = await compileModelCircuit(modelBytes, join(work, 'circuit'))
      out.compileMs = Date.now() - started
      const power = ptauPowerFor(await readR1csHeader(files.r1csPath))
      const ptauDir = join(DEVNET_ZK_CACHE, 'ptau', String(power))
      const ptau = join(ptauDir, 'pot.ptau')
      if (!await exists(ptau)) {
        progress(`zk: making a powers of tau of 2^${power} here (once per machine, a few minutes; whoever makes it is trusted for it)`)
        started = Date.now()
        const made = await generatePtau(ptauDir, power, { onProgress: (line) => { progress(`zk: ${line}`) } })
        await rename(join(ptauDir, made.file), ptau)
        out.ptauMs = Date.now() - started
      }
      started = Date.now()
      const ceremony = join(work, 'ceremony')
      await startCeremony(files.r1csPath, ptau, ceremony, { onProgress: (line) => { progress(`zk: ${line}`) } })
      for (const i of DEVNET_ZK_CONTRIBUTORS) {
        const c = await contribute(ceremony, { name: `operator-${i}` })
        progress(`zk: contribution ${c.index} by ${c.name} (hash ${c.contributionHash.slice(0, 16)}…)`)
      }
      const { record } = await finalizeCeremony(ceremony)
      out.setupMs = Date.now() - started
      if (record.final == null) throw new Error('the ceremony did not finish')
      await cp(files.wasmPath, join(work, 'model.wasm'))
      await cp(join(ceremony, record.final.zkeyFile), join(work, 'model.zkey'))
      await cp(join(ceremony, 'ceremony.json'), join(work, 'ceremony.json'))
      await cp(join(ceremony, record.final.verificationKeyFile), join(work, 'verification_key.json.tmp'))
      await rename(join(work, 'verification_key.json.tmp'), join(work, 'verification_key.json'))
      await rm(join(work, 'circuit'), { recursive: true, force: true })
      await rm(ceremony, { recursive: true, force: true })
      // Another devnet may have finished first: then its setup stands and this one is dropped.
      await rename(work, setupDir).catch(async (err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err
      })
    } finally {
      await rm(work, { recursive: true, force: true })
      await releaseCurve()
    }
  } else {
    progress(`zk: using the circuit setup cached in ${setupDir}`)
  }
  const [wasm, zkey, vkey, record] = await Promise.all(['model.wasm', 'model.zkey', 'verification_key.json', 'ceremony.json'].map(async f => new Uint8Array(await readFile(join(setupDir, f)))))
  const ceremony = JSON.parse(new TextDecoder().decode(record)) as { circuit: { constraints: number, power: number } }
  const { compileOnnxToCircom } = await import('../inference/zk/index.js')
  const circuitId = compileOnnxToCircom(modelBytes).circuitId
  const attached = attachZkArtifacts(manifest, { circuitId, wasm, zkey, vkey })
  const dir = join(root, DEVNET_ZK_MODEL_DIR)
  await mkdir(join(dir, 'zk'), { recursive: true })
  await writeFile(join(dir, MODEL_FILE), modelBytes)
  await writeFile(join(dir, 'zk', 'model.wasm'), wasm)
  await writeFile(join(dir, 'zk', 'model.zkey'), zkey)
  await writeFile(join(dir, 'zk', 'verification_key.json'), vkey)
  await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(attached.manifest, null, 2) + '\n')
  const model = await loadModelDir(dir)
  if (model.zk === undefined) throw new Error(`${dir}: the zk model directory lost its circuit files`)
  return {
    ...out,
    dir,
    model,
    circuitId,
    verificationKey: model.zk.verificationKey,
    constraints: ceremony.circuit.constraints,
    ptauPower: ceremony.circuit.power,
    cached: out.setupMs === undefined
  }
}

/** An int8 example input for the quantised MLP: the float example, quantised as the model's input scale says. */
export function zkExampleInput (seed = 3): Uint8Array {
  const x = Array.from({ length: 16 }, (_, i) => Math.round(Math.sin(seed * 7.1 + i * 1.3) * 1000) / 1000)
  return new TextEncoder().encode(JSON.stringify({ x: { dims: [1, 16], data: quantiseMlpInput(x) } }))
}

export interface ZkDemoReport {
  zk: DevnetZkModel
  verifier: `0x${string}`
  result: ZkResult
  fee: bigint
  /** The prover's own times (its `proved` event). */
  inferenceMs: number
  provingMs: number
  settlement: { txHash: `0x${string}`, gasUsed: bigint, by: `0x${string}` }
}

/**
 * Registers the model's verifier (deployed from its verification key, checked to match it), asks
 * for one zk task and waits for its proof here and its settlement on chain.
 */
export async function runZkDemo (
  net: LocalNetwork, requester: PoiNode, account: PrivateKeyAccount, zk: DevnetZkModel, paid: { chain: ChainClient, asset: PaymentAsset }, progress: (line: string) => void
): Promise<ZkDemoReport> {
  const chain = net.chain
  if (chain == null) throw new Error('--zk needs the devnet\'s chain')
  const { publicClient, deployer } = anvilClients(chain.anvil)
  const registry = chain.deployment.modelRegistry
  const modelId = zk.model.modelId
  // A devnet resumed with --zk for the first time has not registered the model yet (a fresh one registers it at deployment).
  if (await readModel(publicClient, registry, modelId) === undefined) {
    progress('zk: registering the zk model in the ModelRegistry')
    await registerModel(deployer, publicClient, registry, modelId, encodeManifest(zk.model.manifest), 0n)
  }
  let verifier = (await readModelZkVerifier(publicClient, registry, modelId))?.verifier
  if (verifier === undefined || !await verifierMatchesKey(publicClient, verifier, zk.verificationKey)) {
    progress('zk: deploying the Groth16 verifier of the circuit (solc) and registering it with the model')
    verifier = await deployVerifier(deployer, publicClient, zk.verificationKey)
    await setModelZkVerifier(deployer, publicClient, registry, modelId, verifier, zk.circuitId)
  }
  const prover: ChildNode = net.operators[DEVNET_PROVER]
  const fee = (await readTaskFee(paid.chain, modelId)).fee
  progress(`zk: sending a zk-tier task for model ${zk.model.manifest.name} (${modelIdToString(modelId)}), fee ${formatAmount(fee, paid.asset)}; operator ${DEVNET_PROVER} proves`)
  const proved = prover.waitFor(e => e.event === 'proved' || (e.event === 'failed' && e.reason.startsWith('cannot prove')), PROOF_TIMEOUT_MS, 'the prover\'s proved event')
  proved.catch(() => {})
  const result = await requestZkInference(requester, account, {
    modelId, input: zkExampleInput(), manifest: zk.model.manifest, verificationKey: zk.verificationKey, circuitId: zk.circuitId, timeoutMs: PROOF_TIMEOUT_MS, fee
  }, { onProgress: progress })
  const event = await proved
  if (event.event !== 'proved') throw new Error(`operator ${DEVNET_PROVER} could not prove: ${event.event === 'failed' ? event.reason : event.event}`)
  const end = Date.now() + SETTLEMENT_TIMEOUT_MS
  let settlement
  while ((settlement = await paid.chain.zkSettlement(result.taskId)) === undefined) {
    if (Date.now() > end) throw new Error(`the zk result of task ${to0xHex(result.taskId)} was not settled on chain within ${SETTLEMENT_TIMEOUT_MS / 1000} s (see aggregator.log)`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  return {
    zk, verifier, result, fee, inferenceMs: event.inferenceMs, provingMs: event.provingMs,
    settlement: { txHash: settlement.txHash, gasUsed: settlement.gasUsed ?? 0n, by: settlement.by }
  }
}

/** The zk task's lines: the setup, the proof's times and its gas beside the certificate's. */
export function formatZkDemo (r: ZkDemoReport, certificateGas: bigint | undefined): string {
  const s = (ms: number | undefined): string => ms === undefined ? 'cached' : `${(ms / 1000).toFixed(1)} s`
  return [
    `zk task    ${to0xHex(r.result.taskId)} on ${r.zk.model.manifest.name} (${modelIdToString(r.zk.model.modelId)})`,
    `circuit    ${r.zk.constraints.toLocaleString('en-US')} constraints, powers of tau 2^${r.zk.ptauPower}; compile ${s(r.zk.compileMs)}, powers of tau ${s(r.zk.ptauMs)}, setup with ${DEVNET_ZK_CONTRIBUTORS.length} contributions ${s(r.zk.setupMs)}`,
    `proof      ${(r.provingMs / 1000).toFixed(2)} s to prove by operator ${DEVNET_PROVER} (its inference: ${r.inferenceMs.toFixed(2)} ms, a first run; \`npm run bench:zk\` compares steady figures); verified by the requester in ${r.result.verifyMs.toFixed(0)} ms, ${((r.result.provedAt - r.result.announcedAt) / 1000).toFixed(2)} s after the announcement`,
    `output     commitment ${to0xHex(uint256ToBytes32(r.result.outputCommitment))}, payee ${r.result.prover}`,
    `on chain   submitZkResult ${r.settlement.txHash} by ${r.settlement.by}: ${r.settlement.gasUsed.toLocaleString('en-US')} gas (verifier ${r.verifier})` +
      (certificateGas !== undefined ? `; the replicated task's certificate cost ${certificateGas.toLocaleString('en-US')} gas` : '')
  ].join('\n')
}
