/**
 * Operator sets by epoch. The newest is current (attestations are counted against it); older
 * ones stay known so certificates of recent epochs still verify. Sets come from the genesis
 * file or the chain, and are trusted here (checked when they were read).
 */
import { logger } from '@libp2p/logger'
import type { Startable } from '@libp2p/interface'
import type { OperatorSet } from '../../consensus/index.js'
import { bytesEqual } from '../../protocols/wire/index.js'

const log = logger('poi:epochs')

export interface EpochsComponents {
  /** This node's BLS public key: its index in each set, when it is an operator there. */
  blsPublicKey: Uint8Array
}

export interface EpochsInit {
  operatorSet: OperatorSet
}

export class Epochs implements Startable {
  private readonly sets = new Map<bigint, OperatorSet>()
  private currentSet: OperatorSet
  private index: number | undefined
  /** The set that was current before the last change, and when the change happened (unix ms). */
  private last: { set: OperatorSet, until: number } | undefined

  constructor (private readonly components: EpochsComponents, init: EpochsInit) {
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
