/**
 * A small int8 model with zk files that are not a real ceremony's (the manifest's zk section,
 * how the files travel and are checked, not proving): the circuit id is the model's real one
 * (compileOnnxToCircom), the wasm and proving key are seeded random bytes several chunks long,
 * and the verification key is JSON of snarkjs's verification_key.json shape for four public
 * signals (its points are not on the curve: nothing here verifies a proof with it).
 */
import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  MANIFEST_FILE, MIN_CHUNK_BYTES, MODEL_FILE, ZK_DIR, ZK_FILE_NAMES, chunkLayoutOf, parseManifest,
  type ModelManifest, type ZkFiles
} from '../../node/inference/index.js'
import { compileOnnxToCircom } from '../../node/inference/zk/index.js'
import { buildSeededQuantisedModel } from '../../node/fixtures/quantised-model.js'

/** Small chunks, so each zk file spans several blocks without being large. */
export const ZK_TEST_CHUNK_BYTES = MIN_CHUNK_BYTES

/** Deterministic bytes (sha256 in counter mode), so a test run is reproducible. */
export function seededBytes (seed: string, length: number): Uint8Array {
  const out = new Uint8Array(length)
  for (let i = 0, offset = 0; offset < length; i++, offset += 32) {
    out.set(createHash('sha256').update(`${seed}:${i}`).digest().subarray(0, Math.min(32, length - offset)), offset)
  }
  return out
}

/** A verification key of snarkjs's shape (`zkey export verificationkey`) with `nPublic` public signals. */
export function verificationKeyJson (nPublic = 4): Uint8Array {
  const g1 = (n: number): string[] => [String(n), String(n + 1), '1']
  const g2 = (n: number): string[][] => [[String(n), String(n + 1)], [String(n + 2), String(n + 3)], ['1', '0']]
  const key = {
    protocol: 'groth16',
    curve: 'bn128',
    nPublic,
    vk_alpha_1: g1(11),
    vk_beta_2: g2(21),
    vk_gamma_2: g2(31),
    vk_delta_2: g2(41),
    vk_alphabeta_12: [[['51', '52'], ['53', '54'], ['55', '56']], [['57', '58'], ['59', '60'], ['61', '62']]],
    IC: Array.from({ length: nPublic + 1 }, (_, i) => g1(100 + 2 * i))
  }
  return new TextEncoder().encode(JSON.stringify(key, null, 1))
}

export interface ZkTestModel {
  modelBytes: Uint8Array
  /** The model's manifest without a zk section, chunked at ZK_TEST_CHUNK_BYTES. */
  manifest: ModelManifest
  circuitId: bigint
  files: ZkFiles
}

/** The seeded 4→3→2 int8 model, named `name` (each name its own model id), and its zk files. */
export function zkTestModel (name = 'zk-test-model', sizes = { wasm: 5 * ZK_TEST_CHUNK_BYTES + 100, zkey: 12 * ZK_TEST_CHUNK_BYTES + 7 }): ZkTestModel {
  const { modelBytes, manifest } = buildSeededQuantisedModel({ inputSize: 4, hiddenSize: 3, classes: 2, seed: 7 })
  const chunked = parseManifest({ ...manifest, name, ...chunkLayoutOf(modelBytes, ZK_TEST_CHUNK_BYTES) })
  return {
    modelBytes,
    manifest: chunked,
    circuitId: compileOnnxToCircom(modelBytes).circuitId,
    files: { wasm: seededBytes(`${name}:wasm`, sizes.wasm), zkey: seededBytes(`${name}:zkey`, sizes.zkey), vkey: verificationKeyJson() }
  }
}

/** Writes a model directory: manifest.json, model.onnx and, when given, zk/'s files. */
export async function writeModelDir (dir: string, manifest: ModelManifest, modelBytes: Uint8Array, files?: ZkFiles): Promise<void> {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`)
  await writeFile(join(dir, MODEL_FILE), modelBytes)
  if (files === undefined) return
  await mkdir(join(dir, ZK_DIR), { recursive: true })
  for (const key of ['wasm', 'zkey', 'vkey'] as const) await writeFile(join(dir, ZK_DIR, ZK_FILE_NAMES[key]), files[key])
}
