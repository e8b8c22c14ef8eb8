/**
 * A model's zero-knowledge files (DESIGN §15) as the manifest's `zk` section names them: the
 * circuit id, circom's witness generator (model.wasm), the ceremony's final proving key
 * (model.zkey) and its verification key (verification_key.json), each cut into raw blocks at the
 * manifest's chunk size and fetched through the DHT like the model's own chunks.
 *
 * Trust boundary: the section is trusted once the manifest block hashes to the model id; the
 * files are not, so `zkArtifactsOf` checks each one's size and sha256 against the section before
 * parsing the verification key. Whether the circuit id is the model's own circuit is checked
 * against the model bytes (`checkZkCircuit`): the compiler is deterministic, so any holder of the
 * model can recompute the id without running circom.
 */
import { CID } from 'multiformats/cid'
import {
  ManifestError, chunkLayoutOf, circuitIdHex, parseManifest, sha256Hex, ZK_FILES,
  type ModelManifest, type ZkFileKey, type ZkFileRef, type ZkManifestSection
} from './manifest.js'
import { compileOnnxToCircom } from './zk/circuit.js'
import { UnsupportedOnnxError, VerificationKeyError } from './zk/errors.js'
import { parseVerificationKey } from './zk/proof.js'
import type { VerificationKey } from './zk/snarkjs.js'

/** File names inside a model directory's zk/ folder. */
export const ZK_DIR = 'zk'
export const ZK_WASM_FILE = 'model.wasm'
export const ZK_ZKEY_FILE = 'model.zkey'
export const ZK_VKEY_FILE = 'verification_key.json'
/** zk/ file name of each section file. */
export const ZK_FILE_NAMES: Record<ZkFileKey, string> = { wasm: ZK_WASM_FILE, zkey: ZK_ZKEY_FILE, vkey: ZK_VKEY_FILE }

/** The raw bytes of a zk section's three files. */
export interface ZkFiles {
  wasm: Uint8Array
  zkey: Uint8Array
  /** verification_key.json, byte for byte as the ceremony's finalize wrote it. */
  vkey: Uint8Array
}

/** What a prover (wasm, zkey) and a verifier (verificationKey) of the model's circuit use, checked against the manifest. */
export interface ZkArtifacts {
  circuitId: bigint
  wasm: Uint8Array
  zkey: Uint8Array
  verificationKey: VerificationKey
  /**
   * The verification key file's bytes, as the manifest hashes them (what a holder stores and
   * serves). Set by zkArtifactsOf (model directories, fetched models); optional so that artifacts
   * built in memory (tests of proving) need not carry them.
   */
  vkey?: Uint8Array
}

/** A zk file's raw blocks (views into `bytes`, not copies). */
function fileBlocks (bytes: Uint8Array, chunkSize: number): Array<{ cid: CID, bytes: Uint8Array }> {
  return chunkLayoutOf(bytes, chunkSize).chunks.map((cid, i) => ({ cid: CID.parse(cid), bytes: bytes.subarray(i * chunkSize, (i + 1) * chunkSize) }))
}

function fileRef (bytes: Uint8Array, chunkSize: number): ZkFileRef {
  return { size: bytes.length, sha256: sha256Hex(bytes), chunks: chunkLayoutOf(bytes, chunkSize).chunks }
}

/**
 * Adds the section to a manifest (a new manifest object, so a new model id) and returns the
 * blocks of the three files to store and provide. The result is parsed like any manifest, so a
 * file over its bound, a model outside the circuits' subset or a bad verification key throws
 * (ManifestError, VerificationKeyError). Whether `circuitId` is this model's is checked when the
 * model bytes are loaded (`checkZkCircuit`).
 */
export function attachZkArtifacts (manifest: ModelManifest, files: { circuitId: bigint, wasm: Uint8Array, zkey: Uint8Array, vkey: Uint8Array }): { manifest: ModelManifest, blocks: Array<{ cid: CID, bytes: Uint8Array }> } {
  const { chunkSize } = manifest
  const zk: ZkManifestSection = {
    circuitId: circuitIdHex(files.circuitId),
    wasm: fileRef(files.wasm, chunkSize),
    zkey: fileRef(files.zkey, chunkSize),
    vkey: fileRef(files.vkey, chunkSize)
  }
  const attached = parseManifest({ ...manifest, zk })
  const section = attached.zk as ZkManifestSection
  // a key that is not poi's is refused before anything is stored under a new id
  zkArtifactsOf(section, files)
  return { manifest: attached, blocks: zkBlocks(attached, files) }
}

/**
 * The blocks of the manifest's three zk files, each file checked against its section entry
 * (size, sha256, chunk CIDs; a ZkFileError names the one that does not match).
 */
export function zkBlocks (manifest: ModelManifest, files: ZkFiles): Array<{ cid: CID, bytes: Uint8Array }> {
  const section = manifest.zk
  if (section === undefined) return []
  const blocks: Array<{ cid: CID, bytes: Uint8Array }> = []
  for (const { key } of ZK_FILES) {
    checkZkFile(section, key, files[key])
    const ref = section[key]
    fileBlocks(files[key], manifest.chunkSize).forEach((block, i) => {
      if (block.cid.toString() !== ref.chunks[i]) throw new ZkFileError(key, `chunk ${i} is ${block.cid.toString()} but the manifest lists ${ref.chunks[i]}`)
      blocks.push(block)
    })
  }
  return blocks
}

/** A zk file does not match the manifest's section (size or sha256). */
export class ZkFileError extends ManifestError {
  constructor (readonly file: ZkFileKey, reason: string) {
    super(`zk.${file}`, reason)
  }
}

/** Checks one file's size and sha256 against the section. */
export function checkZkFile (section: ZkManifestSection, key: ZkFileKey, bytes: Uint8Array): void {
  const ref = section[key]
  if (bytes.length !== ref.size) throw new ZkFileError(key, `names a file of ${ref.size} bytes, got ${bytes.length} (${ZK_FILE_NAMES[key]})`)
  const hash = sha256Hex(bytes)
  if (hash !== ref.sha256) throw new ZkFileError(key, `names a file hashing to ${ref.sha256}, got ${hash} (${ZK_FILE_NAMES[key]})`)
}

/**
 * Checks sizes and hashes of fetched (or read) files against the section and parses the
 * verification key (a VerificationKeyError if it is not JSON or not a key for poi's four public
 * signals).
 */
export function zkArtifactsOf (section: ZkManifestSection, files: ZkFiles): ZkArtifacts {
  for (const { key } of ZK_FILES) checkZkFile(section, key, files[key])
  return { circuitId: BigInt(section.circuitId), wasm: files.wasm, zkey: files.zkey, verificationKey: verificationKeyOf(section, files.vkey), vkey: files.vkey }
}

/** The raw files of artifacts that carry the verification key's bytes (what a block store holds); undefined otherwise. */
export function zkFilesOf (artifacts: ZkArtifacts | undefined): ZkFiles | undefined {
  if (artifacts?.vkey === undefined) return undefined
  return { wasm: artifacts.wasm, zkey: artifacts.zkey, vkey: artifacts.vkey }
}

/** The verification key alone (what a node that checks proofs but does not run the model fetches). */
export function verificationKeyOf (section: ZkManifestSection, vkey: Uint8Array): VerificationKey {
  checkZkFile(section, 'vkey', vkey)
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(vkey))
  } catch (err) {
    throw new VerificationKeyError(`the verification key of circuit ${section.circuitId} is not JSON: ${(err as Error).message}`, { cause: err })
  }
  return parseVerificationKey(json)
}

/**
 * Checks that the section's circuit id is the one compileOnnxToCircom gives for these model
 * bytes (no circom run: the compiler derives the id from the circuit source). A ManifestError
 * naming `zk.circuitId` otherwise, or when the model is outside the compiler's subset.
 */
export function checkZkCircuit (manifest: ModelManifest, modelBytes: Uint8Array): void {
  if (manifest.zk === undefined) return
  let circuitId: bigint
  try {
    circuitId = compileOnnxToCircom(modelBytes).circuitId
  } catch (err) {
    if (err instanceof UnsupportedOnnxError) throw new ManifestError('zk.circuitId', `names a circuit, but the model does not compile to one: ${err.message}`)
    throw err
  }
  const expected = circuitIdHex(circuitId)
  if (expected !== manifest.zk.circuitId) {
    throw new ManifestError('zk.circuitId', `is ${manifest.zk.circuitId} but the model compiles to circuit ${expected}; attach the circuit compiled from this model (\`poi model zk-attach\`)`)
  }
}
