/**
 * The chaos suite's byzantine operators (node/roles/test-faults.ts): POI_TEST_FAULT is refused
 * without POI_TEST_FAULTS_ALLOWED=1 or with an unknown name, an operator node with a refused
 * fault does not start, and on a real in-process network an operator with `equivocate` signs
 * two results (the aggregator keeps the evidence and leaves it out of the certificate) and one
 * with `wrong-result` signs a result the certificate does not carry.
 */
import { strict as assert } from 'node:assert'
import { join } from 'node:path'
import { decodeSignerBitmap } from '../consensus/index.js'
import { exampleInput } from '../node/cli/devnet.js'
import { resolveConfig } from '../node/config.js'
import { loadModelDir, SHIPPED_MODEL_DIR, type ModelDir } from '../node/inference/index.js'
import { PoiNode } from '../node/poi-node.js'
import { requestInference } from '../node/requester/index.js'
import { TEST_FAULT_ENV, TEST_FAULTS_ALLOWED_ENV, TestFaultRefusedError, testFaultFromEnv, wrongResult } from '../node/roles/test-faults.js'
import { outputMismatch } from '../protocols/gossip/index.js'
import { bytesEqual, toHex } from '../protocols/wire/index.js'
import { startTestNetwork, type TestNetwork } from './helpers/network.js'
import { until, waitForEvent } from './helpers/wait.js'

const TASK_TIMEOUT_MS = 20_000
/** Gossip or a node's report that follows at once; generous for a loaded machine. */
const FOLLOW_UP_TIMEOUT_MS = 15_000
/**
 * A grace window long enough that the faulty operator's attestations (both of them, for the
 * equivocator) reach the aggregator before the certificate forms: its absence from the signers
 * is then the aggregator's decision, not lateness.
 */
const GRACE_MS = 3_000
/** The faulty operator: the last of four, left offline by the network and started here with the fault. */
const FAULTY = 3

describe('test faults (POI_TEST_FAULT)', function () {
  this.timeout(90_000)

  describe('switching on', () => {
    it('is off when unset or empty', () => {
      assert.equal(testFaultFromEnv({}), undefined)
      assert.equal(testFaultFromEnv({ [TEST_FAULT_ENV]: '', [TEST_FAULTS_ALLOWED_ENV]: '1' }), undefined)
    })

    it('is refused without POI_TEST_FAULTS_ALLOWED=1, and for an unknown fault', () => {
      assert.throws(() => testFaultFromEnv({ [TEST_FAULT_ENV]: 'equivocate' }), (err: Error) => err instanceof TestFaultRefusedError && err.message.includes(TEST_FAULTS_ALLOWED_ENV))
      assert.throws(() => testFaultFromEnv({ [TEST_FAULT_ENV]: 'equivocate', [TEST_FAULTS_ALLOWED_ENV]: 'true' }), TestFaultRefusedError)
      assert.throws(() => testFaultFromEnv({ [TEST_FAULT_ENV]: 'lie', [TEST_FAULTS_ALLOWED_ENV]: '1' }), (err: Error) => err instanceof TestFaultRefusedError && err.message.includes('wrong-result'))
      assert.equal(testFaultFromEnv({ [TEST_FAULT_ENV]: 'wrong-result', [TEST_FAULTS_ALLOWED_ENV]: '1' }), 'wrong-result')
      assert.equal(testFaultFromEnv({ [TEST_FAULT_ENV]: 'equivocate', [TEST_FAULTS_ALLOWED_ENV]: '1' }), 'equivocate')
    })

    it('makes a wrong output whose fields still fit together', () => {
      const canonical = new TextEncoder().encode('{"y":[1,2,3]}')
      const wrong = wrongResult(canonical)
      assert.equal(wrong.canonical.length, canonical.length)
      assert.ok(!bytesEqual(wrong.canonical, canonical))
      assert.equal(outputMismatch({ resultHash: wrong.resultHash, outputRef: wrong.resultHash, output: wrong.canonical }), undefined)
    })
  })

  describe('on a network', () => {
    let net: TestNetwork
    let model: ModelDir
    let faulty: PoiNode | undefined
    const saved = { fault: process.env[TEST_FAULT_ENV], allowed: process.env[TEST_FAULTS_ALLOWED_ENV] }

    /** Starts operator FAULTY with `env` set while it starts (the operator reads it once, at start). */
    async function startFaulty (env: Record<string, string>, name: string): Promise<PoiNode> {
      Object.assign(process.env, env)
      try {
        const config = resolveConfig({
          keystore: join(net.root, `op${FAULTY}`, 'keys'), dataDir: join(net.root, name, 'data'), genesis: join(net.root, 'genesis.json'),
          listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [net.bootstrapAddr], graceMs: GRACE_MS
        })
        return await PoiNode.start({ operate: true, aggregate: false, light: false, keystore: net.keys[FAULTY], config, operatorSet: net.operatorSet })
      } finally {
        restoreEnv()
      }
    }

    function restoreEnv (): void {
      for (const [key, value] of [[TEST_FAULT_ENV, saved.fault], [TEST_FAULTS_ALLOWED_ENV, saved.allowed]] as const) {
        if (value === undefined) Reflect.deleteProperty(process.env, key)
        else process.env[key] = value
      }
    }

    before(async () => {
      model = await loadModelDir(SHIPPED_MODEL_DIR)
      // Three honest operators of four hold the quorum (75 % of the stake) without the faulty one.
      net = await startTestNetwork({ operators: 4, offline: [FAULTY], graceMs: GRACE_MS, backupAggregation: false })
    })

    afterEach(async () => {
      await faulty?.stop()
      faulty = undefined
    })

    after(async () => {
      await net?.stop()
    })

    it('an operator with a fault asked for without the second switch does not start', async () => {
      await assert.rejects(startFaulty({ [TEST_FAULT_ENV]: 'equivocate' }, 'refused'), TestFaultRefusedError)
    })

    /** Starts the faulty operator and runs one task with its attestation in time for the certificate. */
    async function taskWith (fault: string, seed: number): Promise<{ signers: number[], resultHash: Uint8Array, taskId: Uint8Array }> {
      faulty = await startFaulty({ [TEST_FAULT_ENV]: fault, [TEST_FAULTS_ALLOWED_ENV]: '1' }, fault)
      const node = faulty
      await until(() => node.meshPeers('tasks') > 0 && node.topicPeers('attestations') > 0, FOLLOW_UP_TIMEOUT_MS, 'the faulty operator joining the meshes')
      const attested = waitForEvent(node, 'attested', { timeoutMs: TASK_TIMEOUT_MS, what: 'the faulty operator signing the task' })
      const result = await requestInference(net.requester, net.requesterKeys.account, { modelId: model.modelId, input: exampleInput(seed), timeoutMs: TASK_TIMEOUT_MS })
      const own = await attested
      assert.ok(bytesEqual(own.attestation.taskId, result.taskId))
      const decoded = decodeSignerBitmap(result.certificate.signerBitmap, net.operatorSet.operators.length)
      assert.ok(decoded.ok)
      return { signers: decoded.signers, resultHash: own.attestation.resultHash, taskId: result.taskId }
    }

    it('equivocate: two signed results, kept as evidence, not a signer', async () => {
      const evidence = waitForEvent(net.aggregator, 'evidence', { timeoutMs: TASK_TIMEOUT_MS, what: 'equivocation evidence at the aggregator', filter: d => d.operatorIndex === FAULTY })
      const { signers, taskId } = await taskWith('equivocate', 31)
      const ev = await evidence
      assert.equal(toHex(ev.taskId), toHex(taskId))
      assert.ok(!bytesEqual(ev.a.resultHash, ev.b.resultHash))
      assert.ok(!signers.includes(FAULTY), `the equivocator is a signer: ${signers.join(', ')}`)
      assert.equal(signers.length, 3)
    })

    it('wrong-result: signs a result the certificate does not carry', async () => {
      const { signers, resultHash, taskId } = await taskWith('wrong-result', 32)
      const stored = await net.aggregator.store?.getCertificate(taskId)
      assert.ok(stored != null)
      assert.ok(!bytesEqual(resultHash, stored.resultHash), 'the faulty operator signed the right result')
      assert.ok(!signers.includes(FAULTY), `the wrong operator is a signer: ${signers.join(', ')}`)
    })
  })
})
