/**
 * Frames of /poi/shard/1/ written by hand: the client batches its request frames and the server
 * sends a block without copying it behind its length prefix, so both write the prefix
 * it-length-prefixed reads themselves.
 */

/** Unsigned varint (LEB128) of `n`: the length prefix it-length-prefixed reads. */
export function lengthPrefix (n: number): Uint8Array {
  const bytes: number[] = []
  while (n >= 0x80) {
    bytes.push((n % 0x80) | 0x80)
    n = Math.floor(n / 0x80)
  }
  bytes.push(n)
  return Uint8Array.from(bytes)
}
