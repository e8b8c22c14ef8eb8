import assert from 'node:assert/strict'
import {
  InferenceRunner, RuntimeVersionMismatchError, SHIPPED_MODEL_DIR, installedOnnxruntimeVersion, loadModelDir,
  runtimeRefusal, runtimeVersionAllowed, type AgreementRule, type ModelManifest
} from '../node/inference/index.js'
import { toHex } from '../protocols/wire/index.js'
import { countingCreateSession, sampleInput } from './helpers/shipped-model.js'

/** `version` with its major, minor or patch number moved by `by` (which may be negative). */
function bump (version: string, part: 0 | 1 | 2, by: number): string {
  const parts = version.split('.').map(Number)
  parts[part] += by
  return parts.join('.')
}

describe('inference: onnxruntime version and attesting', function () {
  let modelBytes: Uint8Array
  let manifest: ModelManifest
  const installed = installedOnnxruntimeVersion()

  before(async function () {
    ({ modelBytes, manifest } = await loadModelDir(SHIPPED_MODEL_DIR))
    assert.match(installed, /^\d+\.\d+\.\d+$/, 'the installed onnxruntime reports a plain version')
  })

  /** The shipped model pinned to another version and/or rule; the model bytes still match its hash. */
  const pinned = (onnxruntime: string, agreement: AgreementRule = manifest.agreement): ModelManifest =>
    ({ ...manifest, agreement, runtime: { ...manifest.runtime, onnxruntime } })

  describe('runtimeVersionAllowed (the rule, pure)', function () {
    const cases: Array<[AgreementRule, string, string, boolean]> = [
      ['exact', '1.30.0', '1.30.0', true],
      ['exact', '1.30.0', '1.30.1', false],
      ['exact', '1.30.0', '1.29.0', false],
      ['grid:16', '1.30.0', '1.30.0', true],
      ['grid:16', '1.30.0', '1.30.1', true],
      ['grid:16', '1.30.0', '1.22.0', true],
      ['grid:0', '1.30.0', '1.31.2', true],
      ['argmax', '1.30.0', '1.29.1', true],
      ['topk:3', '1.30.0', '1.40.0', true],
      ['grid:16', '1.30.0', '2.0.0', false],
      ['grid:16', '1.30.0', '0.30.0', false],
      ['argmax', '1.30.0', '11.30.0', false],
      ['topk:3', '2.0.0', '1.30.0', false],
      // a dev or pre-release build must be exactly the pin, whatever the rule
      ['grid:16', '1.30.0', '1.30.0-dev.20250101', false],
      ['argmax', '1.30.0', '1.30', false],
      ['argmax', '1.30.0', '', false]
    ]
    for (const [rule, pin, version, allowed] of cases) {
      it(`${rule}: a node on ${JSON.stringify(version)} ${allowed ? 'may' : 'may not'} attest a model pinned to ${pin}`, function () {
        assert.equal(runtimeVersionAllowed(rule, pin, version), allowed)
        assert.equal(runtimeRefusal({ name: 'm', agreement: rule, runtime: { onnxruntime: pin } }, version) === undefined, allowed)
      })
    }
  })

  describe('runtimeRefusal (the reason, pure)', function () {
    it('under exact, names the pin, the rule, the installed version and the package to install', function () {
      const reason = runtimeRefusal({ name: 'mlp-classifier', agreement: 'exact', runtime: { onnxruntime: '1.30.0' } }, '1.29.1')
      assert.equal(reason, 'model "mlp-classifier" pins onnxruntime 1.30.0 under agreement rule exact, which allows no other version; ' +
        'this node runs 1.29.1: install onnxruntime-node@1.30.0 to attest')
    })

    it('under a tolerant rule, refuses another major version and says which versions would do', function () {
      const reason = runtimeRefusal({ name: 'vad', agreement: 'grid:6', runtime: { onnxruntime: '1.30.0' } }, '2.0.0')
      assert.equal(reason, 'model "vad" pins onnxruntime 1.30.0 under agreement rule grid:6, which allows other 1.x releases only; ' +
        'this node runs 2.0.0: install onnxruntime-node@1.30.0 (or another 1.x release) to attest')
    })

    it('is undefined for the pinned version under every rule', function () {
      for (const agreement of ['exact', 'grid:16', 'argmax', 'topk:2'] as AgreementRule[]) {
        assert.equal(runtimeRefusal({ name: 'm', agreement, runtime: { onnxruntime: '1.30.0' } }, '1.30.0'), undefined)
      }
    })
  })

  describe('InferenceRunner#attestRefusal (real onnxruntime)', function () {
    it('is undefined, with no mismatch, when the installed onnxruntime is the pinned one', async function () {
      const runner = await InferenceRunner.load(modelBytes, pinned(installed, 'exact'))
      try {
        assert.equal(runner.installedRuntime, installed)
        assert.equal(runner.runtimeVersionMismatch, null)
        assert.equal(runner.attestRefusal(), undefined)
      } finally {
        await runner.close()
      }
    })

    it('refuses under exact when only the patch version differs, and still runs the model', async function () {
      const other = bump(installed, 2, 1)
      const runner = await InferenceRunner.load(modelBytes, pinned(other, 'exact'))
      try {
        assert.deepEqual(runner.runtimeVersionMismatch, { pinned: other, installed })
        const reason = runner.attestRefusal()
        assert.equal(reason, `model "${manifest.name}" pins onnxruntime ${other} under agreement rule exact, which allows no other version; ` +
          `this node runs ${installed}: install onnxruntime-node@${other} to attest`)
        assert.equal(runner.attestRefusal(), reason, 'the reason is fixed for the runner')
        const result = await runner.run(sampleInput())
        assert.equal(result.resultHash.length, 32)
      } finally {
        await runner.close()
      }
    })

    it('allows another minor or patch version under grid:k, and the result is the pinned version\'s', async function () {
      const reference = await InferenceRunner.load(modelBytes, pinned(installed, 'grid:16'))
      const runners = [bump(installed, 2, 1), bump(installed, 1, 1)].map(async v => await InferenceRunner.load(modelBytes, pinned(v, 'grid:16')))
      const loaded = await Promise.all(runners)
      try {
        const expected = toHex((await reference.run(sampleInput())).canonical)
        for (const runner of loaded) {
          assert.notEqual(runner.runtimeVersionMismatch, null)
          assert.equal(runner.attestRefusal(), undefined, `grid:16 allows ${runner.manifest.runtime.onnxruntime} with ${installed} installed`)
          assert.equal(toHex((await runner.run(sampleInput())).canonical), expected)
        }
      } finally {
        await Promise.all([reference, ...loaded].map(async r => { await r.close() }))
      }
    })

    it('refuses another major version under argmax and grid:k', async function () {
      const otherMajor = bump(installed, 0, 1)
      for (const agreement of ['argmax', 'grid:16'] as AgreementRule[]) {
        const runner = await InferenceRunner.load(modelBytes, pinned(otherMajor, agreement))
        try {
          assert.match(runner.attestRefusal() ?? '', new RegExp(`pins onnxruntime ${otherMajor.replaceAll('.', '\\.')} under agreement rule ${agreement}, which allows other \\d+\\.x releases only; this node runs ${installed.replaceAll('.', '\\.')}`))
        } finally {
          await runner.close()
        }
      }
    })

    it('with onRuntimeMismatch "error", refuses to load any other version, before creating a session', async function () {
      const sessions = countingCreateSession()
      for (const other of ['0.0.1', bump(installed, 2, 1)]) {
        await assert.rejects(InferenceRunner.load(modelBytes, pinned(other, 'grid:16'), { onRuntimeMismatch: 'error', createSession: sessions.create }), (err: unknown) => {
          assert.ok(err instanceof RuntimeVersionMismatchError, String(err))
          assert.equal(err.code, 'ERR_RUNTIME_VERSION_MISMATCH')
          assert.deepEqual([err.pinned, err.installed], [other, installed])
          return true
        })
      }
      assert.equal(sessions.count(), 0)
      const runner = await InferenceRunner.load(modelBytes, pinned('0.0.1'))
      try {
        assert.deepEqual(runner.runtimeVersionMismatch, { pinned: '0.0.1', installed })
        assert.notEqual(runner.attestRefusal(), undefined)
      } finally {
        await runner.close()
      }
    })
  })
})
