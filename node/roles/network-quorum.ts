/**
 * The network's quorum (TaskManager.quorumBps), which governance may change while nodes run. The
 * contract accepts a certificate only when its signers hold max(task's quorumBps, network's) of
 * the epoch's stake, so an aggregator aims at that maximum: one formed at a task's lower quorum
 * would be refused (InsufficientStake) after paying for the transaction's simulation at least.
 *
 * Read at start and every NETWORK_PARAMETERS_REFRESH_MS. A governed change passes the timelock's
 * delay (minutes at least) after its vote, so a node sees it within one refresh of its execution.
 */
import { logger } from '@libp2p/logger'
import type { Startable } from '@libp2p/interface'

const log = logger('poi:network-quorum')

/** How often governed parameters are read again: bounds how long a node runs on an old value after a change executes. */
export const NETWORK_PARAMETERS_REFRESH_MS = 30_000

export class NetworkQuorum implements Startable {
  private value: number | undefined
  private timer: NodeJS.Timeout | undefined

  constructor (private readonly read: () => Promise<number>, private readonly refreshMs = NETWORK_PARAMETERS_REFRESH_MS) {}

  /** The last quorum read, basis points; undefined before the first read succeeds. */
  get quorumBps (): number | undefined { return this.value }

  async start (): Promise<void> {
    await this.refresh()
    this.timer = setInterval(() => { void this.refresh() }, this.refreshMs)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  /** Reads the quorum now; a failed read keeps the last value (logged). */
  async refresh (): Promise<void> {
    try {
      const bps = await this.read()
      if (bps !== this.value) log('network quorum %s → %d bps', this.value === undefined ? 'unknown' : `${this.value} bps`, bps)
      this.value = bps
    } catch (err) {
      log.error('reading the network quorum failed, keeping %s: %s', this.value === undefined ? 'none' : `${this.value} bps`, (err as Error).message.split('\n')[0])
    }
  }
}
