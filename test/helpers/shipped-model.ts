/** The shipped MLP classifier as the inference tests use it: a sample input and a session counter. */
import { InferenceSession } from 'onnxruntime-node'
import type { CreateSession } from '../../node/inference/index.js'

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

/** A fixed 16-value input; any values work, these cover negatives, zero and the ReLU kink. */
export const SAMPLE_X: readonly number[] = Array.from({ length: 16 }, (_, i) => (i - 8) / 8)

/** The shipped model's JSON task input for `x` (default SAMPLE_X). */
export const sampleInput = (x: readonly number[] = SAMPLE_X): Uint8Array => utf8(JSON.stringify({ x: { dims: [1, 16], data: x } }))

/** Counts sessions so a test can prove onnxruntime never saw the bytes. */
export function countingCreateSession (): { create: CreateSession, count: () => number } {
  let n = 0
  return {
    create: async (bytes, options) => { n++; return InferenceSession.create(bytes, options) },
    count: () => n
  }
}
