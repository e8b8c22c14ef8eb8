/**
 * The manifest's `zk` section (spec16n part A): parsed with bounds and errors naming the field,
 * encoded canonically (owner first, zk last), its files checked (sizes, hashes, a verification
 * key for four public signals), its circuit id held against the model's compiled circuit; model
 * directories with zk/; `poi model zk-attach` and `poi model publish <model dir>`.
 * Real parts: the circuit compiler, LevelDB block stores in temp dirs, the CLI in a child process.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  MANIFEST_FILE, MANIFEST_OWNER_PREFIX, MAX_ZK_VKEY_BYTES, ManifestError, ModelDirError, SHIPPED_INT8_MODEL_DIR, SHIPPED_MODEL_DIR, ZK_DIR, ZK_ZKEY_FILE,
  ZkFileError, attachZkArtifacts, checkZkCircuit, circuitIdHex, encodeManifest, loadModelDir, modelIdOf, modelIdToString, parseManifest, zkArtifactsOf,
  type ModelManifest
} from '../node/inference/index.js'
import { VerificationKeyError } from '../node/inference/zk/index.js'
import { loadModel } from '../node/models/index.js'
import { publishModelFile } from '../node/cli/model-commands.js'
import { ZkAttachError, attachZkToModelDir } from '../node/cli/zk-attach-command.js'
import { bytesEqual } from '../protocols/wire/index.js'
import { BlockStore, NodeStore } from '../storage/index.js'
import { runPoi } from './helpers/cli.js'
import { verificationKeyJson, writeModelDir, zkTestModel, type ZkTestModel } from './helpers/zk-model-files.js'

const CLI_TIMEOUT_MS = 60_000
/** The shipped int8 model's id is pinned by other tests: it must stay without a zk section. */
const SHIPPED_INT8_MODEL_ID = 'shipped int8 model'

const throwsField = (fn: () => unknown, field: string): void => {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ManifestError, `a ManifestError, got ${String(err)}`)
    assert.equal(err.field, field, err.message)
    return true
  })
}

describe('manifest zk section', function () {
  this.timeout(60_000)
  let zk: ZkTestModel
  let attached: ModelManifest
  let root: string

  before(async () => {
    zk = zkTestModel()
    attached = attachZkArtifacts(zk.manifest, { circuitId: zk.circuitId, ...zk.files }).manifest
    root = await mkdtemp(join(tmpdir(), 'poi-zk-manifest-'))
  })
  after(async () => { await rm(root, { recursive: true, force: true }) })

  it('attaching gives a new model id; the canonical encoding keeps the owner first and puts zk last; it parses back to the same manifest', () => {
    assert.notEqual(modelIdToString(modelIdOf(attached)), modelIdToString(modelIdOf(zk.manifest)))
    assert.equal(attached.zk?.circuitId, circuitIdHex(zk.circuitId))
    assert.equal(attached.zk?.wasm.chunks.length, 6)
    assert.equal(attached.zk?.zkey.chunks.length, 13)
    assert.equal(attached.zk?.vkey.chunks.length, 1)
    const text = new TextDecoder().decode(encodeManifest(attached))
    assert.ok(text.startsWith(MANIFEST_OWNER_PREFIX), text.slice(0, 60))
    assert.match(text, /,"version":1,"zk":\{"circuitId":"0x[0-9a-f]{64}","vkey":\{/)
    assert.deepEqual(parseManifest(JSON.parse(text)), attached)
    // a manifest without zk encodes as before (no "zk" key): the shipped ids do not move
    assert.ok(!new TextDecoder().decode(encodeManifest(zk.manifest)).includes('"zk"'))
  })

  it('zkArtifactsOf checks each file and parses the verification key', () => {
    const artifacts = zkArtifactsOf(attached.zk!, zk.files)
    assert.equal(artifacts.circuitId, zk.circuitId)
    assert.equal(artifacts.verificationKey.nPublic, 4)
    assert.equal(artifacts.verificationKey.IC.length, 5)
    assert.ok(bytesEqual(artifacts.zkey, zk.files.zkey))
    const tampered = Uint8Array.from(zk.files.wasm)
    tampered[100] ^= 1
    assert.throws(() => zkArtifactsOf(attached.zk!, { ...zk.files, wasm: tampered }), (err: unknown) => err instanceof ZkFileError && err.field === 'zk.wasm' && /hashing to/.test(err.message))
    assert.throws(() => zkArtifactsOf(attached.zk!, { ...zk.files, zkey: zk.files.zkey.subarray(1) }), (err: unknown) => err instanceof ZkFileError && err.field === 'zk.zkey')
  })

  it('a verification key for another number of public signals, or not JSON, is refused when attaching', () => {
    assert.throws(() => attachZkArtifacts(zk.manifest, { circuitId: zk.circuitId, ...zk.files, vkey: verificationKeyJson(3) }),
      (err: unknown) => err instanceof VerificationKeyError && /nPublic must be 4/.test(err.message))
    assert.throws(() => attachZkArtifacts(zk.manifest, { circuitId: zk.circuitId, ...zk.files, vkey: new TextEncoder().encode('{"protocol":') }),
      (err: unknown) => err instanceof VerificationKeyError && /not JSON/.test(err.message))
  })

  describe('refuses a bad section, naming the field', function () {
    const mutate = (patch: (zk: Record<string, any>, m: Record<string, any>) => void): unknown => {
      const copy = structuredClone(attached) as Record<string, any>
      patch(copy.zk, copy)
      return copy
    }
    const cases: Array<[string, (zk: Record<string, any>, m: Record<string, any>) => void, string]> = [
      ['an unknown key in zk', z => { z.ptau = 'x' }, 'zk.ptau'],
      ['an unknown key in a file', z => { z.wasm.url = 'https://example.com/model.wasm' }, 'zk.wasm.url'],
      ['zk that is not an object', (_z, m) => { m.zk = [] }, 'zk'],
      ['a missing vkey', z => { delete z.vkey }, 'zk.vkey'],
      ['a missing size', z => { delete z.zkey.size }, 'zk.zkey.size'],
      ['a chunk that is not a CID', z => { z.zkey.chunks[3] = 'not-a-cid' }, 'zk.zkey.chunks[3]'],
      ['a chunk CID with the json codec', z => { z.wasm.chunks[0] = z.wasm.chunks[0].replace(/^bafkrei/, 'bagaaiera') }, 'zk.wasm.chunks[0]'],
      ['a chunk count that does not fit the size', z => { z.wasm.chunks.pop() }, 'zk.wasm.chunks'],
      ['a verification key over 64 KiB', z => { z.vkey.size = MAX_ZK_VKEY_BYTES + 1 }, 'zk.vkey.size'],
      ['a wasm over 32 MiB', z => { z.wasm.size = 32 * 1024 * 1024 + 1 }, 'zk.wasm.size'],
      ['a zkey over 256 MiB', z => { z.zkey.size = 256 * 1024 * 1024 + 1 }, 'zk.zkey.size'],
      ['an empty file', z => { z.vkey.size = 0 }, 'zk.vkey.size'],
      ['an uppercase sha256', z => { z.zkey.sha256 = z.zkey.sha256.toUpperCase().replace('0X', '0x') }, 'zk.zkey.sha256'],
      ['a sha256 without 0x', z => { z.vkey.sha256 = z.vkey.sha256.slice(2) }, 'zk.vkey.sha256'],
      ['a short circuit id', z => { z.circuitId = '0x1234' }, 'zk.circuitId'],
      ['a circuit id as a number', z => { z.circuitId = 12 }, 'zk.circuitId'],
      ['a circuit id outside the field', z => { z.circuitId = `0x${'f'.repeat(64)}` }, 'zk.circuitId'],
      ['zk on a model with a float input', (_z, m) => { m.inputs[0].dtype = 'float32' }, 'zk'],
      ['zk on a model with a float output', (_z, m) => { m.outputs[0].dtype = 'float32' }, 'zk']
    ]
    for (const [what, patch, field] of cases) {
      it(`${what}: ${field}`, () => { throwsField(() => parseManifest(mutate(patch)), field) })
    }
  })

  it('a circuit id that is not the model\'s compiled circuit is refused when the model is loaded', async () => {
    checkZkCircuit(attached, zk.modelBytes)
    const other = attachZkArtifacts(zk.manifest, { circuitId: zk.circuitId + 1n, ...zk.files }).manifest
    throwsField(() => { checkZkCircuit(other, zk.modelBytes) }, 'zk.circuitId')
    const dir = join(root, 'wrong-circuit')
    await writeModelDir(dir, other, zk.modelBytes, zk.files)
    await assert.rejects(loadModelDir(dir), (err: unknown) => err instanceof ModelDirError && /zk\.circuitId/.test(err.message) && /compiles to circuit/.test(err.message))
  })

  it('a model directory with zk/ loads its artifacts; a missing file is named', async () => {
    const dir = join(root, 'with-zk')
    await writeModelDir(dir, attached, zk.modelBytes, zk.files)
    const loaded = await loadModelDir(dir)
    assert.equal(loaded.zk?.circuitId, zk.circuitId)
    assert.ok(bytesEqual(loaded.zk.wasm, zk.files.wasm))
    assert.equal(loaded.zk.verificationKey.nPublic, 4)
    await unlink(join(dir, ZK_DIR, ZK_ZKEY_FILE))
    await assert.rejects(loadModelDir(dir), (err: unknown) => err instanceof ModelDirError && err.path === join(dir, ZK_DIR, ZK_ZKEY_FILE) && /ENOENT/.test(err.message))
  })

  it('the shipped models have no zk section', async () => {
    for (const dir of [SHIPPED_MODEL_DIR, SHIPPED_INT8_MODEL_DIR]) {
      const m = await loadModelDir(dir)
      assert.equal(m.manifest.zk, undefined, SHIPPED_INT8_MODEL_ID)
      assert.equal(m.zk, undefined)
    }
  })

  describe('poi model zk-attach and poi model publish <model dir>', function () {
    const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
    /** A finalized ceremony directory as `poi model zk-setup finalize` leaves it (its record; the keys are the test's files). */
    const writeCeremony = async (dir: string, files: ZkTestModel['files']): Promise<void> => {
      await mkdir(dir, { recursive: true })
      await writeFile(join(dir, 'model_0002.zkey'), files.zkey)
      await writeFile(join(dir, 'verification_key.json'), files.vkey)
      const hash = '0'.repeat(64)
      await writeFile(join(dir, 'ceremony.json'), JSON.stringify({
        version: 1,
        circuit: { file: 'circuit.r1cs', r1csSha256: hash, constraints: 100, publicInputs: 4, power: 9 },
        ptau: { file: 'powers-of-tau.ptau', sha256: hash, power: 9, source: 'generated', generatedBy: 'test' },
        initial: { file: 'model_0000.zkey', zkeySha256: hash },
        contributions: [],
        final: { zkeyFile: 'model_0002.zkey', zkeySha256: sha(files.zkey), verificationKeyFile: 'verification_key.json', verificationKeySha256: sha(files.vkey) }
      }, null, 2))
    }

    it('attaches a compiled circuit and a finalized ceremony (the CLI prints the new id), publishes the directory with its zk files', async () => {
      const modelDir = join(root, 'attach-model')
      const circuitDir = join(root, 'attach-circuit')
      const ceremonyDir = join(root, 'attach-ceremony')
      await writeModelDir(modelDir, zk.manifest, zk.modelBytes)
      await mkdir(join(circuitDir, 'model_js'), { recursive: true })
      await writeFile(join(circuitDir, 'model_js', 'model.wasm'), zk.files.wasm)
      await writeCeremony(ceremonyDir, zk.files)

      const r = await runPoi(root, CLI_TIMEOUT_MS, 'model', 'zk-attach', modelDir, '--circuit', circuitDir, '--ceremony', ceremonyDir)
      assert.equal(r.code, 0, r.stderr)
      const printed = r.stdout.split('\n')[0]
      assert.equal(printed, modelIdToString(modelIdOf(attached)), 'the same section as attachZkArtifacts gives: the same id')
      const loaded = await loadModelDir(modelDir)
      assert.deepEqual(loaded.manifest, attached)
      assert.ok(bytesEqual(loaded.zk!.zkey, zk.files.zkey))

      const dataDir = join(root, 'attach-data')
      const published = await publishModelFile({ file: modelDir, rule: '', dataDir })
      assert.equal(published.modelId, printed)
      assert.equal(published.path, 'store')
      const store = await NodeStore.open(dataDir)
      try {
        const stored = await loadModel(BlockStore.of(store), printed)
        assert.ok(stored?.zk !== undefined, 'the store holds the zk files with the model')
        assert.ok(bytesEqual(stored.zk.wasm, zk.files.wasm) && bytesEqual(stored.zk.zkey, zk.files.zkey) && bytesEqual(stored.zk.vkey, zk.files.vkey))
      } finally {
        await store.close()
      }
    })

    it('names what is missing or wrong: an unfinalized ceremony, a missing key, a key changed after finalize, a circuit dir without wasm', async () => {
      const modelDir = join(root, 'refused-model')
      const circuitDir = join(root, 'refused-circuit')
      const ceremonyDir = join(root, 'refused-ceremony')
      await writeModelDir(modelDir, zk.manifest, zk.modelBytes)
      await mkdir(circuitDir, { recursive: true })
      await writeCeremony(ceremonyDir, zk.files)
      const before = await readFile(join(modelDir, MANIFEST_FILE), 'utf8')
      const attach = async (): Promise<unknown> => await attachZkToModelDir({ modelDir, circuit: circuitDir, ceremony: ceremonyDir })

      await assert.rejects(attach(), (err: unknown) => err instanceof ZkAttachError && err.message.includes(join(circuitDir, 'model_js', 'model.wasm')))
      await writeFile(join(circuitDir, 'model.wasm'), zk.files.wasm)
      await writeFile(join(ceremonyDir, 'verification_key.json'), verificationKeyJson(5))
      await assert.rejects(attach(), (err: unknown) => err instanceof ZkAttachError && /changed after finalize/.test(err.message) && err.message.includes('verification_key.json'))
      await unlink(join(ceremonyDir, 'model_0002.zkey'))
      await assert.rejects(attach(), (err: unknown) => err instanceof ZkAttachError && err.message.includes(join(ceremonyDir, 'model_0002.zkey')) && /no such file/.test(err.message))
      const record = JSON.parse(await readFile(join(ceremonyDir, 'ceremony.json'), 'utf8'))
      await writeFile(join(ceremonyDir, 'ceremony.json'), JSON.stringify({ ...record, final: null }))
      await assert.rejects(attach(), (err: unknown) => err instanceof ZkAttachError && /not finalized/.test(err.message) && /zk-setup finalize/.test(err.message))
      assert.equal(await readFile(join(modelDir, MANIFEST_FILE), 'utf8'), before, 'nothing written on a refusal')

      const r = await runPoi(root, CLI_TIMEOUT_MS, 'model', 'zk-attach', modelDir, '--circuit', circuitDir)
      assert.notEqual(r.code, 0)
      assert.match(r.stderr, /--ceremony/)
    })
  })
})
