/**
 * snarkjs, typed: the part of it poi uses (powers of tau, Groth16 keys and proofs), and the
 * release of its curve's worker threads.
 *
 * snarkjs ships no type declarations; it is loaded on first use (it is large, and `poi` loads a
 * command's dependencies only when that command runs) and described here by what it returns in
 * 0.7.6. Nothing outside this file touches the untyped module.
 */
import { randomBytes } from 'node:crypto'

/** A decimal string, as snarkjs writes field elements and coordinates in JSON. */
export type Decimal = string

/** A Groth16 proof as snarkjs writes it (projective coordinates; z = 1 for pi_a, pi_c, [1, 0] for pi_b). */
export interface Groth16Proof {
  pi_a: [Decimal, Decimal, Decimal]
  pi_b: [[Decimal, Decimal], [Decimal, Decimal], [Decimal, Decimal]]
  pi_c: [Decimal, Decimal, Decimal]
  protocol: 'groth16'
  curve: 'bn128'
}

/** A Groth16 verification key as `zKey.exportVerificationKey` writes it. */
export interface VerificationKey {
  protocol: 'groth16'
  curve: 'bn128'
  nPublic: number
  vk_alpha_1: Decimal[]
  vk_beta_2: Decimal[][]
  vk_gamma_2: Decimal[][]
  vk_delta_2: Decimal[][]
  vk_alphabeta_12: Decimal[][][]
  IC: Decimal[][]
}

/** A circuit's input signals by name: numbers, decimal strings or bigints, nested in arrays for array signals. */
export type CircuitInputValue = bigint | number | string | CircuitInputValue[]
export type CircuitInput = Record<string, CircuitInputValue>

/** What snarkjs logs through: each level may be given one string. */
export interface SnarkjsLogger {
  debug: (message: string) => void
  info: (message: string) => void
  warn: (message: string) => void
  error: (message: string) => void
  log: (message: string) => void
}

export type LogLevel = keyof SnarkjsLogger

/** A logger that keeps what snarkjs said (some of its results come only as log lines, and its refusals as `error` lines). */
export function collectingLogger (): SnarkjsLogger & { lines: Array<{ level: LogLevel, message: string }> } {
  const lines: Array<{ level: LogLevel, message: string }> = []
  const at = (level: LogLevel) => (message: string): void => { lines.push({ level, message: String(message) }) }
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), log: at('log') }
}

/** The curve object of ffjavascript that snarkjs builds once per process and shares through a global. */
interface Curve { terminate: () => Promise<void> }

/** The untyped module's surface poi uses, as snarkjs 0.7.6 defines it. */
interface SnarkjsModule {
  curves: { getCurveFromName: (name: string, options?: { singleThread?: boolean }) => Promise<Curve> }
  powersOfTau: {
    newAccumulator: (curve: Curve, power: number, file: string, logger?: SnarkjsLogger) => Promise<Uint8Array>
    contribute: (oldPtau: string, newPtau: string, name: string, entropy: string, logger?: SnarkjsLogger) => Promise<Uint8Array>
    preparePhase2: (oldPtau: string, newPtau: string, logger?: SnarkjsLogger) => Promise<void>
  }
  zKey: {
    /** Resolves with the circuit hash, or -1 after logging why (too small a ptau, one not prepared for phase 2, another curve). */
    newZKey: (r1cs: string, ptau: string, zkey: string, logger?: SnarkjsLogger) => Promise<Uint8Array | -1>
    verifyFromR1cs: (r1cs: string, ptau: string, zkey: string, logger?: SnarkjsLogger) => Promise<boolean>
    contribute: (oldZkey: string, newZkey: string, name: string, entropy: string, logger?: SnarkjsLogger) => Promise<Uint8Array>
    exportVerificationKey: (zkey: string, logger?: SnarkjsLogger) => Promise<unknown>
  }
  groth16: {
    fullProve: (input: CircuitInput, wasm: FileSource, zkey: FileSource, logger?: SnarkjsLogger) => Promise<{ proof: unknown, publicSignals: unknown }>
    verify: (vkey: VerificationKey, publicSignals: Decimal[], proof: Groth16Proof, logger?: SnarkjsLogger) => Promise<boolean>
  }
}

/** A variable, not a literal, so TypeScript does not look for declarations snarkjs does not ship. */
const SNARKJS_MODULE = 'snarkjs'
let loaded: Promise<SnarkjsModule> | undefined

async function snarkjs (): Promise<SnarkjsModule> {
  loaded ??= import(SNARKJS_MODULE) as Promise<SnarkjsModule>
  return await loaded
}

/** Entropy for a contribution: 32 random bytes from the OS, with whatever the contributor adds (snarkjs mixes in 64 more of its own). */
export function contributionEntropy (extra?: string): string {
  return randomBytes(32).toString('hex') + (extra ?? '')
}

export async function newPtauAccumulator (power: number, file: string, logger?: SnarkjsLogger): Promise<void> {
  const s = await snarkjs()
  await s.powersOfTau.newAccumulator(await s.curves.getCurveFromName('bn128'), power, file, logger)
}

/** Resolves with the contribution's response hash. */
export async function contributePtau (oldPtau: string, newPtau: string, name: string, entropy: string, logger?: SnarkjsLogger): Promise<Uint8Array> {
  return await (await snarkjs()).powersOfTau.contribute(oldPtau, newPtau, name, entropy, logger)
}

export async function preparePhase2 (oldPtau: string, newPtau: string, logger?: SnarkjsLogger): Promise<void> {
  await (await snarkjs()).powersOfTau.preparePhase2(oldPtau, newPtau, logger)
}

/** The circuit's first (contribution-free) Groth16 key; false when snarkjs refused (its reason is in the logger's error lines). */
export async function newZKey (r1cs: string, ptau: string, zkey: string, logger?: SnarkjsLogger): Promise<boolean> {
  return await (await snarkjs()).zKey.newZKey(r1cs, ptau, zkey, logger) !== -1
}

export async function verifyZKeyFromR1cs (r1cs: string, ptau: string, zkey: string, logger?: SnarkjsLogger): Promise<boolean> {
  return await (await snarkjs()).zKey.verifyFromR1cs(r1cs, ptau, zkey, logger)
}

/** Resolves with snarkjs's contribution hash (64 bytes, blake2b of the contributor's public key). */
export async function contributeZKey (oldZkey: string, newZkey: string, name: string, entropy: string, logger?: SnarkjsLogger): Promise<Uint8Array> {
  return await (await snarkjs()).zKey.contribute(oldZkey, newZkey, name, entropy, logger)
}

/** The verification key as snarkjs exports it; unchecked (proof.ts checks its shape where it is used). */
export async function exportVerificationKey (zkey: string, logger?: SnarkjsLogger): Promise<unknown> {
  return await (await snarkjs()).zKey.exportVerificationKey(zkey, logger)
}

/** A file snarkjs reads: a path, or the bytes themselves (fastfile's in-memory file). */
type FileSource = string | { type: 'mem', data: Uint8Array }

/** A path as is; bytes as fastfile's in-memory file, so a key held in memory is not written to disk to be read. */
function fileSource (file: string | Uint8Array): FileSource {
  return typeof file === 'string' ? file : { type: 'mem', data: file }
}

/** Witness and proof; the result is what snarkjs returned, unchecked (proof.ts checks it). */
export async function fullProve (input: CircuitInput, wasm: string | Uint8Array, zkey: string | Uint8Array, logger?: SnarkjsLogger): Promise<{ proof: unknown, publicSignals: unknown }> {
  return await (await snarkjs()).groth16.fullProve(input, fileSource(wasm), fileSource(zkey), logger)
}

export async function verifyGroth16 (vkey: VerificationKey, publicSignals: Decimal[], proof: Groth16Proof, logger?: SnarkjsLogger): Promise<boolean> {
  return await (await snarkjs()).groth16.verify(vkey, publicSignals, proof, logger)
}

/**
 * Builds a single-threaded bn128 curve and makes it the one snarkjs uses in this thread (helper
 * "wire", for node/inference/zk/verify-worker.ts): inside a worker_threads worker, snarkjs's
 * default curve would start worker threads of its own through the web-worker package, which does
 * not work there. ffjavascript reuses `globalThis.curve_bn128` when one is set.
 */
export async function useSingleThreadCurve (): Promise<void> {
  const curve = await (await snarkjs()).curves.getCurveFromName('bn128', { singleThread: true })
  ;(globalThis as { curve_bn128?: Curve | null }).curve_bn128 = curve
}

/**
 * Terminates the worker threads of the bn128 curve snarkjs built (ffjavascript keeps one curve
 * per process in `globalThis.curve_bn128`, with a worker per core): without it a process that
 * used snarkjs does not exit. Call it once the process's snarkjs work is done (a command's end,
 * a node's stop): a call still running on the curve fails. The next snarkjs call builds a new
 * curve; a no-op when none was built.
 */
export async function releaseCurve (): Promise<void> {
  const curve = (globalThis as { curve_bn128?: Curve | null }).curve_bn128
  if (curve != null) await curve.terminate()
}
