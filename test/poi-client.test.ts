/**
 * The client library end to end (`import { PoiClient } from 'poi'`): real libp2p nodes on
 * 127.0.0.1 (one network for the file), clients connected as light peers through the
 * bootstrap node, tasks certified by the operators and verified by the client.
 */
import { strict as assert } from 'node:assert'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { getEventListeners } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { keccak256 } from 'viem'
import { signProofOfPossession, writeGenesis } from '../consensus/index.js'
import {
  FeeRefusedError, InputError, InvalidModelIdError, InvalidRequestError, InvalidTaskIdError, ModelNotFoundError, PoiClient,
  RequestAbortedError, requestErrorField, type PoiResult
} from '../node/client/index.js'
import { SHIPPED_MODEL_DIR, loadModelDir, modelIdToString, parseTaskInput, type ModelManifest } from '../node/inference/index.js'
import { checkRequestBounds } from '../node/requester/index.js'
import { to0xHex, type QuorumCertificate } from '../protocols/wire/index.js'
import { startTestNetwork, type TestNetwork } from './helpers/network.js'

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

/** Connecting, a task and its certificate on a loaded 2-core machine: generous, each wait has its own message. */
const TASK_TIMEOUT_MS = 30_000
const CHILD_TIMEOUT_MS = 60_000

/** The shipped classifier's input as JSON tensors (16 features), a different task per seed. */
function jsonInput (seed: number): { x: { dims: number[], data: number[] } } {
  return { x: { dims: [1, 16], data: Array.from({ length: 16 }, (_, i) => Math.round(Math.sin(seed * 3.7 + i) * 1000) / 1000) } }
}

async function rejection (promise: Promise<unknown>): Promise<unknown> {
  return await promise.then(() => { throw new assert.AssertionError({ message: 'expected a rejection' }) }, (err: unknown) => err)
}

/** What a certificate must satisfy for any client: its signers' share, and the output's hash. */
function assertVerified (r: PoiResult): void {
  assert.ok(r.certificate !== undefined, 'a certificate')
  assert.ok(r.output !== undefined, 'the output')
  assert.equal(keccak256(r.output), r.resultHash, 'the output hashes to the certified result')
  assert.equal(to0xHex(r.certificate.resultHash), r.resultHash)
  assert.ok((r.signers?.length ?? 0) >= 2, `signers: ${String(r.signers)}`)
  assert.ok(r.signedStake * 3n >= r.totalStake * 2n, 'two thirds of the stake signed')
}

describe('PoiClient (the client library) against a running network', function () {
  this.timeout(120_000)
  let net: TestNetwork
  let genesis: string
  let modelId: string
  let manifest: ModelManifest
  let client: PoiClient
  let other: PoiClient | undefined

  before(async () => {
    net = await startTestNetwork({ operators: 3 })
    genesis = join(net.root, 'genesis.json')
    await writeGenesis(genesis, net.operatorSet, net.keys.map(k => signProofOfPossession(k.blsSecretKey, k.account.address)))
    const shipped = await loadModelDir(SHIPPED_MODEL_DIR)
    modelId = modelIdToString(shipped.modelId)
    manifest = shipped.manifest
    client = await PoiClient.connect({ bootstrap: [net.bootstrapAddr], genesis })
  })
  after(async () => {
    await other?.close()
    await client?.close()
    await net?.stop()
  })

  it('connects as a light peer with a throwaway account', () => {
    assert.match(client.address, /^0x[0-9a-fA-F]{40}$/)
    assert.equal(client.peerId, client.node.libp2p.peerId.toString())
    assert.ok(client.node.libp2p.getConnections().length > 0, 'connected to the network')
  })

  it('request with JSON tensors resolves to a verified result with its output decoded', async () => {
    const r = await client.request({ model: modelId, input: jsonInput(1), timeoutMs: TASK_TIMEOUT_MS })
    assertVerified(r)
    assert.equal(r.modelId, modelId)
    assert.ok(r.source === 'gossip' || r.source === 'full-node', r.source)
    assert.equal(r.fee, 0n, 'nothing is charged without a chain')
    assert.ok(r.latencyMs !== undefined && r.latencyMs > 0)
    assert.ok(r.outputTensors !== null && r.outputTensors.length === manifest.outputs.length, 'one decoded tensor per output')
    assert.deepEqual(r.outputTensors.map(t => t.name), manifest.outputs.map(o => o.name))
    for (const t of r.outputTensors) assert.ok(t.values.length > 0, `output ${t.name} has values`)
    // The manifest came through the DHT (no model directory given) and is cached.
    assert.equal((await client.manifest(modelId)).name, manifest.name)
  })

  it('submit returns the task id before the certificate, and its result resolves to it', async () => {
    const certified: string[] = []
    const onCertificate = (evt: CustomEvent<{ certificate: QuorumCertificate }>): void => { certified.push(to0xHex(evt.detail.certificate.taskId)) }
    client.node.addEventListener('certificate', onCertificate)
    try {
      const submitted = await client.submit({ model: modelId, input: jsonInput(2), timeoutMs: TASK_TIMEOUT_MS, manifest })
      assert.match(submitted.taskId, /^0x[0-9a-f]{64}$/)
      assert.ok(!certified.includes(submitted.taskId), 'submit resolved after the certificate came')
      assert.ok(submitted.deadline > Date.now() && submitted.deadline <= Date.now() + TASK_TIMEOUT_MS)
      const r = await submitted.result
      assert.equal(r.taskId, submitted.taskId)
      assertVerified(r)
    } finally {
      client.node.removeEventListener('certificate', onCertificate)
    }
  })

  it('result(taskId) finds and verifies a task another client submitted', async () => {
    other = await PoiClient.connect({ bootstrap: [net.bootstrapAddr], genesis })
    assert.notEqual(other.address, client.address)
    const mine = await client.request({ model: modelId, input: jsonInput(3), timeoutMs: TASK_TIMEOUT_MS, manifest })
    const found = await other.result(mine.taskId)
    assert.equal(found.source, 'full-node')
    assert.equal(found.taskId, mine.taskId)
    assert.equal(found.resultHash, mine.resultHash)
    assert.deepEqual(found.outputTensors, mine.outputTensors)
    assertVerified(found)
    // Bytes work as well as hex; a task nobody announced is not found.
    assert.equal((await other.result(Buffer.from(mine.taskId.slice(2), 'hex'))).resultHash, mine.resultHash)
    const missing = await rejection(other.result(to0xHex(randomBytes(32))))
    assert.equal((missing as { code?: string }).code, 'ERR_RESULT_NOT_FOUND', String(missing))
  })

  it('verifyCertificate accepts a certificate and rejects a tampered one with a reason', async () => {
    const r = await client.request({ model: modelId, input: jsonInput(4), timeoutMs: TASK_TIMEOUT_MS, manifest })
    const qc = r.certificate!
    assert.deepEqual(await client.verifyCertificate(qc), { ok: true, signers: r.signers })
    const tampered: QuorumCertificate = { ...qc, resultHash: Uint8Array.from(qc.resultHash, (b, i) => i === 0 ? b ^ 1 : b) }
    const verdict = await client.verifyCertificate(tampered)
    assert.equal(verdict.ok, false)
    assert.ok(!verdict.ok && verdict.reason.length > 0, 'a reason')
    const unknownEpoch = await client.verifyCertificate({ ...qc, epoch: 99n })
    assert.ok(!unknownEpoch.ok && /epoch 99/.test(unknownEpoch.reason), JSON.stringify(unknownEpoch, (_k, v: unknown) => typeof v === 'bigint' ? String(v) : v))
  })

  it('aborting through the signal rejects the result with RequestAbortedError and leaves no listener', async () => {
    const before = { certificate: client.node.listenerCount('certificate'), noQuorum: client.node.listenerCount('no-quorum') }
    const controller = new AbortController()
    const submitted = await client.submit({ model: modelId, input: jsonInput(5), timeoutMs: TASK_TIMEOUT_MS, manifest, signal: controller.signal })
    controller.abort(new Error('the caller gave up'))
    const err = await rejection(submitted.result)
    assert.ok(err instanceof RequestAbortedError, `expected RequestAbortedError, got ${String(err)}`)
    assert.match(err.message, /the caller gave up/)
    assert.deepEqual({ certificate: client.node.listenerCount('certificate'), noQuorum: client.node.listenerCount('no-quorum') }, before)
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0, 'abort listeners left on the caller\'s signal')
    // Already aborted: nothing is announced.
    const early = await rejection(client.submit({ model: modelId, input: jsonInput(6), manifest, signal: AbortSignal.abort() }))
    assert.ok(early instanceof RequestAbortedError, `expected RequestAbortedError, got ${String(early)}`)
  })

  it('a bad request is refused with an error naming its field', async () => {
    const field = async (request: Parameters<PoiClient['submit']>[0]): Promise<{ err: unknown, field: string | undefined }> => {
      const err = await rejection(client.submit(request))
      return { err, field: requestErrorField(err) }
    }
    const shape = await field({ model: modelId, input: { x: { dims: [1, 15], data: new Array(15).fill(0) } }, manifest })
    assert.ok(shape.err instanceof InputError, String(shape.err))
    assert.equal(shape.field, 'input.x')
    const unknownInput = await field({ model: modelId, input: { y: { data: [1] } } })
    assert.equal(unknownInput.field, 'input.y', String(unknownInput.err))
    assert.equal((await field({ model: modelId, input: [1, 2] as unknown as Uint8Array })).field, 'input')
    assert.equal((await field({ model: 'not a model id', input: jsonInput(7) })).field, 'model')
    assert.equal((await field({ model: modelId, input: jsonInput(7), timeoutMs: 0 })).field, 'timeoutMs')
    assert.equal((await field({ model: modelId, input: jsonInput(7), timeoutMs: 11 * 60_000 })).field, 'timeoutMs')
    assert.equal((await field({ model: modelId, input: jsonInput(7), quorumBps: 20_000 })).field, 'quorumBps')
    assert.equal((await field({ model: modelId, input: jsonInput(7), fee: 5n })).field, 'fee', 'a fee without a chain')
    // A well-formed model id that no node provides: looked up through the DHT.
    const unpublished = CID.createV1(0x0200, await sha256.digest(randomBytes(32))).toString()
    const unknown = await field({ model: unpublished, input: jsonInput(7) })
    assert.ok(unknown.err instanceof ModelNotFoundError, String(unknown.err))
    assert.equal(unknown.field, 'model')
  })

  it('close() leaves no handle: a process that connects, requests and closes exits by itself', async () => {
    // Inside the repo, so `poi` resolves by self-reference to the package's exports.
    const dir = await mkdtemp(join(REPO, 'dist', '.poi-client-test-'))
    try {
      const script = join(dir, 'client.mjs')
      await writeFile(script, `import { PoiClient } from 'poi'
const client = await PoiClient.connect({ bootstrap: [process.env.POI_BOOTSTRAP], genesis: process.env.POI_GENESIS })
const result = await client.request({ model: process.env.POI_MODEL, input: ${JSON.stringify(jsonInput(8))} })
console.log(JSON.stringify({ taskId: result.taskId, resultHash: result.resultHash, outputs: result.outputTensors.map(t => t.name) }))
await client.close()
`)
      const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => {
        execFile(process.execPath, [script], { env: { ...process.env, POI_BOOTSTRAP: net.bootstrapAddr, POI_GENESIS: genesis, POI_MODEL: modelId }, timeout: CHILD_TIMEOUT_MS },
          (err, stdout, stderr) => { if (err != null) reject(new Error(`the client process failed or did not exit by itself: ${err.message}\n${stderr}`)); else resolve({ stdout }) })
      })
      const line = JSON.parse(stdout.trim()) as { taskId: string, resultHash: string, outputs: string[] }
      assert.deepEqual(line.outputs, manifest.outputs.map(o => o.name))
      // The task is known to the network, with the same result.
      assert.equal((await client.result(line.taskId)).resultHash, line.resultHash)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('a closed client refuses to be used, and closing twice is fine', async () => {
    const c = await PoiClient.connect({ bootstrap: [net.bootstrapAddr], genesis })
    await c.close()
    await c.close()
    assert.equal(c.node.libp2p.status, 'stopped')
    const err = await rejection(c.submit({ model: modelId, input: jsonInput(9) }))
    assert.equal((err as { code?: string }).code, 'ERR_CLIENT_OPTIONS')
  })
})

describe('requestErrorField: the field a gateway names in its 400', () => {
  it('maps input shape errors, an unknown model, a fee below the minimum and timeout/quorum bounds', async () => {
    const { manifest } = await loadModelDir(SHIPPED_MODEL_DIR)
    const thrown = (f: () => unknown): unknown => { try { f() } catch (err) { return err } throw new Error('expected a throw') }
    const input = (json: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(json))
    assert.equal(requestErrorField(thrown(() => parseTaskInput(input({ x: { dims: [1, 3], data: [1, 2, 3] } }), manifest.inputs))), 'input.x')
    assert.equal(requestErrorField(thrown(() => parseTaskInput(input({ x: { data: [1, 'a'] } }), manifest.inputs))), 'input.x')
    assert.equal(requestErrorField(thrown(() => parseTaskInput(new TextEncoder().encode('{not json'), manifest.inputs))), 'input')
    assert.equal(requestErrorField(new ModelNotFoundError('bagaaiera', 'no provider')), 'model')
    assert.equal(requestErrorField(new InvalidModelIdError('x', 'not a CID')), 'model')
    assert.equal(requestErrorField(new FeeRefusedError(1n, 10n, 'fee 1 wei is below this model\'s least fee 10 wei')), 'fee')
    assert.equal(requestErrorField(thrown(() => checkRequestBounds({ timeoutMs: 0, quorumBps: 6667 }))), 'timeoutMs')
    assert.equal(requestErrorField(thrown(() => checkRequestBounds({ timeoutMs: 1000, quorumBps: 0 }))), 'quorumBps')
    assert.ok(thrown(() => checkRequestBounds({ timeoutMs: 1000, quorumBps: 10_001 })) instanceof InvalidRequestError)
    assert.equal(requestErrorField(new InvalidTaskIdError('0x12')), 'taskId')
    // Not the request's fault: no field.
    assert.equal(requestErrorField(new InvalidRequestError('operators', 'too few operators')), undefined)
    assert.equal(requestErrorField(new Error('plain')), undefined)
    assert.equal(requestErrorField(undefined), undefined)
  })
})

describe("the package's types: what a TypeScript project that depends on poi sees", function () {
  this.timeout(90_000)

  it("`import { PoiClient, type PoiResult } from 'poi'` type-checks through the package's exports and declarations", async () => {
    const dir = await mkdtemp(join(REPO, 'dist', '.poi-client-types-'))
    try {
      const file = join(dir, 'consumer.ts')
      await writeFile(file, `import { PoiClient, requestErrorField, type PoiResult, type SubmittedTask } from 'poi'
export async function run (): Promise<[PoiResult, SubmittedTask['taskId'], string | undefined]> {
  const client = await PoiClient.connect({ bootstrap: ['/ip4/127.0.0.1/tcp/4001/p2p/x'], genesis: 'genesis.json' })
  const task = await client.submit({ model: 'bagaaiera', input: { x: { data: [1] } }, fee: 0n })
  return [await task.result, task.taskId, requestErrorField(new Error('x'))]
}
// A wrong use is a type error: the request needs a model.
// @ts-expect-error
export const wrong = async (c: PoiClient): Promise<PoiResult> => await c.request({ input: new Uint8Array() })
`)
      const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc')
      await new Promise<void>((resolve, reject) => {
        execFile(process.execPath, [tsc, '--noEmit', '--strict', '--skipLibCheck', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2023', '--types', 'node', file],
          { cwd: dir, timeout: 80_000 }, (err, stdout, stderr) => { if (err != null) reject(new Error(`tsc: ${err.message}\n${stdout}${stderr}`)); else resolve() })
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
