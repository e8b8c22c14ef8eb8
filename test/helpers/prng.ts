/**
 * The seeded randomness of the invariant tests (payments-invariant, batch-invariant): a failure
 * prints its seed, and POI_FUZZ_SEED=<seed> replays the same sequence.
 */
import { randomBytes } from 'node:crypto'

/** mulberry32: a small seeded PRNG, enough to replay a sequence from its seed. */
export class Prng {
  private state: number
  constructor (seed: number) { this.state = seed >>> 0 }
  next (): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  int (n: number): number { return Math.floor(this.next() * n) }
  chance (p: number): boolean { return this.next() < p }
  pick<T> (xs: readonly T[]): T { return xs[this.int(xs.length)] }
  /** A uniform-ish bigint in [lo, hi] (53 random bits scaled). */
  big (lo: bigint, hi: bigint): bigint {
    const span = hi - lo + 1n
    const r = (BigInt(this.int(2 ** 26)) << 27n) | BigInt(this.int(2 ** 27))
    return lo + (r * span >> 53n)
  }
}

/** POI_FUZZ_SEED when set (an integer in 0..2^32-1), else a random seed. */
export function fuzzSeed (): number {
  const fromEnv = process.env.POI_FUZZ_SEED
  if (fromEnv !== undefined && fromEnv !== '') {
    const seed = Number(fromEnv)
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff) throw new Error(`POI_FUZZ_SEED must be an integer in 0..4294967295, got ${fromEnv}`)
    return seed
  }
  return randomBytes(4).readUInt32BE(0)
}
