/**
 * A requester's credit tab (issue 15): its tab tasks take nonce = the tab's next sequence
 * (1, 2, 3, …) and carry a voucher authorising cumulative = the previous voucher's amount + this
 * task's fee, signed for the network's TaskManager. The TaskManager charges, per batch, the fees
 * of the requester's settled leaves against its highest voucher, and refuses a sequence it has
 * already settled, so a sequence must never be used twice: the tab's state is written to the
 * requester's directory (atomically: a temporary file renamed over the old one, both synced)
 * BEFORE the task that uses it is signed and sent. A crash after the write skips a sequence,
 * which costs nothing (a batch settles any set of unsettled sequences above the last settled one).
 *
 * One file per requester, chain and TaskManager: `tab-<chainId>-<taskManager>.json`, so one
 * keystore used on several networks keeps one tab on each.
 */
import { open, readFile, rename } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { isAddress, isAddressEqual, type Address, type LocalAccount } from 'viem'
import { logger } from '@libp2p/logger'
import { PoiError, signVoucher, uint256ToBytes, VOUCHER_SEQUENCE_LIMIT, type TaskVoucher } from '../../protocols/wire/index.js'

const log = logger('poi:requester:tab')

/** The tab state file's format; another value is refused (TabStateError), never overwritten. */
const TAB_FILE_VERSION = 1

/** The tab's state file is unreadable, belongs to another account or network, or the tab ran out of sequences. */
export class TabStateError extends PoiError {
  readonly path: string
  constructor (path: string, message: string, options?: { cause?: unknown }) {
    super('ERR_TAB_STATE', message, options)
    this.path = path
  }
}

/** What the chain says of a requester's tab (contracts/batches.ts readTab). */
export interface OnChainTab {
  /** wei charged so far over the tab's life. */
  settled: bigint
  /** The highest sequence settled (0: none). */
  lastSequence: bigint
}

/** Reads a requester's on-chain tab: the TaskManager's `tabs(requester)` (contracts/batches.ts readTab). */
export type TabReader = (requester: Address) => Promise<OnChainTab>

export interface TabOpenOptions {
  /** The requester's directory (its keystore, or its data directory). */
  dir: string
  account: LocalAccount
  chainId: bigint
  taskManager: Address
  /**
   * The chain's view of the tab, read once at open: a tab whose file was lost (a new machine, a
   * deleted directory) continues above the last settled sequence and amount instead of
   * reusing sequences the chain would refuse (StaleVoucher). Without it a new file starts at 0.
   */
  readTab?: TabReader
}

/** What one tab task carries: its nonce (= sequence) and its voucher. */
export interface TabPayment {
  sequence: bigint
  cumulative: bigint
  voucher: TaskVoucher
}

interface TabFile {
  version: number
  requester: string
  chainId: string
  taskManager: string
  /** The last sequence handed out. */
  sequence: string
  /** The cumulative amount of the last voucher signed. */
  cumulative: string
}

export function tabFilePath (dir: string, chainId: bigint, taskManager: Address): string {
  return join(dir, `tab-${chainId}-${taskManager.toLowerCase()}.json`)
}

/** Writes `text` to `path` so that a crash leaves the old file or the new one, never half of one. */
async function writeFileDurably (path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  const file = await open(tmp, 'w', 0o600)
  try {
    await file.writeFile(text)
    await file.sync()
  } finally {
    await file.close()
  }
  await rename(tmp, path)
  // The rename itself is durable once the directory is synced.
  const dir = await open(dirname(path), 'r')
  try { await dir.sync() } catch {} finally { await dir.close() }
}

export class RequesterTab {
  readonly path: string
  readonly requester: Address
  #sequence: bigint
  #cumulative: bigint
  /** Reservations run one after another, so two concurrent tasks never get the same sequence. */
  #queue: Promise<unknown> = Promise.resolve()

  private constructor (path: string, private readonly options: TabOpenOptions, sequence: bigint, cumulative: bigint) {
    this.path = path
    this.requester = options.account.address
    this.#sequence = sequence
    this.#cumulative = cumulative
  }

  /** Opens (or starts) the tab of `account` on this chain and TaskManager. Throws TabStateError for a file that is not this tab's. */
  static async open (options: TabOpenOptions): Promise<RequesterTab> {
    const path = tabFilePath(options.dir, options.chainId, options.taskManager)
    let sequence = 0n
    let cumulative = 0n
    let text: string | undefined
    try {
      text = await readFile(path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new TabStateError(path, `cannot read the tab state ${path}: ${(err as Error).message}`, { cause: err })
    }
    if (text !== undefined) ({ sequence, cumulative } = parseTabFile(path, text, options))
    if (options.readTab !== undefined) {
      const onChain = await options.readTab(options.account.address)
      if (onChain.lastSequence > sequence) {
        log('tab %s: the chain settled up to sequence %d, above the %d recorded here; continuing from it', path, onChain.lastSequence, sequence)
        sequence = onChain.lastSequence
      }
      if (onChain.settled > cumulative) cumulative = onChain.settled
    }
    return new RequesterTab(path, options, sequence, cumulative)
  }

  /** The last sequence handed out (0: none yet). */
  get sequence (): bigint { return this.#sequence }
  /** The cumulative amount of the last voucher. */
  get cumulative (): bigint { return this.#cumulative }

  /**
   * The next sequence and a voucher for it covering `fee`: written to the tab's file before it
   * is returned, so a crash between this and the announcement never reuses the sequence.
   */
  async next (fee: bigint): Promise<TabPayment> {
    const run = this.#queue.then(async () => await this.#next(fee))
    this.#queue = run.catch(() => {})
    return await run
  }

  async #next (fee: bigint): Promise<TabPayment> {
    if (fee < 0n) throw new TabStateError(this.path, `a tab task's fee must not be negative, got ${fee}`)
    const sequence = this.#sequence + 1n
    if (sequence >= VOUCHER_SEQUENCE_LIMIT) {
      throw new TabStateError(this.path, `the tab of ${this.requester} has used all ${VOUCHER_SEQUENCE_LIMIT - 1n} sequences: pay from the deposit without a tab (no --tab)`)
    }
    const cumulative = this.#cumulative + fee
    const { account, chainId, taskManager } = this.options
    const signature = await signVoucher(account, chainId, { requester: account.address, taskManager, cumulative, sequence })
    const file: TabFile = {
      version: TAB_FILE_VERSION,
      requester: account.address,
      chainId: chainId.toString(),
      taskManager,
      sequence: sequence.toString(),
      cumulative: cumulative.toString()
    }
    await writeFileDurably(this.path, JSON.stringify(file, null, 2) + '\n')
    this.#sequence = sequence
    this.#cumulative = cumulative
    return { sequence, cumulative, voucher: { cumulative: uint256ToBytes(cumulative), sequence, signature: Uint8Array.from(Buffer.from(signature.slice(2), 'hex')) } }
  }
}

function parseTabFile (path: string, text: string, options: TabOpenOptions): { sequence: bigint, cumulative: bigint } {
  const bad = (why: string): TabStateError =>
    new TabStateError(path, `${path} is not a usable tab state (${why}); it records which sequences this requester used: restore it, or move it away to continue from the chain's last settled sequence`)
  let json: Partial<TabFile>
  try {
    json = JSON.parse(text) as Partial<TabFile>
  } catch (err) {
    throw bad(`not JSON: ${(err as Error).message}`)
  }
  if (json.version !== TAB_FILE_VERSION) throw bad(`version ${String(json.version)}, this node reads version ${TAB_FILE_VERSION}`)
  if (typeof json.requester !== 'string' || !isAddress(json.requester) || !isAddressEqual(json.requester, options.account.address)) {
    throw bad(`it is the tab of ${String(json.requester)}, not of ${options.account.address}`)
  }
  if (json.chainId !== options.chainId.toString()) throw bad(`it is for chain ${String(json.chainId)}, not ${options.chainId}`)
  if (typeof json.taskManager !== 'string' || !isAddress(json.taskManager) || !isAddressEqual(json.taskManager, options.taskManager)) {
    throw bad(`it is for TaskManager ${String(json.taskManager)}, not ${options.taskManager}`)
  }
  const int = (field: 'sequence' | 'cumulative'): bigint => {
    const v = json[field]
    if (typeof v !== 'string' || !/^\d+$/.test(v)) throw bad(`${field} ${String(v)} is not a decimal integer`)
    return BigInt(v)
  }
  return { sequence: int('sequence'), cumulative: int('cumulative') }
}
