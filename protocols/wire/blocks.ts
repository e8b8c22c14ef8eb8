/**
 * Content addressing of blocks (model chunks and manifests, DESIGN §7): CIDv1, sha2-256, raw or
 * json. Shared by the block store, which refuses a block that does not match its CID, and the
 * shard protocol, which checks each block it receives before anyone sees it.
 *
 * Trust boundary: `bytes` handed to verifyBlock are untrusted.
 */
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { code as JSON_CODEC } from 'multiformats/codecs/json'
import { code as RAW_CODEC } from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'
import { errorWithCode } from './errors.js'

const KIB = 1024
const MIB = 1024 * KIB

/**
 * Largest block this node stores or accepts from a peer: a model chunk is at most 1 MiB
 * (MAX_CHUNK_BYTES in the manifest rules) and a manifest of the largest allowed model is
 * about 256 KiB; the 64 KiB headroom lets the chunk bound be met exactly without an
 * off-by-one at the wire, while still capping what a peer can make us buffer.
 */
export const MAX_BLOCK_BYTES = MIB + 64 * KIB

/** Codecs a block may carry: raw for model chunks, json for manifests. */
export const BLOCK_CODECS = { raw: RAW_CODEC, json: JSON_CODEC } as const

export const SHA256_BYTES = 32

/** A block whose bytes do not hash to its CID, or a CID this store does not handle. */
export class BadBlockError extends errorWithCode('ERR_BAD_BLOCK') {
  constructor (readonly cid: string, reason: string) {
    super(`block ${cid}: ${reason}`)
  }
}

/** A block larger than MAX_BLOCK_BYTES (or a caller's tighter bound). */
export class BlockTooLargeError extends errorWithCode('ERR_BLOCK_TOO_LARGE') {
  constructor (readonly cid: string, readonly size: number, readonly limit: number) {
    super(`block ${cid} is ${size} bytes, more than its bound of ${limit} bytes`)
  }
}

/** CIDv1 of `bytes` under `codec` (raw by default), sha2-256. */
export function blockCid (bytes: Uint8Array, codec: number = RAW_CODEC): CID {
  const hash = createHash('sha256').update(bytes).digest()
  return CID.createV1(codec, Digest.create(sha256.code, new Uint8Array(hash.buffer, hash.byteOffset, hash.byteLength)))
}

/** Throws BadBlockError unless `cid` is a CIDv1 (raw or json, sha2-256) this store can check. */
export function checkBlockCid (cid: CID): void {
  if (cid.version !== 1) throw new BadBlockError(cid.toString(), `must be a CIDv1, got CIDv${cid.version}`)
  if (cid.code !== RAW_CODEC && cid.code !== JSON_CODEC) {
    throw new BadBlockError(cid.toString(), `has codec 0x${cid.code.toString(16)}; blocks here are raw (0x55) or json (0x200)`)
  }
  if (cid.multihash.code !== sha256.code) {
    throw new BadBlockError(cid.toString(), `is hashed with 0x${cid.multihash.code.toString(16)}; blocks here use sha2-256 (0x12)`)
  }
}

/**
 * Throws unless `bytes` is the block `cid` names and is within `maxBytes`. The size is checked
 * first so an oversized block is refused before it is hashed. `bytes` may be the pieces the
 * block arrived in, hashed in order without joining them.
 */
export function verifyBlock (cid: CID, bytes: Uint8Array | readonly Uint8Array[], maxBytes: number = MAX_BLOCK_BYTES): void {
  checkBlockCid(cid)
  const parts = bytes instanceof Uint8Array ? [bytes] : bytes
  const size = parts.reduce((n, p) => n + p.length, 0)
  if (size > maxBytes) throw new BlockTooLargeError(cid.toString(), size, maxBytes)
  const hash = createHash('sha256')
  for (const part of parts) hash.update(part)
  const digest = hash.digest()
  const expected = cid.multihash.digest
  if (digest.length !== expected.length || !digest.equals(expected)) {
    throw new BadBlockError(cid.toString(), `the ${size} bytes received hash to a different CID (${CID.createV1(cid.code, Digest.create(sha256.code, new Uint8Array(digest))).toString()})`)
  }
}

