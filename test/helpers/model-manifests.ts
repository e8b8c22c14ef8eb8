/**
 * Model manifests for registry tests: real manifests (the shipped model's, renamed so that each
 * gets its own id) naming the owner a test chooses, with the block and id the chain checks.
 */
import { SHIPPED_MODEL_DIR, encodeManifest, loadModelDir, modelIdOf, parseManifest, type ModelManifest } from '../../node/inference/index.js'

export interface OwnedManifest {
  manifest: ModelManifest
  /** The canonical manifest block: what ModelRegistry.register takes as proof. */
  block: Uint8Array
  /** CIDv1 (json, sha2-256) of `block`. */
  modelId: Uint8Array
}

let shipped: Promise<ModelManifest> | undefined
let fresh = 0

/** A valid manifest naming `owner`, with an id no other call in this process returns. */
export async function ownedManifest (owner: `0x${string}`, name = 'registry-test'): Promise<OwnedManifest> {
  shipped ??= loadModelDir(SHIPPED_MODEL_DIR).then(d => d.manifest)
  const manifest = parseManifest({ ...await shipped, owner: owner.toLowerCase(), name: `${name}-${fresh++}` })
  return { manifest, block: encodeManifest(manifest), modelId: modelIdOf(manifest) }
}
