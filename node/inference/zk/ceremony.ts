/**
 * The Groth16 setup of a circuit without a single trusted party (issue 16, point 2).
 *
 * Phase 1, the powers of tau, is generated locally by whoever starts the ceremony: they are
 * trusted (the record names them; a published ptau can be supplied instead). Phase 2 is a chain
 * of contributions in one directory: each contributor first checks the chain so far (the last
 * key is the file the record names, snarkjs verifies it against the circuit and the ptau, and
 * its own list of contributions is the record's), then adds theirs. The key is sound if any one
 * contributor was honest and destroyed their randomness (it never leaves snarkjs here).
 *
 * The directory is the ceremony: `ceremony.json` (the record), the circuit's r1cs, the ptau, the
 * keys in order, and at the end the verification key. Every file is written under a temporary
 * name and renamed, the record last: a step cut short leaves the record as it was.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { copyFile, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { hostname, userInfo } from 'node:os'
import { basename, join, resolve } from 'node:path'
import { CeremonyError, CircuitTooLargeError, ContributionRejectedError, type ContributionCheck } from './errors.js'
import { ptauPowerFor, readPtauHeader, readR1csHeader } from './headers.js'
import { parseVerificationKey, PUBLIC_SIGNALS } from './proof.js'
import {
  collectingLogger, contributePtau, contributeZKey, contributionEntropy, exportVerificationKey, newPtauAccumulator, newZKey, preparePhase2, verifyZKeyFromR1cs,
  type VerificationKey
} from './snarkjs.js'

/**
 * The largest powers of tau a node generates itself. Measured (issue 16's probe, 2 cores):
 * 2^14's `prepare phase2` takes 292 s and its file is 18.9 MB; each power doubles both.
 */
export const MAX_LOCAL_PTAU_POWER = 15
export const CEREMONY_RECORD_FILE = 'ceremony.json'
export const CEREMONY_RECORD_VERSION = 1
const CIRCUIT_FILE = 'circuit.r1cs'
const PTAU_FILE = 'powers-of-tau.ptau'
const VERIFICATION_KEY_FILE = 'verification_key.json'
const LOCK_FILE = 'ceremony.lock'
/** circuitId, inputCommitment, outputCommitment, prover (proof.ts PUBLIC_SIGNALS). */
const POI_PUBLIC_INPUTS = PUBLIC_SIGNALS.length
/** snarkjs keeps the first 64 bytes of a contributor's name in the key. */
const MAX_NAME_LENGTH = 64

const zkeyFile = (index: number): string => `circuit_${String(index).padStart(4, '0')}.zkey`

export type Progress = (line: string) => void

export interface PtauRecord {
  file: string
  sha256: string
  power: number
  /** Generated here (by `generatedBy`, who is trusted for it), or supplied as a file. */
  source: 'generated' | 'supplied'
  generatedBy: string | null
}

export interface ContributionRecord {
  /** 1 for the first contribution. */
  index: number
  name: string
  /** snarkjs's contribution hash (blake2b-512 of the contributor's public key), hex: what the contributor publishes to be checked. */
  contributionHash: string
  file: string
  zkeySha256: string
  contributedAt: string
}

export interface CeremonyRecord {
  version: typeof CEREMONY_RECORD_VERSION
  circuit: { file: string, r1csSha256: string, constraints: number, publicInputs: number, power: number }
  ptau: PtauRecord
  /** The key before any contribution (`zkey_0`, from groth16 setup). */
  initial: { file: string, zkeySha256: string }
  contributions: ContributionRecord[]
  /** Set by finalizeCeremony: the proving key (the last contribution's) and the verification key. */
  final: { zkeyFile: string, zkeySha256: string, verificationKeyFile: string, verificationKeySha256: string } | null
}

export interface CeremonyOptions { onProgress?: Progress }

/** Who runs this process, for a record: `user@host`. */
export function localIdentity (): string {
  let user = 'unknown'
  try { user = userInfo().username } catch { /* no passwd entry (containers): keep 'unknown' */ }
  return `${user}@${hostname()}`
}

/**
 * Generates a prepared powers of tau of `power` in `dir` (new accumulator, one contribution
 * with OS randomness by `name`, phase 2 preparation). Whoever runs this is trusted for it.
 */
export async function generatePtau (dir: string, power: number, opts: CeremonyOptions & { name?: string } = {}): Promise<PtauRecord> {
  if (!Number.isInteger(power) || power < 1) throw new CeremonyError(`the powers of tau must have a whole power ≥ 1, got ${power}`)
  if (power > MAX_LOCAL_PTAU_POWER) throw new CircuitTooLargeError(power, MAX_LOCAL_PTAU_POWER)
  const name = checkName(opts.name ?? localIdentity())
  await mkdir(dir, { recursive: true })
  const file = join(dir, PTAU_FILE)
  const fresh = tmpName(file, 'new')
  const contributed = tmpName(file, 'contributed')
  const prepared = tmpName(file, 'prepared')
  const started = Date.now()
  try {
    opts.onProgress?.(`powers of tau 2^${power}: new accumulator`)
    await newPtauAccumulator(power, fresh)
    opts.onProgress?.(`powers of tau 2^${power}: contribution by ${name}`)
    await contributePtau(fresh, contributed, name, contributionEntropy())
    opts.onProgress?.(`powers of tau 2^${power}: preparing phase 2 (the longest step)`)
    // snarkjs marks each of its four sections (tauG1, tauG2, alphaTauG1, betaTauG1) in a debug line: the only progress of a step of minutes.
    const sections = collectingLogger()
    sections.debug = (message) => {
      const m = /^Starting section: (\w+)/.exec(String(message))
      if (m !== null) opts.onProgress?.(`powers of tau 2^${power}: preparing phase 2: ${m[1]}`)
    }
    await preparePhase2(contributed, prepared, sections)
    await syncAndRename(prepared, file)
  } finally {
    await Promise.all([fresh, contributed, prepared].map(async f => { await rm(f, { force: true }) }))
  }
  opts.onProgress?.(`powers of tau 2^${power}: done in ${seconds(started)}`)
  return { file: PTAU_FILE, sha256: await sha256File(file), power, source: 'generated', generatedBy: name }
}

/**
 * Starts a ceremony for `r1cs` in `dir`: copies the circuit in, generates the powers of tau it
 * needs (or copies `ptau`, which must be prepared for phase 2 and large enough), and writes the
 * first key and the record. Refuses a directory that already holds a ceremony.
 */
export async function startCeremony (r1cs: string, ptau: string | undefined, dir: string, opts: CeremonyOptions & { name?: string } = {}): Promise<CeremonyRecord> {
  dir = resolve(dir)
  if (await exists(join(dir, CEREMONY_RECORD_FILE))) {
    throw new CeremonyError(`${dir} already holds a ceremony (${CEREMONY_RECORD_FILE}); contribute to it with \`poi model zk-setup contribute --dir ${dir} --name <you>\`, or start in another directory`)
  }
  const header = await readR1csHeader(resolve(r1cs))
  if (header.publicInputs !== POI_PUBLIC_INPUTS || header.publicOutputs !== 0) {
    throw new CeremonyError(`${r1cs} has ${header.publicInputs} public inputs and ${header.publicOutputs} public outputs; poi's circuits have exactly ${POI_PUBLIC_INPUTS} public inputs ` +
      `(${PUBLIC_SIGNALS.join(', ')}) and no public outputs, and their verification keys are checked for that`)
  }
  const power = ptauPowerFor(header)
  if (ptau === undefined && power > MAX_LOCAL_PTAU_POWER) {
    throw new CircuitTooLargeError(power, MAX_LOCAL_PTAU_POWER, { constraints: header.constraints, name: `the circuit ${r1cs}` })
  }
  await mkdir(dir, { recursive: true })
  await withLock(dir, async () => {
    // Checked again under the lock: another start may have finished since.
    if (await exists(join(dir, CEREMONY_RECORD_FILE))) throw new CeremonyError(`${dir} already holds a ceremony (${CEREMONY_RECORD_FILE}): another start finished first`)
    await copyAtomically(resolve(r1cs), join(dir, CIRCUIT_FILE))
    let ptauRecord: PtauRecord
    if (ptau === undefined) {
      ptauRecord = await generatePtau(dir, power, opts)
    } else {
      const supplied = await readPtauHeader(resolve(ptau))
      if (!supplied.prepared) throw new CeremonyError(`${ptau} is not prepared for phase 2: run \`snarkjs powersoftau prepare phase2\` on it first`)
      if (supplied.power < power) throw new CeremonyError(`${ptau} has power ${supplied.power}, but the circuit ${r1cs} (${header.constraints} constraints) needs ${power}`)
      opts.onProgress?.(`powers of tau: copying ${ptau} (power ${supplied.power})`)
      await copyAtomically(resolve(ptau), join(dir, PTAU_FILE))
      ptauRecord = { file: PTAU_FILE, sha256: await sha256File(join(dir, PTAU_FILE)), power: supplied.power, source: 'supplied', generatedBy: opts.name ?? null }
    }
    opts.onProgress?.(`groth16 setup: the first key (${header.constraints} constraints)`)
    const initial = join(dir, zkeyFile(0))
    const tmp = tmpName(initial, 'new')
    const logger = collectingLogger()
    try {
      if (!await newZKey(join(dir, CIRCUIT_FILE), join(dir, PTAU_FILE), tmp, logger)) {
        throw new CeremonyError(`snarkjs refused the setup of ${r1cs} with ${ptau ?? 'the generated ptau'}: ${errorLines(logger)}`)
      }
      await syncAndRename(tmp, initial)
    } finally {
      await rm(tmp, { force: true })
    }
    const record: CeremonyRecord = {
      version: CEREMONY_RECORD_VERSION,
      circuit: { file: CIRCUIT_FILE, r1csSha256: await sha256File(join(dir, CIRCUIT_FILE)), constraints: header.constraints, publicInputs: header.publicInputs + header.publicOutputs, power },
      ptau: ptauRecord,
      initial: { file: zkeyFile(0), zkeySha256: await sha256File(initial) },
      contributions: [],
      final: null
    }
    await writeRecord(dir, record)
  })
  return await readCeremonyRecord(dir)
}

/**
 * Adds a contribution to the ceremony in `dir`, after verifying the chain so far
 * (`ContributionRejectedError` with the check that failed). Entropy comes from the OS; `entropy`
 * adds the contributor's own.
 */
export async function contribute (dir: string, opts: CeremonyOptions & { name: string, entropy?: string }): Promise<ContributionRecord> {
  dir = resolve(dir)
  const name = checkName(opts.name)
  return await withLock(dir, async () => {
    const record = await readCeremonyRecord(dir)
    if (record.final !== null) {
      throw new CeremonyError(`the ceremony in ${dir} is finalized (its verification key is ${record.final.verificationKeyFile}): a contribution now would change the key every proof is checked with; start a new ceremony to contribute`)
    }
    const previous = await verifyChain(dir, record, opts.onProgress)
    const index = record.contributions.length + 1
    const file = zkeyFile(index)
    const tmp = tmpName(join(dir, file), 'new')
    const started = Date.now()
    opts.onProgress?.(`contribution ${index} by ${name}: computing`)
    let hash: Uint8Array
    try {
      hash = await contributeZKey(join(dir, previous), tmp, name, contributionEntropy(opts.entropy))
      await syncAndRename(tmp, join(dir, file))
    } finally {
      await rm(tmp, { force: true })
    }
    const entry: ContributionRecord = {
      index, name, contributionHash: Buffer.from(hash).toString('hex'), file, zkeySha256: await sha256File(join(dir, file)), contributedAt: new Date().toISOString()
    }
    await writeRecord(dir, { ...record, contributions: [...record.contributions, entry] })
    opts.onProgress?.(`contribution ${index} by ${name}: recorded in ${seconds(started)} (hash ${entry.contributionHash.slice(0, 16)}…)`)
    return entry
  })
}

/**
 * Ends the ceremony in `dir`: verifies the chain, exports the verification key of the last key
 * and records both. Needs one contribution at least (the first key's delta is public). Run again,
 * it checks and records the same key.
 */
export async function finalizeCeremony (dir: string, opts: CeremonyOptions = {}): Promise<{ verificationKey: VerificationKey, record: CeremonyRecord }> {
  dir = resolve(dir)
  return await withLock(dir, async () => {
    const record = await readCeremonyRecord(dir)
    if (record.contributions.length === 0) {
      throw new CeremonyError(`the ceremony in ${dir} has no contribution yet: its first key is not sound until someone contributes; run \`poi model zk-setup contribute --dir ${dir} --name <you>\` first`)
    }
    const last = await verifyChain(dir, record, opts.onProgress)
    opts.onProgress?.('exporting the verification key')
    const verificationKey = parseVerificationKey(await exportVerificationKey(join(dir, last)))
    const json = JSON.stringify(verificationKey, null, 2) + '\n'
    await writeAtomically(join(dir, VERIFICATION_KEY_FILE), json)
    const final = {
      zkeyFile: last,
      zkeySha256: record.contributions[record.contributions.length - 1].zkeySha256,
      verificationKeyFile: VERIFICATION_KEY_FILE,
      verificationKeySha256: createHash('sha256').update(json).digest('hex')
    }
    const finalized = { ...record, final }
    await writeRecord(dir, finalized)
    return { verificationKey, record: finalized }
  })
}

/**
 * Checks the chain in `dir` as its record has it, and resolves with the last key's file:
 * the circuit, the ptau and the last key are the files the record names (`hash`); snarkjs
 * verifies the key against them (`verify`); the key's own contributions are the record's, in
 * order (`chain`).
 */
export async function verifyChain (dir: string, record: CeremonyRecord, onProgress?: Progress): Promise<string> {
  const last = record.contributions.at(-1) ?? { index: 0, file: record.initial.file, zkeySha256: record.initial.zkeySha256 }
  const files: Array<[string, string, string]> = [
    [record.circuit.file, record.circuit.r1csSha256, 'the circuit'],
    [record.ptau.file, record.ptau.sha256, 'the powers of tau'],
    [last.file, last.zkeySha256, last.index === 0 ? 'the first key' : `contribution ${last.index}'s key`]
  ]
  for (const [file, expected, what] of files) {
    const actual = await sha256File(join(dir, file)).catch(() => 'missing')
    if (actual !== expected) {
      reject('hash', `${what} ${join(dir, file)} is not the file the record names (sha256 ${actual === 'missing' ? 'unreadable: the file is missing' : actual}, recorded ${expected}): it changed after it was recorded; restore it, or start the ceremony again`)
    }
  }
  onProgress?.(`verifying ${last.index === 0 ? 'the first key' : `contribution ${last.index}`} against the circuit and the powers of tau`)
  const started = Date.now()
  const logger = collectingLogger()
  let valid: boolean
  try {
    valid = await verifyZKeyFromR1cs(join(dir, record.circuit.file), join(dir, record.ptau.file), join(dir, last.file), logger)
  } catch (err) {
    reject('verify', `snarkjs could not read ${join(dir, last.file)} as a key of this circuit: ${(err as Error).message}`)
  }
  if (!valid) reject('verify', `snarkjs does not verify ${join(dir, last.file)} against the circuit and the powers of tau${errorLines(logger) !== '' ? ` (${errorLines(logger)})` : ''}: the key was not made by contributions to this circuit's setup`)
  const inKey = contributionsLogged(logger.lines.map(l => l.message))
  const recorded = record.contributions.map(c => c.contributionHash)
  const diverge = inKey.findIndex((h, i) => h !== recorded[i])
  if (inKey.length !== recorded.length || diverge !== -1) {
    const at = diverge !== -1 ? diverge : Math.min(inKey.length, recorded.length)
    reject('chain', `${join(dir, last.file)} holds ${inKey.length} contribution(s) where the record has ${recorded.length}, and they differ from contribution ${at + 1} on: ` +
      'the key does not extend the recorded chain (it was made from another key than the previous one); restore the recorded key')
  }
  onProgress?.(`verified in ${seconds(started)}: ${recorded.length === 0 ? 'the first key, before any contribution' : `${recorded.length} contribution(s), each extending the previous`}`)
  return last.file
}

function reject (check: ContributionCheck, message: string): never {
  throw new ContributionRejectedError(check, message)
}

/**
 * The contribution hashes snarkjs's verifyFromR1cs logs, in order: it reports them only as
 * info lines, "contribution #<i> <name>:" then 4 lines of 4 hex words (misc.formatHash, 0.7.6).
 */
function contributionsLogged (lines: string[]): string[] {
  const hashes: string[] = []
  for (const line of lines) {
    const m = /^contribution #(\d+) [^\n]*:\n((?:\t\t[0-9a-f]{8}(?: [0-9a-f]{8}){3}\n?){4})$/.exec(line)
    if (m !== null) hashes[Number(m[1]) - 1] = m[2].replace(/\s/g, '')
  }
  return hashes
}

/** Reads and checks `dir`'s record. */
export async function readCeremonyRecord (dir: string): Promise<CeremonyRecord> {
  const path = join(resolve(dir), CEREMONY_RECORD_FILE)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT'
    throw new CeremonyError(missing
      ? `no ceremony in ${resolve(dir)}: ${CEREMONY_RECORD_FILE} is missing; start one with \`poi model zk-setup start <circuit.r1cs> --dir ${resolve(dir)}\``
      : `cannot read ${path}: ${(err as Error).message}`, { cause: err })
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new CeremonyError(`${path} is not JSON: ${(err as Error).message}`, { cause: err })
  }
  return parseCeremonyRecord(json, path)
}

const SHA256 = /^[0-9a-f]{64}$/
const BLAKE2B_512 = /^[0-9a-f]{128}$/
/** A file the record names: in the ceremony directory, never a path out of it. */
const LOCAL_FILE = /^[A-Za-z0-9._-]+$/

/** Checks a record's shape (a directory handed from one contributor to the next is untrusted). */
export function parseCeremonyRecord (json: unknown, where: string): CeremonyRecord {
  const fail = (what: string): never => { throw new CeremonyError(`${where} is not a ceremony record: ${what}`) }
  const obj = (v: unknown, what: string): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : fail(`${what} must be an object`))
  const str = (o: Record<string, unknown>, k: string, what: string, re?: RegExp): string => {
    const v = o[k]
    if (typeof v !== 'string' || (re !== undefined && !re.test(v))) fail(`${what}.${k} must be ${re === SHA256 ? 'a sha256 in hex' : re === BLAKE2B_512 ? 'a 64-byte hash in hex' : re === LOCAL_FILE ? 'a file name in the ceremony directory' : 'a string'}`)
    return v as string
  }
  const int = (o: Record<string, unknown>, k: string, what: string): number => {
    const v = o[k]
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`${what}.${k} must be a whole number ≥ 0`)
    return v as number
  }
  const r = obj(json, 'the record')
  if (r.version !== CEREMONY_RECORD_VERSION) fail(`version must be ${CEREMONY_RECORD_VERSION}, got ${JSON.stringify(r.version)}`)
  const c = obj(r.circuit, 'circuit')
  const p = obj(r.ptau, 'ptau')
  const i = obj(r.initial, 'initial')
  if (p.source !== 'generated' && p.source !== 'supplied') fail('ptau.source must be "generated" or "supplied"')
  if (p.generatedBy !== null && typeof p.generatedBy !== 'string') fail('ptau.generatedBy must be a string or null')
  if (!Array.isArray(r.contributions)) fail('contributions must be an array')
  const contributions = (r.contributions as unknown[]).map((e, n) => {
    const o = obj(e, `contributions[${n}]`)
    const at = `contributions[${n}]`
    if (o.index !== n + 1) fail(`${at}.index must be ${n + 1}`)
    return {
      index: n + 1,
      name: str(o, 'name', at),
      contributionHash: str(o, 'contributionHash', at, BLAKE2B_512),
      file: str(o, 'file', at, LOCAL_FILE),
      zkeySha256: str(o, 'zkeySha256', at, SHA256),
      contributedAt: str(o, 'contributedAt', at)
    }
  })
  let final: CeremonyRecord['final'] = null
  if (r.final !== null) {
    const f = obj(r.final, 'final')
    final = {
      zkeyFile: str(f, 'zkeyFile', 'final', LOCAL_FILE),
      zkeySha256: str(f, 'zkeySha256', 'final', SHA256),
      verificationKeyFile: str(f, 'verificationKeyFile', 'final', LOCAL_FILE),
      verificationKeySha256: str(f, 'verificationKeySha256', 'final', SHA256)
    }
  }
  return {
    version: CEREMONY_RECORD_VERSION,
    circuit: {
      file: str(c, 'file', 'circuit', LOCAL_FILE),
      r1csSha256: str(c, 'r1csSha256', 'circuit', SHA256),
      constraints: int(c, 'constraints', 'circuit'),
      publicInputs: int(c, 'publicInputs', 'circuit'),
      power: int(c, 'power', 'circuit')
    },
    ptau: {
      file: str(p, 'file', 'ptau', LOCAL_FILE),
      sha256: str(p, 'sha256', 'ptau', SHA256),
      power: int(p, 'power', 'ptau'),
      source: p.source as PtauRecord['source'],
      generatedBy: p.generatedBy as string | null
    },
    initial: { file: str(i, 'file', 'initial', LOCAL_FILE), zkeySha256: str(i, 'zkeySha256', 'initial', SHA256) },
    contributions,
    final
  }
}

function checkName (name: string): string {
  const trimmed = name.trim()
  if (trimmed === '' || trimmed.length > MAX_NAME_LENGTH || /[\p{Cc}]/u.test(trimmed)) {
    throw new CeremonyError(`a contributor's name must be 1 to ${MAX_NAME_LENGTH} printable characters (it is written into the key), got ${JSON.stringify(name)}`)
  }
  return trimmed
}

function errorLines (logger: { lines: Array<{ level: string, message: string }> }): string {
  return logger.lines.filter(l => l.level === 'error').map(l => l.message).join('; ')
}

export async function sha256File (file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

async function exists (path: string): Promise<boolean> {
  return await stat(path).then(() => true, () => false)
}

const seconds = (since: number): string => `${((Date.now() - since) / 1000).toFixed(1)} s`

/** A temporary name beside `file`, unique to this process (two processes never write the same one). */
function tmpName (file: string, step: string): string {
  return `${file}.${step}-${process.pid}.tmp`
}

/** Makes `tmp`'s bytes durable, then puts it at `file` in one rename. */
async function syncAndRename (tmp: string, file: string): Promise<void> {
  const fd = await open(tmp, 'r+')
  try { await fd.sync() } finally { await fd.close() }
  await rename(tmp, file)
}

async function writeAtomically (file: string, data: string): Promise<void> {
  const tmp = tmpName(file, 'write')
  try {
    await writeFile(tmp, data)
    await syncAndRename(tmp, file)
  } finally {
    await rm(tmp, { force: true })
  }
}

async function copyAtomically (from: string, to: string): Promise<void> {
  const tmp = tmpName(to, 'copy')
  try {
    await copyFile(from, tmp)
    await syncAndRename(tmp, to)
  } catch (err) {
    throw new CeremonyError(`cannot copy ${from} into the ceremony: ${(err as Error).message}`, { cause: err })
  } finally {
    await rm(tmp, { force: true })
  }
}

async function writeRecord (dir: string, record: CeremonyRecord): Promise<void> {
  await writeAtomically(join(dir, CEREMONY_RECORD_FILE), JSON.stringify(record, null, 2) + '\n')
}

/**
 * Runs `fn` holding `dir`'s lock, so two contributors in one directory cannot both extend the
 * same key. A lock left by a process that died is taken over.
 */
async function withLock<T> (dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = join(dir, LOCK_FILE)
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(lock, String(process.pid), { flag: 'wx' })
      break
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT') throw new CeremonyError(`no ceremony directory ${dir}: start one with \`poi model zk-setup start <circuit.r1cs> --dir ${dir}\``, { cause: err })
      if (code !== 'EEXIST') throw new CeremonyError(`cannot lock ${dir}: ${(err as Error).message}`, { cause: err })
      const holder = Number(await readFile(lock, 'utf8').catch(() => ''))
      if (attempt === 0 && !isRunning(holder)) { await rm(lock, { force: true }); continue }
      throw new CeremonyError(`another step of the ceremony in ${dir} is running (process ${holder}, ${basename(lock)}): wait for it to finish, then run this again`)
    }
  }
  try {
    return await fn()
  } finally {
    await rm(lock, { force: true })
  }
}

function isRunning (pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
