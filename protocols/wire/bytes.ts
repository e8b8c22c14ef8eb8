/**
 * Bytes as poi shows and compares them: one helper module instead of a local `hex` in every
 * file. Hex without a prefix is for map keys and log lines; `0x`-hex is for what users and
 * the chain read (addresses, ids, hashes).
 */

/** Lower-case hex without a prefix: a map key or a compact log form. */
export function toHex (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

/** `0x`-prefixed lower-case hex, as viem and the chain spell bytes. */
export function to0xHex (bytes: Uint8Array): `0x${string}` {
  return `0x${toHex(bytes)}`
}

/** The first `chars` hex digits and an ellipsis, for a person reading a log or the CLI. */
export function shortHex (bytes: Uint8Array, chars = 16): string {
  const full = toHex(bytes)
  return full.length <= chars ? `0x${full}` : `0x${full.slice(0, chars)}…`
}

/** Bytes of a hex string, with or without `0x`; undefined when it is not whole bytes of hex. */
export function fromHex (text: string): Uint8Array | undefined {
  const digits = text.startsWith('0x') || text.startsWith('0X') ? text.slice(2) : text
  if (digits.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(digits)) return undefined
  return new Uint8Array(Buffer.from(digits, 'hex'))
}

/** Whether two byte arrays hold the same bytes. */
export function bytesEqual (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0
}
