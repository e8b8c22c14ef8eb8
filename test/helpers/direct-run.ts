import { InferenceSession, Tensor } from 'onnxruntime-node'
import { keccak256 } from 'viem'
import { canonicalizeOutputs, type ModelManifest, type NamedTensor, type OutputTensor, type TensorData } from '../../node/inference/index.js'

/**
 * Session options written out from the manifest by hand (not through the runner's
 * sessionOptionsOf), so the direct run is an independent check of what the manifest pins.
 */
export function optionsFromManifest (manifest: ModelManifest): InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: manifest.runtime.graphOptimizationLevel,
    intraOpNumThreads: manifest.runtime.intraOpNumThreads,
    interOpNumThreads: manifest.runtime.interOpNumThreads,
    executionMode: manifest.runtime.executionMode,
    logSeverityLevel: 3
  }
}

/**
 * The tensors of a JSON task input (`{"<name>": {"dims": [...], "data": [...]}}`), typed from the
 * manifest's input specs. Read here by hand, not through the runner's parser, so the direct run
 * stays an independent check. Float inputs only, which is all the tests send as JSON.
 */
export function tensorsOfJsonInput (input: Uint8Array, manifest: ModelManifest): NamedTensor[] {
  const json = JSON.parse(new TextDecoder().decode(input)) as Record<string, { dims: number[], data: number[] }>
  return manifest.inputs.map(spec => {
    const entry = json[spec.name]
    if (entry === undefined) throw new Error(`the JSON input has no tensor "${spec.name}"`)
    if (spec.dtype === 'float32') return { name: spec.name, dtype: spec.dtype, dims: entry.dims, data: Float32Array.from(entry.data) }
    if (spec.dtype === 'float64') return { name: spec.name, dtype: spec.dtype, dims: entry.dims, data: Float64Array.from(entry.data) }
    throw new Error(`input "${spec.name}" is ${spec.dtype}; tensorsOfJsonInput reads float inputs only`)
  })
}

/** Runs the model with onnxruntime directly and hashes the output canonicalised under the manifest's rule (hex, no 0x). */
export async function directResultHash (model: { modelBytes: Uint8Array, manifest: ModelManifest }, tensors: NamedTensor[]): Promise<string> {
  const session = await InferenceSession.create(model.modelBytes, optionsFromManifest(model.manifest))
  try {
    const feeds: Record<string, Tensor> = {}
    for (const t of tensors) feeds[t.name] = new Tensor(t.dtype, t.data, t.dims)
    const raw = await session.run(feeds)
    const outputs: Record<string, OutputTensor> = {}
    for (const [name, value] of Object.entries(raw)) {
      outputs[name] = { dtype: value.type as OutputTensor['dtype'], dims: [...value.dims], data: (value.data as TensorData).slice() }
    }
    return keccak256(canonicalizeOutputs(outputs, model.manifest)).slice(2)
  } finally {
    await session.release()
  }
}
