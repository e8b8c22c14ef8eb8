/**
 * Operator sets by epoch. The newest is current (attestations are counted against it); older
 * ones stay known so certificates of recent epochs still verify. Sets come from the genesis
 * file or the chain, and are trusted here (checked when they were read).
 *
 * With `readSet` (the chain), a set this node has not adopted yet can be read on demand when a
 * certificate names it: only epochs near the current one (MAX_EPOCHS_AHEAD_READ,
 * MAX_EPOCHS_BEHIND_READ), one read at a time per epoch, a miss remembered for
 * EPOCH_MISS_RETRY_MS. So a peer naming epochs cannot make the node read the chain at will.
 */
import { logger } from '@libp2p/logger'
import type { Startable } from '@libp2p/interface'
import type { OperatorSet } from '../../consensus/index.js'
import { EPOCH_MISS_RETRY_MS, MAX_EPOCHS_AHEAD_READ, MAX_EPOCHS_BEHIND_READ, bytesEqual } from '../../protocols/wire/index.js'

const log = logger('poi:epochs')

export interface EpochsComponents {
  /** This node's BLS public key: its index in each set, when it is an operator there. */
  blsPublicKey: Uint8Array
}

export interface EpochsInit {
  operatorSet: OperatorSet
  /**
   * Reads the operator set of an epoch this node has not adopted (from the chain, checked
   * against its stored root); undefined or a rejection when the epoch has not started.
   */
  readSet?: (epoch: bigint) => Promise<OperatorSet | undefined>
}

export class Epochs implements Startable {
  private readonly sets = new Map<bigint, OperatorSet>()
  private currentSet: OperatorSet
  private index: number | undefined
  private readonly readSet: EpochsInit['readSet']
  /** Reads under way, one per epoch. */
  private readonly reads = new Map<bigint, Promise<OperatorSet | undefined>>()
  /** Epochs a read found no set for, and when: not read again before EPOCH_MISS_RETRY_MS. */
  private readonly misses = new Map<bigint, number>()
  /** The set that was current before the last change, and when the change happened (unix ms). */
  private last: { set: OperatorSet, until: number } | undefined

  constructor (private readonly components: EpochsComponents, init: EpochsInit) {
    this.readSet = init.readSet
    this.currentSet = init.operatorSet
    this.sets.set(init.operatorSet.epoch, init.operatorSet)
    this.index = indexIn(init.operatorSet, components.blsPublicKey)
  }

  start (): void {}
  stop (): void {}

  /** The current epoch's operator set. */
  get current (): OperatorSet { return this.currentSet }

  /** This node's index in the current operator set, if it is an operator there. */
  get operatorIndex (): number | undefined { return this.index }

  /** The set that was current before the newest one, and when this node moved on (unix ms). */
  get previous (): { set: OperatorSet, until: number } | undefined { return this.last }

  /** The set of an epoch this node knows. */
  setOf (epoch: bigint): OperatorSet | undefined {
    return this.sets.get(epoch)
  }

  /**
   * The set of `epoch`: a known one at once; else, with `readSet` and for an epoch near the
   * current one, read (and kept) once; else undefined. It does not adopt what it reads: the
   * epoch watcher does (`use`), so attestations keep counting against the current set.
   */
  async resolveSet (epoch: bigint): Promise<OperatorSet | undefined> {
    const known = this.sets.get(epoch)
    if (known !== undefined || this.readSet === undefined) return known
    const current = this.currentSet.epoch
    if (epoch > current + MAX_EPOCHS_AHEAD_READ || epoch < current - MAX_EPOCHS_BEHIND_READ) return undefined
    const missedAt = this.misses.get(epoch)
    if (missedAt !== undefined && Date.now() - missedAt < EPOCH_MISS_RETRY_MS) return undefined
    let read = this.reads.get(epoch)
    if (read === undefined) {
      read = this.read(epoch, this.readSet)
      this.reads.set(epoch, read)
      void read.finally(() => this.reads.delete(epoch))
    }
    return await read
  }

  private async read (epoch: bigint, readSet: (epoch: bigint) => Promise<OperatorSet | undefined>): Promise<OperatorSet | undefined> {
    let set: OperatorSet | undefined
    try {
      set = await readSet(epoch)
    } catch (err) {
      log('no operator set for epoch %s: %s', epoch, (err as Error).message.split('\n')[0])
    }
    if (set === undefined || set.epoch !== epoch) {
      this.misses.set(epoch, Date.now())
      // Only epochs near the current one are ever read, so this stays a handful of entries.
      for (const e of this.misses.keys()) if (e < this.currentSet.epoch - MAX_EPOCHS_BEHIND_READ) this.misses.delete(e)
      return undefined
    }
    this.misses.delete(epoch)
    this.sets.set(epoch, set)
    log('read the operator set of epoch %s (%d operators) for a certificate that names it', epoch, set.operators.length)
    return set
  }

  /** Adopts a newer epoch's set; older sets stay known. */
  use (set: OperatorSet): void {
    this.sets.set(set.epoch, set)
    if (set.epoch <= this.currentSet.epoch) return
    this.last = { set: this.currentSet, until: Date.now() }
    this.currentSet = set
    this.index = indexIn(set, this.components.blsPublicKey)
    log('now in epoch %s (%d operators)%s', set.epoch, set.operators.length, this.index != null ? `, this node is operator ${this.index}` : '')
  }
}

export function createEpochs (components: EpochsComponents, init: EpochsInit): Epochs {
  return new Epochs(components, init)
}

function indexIn (set: OperatorSet, blsPublicKey: Uint8Array): number | undefined {
  return set.operators.find(o => bytesEqual(o.blsPublicKey, blsPublicKey))?.index
}
