/**
 * PLACEHOLDER (helper "wire", spec16n part A is helper "man"'s): only the shape of a model's zk
 * artifacts, so ModelDir and ModelService.zkVerifier can name it before man's zk-artifacts.ts
 * lands. On merge, take man's file whole.
 */
import type { VerificationKey } from './zk/index.js'

/** A model's circuit and keys: what proving needs (wasm, zkey) and what checking needs (circuitId, verificationKey). */
export interface ZkArtifacts {
  circuitId: bigint
  /** circom's witness generator (model.wasm). */
  wasm: Uint8Array
  /** The ceremony's final proving key. */
  zkey: Uint8Array
  verificationKey: VerificationKey
}
