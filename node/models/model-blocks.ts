/**
 * A model as content-addressed blocks (DESIGN §7): raw chunks of the ONNX file, and the
 * manifest, itself a json block whose CID is the model id. These functions turn bytes into
 * blocks, store them so that a model is complete or absent, and read a stored model back.
 */
import { logger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import { code as JSON_CODEC } from 'multiformats/codecs/json'
import {
  DEFAULT_CHUNK_BYTES, ManifestError, ZK_FILES, checkZkCircuit, chunkLayoutOf, encodeManifest, modelIdOf, modelIdToString,
  parseManifest, parseModelId, sha256Hex, zkBlocks, type ModelManifest, type ZkFiles
} from '../inference/index.js'
import { type Block, type BlockStore } from '../../storage/index.js'
import { blockCid, bytesEqual } from '../../protocols/wire/index.js'
import { ModelIntegrityError, ModelManifestError } from './errors.js'

const log = logger('poi:models')

/** What the publisher chooses (owner included); the rest of the manifest (size, hash, chunks) comes from the bytes. */
export type ModelFields = Pick<ModelManifest, 'owner' | 'name' | 'runtime' | 'agreement' | 'inputs' | 'outputs'>

/** A model id in any of the forms the node handles: bytes (as on the wire and chain), base32 text, or a CID. */
export type ModelIdInput = Uint8Array | string | CID

/** The model id as a CID, checked to be a manifest id (CIDv1, json codec, sha2-256). */
export function modelCidOf (id: ModelIdInput): CID {
  if (typeof id === 'string') return CID.decode(parseModelId(id))
  const bytes = id instanceof Uint8Array ? id : id.bytes
  return CID.parse(modelIdToString(bytes))
}

/** Cut model bytes into raw blocks of `chunkSize` (the last one shorter). Blocks view the input, they do not copy it. */
export function chunkModel (modelBytes: Uint8Array, chunkSize: number = DEFAULT_CHUNK_BYTES): Block[] {
  const { chunks } = chunkLayoutOf(modelBytes, chunkSize)
  return chunks.map((cid, i) => ({ cid: CID.parse(cid), bytes: modelBytes.subarray(i * chunkSize, (i + 1) * chunkSize) }))
}

/** The manifest for `modelBytes`, validated like any manifest read from the network. */
export function buildManifest (modelBytes: Uint8Array, fields: ModelFields, chunkSize: number = DEFAULT_CHUNK_BYTES): ModelManifest {
  return parseManifest({
    version: 1,
    owner: fields.owner,
    format: 'onnx',
    name: fields.name,
    size: modelBytes.length,
    modelHash: sha256Hex(modelBytes),
    ...chunkLayoutOf(modelBytes, chunkSize),
    runtime: fields.runtime,
    agreement: fields.agreement,
    inputs: fields.inputs,
    outputs: fields.outputs
  })
}

/** The manifest as a block: canonical JSON, json codec; its CID is the model id. */
export function manifestBlock (manifest: ModelManifest): Block {
  const bytes = encodeManifest(manifest)
  const cid = blockCid(bytes, JSON_CODEC)
  // modelIdOf hashes the same canonical bytes; a mismatch would mean two definitions of the id
  if (!bytesEqual(cid.bytes, modelIdOf(manifest))) throw new Error('manifest block CID differs from modelIdOf: canonical encodings diverged')
  return { cid, bytes }
}

/** The chunk CIDs of a manifest's zk files (wasm, zkey, vkey in that order); none without a `zk` section. */
export function zkCids (manifest: ModelManifest): CID[] {
  const zk = manifest.zk
  if (zk === undefined) return []
  return ZK_FILES.flatMap(({ key }) => zk[key].chunks.map(c => CID.parse(c)))
}

/** Every CID of a model: the manifest first, then the chunks in order, then its zk files' chunks. What a holder provides. */
export function modelCids (manifest: ModelManifest): CID[] {
  return [manifestBlock(manifest).cid, ...manifest.chunks.map(c => CID.parse(c)), ...zkCids(manifest)]
}

/**
 * Parse a manifest block received for `modelId` (its bytes already match the id). It must be a
 * valid manifest in canonical form, so that the id and the parsed manifest agree.
 */
export function decodeManifestBlock (modelId: CID, bytes: Uint8Array): ModelManifest {
  const id = modelId.toString()
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new ModelManifestError(id, `is not JSON (${(err as Error).message})`, { cause: err })
  }
  let manifest: ModelManifest
  try {
    manifest = parseManifest(json)
  } catch (err) {
    if (err instanceof ManifestError) throw new ModelManifestError(id, `does not parse: ${err.message}`, { cause: err })
    throw err
  }
  if (!bytesEqual(encodeManifest(manifest), bytes)) throw new ModelManifestError(id, 'is not in canonical form (owner first, then sorted keys, lowercase owner, no whitespace)')
  return manifest
}

/**
 * Check model bytes (and the zk files, when the manifest has a `zk` section) against a manifest:
 * size, whole-file hash, and each chunk against its CID. Returns the blocks (manifest last)
 * ready to store. A manifest with a `zk` section needs its files (a stored manifest means a
 * complete model) and a circuit id that is the model's (a ManifestError naming zk.circuitId).
 */
export function modelBlocks (manifest: ModelManifest, modelBytes: Uint8Array, zk?: ZkFiles): Block[] {
  const mBlock = manifestBlock(manifest)
  const id = mBlock.cid.toString()
  if (modelBytes.length !== manifest.size) throw new ModelIntegrityError(id, `model is ${modelBytes.length} bytes but the manifest says ${manifest.size}`)
  const hash = sha256Hex(modelBytes)
  if (hash !== manifest.modelHash) throw new ModelIntegrityError(id, `model bytes hash to ${hash} but the manifest says ${manifest.modelHash}`)
  const chunks = chunkModel(modelBytes, manifest.chunkSize)
  chunks.forEach((block, i) => {
    if (block.cid.toString() !== manifest.chunks[i]) {
      throw new ModelIntegrityError(id, `chunk ${i} is ${block.cid.toString()} but the manifest lists ${manifest.chunks[i]}`)
    }
  })
  if (manifest.zk === undefined) return [...chunks, mBlock]
  if (zk === undefined) throw new ModelIntegrityError(id, 'the manifest names zk files (a circuit and its keys) but none were given')
  // a ManifestError naming zk.circuitId: the manifest names another model's circuit
  checkZkCircuit(manifest, modelBytes)
  let zkChunks: Block[]
  try {
    zkChunks = zkBlocks(manifest, zk)
  } catch (err) {
    if (err instanceof ManifestError) throw new ModelIntegrityError(id, err.message)
    throw err
  }
  return [...chunks, ...zkChunks, mBlock]
}

export interface StoredModel {
  modelId: Uint8Array
  manifest: ModelManifest
  modelBytes: Uint8Array
  /** The zk files' bytes, checked against the manifest's `zk` section; absent without one. */
  zk?: ZkFiles
}

/**
 * Store a model whose bytes were checked against the manifest, chunks and manifest in one
 * atomic write: a crash leaves the whole model or nothing, so a stored manifest always means a
 * loadable model.
 */
export async function storeModel (blockStore: BlockStore, manifest: ModelManifest, modelBytes: Uint8Array, zk?: ZkFiles): Promise<StoredModel> {
  const blocks = modelBlocks(manifest, modelBytes, zk)
  await blockStore.putMany(blocks)
  const stored: StoredModel = { modelId: modelIdOf(manifest), manifest, modelBytes }
  if (manifest.zk !== undefined) stored.zk = zk
  return stored
}

/** A stored file's chunks, concatenated; undefined if one is missing. */
async function readChunks (blockStore: BlockStore, chunks: string[], size: number, what: string): Promise<Uint8Array | undefined> {
  const parts: Uint8Array[] = []
  for (const chunk of chunks) {
    const part = await blockStore.get(CID.parse(chunk))
    if (part === undefined) {
      // only possible if blocks were deleted behind the store's back; treat as absent so it is fetched again
      log.error('%s: manifest stored but chunk %s missing', what, chunk)
      return undefined
    }
    parts.push(part)
  }
  return concat(parts, size)
}

/**
 * Read a stored model, or undefined if this node does not hold it. The bytes are the ones
 * verified when stored; InferenceRunner.load hashes them once more before running.
 */
export async function loadModel (blockStore: BlockStore, id: ModelIdInput): Promise<StoredModel | undefined> {
  const cid = modelCidOf(id)
  const bytes = await blockStore.get(cid)
  if (bytes === undefined) return undefined
  const manifest = decodeManifestBlock(cid, bytes)
  const modelBytes = await readChunks(blockStore, manifest.chunks, manifest.size, `model ${cid.toString()}`)
  if (modelBytes === undefined) return undefined
  const stored: StoredModel = { modelId: cid.bytes, manifest, modelBytes }
  const zk = manifest.zk
  if (zk === undefined) return stored
  const files: Partial<ZkFiles> = {}
  for (const { key } of ZK_FILES) {
    files[key] = await readChunks(blockStore, zk[key].chunks, zk[key].size, `model ${cid.toString()} zk.${key}`)
    if (files[key] === undefined) return undefined
  }
  stored.zk = files as ZkFiles
  return stored
}

/** Whether this node holds the model (manifest block present; chunks are written with it). */
export async function hasModel (blockStore: BlockStore, id: ModelIdInput): Promise<boolean> {
  return await blockStore.has(modelCidOf(id))
}

export interface ModelSummary {
  modelId: string
  manifest: ModelManifest
}

/** The models this node holds, by their manifests (for `poi model ls` and re-providing on start). */
export async function listModels (blockStore: BlockStore): Promise<ModelSummary[]> {
  const out: ModelSummary[] = []
  for (const { cid, bytes } of await blockStore.blocksWithCodec(JSON_CODEC)) {
    try {
      out.push({ modelId: cid.toString(), manifest: decodeManifestBlock(cid, bytes) })
    } catch (err) {
      log.error('json block %s is not a model manifest: %s', cid, (err as Error).message)
    }
  }
  return out
}

export interface PublishedModel {
  modelId: Uint8Array
  /** The model id as a CID (its base32 text is what the CLI prints). */
  modelCid: CID
  manifest: ModelManifest
  /** Manifest CID first, then every chunk: what to provide on the DHT. */
  cids: CID[]
}

/**
 * Publish model bytes on this node: build the manifest from `fields` and the bytes, store
 * every block. Announce them afterwards with `provideModel(libp2p, published.cids)`.
 */
export async function publishModel (blockStore: BlockStore, modelBytes: Uint8Array, fields: ModelFields, options: { chunkSize?: number } = {}): Promise<PublishedModel> {
  const manifest = buildManifest(modelBytes, fields, options.chunkSize ?? DEFAULT_CHUNK_BYTES)
  return await importModel(blockStore, manifest, modelBytes)
}

/** Publish a model whose manifest already exists (a model directory, the shipped model), with its zk files if the manifest names them. */
export async function importModel (blockStore: BlockStore, manifest: ModelManifest, modelBytes: Uint8Array, zk?: ZkFiles): Promise<PublishedModel> {
  const stored = await storeModel(blockStore, manifest, modelBytes, zk)
  const cids = modelCids(manifest)
  return { modelId: stored.modelId, modelCid: cids[0], manifest, cids }
}

function concat (parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size)
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}
