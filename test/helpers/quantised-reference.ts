/** A plain integer evaluation of a quantised MLP, independent of onnxruntime and of the circuit. */
import type { QuantisedMlp } from '../../node/fixtures/index.js'

export interface QuantisedReference {
  /** The hidden layer after requantisation (int8, 0..127). */
  hidden: number[]
  logits: number[]
}

export function quantisedMlpReference (q: QuantisedMlp, x: readonly number[]): QuantisedReference {
  const hidden: number[] = []
  for (let j = 0; j < q.hiddenSize; j++) {
    let acc = BigInt(q.b1[j])
    for (let i = 0; i < q.inputSize; i++) acc += BigInt(q.w1[i * q.hiddenSize + j]) * BigInt(x[i])
    if (acc < 0n) acc = 0n
    const scaled = (acc * BigInt(q.multiplier) + 2n ** BigInt(q.shift - 1)) / 2n ** BigInt(q.shift)
    hidden.push(Number(scaled > 127n ? 127n : scaled))
  }
  const logits: number[] = []
  for (let c = 0; c < q.classes; c++) {
    let acc = q.b2[c]
    for (let j = 0; j < q.hiddenSize; j++) acc += q.w2[j * q.classes + c] * hidden[j]
    logits.push(acc)
  }
  return { hidden, logits }
}
