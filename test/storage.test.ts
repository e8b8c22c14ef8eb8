import { strict as assert } from 'node:assert'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { uint256ToBytes, type Attestation, type QuorumCertificate, type TaskAnnouncement } from '../protocols/wire/index.js'
import { DATA_DIR_MODE, DATA_FILE_MODE, NodeStore, StorageError } from '../storage/index.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const bytes = (n: number, fill: number): Uint8Array<ArrayBuffer> => new Uint8Array(n).fill(fill)

/** How many awaited writes the child makes before it is killed. */
const DURABILITY_WRITES = 40
/** The child only opens LevelDB and writes; seconds, not minutes, even on a loaded machine. */
const CHILD_READY_TIMEOUT_MS = 20_000

function task (nonce: bigint): TaskAnnouncement {
  return {
    version: 1,
    chainId: 31337n,
    modelId: bytes(32, 7),
    input: new TextEncoder().encode(`{"x":{"data":[${nonce}]}}`) as Uint8Array<ArrayBuffer>,
    inputRef: new Uint8Array(0),
    params: new Uint8Array(0),
    fee: uint256ToBytes(10n ** 15n) as Uint8Array<ArrayBuffer>,
    deadline: 1_900_000_000_000n,
    quorumBps: 6667,
    nonce,
    requester: bytes(20, 0xaa),
    requesterSig: bytes(65, 0x1b),
    validationRequest: new Uint8Array(0),
    tier: 0,
    inputCommitment: new Uint8Array(0)
  }
}

function attestation (taskId: Uint8Array<ArrayBuffer>, operatorIndex: number, result: number): Attestation {
  return {
    version: 1,
    taskId,
    resultHash: bytes(32, result),
    outputRef: bytes(32, result),
    epoch: 0n,
    operatorIndex,
    blsSig: Uint8Array.from(randomBytes(96)),
    output: new TextEncoder().encode(`output ${result}`) as Uint8Array<ArrayBuffer>
  }
}

function certificate (taskId: Uint8Array<ArrayBuffer>): QuorumCertificate {
  return {
    version: 1,
    taskId,
    resultHash: bytes(32, 1),
    outputRef: bytes(32, 1),
    epoch: 0n,
    signerBitmap: Uint8Array.of(0b0111),
    aggregateSig: Uint8Array.from(randomBytes(96)),
    signedStake: uint256ToBytes(96n * 10n ** 18n) as Uint8Array<ArrayBuffer>,
    totalStake: uint256ToBytes(128n * 10n ** 18n) as Uint8Array<ArrayBuffer>,
    output: new TextEncoder().encode('output 1') as Uint8Array<ArrayBuffer>
  }
}

/**
 * LevelDB hands back Buffers (a Uint8Array subclass); strict deepEqual compares prototypes,
 * so messages are compared with their byte fields as hex.
 */
function plain (value: unknown): unknown {
  if (value instanceof Uint8Array) return `bytes:${hex(value)}`
  if (Array.isArray(value)) return value.map(plain)
  if (value != null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]))
  return value
}
const sameMessage = (actual: unknown, expected: unknown): void => { assert.deepEqual(plain(actual), plain(expected)) }

const taskIdFor = (n: number): Uint8Array<ArrayBuffer> => bytes(32, n)
/** Attestations compared by their bytes-relevant fields, order-independent. */
const attKey = (a: Attestation): string => `${hex(a.taskId)}/${a.operatorIndex}/${hex(a.resultHash)}/${hex(a.blsSig)}`
const sameAttestations = (actual: Attestation[], expected: Attestation[]): void => {
  assert.deepEqual(actual.map(attKey).sort(), expected.map(attKey).sort())
}

async function rejectsWithStorageError (fn: () => Promise<unknown>, path: string, why?: RegExp): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(err instanceof StorageError, `expected StorageError, got ${String(err)}`)
    assert.equal(err.path, path)
    assert.ok(err.message.includes(path), `message should contain ${path}: ${err.message}`)
    if (why != null) assert.match(err.message, why)
    return true
  })
}

describe('storage: NodeStore on LevelDB', () => {
  let root: string
  let store: NodeStore | undefined
  beforeEach(async () => { root = await mkdtemp(join(tmpdir(), 'poi-store-')) })
  afterEach(async () => {
    await store?.close()
    store = undefined
    await rm(root, { recursive: true, force: true })
  })

  it('keeps areas apart from each other and from its own keys, and refuses reserved area names', async () => {
    store = await NodeStore.open(join(root, 'db'))
    const blocks = store.area('blocks')
    const streams = store.area('streams')
    await blocks.put([['a', Uint8Array.of(1)], ['b', Uint8Array.of(2)]])
    await streams.put([['a', Uint8Array.of(9)]])
    assert.deepEqual([...(await blocks.get('a'))!], [1])
    assert.deepEqual([...(await streams.get('a'))!], [9])
    assert.deepEqual((await blocks.entries()).map(([k]) => k), ['a', 'b'])
    await blocks.del(['a'])
    assert.equal(await blocks.get('a'), undefined)
    assert.deepEqual(await store.listCertificates(), [])
    assert.throws(() => store!.area('qc'), TypeError)
    await store.close()
    await assert.rejects(blocks.put([['c', Uint8Array.of(3)]]), (err: Error) => err instanceof StorageError && err.message.includes(join(root, 'db')))
  })

  it('round-trips a task and its state', async () => {
    store = await NodeStore.open(join(root, 'db'))
    const t = task(1n)
    const id = taskIdFor(1)
    assert.equal(await store.getTask(id), undefined)
    assert.equal(await store.getTaskState(id), undefined)
    const before = Date.now()
    await store.putTask(id, t)
    sameMessage(await store.getTask(id), t)
    const state = await store.getTaskState(id)
    assert.equal(state?.state, 'open')
    assert.ok(state != null && state.updatedAt >= before && state.updatedAt <= Date.now())

    await store.setTaskState(id, 'no-quorum', 'deadline passed with 1 of 4 signatures')
    assert.deepEqual({ ...await store.getTaskState(id), updatedAt: 0 }, { state: 'no-quorum', reason: 'deadline passed with 1 of 4 signatures', updatedAt: 0 })
    await store.putTask(taskIdFor(2), task(2n), 'attested')
    assert.equal((await store.getTaskState(taskIdFor(2)))?.state, 'attested')
  })

  it('a task stored again (re-gossiped after a restart) keeps its state', async () => {
    store = await NodeStore.open(join(root, 'db'))
    const id = taskIdFor(3)
    await store.putTask(id, task(3n))
    await store.putCertificate(certificate(id))
    await store.putTask(id, task(3n))
    assert.equal((await store.getTaskState(id))?.state, 'quorum')
    sameMessage(await store.getTask(id), task(3n))
  })

  it('round-trips attestations by task and by operator, keeping both results of an equivocating operator', async () => {
    store = await NodeStore.open(join(root, 'db'))
    const t1 = taskIdFor(1)
    const t2 = taskIdFor(2)
    const t1a = [attestation(t1, 0, 1), attestation(t1, 1, 1), attestation(t1, 2, 1), attestation(t1, 2, 9)]
    const t2a = [attestation(t2, 0, 5), attestation(t2, 12, 5)]
    for (const a of [...t1a, ...t2a]) await store.putAttestation(a)

    sameAttestations(await store.getAttestations(t1), t1a)
    sameAttestations(await store.getAttestations(t2), t2a)
    assert.deepEqual(await store.getAttestations(taskIdFor(3)), [])
    sameAttestations(await store.getAttestationsByOperator(0), [t1a[0], t2a[0]])
    sameAttestations(await store.getAttestationsByOperator(2), [t1a[2], t1a[3]])
    // Index 1 is a prefix of 12 as a decimal string; the fixed-width key keeps them apart.
    sameAttestations(await store.getAttestationsByOperator(1), [t1a[1]])
    sameAttestations(await store.getAttestationsByOperator(12), [t2a[1]])
    assert.deepEqual(await store.getAttestationsByOperator(7), [])
    // Every field survives, not only the ones compared above.
    const [got] = (await store.getAttestations(t2)).filter(a => a.operatorIndex === 12)
    sameMessage(got, t2a[1])
  })

  it('lists open tasks by deadline, newest first and bounded, skipping certified, NoQuorum and long-past ones', async () => {
    store = await NodeStore.open(join(root, 'db'))
    const now = 1_900_000_000_000
    const withDeadline = (n: number, deadline: number): TaskAnnouncement => ({ ...task(BigInt(n)), deadline: BigInt(deadline) })
    await store.putTask(taskIdFor(1), withDeadline(1, now + 1_000))
    await store.putTask(taskIdFor(2), withDeadline(2, now + 3_000))
    await store.putTask(taskIdFor(3), withDeadline(3, now + 2_000), 'attested')
    await store.putTask(taskIdFor(4), withDeadline(4, now + 4_000))
    await store.putCertificate(certificate(taskIdFor(4)))
    await store.putTask(taskIdFor(5), withDeadline(5, now + 5_000))
    await store.setTaskState(taskIdFor(5), 'no-quorum')
    await store.putTask(taskIdFor(6), withDeadline(6, now - 5_000))
    const ids = (list: Array<{ taskId: Uint8Array }>): number[] => list.map(t => t.taskId[0])
    assert.deepEqual(ids(await store.listOpenTasks({ deadlineAfter: now, limit: 10 })), [2, 3, 1])
    assert.deepEqual(ids(await store.listOpenTasks({ deadlineAfter: now, limit: 2 })), [2, 3])
    assert.deepEqual(ids(await store.listOpenTasks({ deadlineAfter: now - 10_000, limit: 10 })), [2, 3, 1, 6])
    assert.deepEqual(ids(await store.listOpenTasks({ deadlineAfter: now + 1_000, limit: 10 })), [2, 3])
    sameMessage((await store.listOpenTasks({ deadlineAfter: now + 2_500, limit: 1 }))[0].task, withDeadline(2, now + 3_000))
  })

  it('lists the most recent task ids by deadline, latest first, whatever their state, reading only `limit` of them', async () => {
    store = await NodeStore.open(join(root, 'db'))
    const now = 1_900_000_000_000
    const withDeadline = (n: number, deadline: number): TaskAnnouncement => ({ ...task(BigInt(n)), deadline: BigInt(deadline) })
    await store.putTask(taskIdFor(1), withDeadline(1, now + 1_000))
    await store.putTask(taskIdFor(2), withDeadline(2, now + 3_000))
    await store.putTask(taskIdFor(3), withDeadline(3, now - 5_000))
    await store.putCertificate(certificate(taskIdFor(2)))
    await store.putTask(taskIdFor(4), withDeadline(4, now + 2_000))
    await store.setTaskState(taskIdFor(4), 'no-quorum')
    const ids = (list: Uint8Array[]): number[] => list.map(t => t[0])
    assert.deepEqual(ids(await store.listRecentTaskIds(10)), [2, 4, 1, 3])
    assert.deepEqual(ids(await store.listRecentTaskIds(2)), [2, 4])
    assert.deepEqual(await store.listRecentTaskIds(0), [])
  })

  it('reads at most `perOperator` results of each operator for a task', async () => {
    store = await NodeStore.open(join(root, 'db'))
    const t = taskIdFor(1)
    const spam = [1, 2, 3, 4].map(r => attestation(t, 2, r))
    const others = [attestation(t, 0, 1), attestation(t, 7, 1)]
    for (const a of [...spam, ...others]) await store.putAttestation(a)
    const read = await store.getAttestations(t, { perOperator: 2 })
    sameAttestations(read, [...spam.slice(0, 2), ...others])
    sameAttestations(await store.getAttestations(t), [...spam, ...others])
  })

  it('storing the same attestation twice keeps one copy', async () => {
    store = await NodeStore.open(join(root, 'db'))
    const a = attestation(taskIdFor(1), 3, 1)
    await store.putAttestation(a)
    await store.putAttestation(a)
    assert.equal((await store.getAttestations(taskIdFor(1))).length, 1)
    assert.equal((await store.getAttestationsByOperator(3)).length, 1)
  })

  it('putOwnAttestation stores the attestation, the own record and the "attested" state together', async () => {
    store = await NodeStore.open(join(root, 'db'))
    const id = taskIdFor(4)
    await store.putTask(id, task(4n))
    assert.equal(await store.getOwnAttestation(id), undefined)
    const own = attestation(id, 5, 2)
    await store.putOwnAttestation(own)
    sameMessage(await store.getOwnAttestation(id), own)
    sameAttestations(await store.getAttestations(id), [own])
    sameAttestations(await store.getAttestationsByOperator(5), [own])
    assert.equal((await store.getTaskState(id))?.state, 'attested')
  })

  it('putCertificate stores the certificate and the "quorum" state; listCertificates lists them', async () => {
    store = await NodeStore.open(join(root, 'db'))
    assert.deepEqual(await store.listCertificates(), [])
    const qcs = [certificate(taskIdFor(1)), certificate(taskIdFor(2))]
    for (const qc of qcs) await store.putCertificate(qc)
    sameMessage(await store.getCertificate(taskIdFor(1)), qcs[0])
    assert.equal(await store.getCertificate(taskIdFor(3)), undefined)
    assert.equal((await store.getTaskState(taskIdFor(2)))?.state, 'quorum')
    const listed = await store.listCertificates()
    assert.deepEqual(listed.map(q => hex(q.taskId)).sort(), qcs.map(q => hex(q.taskId)).sort())
  })

  it('round-trips equivocation evidence', async () => {
    store = await NodeStore.open(join(root, 'db'))
    assert.deepEqual(await store.listEvidence(), [])
    const id = taskIdFor(6)
    const a = attestation(id, 3, 1)
    const b = attestation(id, 3, 2)
    const before = Date.now()
    await store.putEvidence({ taskId: id, operatorIndex: 3, a, b })
    const [e, ...more] = await store.listEvidence()
    assert.equal(more.length, 0)
    sameMessage(e.taskId, id)
    assert.equal(e.operatorIndex, 3)
    sameMessage(e.a, a)
    sameMessage(e.b, b)
    assert.ok(e.foundAt >= before && e.foundAt <= Date.now())
  })

  it('everything survives close and reopen', async () => {
    const path = join(root, 'db')
    store = await NodeStore.open(path)
    const id = taskIdFor(8)
    const own = attestation(id, 0, 1)
    const other = attestation(id, 1, 1)
    const qc = certificate(id)
    await store.putTask(id, task(8n))
    await store.putOwnAttestation(own)
    await store.putAttestation(other)
    await store.putCertificate(qc)
    await store.putEvidence({ taskId: id, operatorIndex: 1, a: other, b: attestation(id, 1, 9) })
    await store.close()
    assert.equal(store.isOpen, false)

    store = await NodeStore.open(path)
    assert.equal(store.isOpen, true)
    sameMessage(await store.getTask(id), task(8n))
    sameMessage(await store.getOwnAttestation(id), own)
    sameAttestations(await store.getAttestations(id), [own, other])
    sameMessage(await store.getCertificate(id), qc)
    assert.equal((await store.getTaskState(id))?.state, 'quorum')
    assert.equal((await store.listEvidence()).length, 1)
  })

  it('an operation on a closed store is a StorageError naming the path, not a crash', async () => {
    const path = join(root, 'db')
    store = await NodeStore.open(path)
    await store.close()
    await store.close() // closing twice is harmless
    const id = taskIdFor(1)
    await rejectsWithStorageError(async () => await store!.getTask(id), path, /closed/)
    await rejectsWithStorageError(async () => await store!.putAttestation(attestation(id, 0, 1)), path, /store attestation/)
    await rejectsWithStorageError(async () => await store!.putOwnAttestation(attestation(id, 0, 1)), path)
    await rejectsWithStorageError(async () => await store!.setTaskState(id, 'open'), path)
    await rejectsWithStorageError(async () => await store!.getAttestations(id), path)
    await rejectsWithStorageError(async () => await store!.getAttestationsByOperator(0), path)
    await rejectsWithStorageError(async () => await store!.listCertificates(), path)
    await rejectsWithStorageError(async () => await store!.listEvidence(), path)
  })

  it('keeps its data private: the directory 0700 and its files 0600, also for a directory made world-readable before', async () => {
    const path = join(root, 'private')
    await mkdir(path, { mode: 0o755 })
    await chmod(path, 0o755)
    store = await NodeStore.open(path)
    await store.putTask(taskIdFor(1), task(1n))
    await store.close()
    // Files LevelDB wrote while open are narrowed the next time the store opens.
    store = await NodeStore.open(path)
    const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777
    assert.equal(await mode(path), DATA_DIR_MODE)
    const files = (await readdir(path, { withFileTypes: true })).filter(e => e.isFile())
    assert.ok(files.length > 0)
    for (const f of files) assert.equal(await mode(join(path, f.name)), DATA_FILE_MODE, `${f.name} is ${(await mode(join(path, f.name))).toString(8)}`)
  })

  it('opening a path that is a regular file is a StorageError naming the path', async () => {
    const path = join(root, 'not-a-dir')
    await writeFile(path, 'x')
    await rejectsWithStorageError(async () => await NodeStore.open(path), path, /not a directory/)
  })

  it('opening a data dir another store holds is a StorageError that says so', async () => {
    const path = join(root, 'db')
    store = await NodeStore.open(path)
    await rejectsWithStorageError(async () => await NodeStore.open(path), path, /another process.*--data-dir/)
  })

  it('keeps every awaited write when the writing process is SIGKILLed', async function () {
    this.timeout(30_000)
    const path = join(root, 'db')
    const storageModule = pathToFileURL(resolve(dirname(fileURLToPath(import.meta.url)), '../storage/index.js')).href
    const script = join(root, 'writer.mjs')
    // Each attestation is awaited, then "written" is printed; nothing is closed or flushed
    // on purpose: the process dies the way a crashed or OOM-killed node does.
    await writeFile(script, `
import { NodeStore } from ${JSON.stringify(storageModule)}
const [path, n] = process.argv.slice(2)
const store = await NodeStore.open(path)
for (let i = 0; i < Number(n); i++) {
  const taskId = new Uint8Array(32).fill(i % 4)
  await store.putAttestation({ version: 1, taskId, resultHash: new Uint8Array(32).fill(i), outputRef: new Uint8Array(32), epoch: 0n, operatorIndex: i, blsSig: new Uint8Array(96).fill(i), output: new Uint8Array(0) })
}
await store.putOwnAttestation({ version: 1, taskId: new Uint8Array(32).fill(9), resultHash: new Uint8Array(32).fill(9), outputRef: new Uint8Array(32), epoch: 0n, operatorIndex: Number(n), blsSig: new Uint8Array(96), output: new Uint8Array(0) })
process.stdout.write('written\\n')
setInterval(() => {}, 1 << 30)
`)
    const child = spawn(process.execPath, [script, path, String(DURABILITY_WRITES)], { stdio: ['ignore', 'pipe', 'pipe'] })
    const exited = new Promise<NodeJS.Signals | number | null>(resolve => child.once('exit', (code, signal) => resolve(signal ?? code)))
    try {
      let stderr = ''
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`writer did not print "written" within ${CHILD_READY_TIMEOUT_MS} ms; stderr: ${stderr}`)), CHILD_READY_TIMEOUT_MS)
        let out = ''
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString()
          if (out.includes('written')) { clearTimeout(timer); resolve() }
        })
        child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`writer exited early with ${code}; stderr: ${stderr}`)) })
      })
    } finally {
      child.kill('SIGKILL')
    }
    assert.equal(await exited, 'SIGKILL')

    store = await NodeStore.open(path)
    let found = 0
    for (let i = 0; i < DURABILITY_WRITES; i++) {
      const atts = await store.getAttestationsByOperator(i)
      assert.equal(atts.length, 1, `attestation of operator ${i} lost`)
      assert.equal(hex(atts[0].resultHash), hex(new Uint8Array(32).fill(i)))
      found++
    }
    assert.equal(found, DURABILITY_WRITES)
    const ownTask = new Uint8Array(32).fill(9)
    assert.ok(await store.getOwnAttestation(ownTask) != null, 'own attestation lost')
    assert.equal((await store.getTaskState(ownTask))?.state, 'attested')
  })
})
