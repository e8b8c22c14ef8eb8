/**
 * Content-addressed blocks (model chunks and manifests) in a NodeStore area.
 *
 * Trust boundary: bytes handed to `put` may come straight from a peer, so every block is
 * hashed and compared with its CID before it is written; a block that does not match is
 * refused with BadBlockError and never stored. Reads trust what is stored.
 *
 * Key layout inside the area: `<cid base32>` → block bytes.
 */
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'
import { SHA256_BYTES, verifyBlock } from '../protocols/wire/index.js'
import type { NodeStore, StoreArea } from './node-store.js'

/** The NodeStore area blocks live in. */
export const BLOCK_AREA = 'blocks'

export interface Block {
  cid: CID
  bytes: Uint8Array
}

export class BlockStore {
  constructor (private readonly area: StoreArea) {}

  /** The block store of a node: its own area of the node's LevelDB. */
  static of (store: NodeStore): BlockStore {
    return new BlockStore(store.area(BLOCK_AREA))
  }

  /** Verifies and stores one block. */
  async put (cid: CID, bytes: Uint8Array): Promise<void> {
    await this.putMany([{ cid, bytes }])
  }

  /** Verifies every block, then stores them all in one atomic write: all land or none do. */
  async putMany (blocks: readonly Block[]): Promise<void> {
    for (const { cid, bytes } of blocks) verifyBlock(cid, bytes)
    await this.area.put(blocks.map(({ cid, bytes }) => [cid.toString(), bytes]))
  }

  async get (cid: CID): Promise<Uint8Array | undefined> {
    return await this.area.get(cid.toString())
  }

  async has (cid: CID): Promise<boolean> {
    return (await this.area.get(cid.toString())) !== undefined
  }

  /**
   * Every stored block with this codec (manifests: json). Keys are base32 CIDs, and every
   * CIDv1/sha2-256 of one codec starts with the same characters, so only that key range is
   * read: listing manifests does not read the chunks.
   */
  async blocksWithCodec (codec: number): Promise<Block[]> {
    const sample = CID.createV1(codec, Digest.create(sha256.code, new Uint8Array(SHA256_BYTES)))
    // base32 carries 5 bits per character: the characters fully inside the CID prefix
    // (version, codec, hash code, hash length) are the same for every such CID; +1 for the multibase 'b'.
    const prefixBytes = sample.bytes.length - SHA256_BYTES
    const keyPrefix = sample.toString().slice(0, 1 + Math.floor(prefixBytes * 8 / 5))
    const out: Block[] = []
    for (const [key, bytes] of await this.area.entries(keyPrefix)) {
      let cid: CID
      try {
        cid = CID.parse(key)
      } catch {
        continue
      }
      if (cid.code === codec) out.push({ cid, bytes })
    }
    return out
  }

  async delete (cids: readonly CID[]): Promise<void> {
    await this.area.del(cids.map(cid => cid.toString()))
  }
}
