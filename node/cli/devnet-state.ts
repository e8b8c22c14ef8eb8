/**
 * What a `--dir` devnet leaves to come back to: `devnet.json` (the record below, written once
 * the network is set up), anvil's state file (anvil dumps it every few seconds and when it stops
 * on SIGTERM/SIGINT), and while it runs a pid file. `poi devnet --dir <d>` reads them to resume
 * the devnet instead of starting over (node/cli/devnet.ts).
 *
 * Trust: the directory is the user's own, but it may be from an older poi, half written by a
 * devnet killed during start-up, or hand-edited, so every field is checked before use and each
 * problem is a DevnetResumeError that says what to do (usually: --force, or another --dir).
 */
import { readFileSync, rmSync } from 'node:fs'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PoiError } from '../../protocols/wire/index.js'

/** The record's file in a devnet's directory. */
export const DEVNET_RECORD_FILE = 'devnet.json'
/** anvil's state file in a devnet's directory (--dump-state, then --load-state on resume). */
export const DEVNET_STATE_FILE = 'anvil-state.json'
/** Holds the pid of the devnet running in the directory; removed when it exits. */
export const DEVNET_PID_FILE = 'devnet.pid'
/**
 * The record's format. Bump it when a devnet of the older format cannot be resumed as is (a
 * field added, contracts whose storage layout changed): such a devnet is refused with --force advice.
 */
export const DEVNET_RECORD_VERSION = 1
/** How often anvil dumps its state while it runs: a SIGKILLed devnet loses at most this many seconds of chain. */
export const DEVNET_STATE_INTERVAL_S = 2

/** A devnet in a --dir cannot be resumed (or is still running): the message says what to do. */
export class DevnetResumeError extends PoiError {
  constructor (message: string) {
    super('ERR_DEVNET_RESUME', message)
  }
}

/** `<dir>/devnet.json`: what a resumed devnet must match or reuse. */
export interface DevnetRecord {
  version: number
  /** Operator nodes (`operator-0` … `operator-<n-1>` under the directory). */
  operators: number
  /** false: --offchain (operator set from genesis.json, no anvil). */
  chain: boolean
  /** Chain mode: anvil's chain id and the port it last listened on (a resume picks a free port and rewrites the deployment file). */
  chainId?: number
  rpcPort?: number
  /** Chain mode: the deployment file's name in the directory; the contracts are in the anvil state. */
  deploymentFile?: string
  /** The npm models (NPM_MODELS keys) registered on the chain and run after the shipped one. */
  npmModels: string[]
  /** The node directories (keys, data) under the devnet's directory, in start order. */
  nodes: string[]
}

/** Writes the record atomically: a devnet killed mid-write leaves the old record or none, never half of one. */
export async function writeDevnetRecord (dir: string, record: DevnetRecord): Promise<void> {
  const path = join(dir, DEVNET_RECORD_FILE)
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify(record, null, 2) + '\n')
  await rename(tmp, path)
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every(s => typeof s === 'string')
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0

/**
 * The record of the devnet in `dir`, checked; undefined when there is none (the caller tells an
 * empty directory, a half-started devnet and a foreign directory apart).
 */
export async function readDevnetRecord (dir: string): Promise<DevnetRecord | undefined> {
  const path = join(dir, DEVNET_RECORD_FILE)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new DevnetResumeError(`cannot read ${path}: ${(err as Error).message}`)
  }
  const corrupt = (why: string): DevnetResumeError =>
    new DevnetResumeError(`${path} is not a devnet record (${why}): pass --force to delete the devnet in ${dir} and start over`)
  let json: unknown
  try { json = JSON.parse(text) } catch (err) { throw corrupt((err as Error).message) }
  if (typeof json !== 'object' || json === null) throw corrupt('not a JSON object')
  const r = json as Partial<Record<keyof DevnetRecord, unknown>>
  if (r.version !== DEVNET_RECORD_VERSION) {
    throw new DevnetResumeError(`the devnet in ${dir} was made by another poi version (record version ${String(r.version)}, this poi resumes version ${DEVNET_RECORD_VERSION}): pass --force to delete it and start over, or pick another --dir`)
  }
  if (!isCount(r.operators)) throw corrupt('operators is not a positive integer')
  if (typeof r.chain !== 'boolean') throw corrupt('chain is not true or false')
  if (!isStringArray(r.npmModels)) throw corrupt('npmModels is not a list of names')
  if (!isStringArray(r.nodes)) throw corrupt('nodes is not a list of names')
  if (r.chain) {
    if (!isCount(r.chainId)) throw corrupt('chainId is not a positive integer')
    if (!isCount(r.rpcPort)) throw corrupt('rpcPort is not a positive integer')
    if (typeof r.deploymentFile !== 'string' || r.deploymentFile.includes('/')) throw corrupt('deploymentFile is not a file name')
  }
  return r as DevnetRecord
}

/** Checks anvil's state file before anvil is given it, so a missing or damaged one is a clear error, not anvil's usage text. */
export async function checkStateFile (dir: string): Promise<string> {
  const path = join(dir, DEVNET_STATE_FILE)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new DevnetResumeError(`the devnet in ${dir} has no chain state to resume (${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; it was killed before anvil saved it): pass --force to delete it and start over`)
  }
  let state: unknown
  try { state = JSON.parse(text) } catch (err) {
    throw new DevnetResumeError(`the chain state ${path} is damaged (${(err as Error).message}): pass --force to delete the devnet in ${dir} and start over`)
  }
  if (typeof state !== 'object' || state === null || !('accounts' in state) || !('block' in state)) {
    throw new DevnetResumeError(`the chain state ${path} is damaged (not an anvil state dump: no accounts or block): pass --force to delete the devnet in ${dir} and start over`)
  }
  return path
}

/** Whether `pid` is a running `poi devnet` (Linux: its command line; elsewhere: that the pid is alive). */
function isRunningDevnet (pid: number): boolean {
  try { process.kill(pid, 0) } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
  try {
    // A stale pid file's pid may have been reused by another program.
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('devnet')
  } catch {
    return true
  }
}

/** Whether an RPC server answers on 127.0.0.1:`port` (a devnet's anvil still running). */
async function rpcAnswers (port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
      signal: AbortSignal.timeout(RPC_PROBE_TIMEOUT_MS)
    })
    return res.ok
  } catch {
    return false
  }
}
/** A local anvil answers in milliseconds; a closed port fails at once. */
const RPC_PROBE_TIMEOUT_MS = 1_000

/** Refuses a directory whose devnet still runs: its pid file names a live devnet, or its anvil still answers. */
export async function checkNotRunning (dir: string, record: DevnetRecord | undefined): Promise<void> {
  const pidText = await readFile(join(dir, DEVNET_PID_FILE), 'utf8').catch(() => undefined)
  const pid = pidText !== undefined ? Number(pidText.trim()) : NaN
  if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isRunningDevnet(pid)) {
    throw new DevnetResumeError(`a devnet is still running in ${dir} (pid ${pid}): stop it first (Ctrl-C in its terminal, or kill ${pid}), or pick another --dir`)
  }
  if (record?.rpcPort !== undefined && await rpcAnswers(record.rpcPort)) {
    throw new DevnetResumeError(`the devnet's chain in ${dir} still answers on 127.0.0.1:${record.rpcPort}: stop the devnet (or the anvil) that runs it first, or pick another --dir`)
  }
}

/** Records this process as the devnet running in `dir`. */
export async function writePidFile (dir: string): Promise<void> {
  await writeFile(join(dir, DEVNET_PID_FILE), `${process.pid}\n`)
}

/** Removes the pid file if it is this process's (sync: for `process.on('exit')`). */
export function removePidFileSync (dir: string): void {
  const path = join(dir, DEVNET_PID_FILE)
  try {
    if (Number(readFileSync(path, 'utf8').trim()) === process.pid) rmSync(path, { force: true })
  } catch {} // no pid file (never written, or removed already): nothing to do
}
