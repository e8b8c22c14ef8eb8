/**
 * Which onnxruntime may attest a model's results (DESIGN §6). The manifest pins the version it
 * was measured with; an operator whose installed onnxruntime differs still loads and runs the
 * model (it may serve a requester or fetch it for others) but must not sign a result unless
 * the manifest's agreement rule allows the difference.
 *
 * The rule, by agreement rule:
 *
 *   exact     the pinned version only. `exact` hashes raw output bits, and the kernels behind
 *             them (MLAS, fused operators, the graph optimiser) change between releases, so any
 *             other release may flip a low bit and split the quorum.
 *   grid:k, argmax, topk:n
 *             the pinned version or another release of the same major version (another minor
 *             or patch). These rules exist to absorb the low-order float drift that already
 *             differs between CPUs and kernels, which is what a minor release changes. A major
 *             release may change operator semantics, defaults or the optimiser's contract,
 *             which no rounding absorbs, so it is refused.
 *
 * A version that is not plain `major.minor.patch` (a dev or pre-release build) must equal the
 * pin. What a tolerant rule cannot promise: a value that lands within the drift of a grid
 * boundary, or two labels within it of a tie, may still differ; the quorum outvotes such a
 * minority, the same as between CPUs on the pinned version.
 */
import { env as ortEnv } from 'onnxruntime-node'
import { PoiError } from '../../protocols/wire/index.js'
import type { AgreementRule } from './agreement.js'
import type { RuntimeConfig } from './manifest.js'

/** Version of the onnxruntime-node package actually loaded (the npm version is the runtime's). */
export function installedOnnxruntimeVersion (): string {
  return ortEnv.versions.node ?? ortEnv.versions.common
}

export interface RuntimeVersionMismatch { pinned: string, installed: string }

/** The installed onnxruntime differs from the one the manifest pins (thrown only with `onRuntimeMismatch: 'error'`). */
export class RuntimeVersionMismatchError extends PoiError {
  static readonly code = 'ERR_RUNTIME_VERSION_MISMATCH'
  declare readonly code: typeof RuntimeVersionMismatchError.code
  constructor (readonly pinned: string, readonly installed: string) {
    super(RuntimeVersionMismatchError.code, `manifest pins onnxruntime ${pinned} but ${installed} is installed; install onnxruntime-node@${pinned} so outputs match other operators`)
  }
}

/** What of a manifest the version rule reads. */
export interface RuntimePin {
  name: string
  agreement: AgreementRule
  runtime: Pick<RuntimeConfig, 'onnxruntime'>
}

const PLAIN_VERSION = /^(\d+)\.(\d+)\.(\d+)$/

function majorOf (version: string): string | undefined {
  return PLAIN_VERSION.exec(version)?.[1]
}

/** Whether an operator on onnxruntime `installed` may attest results of a model pinned to `pinned` under `rule` (see the file comment). */
export function runtimeVersionAllowed (rule: AgreementRule, pinned: string, installed: string): boolean {
  if (installed === pinned) return true
  if (rule === 'exact') return false
  const major = majorOf(pinned)
  return major !== undefined && major === majorOf(installed)
}

/**
 * Why an operator on onnxruntime `installed` must not attest results of `manifest`, as a
 * sentence naming the fix; undefined when it may attest (same version, or a difference the
 * manifest's agreement rule allows).
 */
export function runtimeRefusal (manifest: RuntimePin, installed: string): string | undefined {
  const pinned = manifest.runtime.onnxruntime
  if (runtimeVersionAllowed(manifest.agreement, pinned, installed)) return undefined
  const allows = manifest.agreement === 'exact'
    ? 'which allows no other version'
    : `which allows other ${majorOf(pinned) ?? pinned}.x releases only`
  const alternative = manifest.agreement === 'exact' ? '' : ` (or another ${majorOf(pinned) ?? pinned}.x release)`
  return `model "${manifest.name}" pins onnxruntime ${pinned} under agreement rule ${manifest.agreement}, ${allows}; ` +
    `this node runs ${installed}: install onnxruntime-node@${pinned}${alternative} to attest`
}
