import { strict as assert } from 'node:assert'
import { keccak256 } from 'viem'
import { signAttestation, verifyCertificate, verifyEquivocationEvidence, type EquivocationEvidence } from '../consensus/index.js'
import { exampleInput } from '../node/cli/devnet.js'
import {
  loadModelDir, SHIPPED_MODEL_DIR, type ModelDir, encodeTensorFile, formatCanonicalOutput, parseModelId
} from '../node/inference/index.js'
import { join } from 'node:path'
import { npmModelSampleInput, resolveNpmModel, type ResolvedNpmModel } from '../node/fixtures/index.js'
import { BlockStore, NodeStore } from '../storage/index.js'
import { directResultHash } from './helpers/direct-run.js'
import { publishModelFile } from '../node/cli/model-commands.js'
import { hasModel, importModel } from '../node/models/index.js'
import type { PoiNode } from '../node/poi-node.js'
import { NoQuorumError, lookupResult, requestInference, waitForNetwork } from '../node/requester/requester.js'
import {
  MAX_INLINE_INPUT_BYTES, MAX_INLINE_OUTPUT_BYTES, encodeAttestation, encodeTaskAnnouncement, signTask,
  taskIdOf
} from '../protocols/wire/index.js'
import { TOPICS } from '../protocols/gossip/index.js'
import { freshKeysAsync } from './helpers/keys.js'
import { fetchResult, verifyResult } from '../protocols/result/index.js'
import { fetchStreamMessageByPayload } from '../protocols/stream/index.js'
import { startTestNetwork, until, type TestNetwork, TEST_CHAIN_ID, TEST_TASK_MANAGER } from './helpers/network.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

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
  await until(() => from.libp2p.services.pubsub.getSubscribers(TOPICS[topic]).some(p => p.toString() === target), 10_000, `${target} subscribed to ${topic}`)
}

/** Puts an npm-shipped model in a fresh full node's data dir and starts that node, which announces it on the DHT. */
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
  await until(() => publisher.meshPeers('tasks') > 0, 10_000, 'publisher joins the network')
  return model
}

function nextTask (node: PoiNode): Promise<Uint8Array> {
  return new Promise(resolve => {
    const on = (e: CustomEvent<{ taskId: Uint8Array }>): void => { node.removeEventListener('task', on); resolve(e.detail.taskId) }
    node.addEventListener('task', on)
  })
}

describe('network: operators, aggregator and requester over libp2p on 127.0.0.1', function () {
  this.timeout(90_000)
  let model: ModelDir

  before(async () => { model = await loadModelDir(SHIPPED_MODEL_DIR) })

  describe('four honest operators', () => {
    let net: TestNetwork
    before(async () => { net = await startTestNetwork({ operators: 4 }) })
    after(async () => { await net?.stop() })

    it('forms a certificate that the requester verifies, signed by all four', async () => {
      await waitForNetwork(net.requester)
      const result = await requestInference(net.requester, net.requesterKeys.account, { modelId: model.modelId, input: exampleInput(), timeoutMs: 20_000 })
      assert.deepEqual(result.signers, [0, 1, 2, 3])
      assert.equal(result.signedStake, result.totalStake)
      assert.equal(hex(keccak256(result.output, 'bytes')), hex(result.certificate.resultHash))
      const verdict = verifyCertificate(result.certificate, net.operatorSet)
      assert.ok(verdict.ok, verdict.ok ? '' : verdict.reason)
      // The aggregator stored what it formed; every operator stored its own attestation.
      await until(async () => await net.aggregator.store!.getCertificate(result.taskId) != null, 5_000, 'stored certificate')
      for (const op of net.operators) {
        const own = await op!.store!.getOwnAttestation(result.taskId)
        assert.ok(own != null)
        assert.equal(hex(own.resultHash), hex(result.certificate.resultHash))
      }
      assert.equal((await net.aggregator.store!.getAttestations(result.taskId)).length, 4)
    })

    it('a light requester gets the certificate from any full node over /poi/result/1/ and resolves the outputRef over /poi/stream/1/', async () => {
      const result = await requestInference(net.requester, net.requesterKeys.account, { modelId: model.modelId, input: exampleInput(11), timeoutMs: 20_000 })
      await until(async () => await net.bootstrap.store!.getCertificate(result.taskId) != null, 5_000, 'bootstrap stored the certificate')
      const fetched = await fetchResult(net.requester.libp2p, net.bootstrap.libp2p.peerId, result.taskId)
      assert.equal(fetched.status, 'found')
      if (fetched.status !== 'found') return
      const output = fetched.output ?? fetched.certificate.output
      const verdict = verifyResult(fetched.certificate, output, net.operatorSet)
      assert.ok(verdict.ok, verdict.ok ? '' : verdict.reason)
      const { message } = await fetchStreamMessageByPayload(net.requester.libp2p, net.operators[1]!.libp2p.peerId, result.certificate.outputRef)
      assert.equal(hex(keccak256(message.payload, 'bytes')), hex(result.certificate.resultHash))
      // The requester's own fallback when gossip missed the certificate: ask connected full nodes.
      const looked = await lookupResult(net.requester, result.taskId)
      assert.ok(looked != null)
      assert.equal(hex(looked.certificate.resultHash), hex(result.certificate.resultHash))
      assert.equal(await lookupResult(net.requester, new Uint8Array(32).fill(7)), undefined)
    })

    it('rejects malformed gossip without crashing and lowers the sender score', async () => {
      const rogue = await net.extraNode(await freshKeysAsync(), 'garbage')
      await connectDirect(rogue, net.aggregator, 'attestations')
      const rejected: string[] = []
      net.aggregator.addEventListener('rejected', (e) => { if (e.detail.from === rogue.libp2p.peerId.toString()) rejected.push(e.detail.reason) })
      for (let i = 0; i < 5; i++) await rogue.libp2p.services.pubsub.publish(TOPICS.attestations, Uint8Array.from([0xff, 0x01, i, 0x42, 0x13]))
      await until(() => rejected.length > 0, 10_000, 'aggregator to reject garbage')
      await until(() => net.aggregator.libp2p.services.pubsub.getScore(rogue.libp2p.peerId.toString()) < 0, 10_000, 'negative score for the sender')
      // The network still works afterwards.
      const result = await requestInference(net.requester, net.requesterKeys.account, { modelId: model.modelId, input: exampleInput(3), timeoutMs: 20_000 })
      assert.ok(result.signers.length >= 3)
    })

    it('rejects tasks with a bad requester signature, an unknown model or a too distant deadline, with a reason', async () => {
      const reasons: string[] = []
      net.operators[0]!.addEventListener('rejected', (e) => { if (e.detail.topic === 'task') reasons.push(e.detail.reason) })
      const account = net.requesterKeys.account
      const base = { chainId: TEST_CHAIN_ID, modelId: model.modelId, input: exampleInput(), fee: 0n, deadline: BigInt(Date.now() + 20_000), quorumBps: 6667, nonce: 99n }
      const good = await signTask(account, TEST_TASK_MANAGER, base)
      const forged = { ...good, nonce: 100n } // signature no longer matches
      const unknownModel = await signTask(account, TEST_TASK_MANAGER, { ...base, modelId: Uint8Array.from([1, 2, 3, 4]) })
      // Sent by a throwaway peer: rejected messages cost the sender its score.
      const sender = await net.extraNode(await freshKeysAsync(), 'bad-tasks')
      await connectDirect(sender, net.operators[0]!, 'tasks')
      const pubsub = sender.libp2p.services.pubsub
      await pubsub.publish(TOPICS.tasks, encodeTaskAnnouncement(forged))
      await pubsub.publish(TOPICS.tasks, encodeTaskAnnouncement(unknownModel))
      const tooFar = await signTask(account, TEST_TASK_MANAGER, { ...base, deadline: BigInt(Date.now() + 3_600_000) })
      await pubsub.publish(TOPICS.tasks, encodeTaskAnnouncement(tooFar))
      await until(() => reasons.length >= 3, 10_000, 'two rejections')
      assert.ok(reasons.some(r => r.includes('bad requester signature')), reasons.join('; '))
      assert.ok(reasons.some(r => r.includes('unknown model')), reasons.join('; '))
      assert.ok(reasons.some(r => r.includes('more than the')), reasons.join('; '))
      assert.equal(await net.operators[0]!.store!.getTask(taskIdOf(forged)), undefined)
    })
  })

  describe('operators that have never seen the model', () => {
    let net: TestNetwork
    before(async () => { net = await startTestNetwork({ operators: 4, operatorsWithoutModels: true }) })
    after(async () => { await net?.stop() })

    it('fetch it through the DHT from the node that published it, and the certificate forms', async () => {
      for (const op of net.operators) assert.equal(op!.modelIds.length, 0)
      const fetched = net.operators.map(op => new Promise<{ fromStore: boolean }>(resolve => op!.addEventListener('model', (e) => resolve(e.detail), { once: true })))
      const phases = new Set<string>()
      net.operators[0]!.addEventListener('model-progress', (e) => { phases.add(e.detail.progress.phase) })
      await waitForNetwork(net.requester)
      const result = await requestInference(net.requester, net.requesterKeys.account, { modelId: model.modelId, input: exampleInput(), timeoutMs: 30_000 })
      assert.ok(result.signers.length >= 3, `signers: ${result.signers.join(',')}`)
      for (const f of await Promise.all(fetched)) assert.equal(f.fromStore, false)
      assert.ok(phases.has('chunks'), `progress phases seen: ${[...phases].join(', ')}`)
      for (const op of net.operators) assert.ok(await hasModel(op!.blocks!, model.modelId), 'the fetched model is in the operator block store')
    })

    it('a model published with `poi model publish` on another node is fetched and run by the operators', async () => {
      const published = await publishModelFile({ file: join(SHIPPED_MODEL_DIR, 'model.onnx'), rule: 'argmax', name: 'mlp-argmax', dataDir: join(net.root, 'publisher', 'data') })
      const publisher = await net.extraNode(await freshKeysAsync(), 'publisher')
      await until(() => publisher.meshPeers('tasks') > 0, 10_000, 'publisher joins the network')
      const result = await requestInference(net.requester, net.requesterKeys.account, { modelId: parseModelId(published.modelId), input: exampleInput(4), timeoutMs: 30_000 })
      assert.ok(result.signers.length >= 3)
      assert.match(formatCanonicalOutput(result.output), /\d/)
    })

    it('a real npm-shipped model (Silero VAD) runs through the network with the result hash of a direct onnxruntime run', async () => {
      const vad = await publishNpmModel(net, 'silero-vad')
      const sample = npmModelSampleInput('silero-vad')
      const result = await requestInference(net.requester, net.requesterKeys.account, { modelId: vad.modelId, input: encodeTensorFile(sample), timeoutMs: 30_000 })
      assert.ok(result.signers.length >= 3)
      assert.equal(hex(result.certificate.resultHash), await directResultHash(vad, sample))
    })

    it('an input above the inline limit (PaddleOCR classifier sample) travels by stream reference and every operator runs it', async () => {
      const cls = await publishNpmModel(net, 'ppocr-cls')
      const sample = npmModelSampleInput('ppocr-cls')
      const input = encodeTensorFile(sample)
      assert.ok(input.length > MAX_INLINE_INPUT_BYTES, `sample input is ${input.length} bytes`)
      const lines: string[] = []
      const result = await requestInference(net.requester, net.requesterKeys.account, { modelId: cls.modelId, input, timeoutMs: 30_000 }, (line) => lines.push(line))
      assert.ok(lines.some(l => l.includes('stream reference')), lines.join('\n'))
      assert.ok(result.signers.length >= 3)
      assert.equal(hex(result.certificate.resultHash), await directResultHash(cls, sample))
      // The gossiped task carried only the reference; the operators hold the input itself.
      const task = await net.operators[0]!.store!.getTask(result.taskId)
      assert.ok(task != null)
      assert.equal(task.input.length, 0)
      assert.equal(task.inputRef.length, 32)
      for (const i of result.signers) {
        const held = await net.operators[i]!.streams!.get(task.inputRef)
        assert.ok(held != null)
        assert.equal(hex(held.payload), hex(input))
      }
    })

    it('input and output both above the inline limit (Silero VAD on a batch of 96) travel by reference; the output matches a direct run', async () => {
      // Silero was published by an earlier test in this network; a batch makes both tensors large.
      const vad = await resolveNpmModel('silero-vad')
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
      const result = await requestInference(net.requester, net.requesterKeys.account, { modelId: vad.modelId, input, timeoutMs: 30_000 }, (line) => lines.push(line))
      assert.ok(result.signers.length >= 3)
      assert.equal(result.certificate.output.length, 0, 'the certificate carries only the reference')
      assert.ok(result.output.length > MAX_INLINE_OUTPUT_BYTES, `output is ${result.output.length} bytes`)
      assert.ok(lines.some(l => l.includes('fetching the output by stream reference')), lines.join('\n'))
      assert.equal(hex(keccak256(result.output, 'bytes')), hex(result.certificate.resultHash))
      assert.equal(hex(result.certificate.resultHash), await directResultHash(vad, tensors))
      // A relay that forwarded the certificate holds the output too, for light requesters.
      await until(async () => await net.bootstrap.streams!.getByPayloadRef(result.certificate.outputRef) != null, 5_000, 'bootstrap holds the output')
    })

    it('a task whose referenced input nobody serves is ignored with a reason, never run', async () => {
      const cls = await resolveNpmModel('ppocr-cls')
      const reasons: string[] = []
      net.operators[0]!.addEventListener('rejected', (e) => { if (e.detail.topic === 'task') reasons.push(e.detail.reason) })
      const task = await signTask(net.requesterKeys.account, TEST_TASK_MANAGER, {
        chainId: TEST_CHAIN_ID, modelId: cls.modelId, inputRef: new Uint8Array(32).fill(9), fee: 0n, deadline: BigInt(Date.now() + 20_000), quorumBps: 6667, nonce: 4242n
      })
      const sender = await net.extraNode(await freshKeysAsync(), 'missing-input')
      await connectDirect(sender, net.operators[0]!, 'tasks')
      await sender.libp2p.services.pubsub.publish(TOPICS.tasks, encodeTaskAnnouncement(task))
      await until(() => reasons.some(r => r.includes('not available')), 15_000, 'the operator to ignore the task')
      assert.equal(await net.operators[0]!.store!.getTask(taskIdOf(task)), undefined)
      assert.equal(await net.operators[0]!.store!.getOwnAttestation(taskIdOf(task)), undefined)
    })
  })

  describe('one operator returns a wrong result', () => {
    let net: TestNetwork
    before(async () => { net = await startTestNetwork({ operators: 4, offline: [3] }) })
    after(async () => { await net?.stop() })

    it('still certifies the honest result, without the wrong operator', async () => {
      const liar = await net.extraNode(net.keys[3], 'liar')
      await until(() => liar.meshPeers('attestations') > 0 && liar.meshPeers('tasks') > 0, 10_000, 'liar mesh')
      liar.addEventListener('task', (e) => {
        void publishAttestation(liar, net, 3, e.detail.taskId, new TextEncoder().encode('not the model output'))
      })
      await waitForNetwork(net.requester)
      const result = await requestInference(net.requester, net.requesterKeys.account, { modelId: model.modelId, input: exampleInput(), timeoutMs: 20_000 })
      assert.deepEqual(result.signers, [0, 1, 2])
      const own = await net.operators[0]!.store!.getOwnAttestation(result.taskId)
      assert.equal(hex(result.certificate.resultHash), hex(own!.resultHash))
      // The aggregator saw the wrong attestation too: it was valid, just outvoted.
      await until(async () => (await net.aggregator.store!.getAttestations(result.taskId)).some(a => a.operatorIndex === 3), 5_000, 'wrong attestation stored')
    })
  })

  describe('two of four operators down', () => {
    let net: TestNetwork
    before(async () => { net = await startTestNetwork({ operators: 4, offline: [2, 3] }) })
    after(async () => { await net?.stop() })

    it('ends the task NoQuorum at its deadline', async () => {
      await waitForNetwork(net.requester)
      const noQuorum = new Promise<Uint8Array>(resolve => net.aggregator.addEventListener('no-quorum', (e) => resolve(e.detail.taskId), { once: true }))
      await assert.rejects(
        requestInference(net.requester, net.requesterKeys.account, { modelId: model.modelId, input: exampleInput(), timeoutMs: 4_000 }),
        (err: Error) => err instanceof NoQuorumError && /NoQuorum/.test(err.message)
      )
      const taskId = await noQuorum
      assert.equal((await net.aggregator.store!.getTaskState(taskId))?.state, 'no-quorum')
      assert.equal(await net.aggregator.store!.getCertificate(taskId), undefined)
    })
  })

  describe('an operator that equivocates', () => {
    let net: TestNetwork
    before(async () => { net = await startTestNetwork({ operators: 4, offline: [3] }) })
    after(async () => { await net?.stop() })

    it('leaves verifiable evidence in storage', async () => {
      const cheat = await net.extraNode(net.keys[3], 'cheat')
      await until(() => cheat.meshPeers('attestations') > 0 && cheat.meshPeers('tasks') > 0, 10_000, 'cheat mesh')
      const seen = nextTask(cheat)
      const evidence = new Promise<EquivocationEvidence>(resolve => net.aggregator.addEventListener('evidence', (e) => resolve(e.detail), { once: true }))
      await waitForNetwork(net.requester)
      const request = requestInference(net.requester, net.requesterKeys.account, { modelId: model.modelId, input: exampleInput(), timeoutMs: 20_000 })
      const taskId = await seen
      await publishAttestation(cheat, net, 3, taskId, new TextEncoder().encode('answer A'))
      await publishAttestation(cheat, net, 3, taskId, new TextEncoder().encode('answer B'))
      const e = await evidence
      assert.equal(e.operatorIndex, 3)
      assert.ok(verifyEquivocationEvidence(e, net.operatorSet))
      const stored = await net.aggregator.store!.listEvidence()
      assert.ok(stored.some(s => hex(s.taskId) === hex(taskId) && s.operatorIndex === 3))
      // Honest operators still certify the task.
      const result = await request
      assert.ok(!result.signers.includes(3))
    })
  })
})
