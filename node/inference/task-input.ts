/**
 * A task input in either of its forms: UTF-8 JSON (json-input.ts) or a binary tensor file
 * (tensor-file.ts), told apart by the tensor file's "POIT" magic, which no JSON text starts with.
 * This module sits above both readers; neither imports it.
 */
import { readFile } from 'node:fs/promises'
import type { Tensor } from 'onnxruntime-node'
import { InputError, MAX_INPUT_BYTES } from './input-error.js'
import { parseJsonTaskInput, tensorsToTaskInput } from './json-input.js'
import type { ModelManifest } from './manifest.js'
import type { TensorSpec } from './tensor.js'
import { checkTensorsAgainstSpecs, decodeTensorFileInput, isTensorFile, parseTensorFileTaskInput } from './tensor-file.js'

/**
 * Decode and validate a task input (JSON or tensor file) against the manifest's input specs;
 * returns onnxruntime feeds. Throws InputError. Exported so a node can reject a bad task
 * before queuing it.
 */
export function parseTaskInput (input: Uint8Array, specs: readonly TensorSpec[]): Record<string, Tensor> {
  if (input.length > MAX_INPUT_BYTES) throw new InputError(`${input.length} bytes exceeds the ${MAX_INPUT_BYTES}-byte limit`)
  if (isTensorFile(input)) return parseTensorFileTaskInput(input, specs)
  return parseJsonTaskInput(input, specs)
}

/**
 * Convert a tensor file into the JSON task input, after checking it against the manifest's
 * input specs (InputError on any mismatch or malformed file).
 */
export function tensorFileToTaskInput (bytes: Uint8Array, manifest: ModelManifest): Uint8Array {
  const tensors = decodeTensorFileInput(bytes)
  checkTensorsAgainstSpecs(tensors, manifest.inputs)
  return tensorsToTaskInput(tensors)
}

/**
 * A task input as `poi request --input` takes it: `@<path>` reads the file (a tensor file or
 * UTF-8 JSON, told apart by the magic), anything else is inline JSON text. With a manifest the
 * input is checked against the model's input specs; without one only its form is checked
 * (strict tensor-file decoding, or JSON syntax). Returns the bytes to announce unchanged, since
 * the runner accepts both forms. Throws InputError naming the file or the problem.
 */
export async function readTaskInput (arg: string, manifest?: ModelManifest): Promise<Uint8Array> {
  let bytes: Uint8Array
  if (arg.startsWith('@')) {
    const path = arg.slice(1)
    try {
      bytes = new Uint8Array(await readFile(path))
    } catch (err) {
      throw new InputError(`cannot read input file ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
    }
  } else {
    bytes = new TextEncoder().encode(arg)
  }
  if (bytes.length > MAX_INPUT_BYTES) throw new InputError(`${bytes.length} bytes exceeds the ${MAX_INPUT_BYTES}-byte limit`)
  if (manifest !== undefined) {
    parseTaskInput(bytes, manifest.inputs)
  } else if (isTensorFile(bytes)) {
    decodeTensorFileInput(bytes)
  } else {
    try {
      JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
    } catch (err) {
      throw new InputError(`neither a tensor file (no "POIT" magic) nor UTF-8 JSON: ${(err as Error).message}`)
    }
  }
  return bytes
}
