/**
 * `poi model zk-attach <model dir> --circuit <dir> --ceremony <dir>`: gives a model directory its
 * circuit's files (zk/model.wasm, zk/model.zkey, zk/verification_key.json) and a manifest with a
 * `zk` section naming them, so `poi model publish <model dir>` publishes them with the model. The
 * manifest changes, so the model id does: the command prints the new one.
 */
import { createHash } from 'node:crypto'
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { PoiError } from '../../protocols/wire/index.js'
import {
  MANIFEST_FILE, ManifestError, ModelDirError, ZK_DIR, ZK_FILE_NAMES, ZK_FILES, attachZkArtifacts, loadModelDir, modelIdOf, modelIdToString,
  type ModelManifest, type ZkFiles
} from '../inference/index.js'
import { CeremonyError, UnsupportedOnnxError, VerificationKeyError, compileOnnxToCircom, readCeremonyRecord } from '../inference/zk/index.js'
import type { OptionValues } from './args.js'
import { UsageError } from './usage-error.js'

export const ZK_ATTACH_OPTIONS = { circuit: { type: 'string' }, ceremony: { type: 'string' } } as const

/** Where circom writes the witness generator in a compiled circuit's directory (toolchain.ts compileCircuit), then a flat layout. */
const WASM_CANDIDATES = [join('model_js', 'model.wasm'), 'model.wasm'] as const
const R1CS_FILE = 'model.r1cs'

/** A model directory, a compiled circuit or a ceremony that cannot be attached; the message names the file. */
export class ZkAttachError extends PoiError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_ZK_ATTACH', message, options)
  }
}

export interface ZkAttachParams {
  /** The model directory (manifest.json, model.onnx); written in place. */
  modelDir: string
  /** circom's output for the model (the directory `compileModelCircuit` wrote), or the .wasm file itself. */
  circuit: string
  /** A finalized ceremony directory (`poi model zk-setup finalize`). */
  ceremony: string
}

export interface ZkAttachResult {
  modelId: string
  /** The model id before (a manifest without this zk section). */
  previousModelId: string
  manifest: ModelManifest
  circuitId: bigint
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

async function readNamed (path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path))
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new ZkAttachError(`${path}: cannot read ${what} (${code === 'ENOENT' ? 'no such file' : code ?? (err as Error).message})`, { cause: err })
  }
}

async function isDirectory (path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory()
  } catch {
    return false
  }
}

/** The witness generator: the file given, or the first of WASM_CANDIDATES in the directory. */
async function readWasm (circuit: string): Promise<Uint8Array> {
  if (!await isDirectory(circuit)) return await readNamed(circuit, 'the circuit\'s witness generator (.wasm)')
  for (const candidate of WASM_CANDIDATES) {
    try {
      return new Uint8Array(await readFile(join(circuit, candidate)))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new ZkAttachError(`${join(circuit, candidate)}: cannot read it (${(err as Error).message})`, { cause: err })
    }
  }
  throw new ZkAttachError(`${circuit} holds no witness generator: neither ${WASM_CANDIDATES.map(c => join(circuit, c)).join(' nor ')} exists; compile the model's circuit there first`)
}

async function writeAtomically (path: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`
  try {
    await writeFile(tmp, bytes)
    await rename(tmp, path)
  } finally {
    await rm(tmp, { force: true })
  }
}

/**
 * Attaches a compiled circuit and a finalized ceremony to a model directory: checks the circuit
 * is the model's (its id is recomputed from the model; with the circuit's model.r1cs present,
 * that the ceremony was run for that r1cs), that the ceremony's keys are the ones its record
 * names and the verification key is poi's (four public signals), then writes zk/ and, last, the
 * new manifest.json (a crash in between leaves the old manifest, which ignores zk/).
 */
export async function attachZkToModelDir (p: ZkAttachParams, progress: (line: string) => void = () => {}): Promise<ZkAttachResult> {
  const modelDir = resolve(p.modelDir)
  const circuitPath = resolve(p.circuit)
  const ceremonyDir = resolve(p.ceremony)
  let model
  try {
    model = await loadModelDir(modelDir)
  } catch (err) {
    if (err instanceof ModelDirError) throw new ZkAttachError(err.message, { cause: err })
    throw err
  }
  const { zk: _previous, ...base } = model.manifest
  let circuitId: bigint
  try {
    circuitId = compileOnnxToCircom(model.modelBytes).circuitId
  } catch (err) {
    if (err instanceof UnsupportedOnnxError) throw new ZkAttachError(`${join(modelDir, 'model.onnx')} has no circuit: ${err.message}`, { cause: err })
    throw err
  }
  progress(`model ${modelIdToString(model.modelId)}: circuit id 0x${circuitId.toString(16)}`)

  let record
  try {
    record = await readCeremonyRecord(ceremonyDir)
  } catch (err) {
    if (err instanceof CeremonyError) throw new ZkAttachError(err.message, { cause: err })
    throw err
  }
  const final = record.final
  if (final === null) throw new ZkAttachError(`the ceremony in ${ceremonyDir} is not finalized (no final key in its ceremony.json); run \`poi model zk-setup finalize --dir ${ceremonyDir}\``)
  const zkeyPath = join(ceremonyDir, final.zkeyFile)
  const vkeyPath = join(ceremonyDir, final.verificationKeyFile)
  const zkey = await readNamed(zkeyPath, 'the ceremony\'s final proving key')
  const vkey = await readNamed(vkeyPath, 'the ceremony\'s verification key')
  if (sha256(zkey) !== final.zkeySha256) throw new ZkAttachError(`${zkeyPath} hashes to ${sha256(zkey)}, not the ${final.zkeySha256} ceremony.json records: the key was changed after finalize`)
  if (sha256(vkey) !== final.verificationKeySha256) throw new ZkAttachError(`${vkeyPath} hashes to ${sha256(vkey)}, not the ${final.verificationKeySha256} ceremony.json records: the key was changed after finalize`)

  const wasm = await readWasm(circuitPath)
  if (await isDirectory(circuitPath)) {
    const r1cs = await readFile(join(circuitPath, R1CS_FILE)).catch(() => undefined)
    if (r1cs !== undefined && sha256(r1cs) !== record.circuit.r1csSha256) {
      throw new ZkAttachError(`the ceremony in ${ceremonyDir} was run for another circuit: its r1cs hashes to ${record.circuit.r1csSha256}, ${join(circuitPath, R1CS_FILE)} to ${sha256(r1cs)}`)
    }
  }

  let attached: ModelManifest
  try {
    attached = attachZkArtifacts(base, { circuitId, wasm, zkey, vkey }).manifest
  } catch (err) {
    if (err instanceof ManifestError || err instanceof VerificationKeyError) throw new ZkAttachError(`cannot attach to ${modelDir}: ${err.message}`, { cause: err })
    throw err
  }
  const files: ZkFiles = { wasm, zkey, vkey }
  await mkdir(join(modelDir, ZK_DIR), { recursive: true })
  for (const { key } of ZK_FILES) {
    await writeAtomically(join(modelDir, ZK_DIR, ZK_FILE_NAMES[key]), files[key])
    progress(`wrote ${join(modelDir, ZK_DIR, ZK_FILE_NAMES[key])} (${files[key].length} bytes)`)
  }
  await writeAtomically(join(modelDir, MANIFEST_FILE), `${JSON.stringify(attached, null, 2)}\n`)
  const modelId = modelIdToString(modelIdOf(attached))
  progress(`wrote ${join(modelDir, MANIFEST_FILE)}: the manifest names the circuit, so the model id is now ${modelId}`)
  return { modelId, previousModelId: modelIdToString(model.modelId), manifest: attached, circuitId }
}

/** `poi model zk-attach <model dir> --circuit <dir> --ceremony <dir>`. */
export async function runZkAttach (values: OptionValues<typeof ZK_ATTACH_OPTIONS>, positionals: string[]): Promise<void> {
  const modelDir = positionals[0]
  if (modelDir === undefined || values.circuit === undefined || values.ceremony === undefined) {
    throw new UsageError('usage: poi model zk-attach <model dir> --circuit <compiled circuit dir or .wasm> --ceremony <finalized ceremony dir>')
  }
  const r = await attachZkToModelDir({ modelDir, circuit: values.circuit, ceremony: values.ceremony }, (line) => { console.error(line) })
  console.log(`${r.modelId}\n(was ${r.previousModelId}; publish it with \`poi model publish ${resolve(modelDir)}\`)`)
}
