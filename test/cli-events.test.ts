import { strict as assert } from 'node:assert'
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { EventLog, EventTimeoutError } from '../node/cli/event-log.js'
import { UsageError } from '../node/cli/args.js'
import {
  EVENT_DOC_END, EVENT_DOC_START, EventLineError, eventSchemaMarkdown, parseEvent, serializeEvent, taskIdOf, type PoiEvent, type PoiEventInput
} from '../node/cli/events.js'
import { errorEvent } from '../node/cli/main.js'
import { outputTensorLines } from '../node/cli/result-line.js'
import { canonicalizeOutputs, type AgreementRule, type OutputTensor } from '../node/inference/index.js'

const TASK = new Uint8Array(32).fill(0xab)

/** Canonical output bytes of `outputs` under `rule`, each output declared with its own dtype and dims. */
function canonicalize (rule: AgreementRule, outputs: Record<string, OutputTensor>): Uint8Array {
  return canonicalizeOutputs(outputs, { agreement: rule, outputs: Object.entries(outputs).map(([name, t]) => ({ name, dtype: t.dtype, shape: t.dims })) })
}
const TASK_HEX = `0x${'ab'.repeat(32)}` as const

/** Asserts `fn` throws an EventLineError whose message matches `why`. */
function rejectsLine (line: string, why: RegExp): void {
  assert.throws(() => parseEvent(line), (err: unknown) => {
    assert.ok(err instanceof EventLineError, `expected EventLineError, got ${String(err)}`)
    assert.match(err.message, why)
    return true
  })
}

describe('cli: --json event lines (one typed union)', () => {
  it('serializeEvent writes bytes as 0x-hex and bigints as decimal strings, and parseEvent reads them back', () => {
    const events: PoiEventInput[] = [
      { event: 'certificate', taskId: TASK, resultHash: Buffer.from('01ff', 'hex'), signerBitmap: new Uint8Array([7]), verifyMs: 1.5, at: 12.25 },
      { event: 'submitted', kind: 'certificate', id: 'ab', txHash: `0x${'12'.repeat(32)}`, gasUsed: 235476n },
      {
        event: 'result', taskId: TASK, modelId: null, resultHash: TASK, outputRef: TASK, output: new Uint8Array([1, 2]), outputTensors: null, signers: [0, 2],
        signerBitmap: new Uint8Array([5]), aggregateSig: null, certificateVersion: 1, epoch: 1n, signedStake: 2n, totalStake: 3n, onChain: { resultHash: TASK_HEX, outputRef: TASK_HEX, epoch: 1n }
      },
      { event: 'ready', role: 'operator', peerId: '12D3KooW', addrs: ['/ip4/127.0.0.1/tcp/1'], operatorIndex: null, models: [], announced: [], http: 'http://127.0.0.1:8080' }
    ]
    const read = events.map(e => parseEvent(serializeEvent(e)))
    assert.deepEqual(read[0], { event: 'certificate', taskId: TASK_HEX, resultHash: '0x01ff', signerBitmap: '0x07', verifyMs: 1.5, at: 12.25 })
    assert.deepEqual(read[1], { event: 'submitted', kind: 'certificate', id: 'ab', txHash: `0x${'12'.repeat(32)}`, gasUsed: '235476' })
    assert.deepEqual(read[2], {
      event: 'result', taskId: TASK_HEX, modelId: null, resultHash: TASK_HEX, outputRef: TASK_HEX, output: '0x0102', outputTensors: null, signers: [0, 2],
      signerBitmap: '0x05', aggregateSig: null, certificateVersion: 1, epoch: '1', signedStake: '2', totalStake: '3', onChain: { resultHash: TASK_HEX, outputRef: TASK_HEX, epoch: '1' }
    })
    assert.deepEqual(read[3], { event: 'ready', role: 'operator', peerId: '12D3KooW', addrs: ['/ip4/127.0.0.1/tcp/1'], operatorIndex: null, models: [], announced: [], http: 'http://127.0.0.1:8080' })
    assert.ok(!serializeEvent(events[0]).includes('\n'), 'an event is one line')
  })

  it('parseEvent refuses a line that is not JSON, an unknown event, or a declared field of the wrong type', () => {
    rejectsLine('listening on 127.0.0.1', /not JSON/)
    rejectsLine('[1,2]', /not a JSON object/)
    rejectsLine('{"event":"teleported","taskId":"0x00"}', /unknown event "teleported"/)
    rejectsLine('{"taskId":"0x00"}', /unknown event undefined/)
    rejectsLine('{"event":"task","taskId":"abc","at":1}', /"task" needs taskId to be 0x-hex, got "abc"/)
    rejectsLine('{"event":"model","modelId":"bafy","bytes":"12","fromStore":false,"ms":3}', /needs bytes to be a number/)
    rejectsLine('{"event":"rejected","topic":"tasks","reason":"x","from":"p","verdict":"maybe"}', /verdict to be one of reject, ignore/)
    rejectsLine('{"event":"submitted","kind":"certificate","id":"a","txHash":"0x12","gasUsed":"1e3"}', /gasUsed to be a decimal integer string/)
  })

  it('a submission ends in an event that says what happened: settled by another account (who, which transaction), failed (why), retrying', () => {
    const other = `0x${'cd'.repeat(20)}` as const
    const tx = `0x${'12'.repeat(32)}` as const
    const lines: PoiEventInput[] = [
      { event: 'submission-settled-by-other', kind: 'certificate', id: 'ab', settledBy: other, txHash: tx, resultHash: TASK },
      { event: 'submission-failed', kind: 'evidence', id: 'ab/00000001', reason: 'SlashingManager.submitEvidence reverted with AlreadySlashed', revert: 'AlreadySlashed' },
      { event: 'submission-retry', kind: 'certificate', id: 'ab', attempts: 4, retryInMs: 4000, reason: 'cannot reach the chain' }
    ]
    const read = lines.map(e => parseEvent(serializeEvent(e)))
    assert.deepEqual(read[0], { event: 'submission-settled-by-other', kind: 'certificate', id: 'ab', settledBy: other, txHash: tx, resultHash: TASK_HEX })
    assert.deepEqual(read.slice(1), lines.slice(1))
    rejectsLine('{"event":"submission-settled-by-other","kind":"certificate","id":"ab","txHash":"0x12"}', /needs settledBy to be 0x-hex/)
    rejectsLine('{"event":"submission-moot","kind":"certificate","id":"ab"}', /unknown event "submission-moot"/)
  })

  it('parseEvent keeps fields an event does not declare (a newer node may add some) and accepts absent optional ones', () => {
    const e = parseEvent('{"event":"certificate","taskId":"0x00","resultHash":"0x01","signerBitmap":"0x07","at":1,"extra":true}')
    assert.ok(e.event === 'certificate', e.event)
    assert.equal(e.verifyMs, undefined)
    assert.equal((e as unknown as { extra: boolean }).extra, true)
  })

  it('a failure is an error line with its code and message; a result line without the certificate fields a script checks is refused', () => {
    assert.deepEqual(parseEvent(serializeEvent(errorEvent(new UsageError('--quorum must be …')))), { event: 'error', code: 'ERR_USAGE', message: '--quorum must be …' })
    // Not poi's own error (a bug): still a line, with a code a script can test for.
    assert.deepEqual(errorEvent(new TypeError('x is undefined')), { event: 'error', code: 'ERR_UNEXPECTED', message: 'x is undefined' })
    rejectsLine('{"event":"error","message":"no code"}', /"error" needs code to be a string/)
    const before = { event: 'result', taskId: TASK_HEX, resultHash: TASK_HEX, output: '0x0102', signers: [0, 2], epoch: '1' }
    rejectsLine(JSON.stringify(before), /"result" needs modelId to be a string or null/)
    rejectsLine(JSON.stringify({ ...before, modelId: null, outputRef: TASK_HEX, outputTensors: null, signerBitmap: '0x05', certificateVersion: 1, signedStake: '2', totalStake: '3' }),
      /"result" needs aggregateSig to be 0x-hex or null/)
  })

  it('outputTensorLines decodes canonical output: names, dtypes, shapes and values JSON holds exactly', () => {
    const output = canonicalize('exact', {
      score: { dtype: 'float32', dims: [1, 1], data: Float32Array.of(0.75) },
      nan: { dtype: 'float32', dims: [2], data: Float32Array.of(NaN, Infinity) },
      ids: { dtype: 'int64', dims: [2], data: BigInt64Array.of(2n ** 62n, -1n) }
    })
    assert.deepEqual(outputTensorLines(output), [
      { name: 'score', dtype: 'float32', shape: [1, 1], encoding: 'exact', values: [0.75] },
      { name: 'nan', dtype: 'float32', shape: [2], encoding: 'exact', values: ['NaN', 'Infinity'] },
      { name: 'ids', dtype: 'int64', shape: [2], encoding: 'exact', values: [(2n ** 62n).toString(), '-1'] }
    ])
    const top = canonicalize('topk:2', { p: { dtype: 'float32', dims: [2, 3], data: Float32Array.of(0.1, 0.7, 0.2, 0.5, 0.2, 0.3) } })
    assert.deepEqual(outputTensorLines(top), [{ name: 'p', dtype: 'float32', shape: [2, 3], encoding: 'topk', values: [1, 2, 0, 2] }])
    assert.equal(outputTensorLines(Uint8Array.of(1, 2, 3)), null, 'bytes that do not decode leave only the raw hex')
    assert.equal(outputTensorLines(null), null)
  })

  it("README's list of event lines is the one parseEvent enforces, every event and field of node/cli/events.ts", async () => {
    const readme = await readFile(join(dirname(fileURLToPath(import.meta.url)), '../../README.md'), 'utf8')
    const start = readme.indexOf(EVENT_DOC_START)
    const end = readme.indexOf(EVENT_DOC_END)
    assert.ok(start >= 0 && end > start, 'README has the generated event list')
    assert.equal(readme.slice(start, end + EVENT_DOC_END.length), eventSchemaMarkdown(),
      'README is stale: regenerate its table with node -e "import(\'./dist/node/cli/events.js\').then(m => console.log(m.eventSchemaMarkdown()))"')
    for (const name of ['result', 'error', 'ready', 'published']) assert.ok(eventSchemaMarkdown().includes(`| \`${name}\` |`), name)
    assert.match(eventSchemaMarkdown(), /`aggregateSig`: 0x-hex or null; `certificateVersion`/)
  })

  it('taskIdOf names the task of task events and nothing for the others', () => {
    assert.equal(taskIdOf(parseEvent(`{"event":"no-quorum","taskId":"${TASK_HEX}"}`)), TASK_HEX)
    assert.equal(taskIdOf(parseEvent('{"event":"mesh","tasks":1,"attestations":1,"certificates":1,"attestationSubscribers":1}')), undefined)
  })

  describe('EventLog (what the launcher waits on)', () => {
    const mesh = (tasks: number): PoiEvent => ({ event: 'mesh', tasks, attestations: 1, certificates: 1, attestationSubscribers: 1 })

    it('a wait resolves with an event seen already or one still to come, typed by its name', async () => {
      const log = new EventLog('operator-0')
      log.push(mesh(0))
      assert.deepEqual(await log.waitForEvent('mesh', () => true, 1_000, 'mesh'), mesh(0))
      const later = log.waitForEvent('mesh', e => e.tasks > 2, 1_000, 'mesh with 3 task peers')
      log.push(mesh(1))
      log.push(mesh(3))
      assert.equal((await later).tasks, 3)
      assert.equal(log.last('mesh')?.tasks, 3)
    })

    it('a wait that times out names the node, what did not happen and where to look', async () => {
      const log = new EventLog('aggregator', 'see /tmp/aggregator.log')
      await assert.rejects(log.waitForEvent('certificate', () => true, 50, `certificate event for task ${TASK_HEX}`), (err: unknown) => {
        assert.ok(err instanceof EventTimeoutError, String(err))
        assert.equal(err.message, `aggregator: no certificate event for task ${TASK_HEX} within 50 ms; see /tmp/aggregator.log`)
        return true
      })
    })

    it('closing the log fails every wait at once with the reason', async () => {
      const log = new EventLog('operator-1')
      const waiting = log.waitFor(e => e.event === 'attested', 10_000, 'attested event')
      log.close(what => new Error(`operator-1 exited with no ${what}`))
      await assert.rejects(waiting, /operator-1 exited with no attested event/)
      await assert.rejects(log.waitFor(() => true, 10_000, 'ready event'), /exited with no ready event/)
    })
  })
})
