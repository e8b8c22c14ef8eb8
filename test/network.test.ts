/**
 * Operators, an aggregator and a light requester as real libp2p nodes over TCP on 127.0.0.1, in
 * this process. Each `describe` builds one network in its `before`; every `it` brings what else it
 * needs (a published model, a throwaway peer), so any one of them passes alone (`--grep`).
 */
import { strict as assert } from 'node:assert'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { keccak256 } from 'viem'
import { signAttestation, verifyCertificate, verifyEquivocationEvidence } from '../consensus/index.js'
import { exampleInput } from '../node/cli/devnet.js'
import { publishModelFile } from '../node/cli/model-commands.js'
import { npmModelSampleInput, resolveNpmModel, type ResolvedNpmModel } from '../node/fixtures/index.js'
import { encodeTensorFile, formatCanonicalOutput, loadModelDir, modelIdToString, parseModelId, SHIPPED_MODEL_DIR, type ModelDir } from '../node/inference/index.js'
import { hasModel, importModel } from '../node/models/index.js'
import type { PoiNode } from '../node/poi-node.js'
import { NoQuorumError, ResultNotFoundError, lookupResult, requestInference } from '../node/requester/index.js'
import { TOPICS } from '../protocols/gossip/index.js'
import { fetchResult, verifyResult } from '../protocols/result/index.js'
import { fetchStreamMessageByPayload } from '../protocols/stream/index.js'
import {
  MAX_INLINE_INPUT_BYTES, MAX_INLINE_OUTPUT_BYTES, bytesEqual, encodeAttestation, encodeTaskAnnouncement, shortHex, signTask, taskIdOf, toHex
} from '../protocols/wire/index.js'
import { BlockStore, NodeStore } from '../storage/index.js'
import { directResultHash, tensorsOfJsonInput } from './helpers/direct-run.js'
import { freshKeysAsync } from './helpers/keys.js'
import { startTestNetwork, TEST_CHAIN_ID, TEST_TASK_MANAGER, type TestNetwork } from './helpers/network.js'
import { until, waitForEvent } from './helpers/wait.js'

/** A task's deadline: inference of these models takes well under a second, the rest is gossip. */
const TASK_TIMEOUT_MS = 20_000
/** Tasks whose operators must first fetch the model (and maybe the input) through the DHT. */
const FETCHING_TASK_TIMEOUT_MS = 30_000
/** Gossip, a store write or a verdict that follows an event at once; generous for a loaded machine. */
const FOLLOW_UP_TIMEOUT_MS = 10_000
/** A model fetched whole through the DHT by an operator that had none. */
const MODEL_FETCH_TIMEOUT_MS = 40_000

/** Signs and gossips an attestation for `taskId` from `node`, claiming `output` as operator `index`. */
async function publishAttestation (node: PoiNode, net: TestNetwork, index: number, taskId: Uint8Array, output: Uint8Array): Promise<void> {
  const resultHash = keccak256(output, 'bytes')
  const att = signAttestation(net.keys[index].blsSecretKey, net.operatorSet.domain, {
    taskId, resultHash, outputRef: resultHash, epoch: net.operatorSet.epoch, operatorIndex: index, output
  })
  await node.libp2p.services.pubsub.publish(TOPICS.attestations, encodeAttestation(att))
}

/** Dials `to` from `from` and waits until `from` knows `to` subscribes to `topic`. */
async function connectDirect (from: PoiNode, to: PoiNode, topic: keyof typeof TOPICS): Promise<void> {
  await from.libp2p.dial(to.libp2p.getMultiaddrs())
  const target = to.libp2p.peerId.toString()
  await until(() => from.libp2p.services.pubsub.getSubscribers(TOPICS[topic]).some(p => p.toString() === target), FOLLOW_UP_TIMEOUT_MS, `${target} subscribed to ${topic}`)
}

/** A full node that joins with `keys` and waits for its task and attestation meshes. */
async function meshedNode (net: TestNetwork, keys: TestNetwork['keys'][number], name: string): Promise<PoiNode> {
  const node = await net.extraNode(keys, name)
  await until(() => node.meshPeers('attestations') > 0 && node.meshPeers('tasks') > 0, FOLLOW_UP_TIMEOUT_MS, `${name} joining the attestations and tasks meshes`)
  return node
}

/**
 * Each npm-shipped model is put in a fresh full node's data dir once per network; that node
 * announces it on the DHT. Any test that needs the model awaits it here, whichever runs first.
 */
function npmModelPublisher (net: () => TestNetwork): (key: string) => Promise<ResolvedNpmModel> {
  const published = new Map<string, Promise<ResolvedNpmModel>>()
  return async (key) => {
    let model = published.get(key)
    if (model === undefined) {
      model = publishNpmModel(net(), key)
      published.set(key, model)
    }
    return await model
  }
}

async function publishNpmModel (net: TestNetwork, key: string): Promise<ResolvedNpmModel> {
  const model = await resolveNpmModel(key)
  const name = `${key}-publisher`
  const store = await NodeStore.open(join(net.root, name, 'data'))
  try {
    await importModel(BlockStore.of(store), model.manifest, model.modelBytes)
  } finally {
    await store.close()
  }
  const publisher = await net.extraNode(await freshKeysAsync(), name)
  await until(() => publisher.meshPeers('tasks') > 0, FOLLOW_UP_TIMEOUT_MS, `the ${key} publisher joining the tasks mesh`)
  return model
}

describe('network: operators, aggregator and requester over libp2p on 127.0.0.1', function () {
  this.timeout(90_000)
  let model: ModelDir

  before(async () => { model = await loadModelDir(SHIPPED_MODEL_DIR) })

  describe('four honest operators', () => {
    let net: TestNetwork
    // Quorum is 3 of 4; a long grace lets the aggregator wait for the fourth signature on a
    // loaded machine. It costs nothing otherwise: the window closes when all four have signed.
    before(async () => { net = await startTestNetwork({ operators: 4, graceMs: TASK_TIMEOUT_MS / 4 }) })
    after(async () => { await net?.stop() })

    it('forms a certificate that the requester verifies, signed by all four', async () => {
      const result = await requestInference(net.requester, net.requesterKeys.account, { modelId: model.modelId, input: exampleInput(), timeoutMs: TASK_TIMEOUT_MS })
      assert.deepEqual(result.signers, [0, 1, 2, 3])
      assert.equal(result.signedStake, result.totalStake)
      assert.equal(toHex(keccak256(result.output, 'bytes')), toHex(result.certificate.resultHash))
      const verdict = verifyCertificate(result.certificate, net.operatorSet)
      assert.ok(verdict.ok, verdict.ok ? '' : verdict.reason)
      // The aggregator stored what it formed; every operator stored its own attestation.
      await until(async () => await net.aggregator.store!.getCertificate(result.taskId) != null, FOLLOW_UP_TIMEOUT_MS, 'the aggregator storing the certificate')
      for (const op of net.operators) {
        const own = await op!.store!.getOwnAttestation(result.taskId)
        assert.ok(own != null)
        assert.equal(toHex(own.resultHash), toHex(result.certificate.resultHash))
      }
      assert.equal((await net.aggregator.store!.getAttestations(result.taskId)).length, 4)
    })

    it('a light requester gets the certificate from any full node over /poi/result/1/ and resolves the outputRef over /poi/stream/1/', async () => {
      const result = await requestInference(net.requester, net.requesterKeys.account, { modelId: model.modelId, input: exampleInput(11), timeoutMs: TASK_TIMEOUT_MS })
      await until(async () => await net.bootstrap.store!.getCertificate(result.taskId) != null, FOLLOW_UP_TIMEOUT_MS, 'the bootstrap node storing the certificate')
      const fetched = await fetchResult(net.requester.libp2p, net.bootstrap.libp2p.peerId, result.taskId)
      assert.equal(fetched.status, 'found')
      if (fetched.status !== 'found') return
      const output = fetched.output ?? fetched.certificate.output
      const verdict = verifyResult(fetched.certificate, output, net.operatorSet)
      assert.ok(verdict.ok, verdict.ok ? '' : verdict.reason)
      const signer = net.operators[result.signers[0]]!
      const { message } = await fetchStreamMessageByPayload(net.requester.libp2p, signer.libp2p.peerId, result.certificate.outputRef)
      assert.equal(toHex(keccak256(message.payload, 'bytes')), toHex(result.certificate.resultHash))
      // The requester's own fallback when gossip missed the certificate: ask connected full nodes.
      const looked = await lookupResult(net.requester, result.taskId)
      assert.equal(toHex(looked.certificate.resultHash), toHex(result.certificate.resultHash))
      await assert.rejects(lookupResult(net.requester, new Uint8Array(32).fill(7)), ResultNotFoundError)
    })

    it('rejects malformed gossip without crashing and lowers the sender score', async () => {
      const rogue = await net.extraNode(await freshKeysAsync(), 'garbage')
      const rogueId = rogue.libp2p.peerId.toString()
      await connectDirect(rogue, net.aggregator, 'attestations')
      const rejected = waitForEvent(net.aggregator, 'rejected', {
        timeoutMs: FOLLOW_UP_TIMEOUT_MS, what: 'rejection by the aggregator of the garbage attestations', filter: d => d.from === rogueId
      })
      for (let i = 0; i < 5; i++) await rogue.libp2p.services.pubsub.publish(TOPICS.attestations, Uint8Array.from([0xff, 0x01, i, 0x42, 0x13]))
      await rejected
      await until(() => net.aggregator.libp2p.services.pubsub.getScore(rogueId) < 0, FOLLOW_UP_TIMEOUT_MS, 'a negative gossip score for the sender of garbage')
      // The network still works afterwards.
      const result = await requestInference(net.requester, net.requesterKeys.account, { modelId: model.modelId, input: exampleInput(3), timeoutMs: TASK_TIMEOUT_MS })
      assert.ok(result.signers.length >= 3)
    })

    it('rejects tasks with a bad requester signature, an unknown model or a too distant deadline, with a reason', async () => {
      const reasons: string[] = []
      net.operators[0]!.addEventListener('rejected', (e) => { if (e.detail.topic === 'task') reasons.push(e.detail.reason) })
      const account = net.requesterKeys.account
      const base = { chainId: TEST_CHAIN_ID, modelId: model.modelId, input: exampleInput(), fee: 0n, deadline: BigInt(Date.now() + TASK_TIMEOUT_MS), quorumBps: 6667, nonce: 99n }
      const good = await signTask(account, TEST_TASK_MANAGER, base)
      const forged = { ...good, nonce: 100n } // signature no longer matches
      const unknownModel = await signTask(account, TEST_TASK_MANAGER, { ...base, modelId: Uint8Array.from([1, 2, 3, 4]) })
      const tooFar = await signTask(account, TEST_TASK_MANAGER, { ...base, deadline: BigInt(Date.now() + 3_600_000) })
      // Sent by a throwaway peer: the forged one is rejected and costs the sender its score.
      const sender = await net.extraNode(await freshKeysAsync(), 'bad-tasks')
      await connectDirect(sender, net.operators[0]!, 'tasks')
      for (const task of [forged, unknownModel, tooFar]) await sender.libp2p.services.pubsub.publish(TOPICS.tasks, encodeTaskAnnouncement(task))
      const expected = ['bad requester signature', 'unknown model', 'more than the']
      await until(() => expected.every(e => reasons.some(r => r.includes(e))), FOLLOW_UP_TIMEOUT_MS,
        () => `operator 0 to reject the three tasks for ${expected.map(e => `"${e}"`).join(', ')} (reasons seen: ${reasons.join('; ') || 'none'})`)
      assert.equal(await net.operators[0]!.store!.getTask(taskIdOf(forged, TEST_TASK_MANAGER)), undefined)
    })
  })

  describe('operators that have never seen the model', () => {
    let net: TestNetwork
    before(async () => { net = await startTestNetwork({ operators: 4, operatorsWithoutModels: true }) })
    after(async () => { await net?.stop() })
    const npmModel = npmModelPublisher(() => net)

    it('fetch it through the DHT from the node that published it, and the certificate forms', async () => {
      for (const op of net.operators) assert.equal(op!.modelIds.length, 0)
      const id = modelIdToString(model.modelId)
      const fetched = net.operators.map((op, i) => waitForEvent(op!, 'model', {
        timeoutMs: MODEL_FETCH_TIMEOUT_MS, what: `operator ${i} fetching model ${id}`, filter: d => bytesEqual(d.modelId, model.modelId)
      }))
      const phases = new Set<string>()
      net.operators[0]!.addEventListener('model-progress', (e) => { phases.add(e.detail.progress.phase) })
      const result = await requestInference(net.requester, net.requesterKeys.account, { modelId: model.modelId, input: exampleInput(), timeoutMs: FETCHING_TASK_TIMEOUT_MS })
      assert.ok(result.signers.length >= 3, `signers: ${result.signers.join(',')}`)
      for (const f of await Promise.all(fetched)) assert.equal(f.fromStore, false)
      assert.ok(phases.has('chunks'), `progress phases seen: ${[...phases].join(', ')}`)
      for (const op of net.operators) assert.ok(await hasModel(op!.blocks!, model.modelId), 'the fetched model is in the operator block store')
    })

    it('a model published with `poi model publish` on another node is fetched and run by the operators, with the result of a direct onnxruntime run', async () => {
      const file = join(SHIPPED_MODEL_DIR, 'model.onnx')
      const published = await publishModelFile({ file, rule: 'argmax', name: 'mlp-argmax', dataDir: join(net.root, 'publisher', 'data') })
      const publisher = await net.extraNode(await freshKeysAsync(), 'publisher')
      await until(() => publisher.meshPeers('tasks') > 0, FOLLOW_UP_TIMEOUT_MS, 'the publisher joining the tasks mesh')
      const input = exampleInput(4)
      const result = await requestInference(net.requester, net.requesterKeys.account, { modelId: parseModelId(published.modelId), input, timeoutMs: FETCHING_TASK_TIMEOUT_MS })
      assert.ok(result.signers.length >= 3)
      assert.match(formatCanonicalOutput(result.output), /\d/)
      const direct = { modelBytes: new Uint8Array(await readFile(file)), manifest: published.manifest }
      assert.equal(toHex(result.certificate.resultHash), await directResultHash(direct, tensorsOfJsonInput(input, published.manifest)))
    })

    it('a real npm-shipped model (Silero VAD) runs through the network with the result hash of a direct onnxruntime run', async () => {
      const vad = await npmModel('silero-vad')
      const sample = npmModelSampleInput('silero-vad')
      const result = await requestInference(net.requester, net.requesterKeys.account, { modelId: vad.modelId, input: encodeTensorFile(sample), timeoutMs: FETCHING_TASK_TIMEOUT_MS })
      assert.ok(result.signers.length >= 3)
      assert.equal(toHex(result.certificate.resultHash), await directResultHash(vad, sample))
    })

    it('an input above the inline limit (PaddleOCR classifier sample) travels by stream reference and every operator runs it', async () => {
      const cls = await npmModel('ppocr-cls')
      const sample = npmModelSampleInput('ppocr-cls')
      const input = encodeTensorFile(sample)
      assert.ok(input.length > MAX_INLINE_INPUT_BYTES, `sample input is ${input.length} bytes`)
      const lines: string[] = []
      const result = await requestInference(net.requester, net.requesterKeys.account, { modelId: cls.modelId, input, timeoutMs: FETCHING_TASK_TIMEOUT_MS }, { onProgress: (line) => lines.push(line) })
      assert.ok(lines.some(l => l.includes('stream reference')), lines.join('\n'))
      assert.ok(result.signers.length >= 3)
      assert.equal(toHex(result.certificate.resultHash), await directResultHash(cls, sample))
      // The gossiped task carried only the reference; the operators hold the input itself.
      const task = await net.operators[result.signers[0]]!.store!.getTask(result.taskId)
      assert.ok(task != null)
      assert.equal(task.input.length, 0)
      assert.equal(task.inputRef.length, 32)
      for (const i of result.signers) {
        const held = await net.operators[i]!.streams!.get(task.inputRef)
        assert.ok(held != null)
        assert.equal(toHex(held.payload), toHex(input))
      }
    })

    it('input and output both above the inline limit (Silero VAD on a batch of 96) travel by reference; the output matches a direct run', async () => {
      const vad = await npmModel('silero-vad')
      const [audio, state, sr] = npmModelSampleInput('silero-vad')
      const batch = 96
      const samples = new Float32Array(batch * audio.dims[1])
      for (let b = 0; b < batch; b++) samples.set(audio.data as Float32Array, b * audio.dims[1])
      const tensors = [
        { ...audio, dims: [batch, audio.dims[1]], data: samples },
        { ...state, dims: [2, batch, state.dims[2]], data: new Float32Array(2 * batch * state.dims[2]) },
        sr
      ]
      const input = encodeTensorFile(tensors)
      assert.ok(input.length > MAX_INLINE_INPUT_BYTES)
      const lines: string[] = []
      const result = await requestInference(net.requester, net.requesterKeys.account, { modelId: vad.modelId, input, timeoutMs: FETCHING_TASK_TIMEOUT_MS }, { onProgress: (line) => lines.push(line) })
      assert.ok(result.signers.length >= 3)
      assert.equal(result.certificate.output.length, 0, 'the certificate carries only the reference')
      assert.ok(result.output.length > MAX_INLINE_OUTPUT_BYTES, `output is ${result.output.length} bytes`)
      assert.ok(lines.some(l => l.includes('fetching the output by stream reference')), lines.join('\n'))
      assert.equal(toHex(keccak256(result.output, 'bytes')), toHex(result.certificate.resultHash))
      assert.equal(toHex(result.certificate.resultHash), await directResultHash(vad, tensors))
      // A relay that forwarded the certificate holds the output too, for light requesters.
      await until(async () => await net.bootstrap.streams!.getByPayloadRef(result.certificate.outputRef) != null, FOLLOW_UP_TIMEOUT_MS, 'the bootstrap node holding the output')
    })

    it('a task whose referenced input nobody serves is ignored with a reason, never run', async () => {
      // The model is on the network; only the input is missing.
      const cls = await npmModel('ppocr-cls')
      const task = await signTask(net.requesterKeys.account, TEST_TASK_MANAGER, {
        chainId: TEST_CHAIN_ID, modelId: cls.modelId, inputRef: new Uint8Array(32).fill(9), fee: 0n, deadline: BigInt(Date.now() + TASK_TIMEOUT_MS), quorumBps: 6667, nonce: 4242n
      })
      const sender = await net.extraNode(await freshKeysAsync(), 'missing-input')
      await connectDirect(sender, net.operators[0]!, 'tasks')
      const ignored = waitForEvent(net.operators[0]!, 'rejected', {
        timeoutMs: TASK_TIMEOUT_MS, what: `operator 0 ignoring task ${shortHex(taskIdOf(task, TEST_TASK_MANAGER))} because its input is not available`,
        filter: d => d.topic === 'task' && d.reason.includes('not available')
      })
      await sender.libp2p.services.pubsub.publish(TOPICS.tasks, encodeTaskAnnouncement(task))
      await ignored
      assert.equal(await net.operators[0]!.store!.getTask(taskIdOf(task, TEST_TASK_MANAGER)), undefined)
      assert.equal(await net.operators[0]!.store!.getOwnAttestation(taskIdOf(task, TEST_TASK_MANAGER)), undefined)
    })
  })

  describe('one operator returns a wrong result', () => {
    let net: TestNetwork
    before(async () => { net = await startTestNetwork({ operators: 4, offline: [3] }) })
    after(async () => { await net?.stop() })

    it('still certifies the honest result, without the wrong operator', async () => {
      const liar = await meshedNode(net, net.keys[3], 'liar')
      liar.addEventListener('task', (e) => {
        void publishAttestation(liar, net, 3, e.detail.taskId, new TextEncoder().encode('not the model output'))
      })
      const result = await requestInference(net.requester, net.requesterKeys.account, { modelId: model.modelId, input: exampleInput(), timeoutMs: TASK_TIMEOUT_MS })
      assert.deepEqual(result.signers, [0, 1, 2])
      const own = await net.operators[0]!.store!.getOwnAttestation(result.taskId)
      assert.equal(toHex(result.certificate.resultHash), toHex(own!.resultHash))
      // The aggregator saw the wrong attestation too: it was valid, just outvoted.
      await until(async () => (await net.aggregator.store!.getAttestations(result.taskId)).some(a => a.operatorIndex === 3), FOLLOW_UP_TIMEOUT_MS, "the aggregator storing the liar's attestation")
    })
  })

  describe('two of four operators down', () => {
    let net: TestNetwork
    before(async () => { net = await startTestNetwork({ operators: 4, offline: [2, 3] }) })
    after(async () => { await net?.stop() })

    it('ends the task NoQuorum at its deadline', async () => {
      const deadlineMs = 4_000
      const noQuorum = waitForEvent(net.aggregator, 'no-quorum', { timeoutMs: deadlineMs + FOLLOW_UP_TIMEOUT_MS, what: 'no-quorum event from the aggregator at the deadline' })
      await assert.rejects(
        requestInference(net.requester, net.requesterKeys.account, { modelId: model.modelId, input: exampleInput(), timeoutMs: deadlineMs }),
        (err: Error) => err instanceof NoQuorumError && /NoQuorum/.test(err.message)
      )
      const { taskId } = await noQuorum
      assert.equal((await net.aggregator.store!.getTaskState(taskId))?.state, 'no-quorum')
      assert.equal(await net.aggregator.store!.getCertificate(taskId), undefined)
    })
  })

  describe('an operator that equivocates', () => {
    let net: TestNetwork
    before(async () => { net = await startTestNetwork({ operators: 4, offline: [3] }) })
    after(async () => { await net?.stop() })

    it('leaves verifiable evidence in storage', async () => {
      const cheat = await meshedNode(net, net.keys[3], 'cheat')
      const seen = waitForEvent(cheat, 'task', { timeoutMs: FOLLOW_UP_TIMEOUT_MS, what: 'task reaching the cheating node' })
      const evidence = waitForEvent(net.aggregator, 'evidence', { timeoutMs: TASK_TIMEOUT_MS, what: 'equivocation evidence against operator 3 at the aggregator', filter: e => e.operatorIndex === 3 })
      const request = requestInference(net.requester, net.requesterKeys.account, { modelId: model.modelId, input: exampleInput(), timeoutMs: TASK_TIMEOUT_MS })
      request.catch(() => {}) // awaited below; a failure before then is reported by the wait that fails first
      const { taskId } = await seen
      await publishAttestation(cheat, net, 3, taskId, new TextEncoder().encode('answer A'))
      await publishAttestation(cheat, net, 3, taskId, new TextEncoder().encode('answer B'))
      const e = await evidence
      assert.ok(verifyEquivocationEvidence(e, net.operatorSet))
      const stored = await net.aggregator.store!.listEvidence()
      assert.ok(stored.some(s => bytesEqual(s.taskId, taskId) && s.operatorIndex === 3))
      // Honest operators still certify the task.
      const result = await request
      assert.ok(!result.signers.includes(3))
    })
  })
})
