import { chmod, mkdir, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Level } from 'level'
import { Attestation, PoiError, QuorumCertificate, TaskAnnouncement, toHex } from '../protocols/wire/index.js'

/**
 * What one node keeps across restarts. Everything written here was validated
 * before (decoded from the wire, signatures checked), so reads trust it.
 *
 * Key layout (utf8 keys, binary values):
 *   task/<taskId>                        encoded TaskAnnouncement
 *   deadline/<deadline ms>/<taskId>      empty: index of tasks by deadline (reloading open tasks)
 *   status/<taskId>                      JSON TaskRecordStatus
 *   att/<taskId>/<operator>/<result>     encoded Attestation
 *   att-op/<operator>/<taskId>/<result>  empty: index by operator
 *   own/<taskId>                         encoded Attestation this node signed
 *   qc/<taskId>                          encoded QuorumCertificate
 *   evidence/<taskId>/<operator>         JSON of two encoded attestations
 *   conflict/<taskId>/certificates       JSON of two encoded certificates with different results
 *   conflict/<taskId>/attestation/<epoch>/<operator>
 *                                        JSON of an encoded certificate and an encoded attestation
 *                                        (another result, by an operator the certificate names)
 *   conflict/<taskId>/batch/<epoch>/<operator>
 *                                        JSON of a batch signature with its leaf for the task and
 *                                        an encoded attestation (another result, same operator)
 *   submit/<kind>/<id>                   JSON Submission: on-chain work not yet confirmed
 *
 * Writes that belong together go in one batch, so a SIGKILL at any point
 * leaves either all of them or none. An awaited write survives a SIGKILL (LevelDB
 * has handed it to the OS); only the own attestation is also fsync'd (power loss).
 */

export type TaskState = 'open' | 'attested' | 'quorum' | 'no-quorum'

export interface TaskRecordStatus {
  state: TaskState
  /** unix ms of the last change */
  updatedAt: number
  reason?: string
}

export interface StoredEvidence {
  taskId: Uint8Array
  operatorIndex: number
  a: Attestation
  b: Attestation
  foundAt: number
}

/**
 * Conflicting statements about one task (issue 10, hole 4), slashable on-chain: two valid
 * certificates with different results (every operator named as a signer in both), or a valid
 * certificate and a valid attestation with another result by an operator it names. Each
 * certificate names its epoch; the operator sets of those epochs rebuild the calldata.
 */
export type ConflictEvidence =
  | { kind: 'certificates', taskId: Uint8Array, a: QuorumCertificate, b: QuorumCertificate }
  | { kind: 'certificate-attestation', taskId: Uint8Array, certificate: QuorumCertificate, attestation: Attestation }
  | { kind: 'batch-attestation', taskId: Uint8Array, batch: BatchStatement, attestation: Attestation }

/**
 * One operator's signature over a batch (issue 15, point 4: its gossiped BatchSignature) and the
 * batch's leaf for the evidence's task with the leaf's Merkle proof to the root: what
 * SlashingManager.submitBatchLeafAndAttestation takes beside the operator's attestation. The
 * batch need not have settled; the signature over its root is the statement.
 */
export interface BatchStatement {
  root: `0x${string}`
  epoch: bigint
  summaryHash: `0x${string}`
  /** The signer's index in the operator set of `epoch`. */
  operatorIndex: number
  /** 96-byte compressed G2 signature over POI_BATCH_V1(chainId, taskManager, root, epoch, summaryHash). */
  signature: `0x${string}`
  resultHash: `0x${string}`
  outputRef: `0x${string}`
  /** Sibling hashes from the leaf up (BatchTree.proof). */
  proof: Array<`0x${string}`>
}

/** Conflict evidence as stored: `id` is its key under `conflict/` and its submission's id. */
export type StoredConflict = ConflictEvidence & { id: string, foundAt: number }

/**
 * Where a submission stands:
 * - pending: not yet on-chain; retried (and resumed after a restart) until it is;
 * - confirmed: settled on-chain by this node's account (txHash, gasUsed);
 * - settled-by-other: the chain already held a result (or the slash) from another account
 *   (settledBy, txHash of that transaction, resultHash for a certificate);
 * - failed: the contract refuses it for good (revert: its custom error), or its data is gone;
 * - moot: written by versions before issue 9 for both "settled by someone else" and "given up";
 *   read as pending, so the chain decides which it was.
 */
export type SubmissionState = 'pending' | 'confirmed' | 'settled-by-other' | 'failed' | 'moot'

/** Something this node must get on-chain, kept until the chain holds it (from this node or another). */
export type SubmissionKind = 'certificate' | 'evidence' | 'conflict' | 'zk'
export interface Submission {
  kind: SubmissionKind
  /** certificate: task id hex; evidence: `<taskId hex>/<operator index>`; conflict: StoredConflict.id */
  id: string
  state: SubmissionState
  attempts: number
  createdAt: number
  updatedAt: number
  /** confirmed: this node's transaction; settled-by-other: the other account's transaction */
  txHash?: string
  gasUsed?: string
  /** settled-by-other: the account whose transaction settled the task (or slashed the operator) */
  settledBy?: string
  /** settled-by-other, certificates: the result hash the chain holds (it may differ from ours) */
  resultHash?: string
  /** failed: the contract's custom error, e.g. InvalidSignature */
  revert?: string
  lastError?: string
}

/** A prefixed key space of a NodeStore (see NodeStore.area). */
export interface StoreArea {
  get: (key: string) => Promise<Uint8Array | undefined>
  /** All entries land together or none do. */
  put: (entries: Array<[string, Uint8Array]>, options?: { sync?: boolean }) => Promise<void>
  del: (keys: string[]) => Promise<void>
  /** Entries whose key starts with `keyPrefix`, in key order. */
  entries: (keyPrefix?: string) => Promise<Array<[string, Uint8Array]>>
  /** How many entries start with `keyPrefix` and their values' bytes, without holding them all. */
  size: (keyPrefix?: string) => Promise<{ entries: number, bytes: number }>
}

/** Key spaces NodeStore itself uses. */
const RESERVED_AREAS = new Set(['task', 'deadline', 'status', 'att', 'att-op', 'own', 'qc', 'evidence', 'conflict', 'submit', 'zk'])

/** A LevelDB operation failed; the message names the data directory, the action and what to do. */
export class StorageError extends PoiError {
  static readonly code = 'ERR_STORAGE'
  declare readonly code: typeof StorageError.code
  readonly path: string
  constructor (path: string, action: string, cause: unknown) {
    super(StorageError.code, `storage at ${path}: ${action} failed: ${describeCause(cause)}`, { cause })
    this.path = path
  }
}

/**
 * level reports a failed open as "Database failed to open" and keeps the reason (a held
 * LOCK, a corrupt file) in `cause`; the user needs that reason and what to do about it.
 */
function describeCause (cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause)
  const code = (cause as { code?: unknown }).code
  const inner = cause.cause instanceof Error ? cause.cause : undefined
  const innerCode = (inner as { code?: unknown } | undefined)?.code
  if (innerCode === 'LEVEL_LOCKED') return `${inner!.message}; another process (a running poi node?) has this data directory open: stop it or use another --data-dir`
  if (inner != null) return `${cause.message}: ${inner.message}`
  if (code === 'EEXIST' || code === 'ENOTDIR') return `${cause.message}; the path is not a directory: point --data-dir at a directory`
  if (code === 'LEVEL_DATABASE_NOT_OPEN') return `${cause.message} (the store was closed; is the node stopping?)`
  return cause.message
}

/**
 * A data directory holds task inputs and outputs, which may be private to their requester:
 * only the node's user may list or read it (DESIGN §3 keeps keys at 0600 for the same reason).
 */
export const DATA_DIR_MODE = 0o700
/**
 * LevelDB creates its files as 0666 minus the umask (0644 under the usual 022). The directory
 * mode already keeps others out; the files present at open are narrowed too, and `poi` runs
 * with umask 077 so the files LevelDB writes later are born 0600.
 */
export const DATA_FILE_MODE = 0o600

async function privateFiles (dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isFile()) await chmod(join(dir, entry.name), DATA_FILE_MODE)
  }
}

const OPERATOR_KEY_WIDTH = 6
const opKey = (i: number): string => i.toString().padStart(OPERATOR_KEY_WIDTH, '0')
/** A deadline (uint64 unix ms) as a fixed-width key part, so key order is deadline order. */
const DEADLINE_KEY_WIDTH = 20
const deadlineKey = (ms: bigint | number): string => BigInt(ms).toString().padStart(DEADLINE_KEY_WIDTH, '0')
const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder()

type Db = Level<string, Uint8Array>

export class NodeStore {
  readonly path: string
  private readonly db: Db

  private constructor (path: string, db: Db) {
    this.path = path
    this.db = db
  }

  static async open (path: string): Promise<NodeStore> {
    try {
      await mkdir(path, { recursive: true, mode: DATA_DIR_MODE })
      // mkdir leaves an existing directory's mode alone: a data dir made by an older version
      // (or by hand) is narrowed too.
      await chmod(path, DATA_DIR_MODE)
      const db: Db = new Level<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view' })
      await db.open()
      await privateFiles(path)
      return new NodeStore(path, db)
    } catch (err) {
      throw new StorageError(path, 'open', err)
    }
  }

  get isOpen (): boolean {
    return this.db.status === 'open'
  }

  async close (): Promise<void> {
    if (this.db.status === 'closed') return
    try {
      await this.db.close()
    } catch (err) {
      throw new StorageError(this.path, 'close', err)
    }
  }

  /**
   * Stores a task and, if it has none yet, its initial state. A task seen again (re-gossiped
   * after a restart empties gossipsub's seen cache) keeps its state: an attested or certified
   * task must not look open again. The task id is the hash of the task, so the bytes are the same.
   */
  async putTask (taskId: Uint8Array, task: TaskAnnouncement, state: TaskState = 'open'): Promise<void> {
    const ops: Array<{ type: 'put', key: string, value: Uint8Array }> = [
      { type: 'put', key: `task/${toHex(taskId)}`, value: TaskAnnouncement.encode(task) },
      { type: 'put', key: `deadline/${deadlineKey(task.deadline)}/${toHex(taskId)}`, value: new Uint8Array(0) }
    ]
    if (await this.read(`status/${toHex(taskId)}`) == null) {
      const status: TaskRecordStatus = { state, updatedAt: Date.now() }
      ops.push({ type: 'put', key: `status/${toHex(taskId)}`, value: utf8.encode(JSON.stringify(status)) })
    }
    await this.write('store task', ops)
  }

  async getTask (taskId: Uint8Array): Promise<TaskAnnouncement | undefined> {
    const bytes = await this.read(`task/${toHex(taskId)}`)
    return bytes == null ? undefined : TaskAnnouncement.decode(bytes)
  }

  /**
   * Tasks still open here (no certificate stored, not ended NoQuorum) whose deadline is after
   * `deadlineAfter` (unix ms), newest deadline first, at most `limit`: what an aggregator
   * reloads at start. Only the deadline index from `deadlineAfter` on is read, so the work does
   * not grow with the node's history.
   */
  async listOpenTasks (opts: { deadlineAfter: number, limit: number }): Promise<Array<{ taskId: Uint8Array, task: TaskAnnouncement }>> {
    const out: Array<{ taskId: Uint8Array, task: TaskAnnouncement }> = []
    if (opts.limit <= 0) return out
    const from = `deadline/${deadlineKey(Math.max(0, Math.floor(opts.deadlineAfter)) + 1)}`
    try {
      for await (const key of this.db.keys({ gte: from, lt: 'deadline/\xff', reverse: true })) {
        const id = key.slice(key.lastIndexOf('/') + 1)
        const state = (await this.getTaskState(fromHexKey(id)))?.state
        if (state === 'no-quorum' || state === 'quorum') continue
        if (await this.read(`qc/${id}`) != null) continue
        const bytes = await this.read(`task/${id}`)
        if (bytes == null) continue
        out.push({ taskId: fromHexKey(id), task: TaskAnnouncement.decode(bytes) })
        if (out.length >= opts.limit) break
      }
    } catch (err) {
      if (err instanceof StorageError) throw err
      throw new StorageError(this.path, 'scan deadline/', err)
    }
    return out
  }

  /**
   * The ids of the `limit` tasks stored here with the latest deadlines (latest first), whatever
   * their state: what `GET /v1/tasks?limit=` lists. Only `limit` keys of the deadline index are
   * read, so the cost does not grow with the node's history.
   */
  async listRecentTaskIds (limit: number): Promise<Uint8Array[]> {
    const out: Uint8Array[] = []
    if (limit <= 0) return out
    try {
      for await (const key of this.db.keys({ gte: 'deadline/', lt: 'deadline/\xff', reverse: true, limit })) {
        out.push(fromHexKey(key.slice(key.lastIndexOf('/') + 1)))
      }
    } catch (err) {
      throw new StorageError(this.path, 'scan deadline/', err)
    }
    return out
  }

  async setTaskState (taskId: Uint8Array, state: TaskState, reason?: string): Promise<void> {
    const status: TaskRecordStatus = { state, updatedAt: Date.now(), reason }
    await this.write('store task state', [
      { type: 'put', key: `status/${toHex(taskId)}`, value: utf8.encode(JSON.stringify(status)) }
    ])
  }

  async getTaskState (taskId: Uint8Array): Promise<TaskRecordStatus | undefined> {
    const bytes = await this.read(`status/${toHex(taskId)}`)
    return bytes == null ? undefined : JSON.parse(fromUtf8.decode(bytes)) as TaskRecordStatus
  }

  /** Stores an attestation accepted from gossip (or signed here) with its operator index entry. */
  async putAttestation (att: Attestation): Promise<void> {
    await this.write('store attestation', this.attestationOps(att))
  }

  /**
   * Stores this node's own signature before it is gossiped: after a restart the
   * node finds it and re-sends the same attestation instead of signing again.
   */
  async putOwnAttestation (att: Attestation): Promise<void> {
    const t = toHex(att.taskId)
    // fsync'd, unlike the other writes: this record is what stops a second, different
    // signature (slashable equivocation) after a power loss, not only after a process kill.
    await this.write('store own attestation', [
      ...this.attestationOps(att),
      { type: 'put', key: `own/${t}`, value: Attestation.encode(att) },
      { type: 'put', key: `status/${t}`, value: utf8.encode(JSON.stringify({ state: 'attested', updatedAt: Date.now() })) }
    ], { sync: true })
  }

  async getOwnAttestation (taskId: Uint8Array): Promise<Attestation | undefined> {
    const bytes = await this.read(`own/${toHex(taskId)}`)
    return bytes == null ? undefined : Attestation.decode(bytes)
  }

  /**
   * A task's stored attestations, by operator. With `perOperator`, at most that many results of
   * each operator (the first ones in key order): two already prove equivocation, and more
   * would only cost memory.
   */
  async getAttestations (taskId: Uint8Array, opts: { perOperator?: number } = {}): Promise<Attestation[]> {
    const prefix = `att/${toHex(taskId)}/`
    if (opts.perOperator === undefined) return await this.scan(prefix, bytes => Attestation.decode(bytes))
    const out: Attestation[] = []
    const perOperator = new Map<string, number>()
    try {
      for await (const key of this.db.keys({ gte: prefix, lt: prefix + '\xff' })) {
        const operator = key.slice(prefix.length, prefix.length + OPERATOR_KEY_WIDTH)
        const seen = perOperator.get(operator) ?? 0
        if (seen >= opts.perOperator) continue
        perOperator.set(operator, seen + 1)
        const bytes = await this.read(key)
        if (bytes != null) out.push(Attestation.decode(bytes))
      }
    } catch (err) {
      if (err instanceof StorageError) throw err
      throw new StorageError(this.path, `scan ${prefix}`, err)
    }
    return out
  }

  async getAttestationsByOperator (operatorIndex: number): Promise<Attestation[]> {
    const prefix = `att-op/${opKey(operatorIndex)}/`
    const keys = await this.scanKeys(prefix)
    const out: Attestation[] = []
    for (const key of keys) {
      const [taskId, result] = key.slice(prefix.length).split('/')
      const bytes = await this.read(`att/${taskId}/${opKey(operatorIndex)}/${result}`)
      if (bytes != null) out.push(Attestation.decode(bytes))
    }
    return out
  }

  /**
   * The certificate and the task's final state land together; with `submit`,
   * so does the pending on-chain submission, so a crash right after forming a
   * QC still leaves it to be posted after the restart.
   */
  async putCertificate (qc: QuorumCertificate, opts: { submit?: boolean } = {}): Promise<void> {
    const t = toHex(qc.taskId)
    const ops: Array<{ type: 'put', key: string, value: Uint8Array }> = [
      { type: 'put', key: `qc/${t}`, value: QuorumCertificate.encode(qc) },
      { type: 'put', key: `status/${t}`, value: utf8.encode(JSON.stringify({ state: 'quorum', updatedAt: Date.now() })) }
    ]
    if (opts.submit === true) ops.push(this.submissionOp(newSubmission('certificate', t)))
    await this.write('store certificate', ops)
  }

  /**
   * Keeps the first valid zk proof (its encoded ZkProofBody) seen for a task of tier zk and,
   * with `submit`, a pending submission of it (issue 16). A later proof for the task is not stored:
   * false then.
   */
  async putZkProof (taskId: Uint8Array, body: Uint8Array, opts: { submit?: boolean } = {}): Promise<boolean> {
    const t = toHex(taskId)
    if (await this.read(`zk/${t}`) != null) return false
    const ops: Array<{ type: 'put', key: string, value: Uint8Array }> = [{ type: 'put', key: `zk/${t}`, value: body }]
    if (opts.submit === true) ops.push(this.submissionOp(newSubmission('zk', t)))
    await this.write('store zk proof', ops)
    return true
  }

  /** The zk proof body stored for a task (encoded), if any. */
  async getZkProof (taskId: Uint8Array): Promise<Uint8Array | undefined> {
    return await this.read(`zk/${toHex(taskId)}`)
  }

  async putSubmission (sub: Submission): Promise<void> {
    await this.write(`store ${sub.kind} submission`, [this.submissionOp(sub)])
  }

  async getSubmission (kind: SubmissionKind, id: string): Promise<Submission | undefined> {
    const bytes = await this.read(`submit/${kind}/${id}`)
    return bytes == null ? undefined : JSON.parse(fromUtf8.decode(bytes)) as Submission
  }

  /** Submissions still waiting for the chain, oldest first (with the legacy 'moot' ones, which may have been lost). */
  async listPendingSubmissions (kind?: SubmissionKind): Promise<Submission[]> {
    const all = await this.scan(kind == null ? 'submit/' : `submit/${kind}/`, bytes => JSON.parse(fromUtf8.decode(bytes)) as Submission)
    return all.filter(s => s.state === 'pending' || s.state === 'moot').sort((a, b) => a.createdAt - b.createdAt)
  }

  private submissionOp (sub: Submission): { type: 'put', key: string, value: Uint8Array } {
    return { type: 'put', key: `submit/${sub.kind}/${sub.id}`, value: utf8.encode(JSON.stringify(sub)) }
  }

  async getCertificate (taskId: Uint8Array): Promise<QuorumCertificate | undefined> {
    const bytes = await this.read(`qc/${toHex(taskId)}`)
    return bytes == null ? undefined : QuorumCertificate.decode(bytes)
  }

  async listCertificates (): Promise<QuorumCertificate[]> {
    return await this.scan('qc/', bytes => QuorumCertificate.decode(bytes))
  }

  /** Returns the id its submission (if any) is kept under. */
  async putEvidence (e: Omit<StoredEvidence, 'foundAt'>, opts: { submit?: boolean } = {}): Promise<string> {
    const value = JSON.stringify({
      taskId: toHex(e.taskId),
      operatorIndex: e.operatorIndex,
      a: toHex(Attestation.encode(e.a)),
      b: toHex(Attestation.encode(e.b)),
      foundAt: Date.now()
    })
    const ops: Array<{ type: 'put', key: string, value: Uint8Array }> = [
      { type: 'put', key: `evidence/${toHex(e.taskId)}/${opKey(e.operatorIndex)}`, value: utf8.encode(value) }
    ]
    const id = `${toHex(e.taskId)}/${opKey(e.operatorIndex)}`
    if (opts.submit === true) ops.push(this.submissionOp(newSubmission('evidence', id)))
    await this.write('store equivocation evidence', ops)
    return id
  }

  async getEvidence (taskId: Uint8Array, operatorIndex: number): Promise<StoredEvidence | undefined> {
    const bytes = await this.read(`evidence/${toHex(taskId)}/${opKey(operatorIndex)}`)
    return bytes == null ? undefined : parseEvidence(bytes)
  }

  async listEvidence (): Promise<StoredEvidence[]> {
    return await this.scan('evidence/', parseEvidence)
  }

  /**
   * Stores conflicting statements about one task (one entry per pair of certificates, one per
   * accused attester), with a pending submission when `submit`. Returns the id both are kept under.
   */
  async putConflict (e: ConflictEvidence, opts: { submit?: boolean } = {}): Promise<string> {
    const id = conflictIdOf(e)
    const value = e.kind === 'certificates'
      ? { kind: e.kind, taskId: toHex(e.taskId), a: toHex(QuorumCertificate.encode(e.a)), b: toHex(QuorumCertificate.encode(e.b)), foundAt: Date.now() }
      : e.kind === 'certificate-attestation'
        ? { kind: e.kind, taskId: toHex(e.taskId), certificate: toHex(QuorumCertificate.encode(e.certificate)), attestation: toHex(Attestation.encode(e.attestation)), foundAt: Date.now() }
        : { kind: e.kind, taskId: toHex(e.taskId), batch: { ...e.batch, epoch: e.batch.epoch.toString() }, attestation: toHex(Attestation.encode(e.attestation)), foundAt: Date.now() }
    const ops: Array<{ type: 'put', key: string, value: Uint8Array }> = [{ type: 'put', key: `conflict/${id}`, value: utf8.encode(JSON.stringify(value)) }]
    if (opts.submit === true) ops.push(this.submissionOp(newSubmission('conflict', id)))
    await this.write('store conflicting-certificate evidence', ops)
    return id
  }

  async getConflict (id: string): Promise<StoredConflict | undefined> {
    const bytes = await this.read(`conflict/${id}`)
    return bytes == null ? undefined : parseConflict(id, bytes)
  }

  /** Every stored conflict of `taskId` (default: of every task), in key order. */
  async listConflicts (taskId?: Uint8Array): Promise<StoredConflict[]> {
    const prefix = taskId == null ? 'conflict/' : `conflict/${toHex(taskId)}/`
    const out: StoredConflict[] = []
    try {
      for await (const [key, value] of this.db.iterator({ gte: prefix, lt: prefix + '\xff' })) out.push(parseConflict(key.slice('conflict/'.length), value))
    } catch (err) {
      throw new StorageError(this.path, `scan ${prefix}`, err)
    }
    return out
  }

  /** Forgets a conflict and its submission record. */
  async deleteConflict (id: string): Promise<void> {
    try {
      await this.db.batch([{ type: 'del', key: `conflict/${id}` }, { type: 'del', key: `submit/conflict/${id}` }])
    } catch (err) {
      throw new StorageError(this.path, `delete conflict ${id}`, err)
    }
  }


  private attestationOps (att: Attestation): Array<{ type: 'put', key: string, value: Uint8Array }> {
    const t = toHex(att.taskId)
    const r = toHex(att.resultHash)
    const o = opKey(att.operatorIndex)
    return [
      { type: 'put', key: `att/${t}/${o}/${r}`, value: Attestation.encode(att) },
      { type: 'put', key: `att-op/${o}/${t}/${r}`, value: new Uint8Array(0) }
    ]
  }

  /**
   * A key space of its own inside this store (keys are prefixed `<name>/`),
   * for stores built on top: content blocks, stream messages. Writes through
   * it are atomic per call and fail with StorageError naming the path.
   */
  area (name: string): StoreArea {
    if (!/^[a-z][a-z0-9-]*$/.test(name) || RESERVED_AREAS.has(name)) throw new TypeError(`invalid or reserved store area name ${JSON.stringify(name)}`)
    const prefix = `${name}/`
    return {
      get: async (key) => await this.read(prefix + key),
      put: async (entries, options) => { await this.write(`write ${name}`, entries.map(([key, value]) => ({ type: 'put' as const, key: prefix + key, value })), options) },
      del: async (keys) => {
        try {
          await this.db.batch(keys.map(key => ({ type: 'del' as const, key: prefix + key })))
        } catch (err) {
          throw new StorageError(this.path, `delete from ${name}`, err)
        }
      },
      entries: async (keyPrefix = '') => {
        const out: Array<[string, Uint8Array]> = []
        try {
          for await (const [key, value] of this.db.iterator({ gte: prefix + keyPrefix, lt: prefix + keyPrefix + '\xff' })) out.push([key.slice(prefix.length), value])
        } catch (err) {
          throw new StorageError(this.path, `scan ${name}`, err)
        }
        return out
      },
      size: async (keyPrefix = '') => {
        let entries = 0
        let bytes = 0
        try {
          for await (const value of this.db.values({ gte: prefix + keyPrefix, lt: prefix + keyPrefix + '\xff' })) {
            entries++
            bytes += value.length
          }
        } catch (err) {
          throw new StorageError(this.path, `scan ${name}`, err)
        }
        return { entries, bytes }
      }
    }
  }

  private async write (action: string, ops: Array<{ type: 'put', key: string, value: Uint8Array }>, options: { sync?: boolean } = {}): Promise<void> {
    try {
      await this.db.batch(ops, { sync: options.sync === true })
    } catch (err) {
      throw new StorageError(this.path, action, err)
    }
  }

  private async read (key: string): Promise<Uint8Array | undefined> {
    try {
      return await this.db.get(key)
    } catch (err) {
      throw new StorageError(this.path, `read ${key}`, err)
    }
  }

  private async scan<T> (prefix: string, decode: (bytes: Uint8Array) => T): Promise<T[]> {
    const out: T[] = []
    try {
      for await (const value of this.db.values({ gte: prefix, lt: prefix + '\xff' })) {
        out.push(decode(value))
      }
    } catch (err) {
      throw new StorageError(this.path, `scan ${prefix}`, err)
    }
    return out
  }

  private async scanKeys (prefix: string): Promise<string[]> {
    const out: string[] = []
    try {
      for await (const key of this.db.keys({ gte: prefix, lt: prefix + '\xff' })) out.push(key)
    } catch (err) {
      throw new StorageError(this.path, `scan ${prefix}`, err)
    }
    return out
  }
}

function fromHexKey (hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, 'hex'))
}

function parseEvidence (bytes: Uint8Array): StoredEvidence {
  const j = JSON.parse(fromUtf8.decode(bytes)) as { taskId: string, operatorIndex: number, a: string, b: string, foundAt: number }
  return {
    taskId: Uint8Array.from(Buffer.from(j.taskId, 'hex')),
    operatorIndex: j.operatorIndex,
    a: Attestation.decode(Buffer.from(j.a, 'hex')),
    b: Attestation.decode(Buffer.from(j.b, 'hex')),
    foundAt: j.foundAt
  }
}

/**
 * Where conflict evidence is kept (and its submission's id): one pair of certificates per task,
 * one certificate-attestation entry and one batch-attestation entry per attestation's epoch and
 * operator (the chain slashes an operator once per task, whatever the evidence).
 */
export function conflictIdOf (e: { kind: 'certificates', taskId: Uint8Array } | { kind: 'certificate-attestation' | 'batch-attestation', taskId: Uint8Array, attestation: { epoch: bigint, operatorIndex: number } }): string {
  const t = toHex(e.taskId)
  if (e.kind === 'certificates') return `${t}/certificates`
  return `${t}/${e.kind === 'certificate-attestation' ? 'attestation' : 'batch'}/${e.attestation.epoch}/${opKey(e.attestation.operatorIndex)}`
}

function parseConflict (id: string, bytes: Uint8Array): StoredConflict {
  const j = JSON.parse(fromUtf8.decode(bytes)) as {
    kind: ConflictEvidence['kind'], taskId: string, foundAt: number, a?: string, b?: string, certificate?: string, attestation?: string,
    batch?: Omit<BatchStatement, 'epoch'> & { epoch: string }
  }
  const taskId = Uint8Array.from(Buffer.from(j.taskId, 'hex'))
  const qc = (hex: string | undefined): QuorumCertificate => QuorumCertificate.decode(Buffer.from(hex ?? '', 'hex'))
  const attestation = (): Attestation => Attestation.decode(Buffer.from(j.attestation ?? '', 'hex'))
  if (j.kind === 'certificates') return { kind: j.kind, id, taskId, a: qc(j.a), b: qc(j.b), foundAt: j.foundAt }
  if (j.kind === 'batch-attestation' && j.batch != null) return { kind: j.kind, id, taskId, batch: { ...j.batch, epoch: BigInt(j.batch.epoch) }, attestation: attestation(), foundAt: j.foundAt }
  return { kind: 'certificate-attestation', id, taskId, certificate: qc(j.certificate), attestation: attestation(), foundAt: j.foundAt }
}

function newSubmission (kind: SubmissionKind, id: string): Submission {
  const now = Date.now()
  return { kind, id, state: 'pending', attempts: 0, createdAt: now, updatedAt: now }
}
