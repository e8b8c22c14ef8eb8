/**
 * The batches gossip topic in a node (issue 15): every full node validates and relays its
 * messages (protocols/gossip checkBatchMessage), an operator signs the proposals that pass its
 * checks (BatchSigner), an aggregator counts the signatures of its own proposals (Batcher), and
 * a batch certificate seen here marks the batch as certified for the operator's ledger, and a
 * funded aggregator keeps the certificates of other aggregators' batches to post them if their
 * aggregator does not (BatchBackup). Also
 * the bridge from the node's stores to what the batcher and the signer read.
 */
import type { Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { bytesToHex, hexToBytes, type Hex } from 'viem'
import { batchSummaryHash, type BatchQuorumCertificate, type SignatureSet } from '../../consensus/index.js'
import {
  batchCertificateOf, batchCertificateParts, batchProposalOf, batchProposalParts, batchSignatureOf, checkBatchMessage, type GossipRouter
} from '../../protocols/gossip/index.js'
import { bytesToUint256, decodeBatchGossip, encodeBatchGossip, toHex, type BatchGossipMessage, type TaskAnnouncement } from '../../protocols/wire/index.js'
import type { NodeStore } from '../../storage/index.js'
import type { BatchBackup } from './batch-backup.js'
import type { BatchItem, TaskVoucher } from './batch-contents.js'
import type { BatchProposalContent, BatchSigner, BatchSignerSource, SignedBatches } from './batch-signer.js'
import type { Batcher } from './batcher.js'
import type { Conflicts } from './conflicts.js'
import type { Epochs } from './epochs.js'
import type { NodeEvents } from './events.js'

const log = logger('poi:batch-gossip')

/**
 * How many batch messages (by root, kind and operator) a node remembers having handled, so a
 * copy relayed back costs no pairing: a few batches a minute, each with one proposal, one
 * certificate and one signature per operator, stay far below this.
 */
const SEEN_BATCH_MESSAGES = 4096

/** The voucher a tab task's announcement carries, as batches read it; undefined for a single task. */
export function voucherOf (task: TaskAnnouncement): TaskVoucher | undefined {
  const v = task.voucher
  if (v == null) return undefined
  return { cumulative: bytesToUint256(v.cumulative), sequence: v.sequence, signature: bytesToHex(v.signature) }
}

/** A certified tab task from the node store: its task, voucher and certificate; undefined when one is missing or it is a single task. */
export async function storedBatchItem (store: NodeStore, taskId: Hex): Promise<BatchItem | undefined> {
  const id = hexToBytes(taskId)
  const task = await store.getTask(id)
  const qc = await store.getCertificate(id)
  if (task == null || qc == null) return undefined
  const voucher = voucherOf(task)
  if (voucher === undefined) return undefined
  return { taskId: bytesToHex(id), task, voucher, resultHash: bytesToHex(qc.resultHash), outputRef: bytesToHex(qc.outputRef), epoch: qc.epoch }
}

/** What an operator's checks read, from the node store (tasks and certificates verified before they were stored). */
export function storeBatchSource (store: NodeStore, networkQuorumBps: () => number | undefined, tabSettled?: BatchSignerSource['tabSettled']): BatchSignerSource {
  return {
    task: async (taskId) => {
      const task = await store.getTask(hexToBytes(taskId))
      return task == null ? undefined : { task, voucher: voucherOf(task) }
    },
    certificate: async (taskId) => await store.getCertificate(hexToBytes(taskId)),
    networkQuorumBps,
    tabSettled,
    ownResult: async (taskId) => (await store.getOwnAttestation(hexToBytes(taskId)))?.resultHash
  }
}

export interface BatchGossipComponents {
  gossip: GossipRouter
  epochs: Epochs
  events: NodeEvents
  verify: (set: SignatureSet) => Promise<boolean>
  networkQuorumBps: () => number | undefined
  /** Operators: checks and signs proposals. */
  signer?: BatchSigner
  /** Operators: the batches this node signed (a certificate seen marks them). */
  signed?: SignedBatches
  /** Aggregators: counts signatures of this node's proposals. */
  batcher?: Batcher
  /** Full nodes with a store: holds batch signatures against the attestations held here (slashing evidence). */
  conflicts?: Pick<Conflicts, 'batchProposal' | 'batchSignature'>
  /** Funded aggregators: keeps other aggregators' batch certificates to post them if they do not. */
  backup?: BatchBackup
}

export class BatchGossip implements Startable {
  private readonly seen = new Set<string>()

  constructor (private readonly components: BatchGossipComponents) {}

  start (): void {
    this.components.gossip.handle('batches', {
      validate: async (data, from) => {
        const checked = await checkBatchMessage(data, {
          operatorSetOf: async (epoch) => await this.components.epochs.resolveSet(epoch),
          quorumBps: this.components.networkQuorumBps(),
          seen: (kind, root, operatorIndex) => this.seen.has(seenKey(kind, toHex(root), operatorIndex)),
          verify: this.components.verify
        })
        if (checked.verdict !== 'accept') {
          if (checked.duplicate !== true) {
            log('batch message from %s: %s (%s)', from, checked.reason, checked.verdict)
            this.components.events.safeDispatchEvent('rejected', { detail: { topic: 'batches', reason: checked.reason, from, verdict: checked.verdict } })
          }
          return checked.verdict
        }
        return 'accept'
      },
      onMessage: async (data) => {
        await this.onMessage(decodeBatchGossip(data))
      }
    })
  }

  stop (): void {}

  /** A validated message from the network. */
  private async onMessage (message: BatchGossipMessage): Promise<void> {
    const { signer, batcher, signed, backup } = this.components
    switch (message.kind) {
      case 'proposal': {
        const parts = batchProposalParts(message.proposal)
        this.remember(seenKey('proposal', parts.root))
        await this.watch(parts.root, async (c) => { await c.batchProposal(parts.root, parts.leaves) })
        backup?.onProposal(parts)
        if (signer != null) await signer.onProposal({ epoch: parts.epoch, seq: parts.seq, root: parts.root, leaves: parts.leaves, summary: parts.summary })
        return
      }
      case 'signature': {
        const s = message.signature
        const root = bytesToHex(s.root)
        this.remember(seenKey('signature', toHex(s.root), s.operatorIndex))
        await batcher?.addSignature(root, { operatorIndex: s.operatorIndex, blsSig: s.signature })
        await this.watch(root, async (c) => {
          await c.batchSignature({ root, epoch: s.epoch, summaryHash: bytesToHex(s.summaryHash), operatorIndex: s.operatorIndex, signature: s.signature })
        })
        return
      }
      case 'certificate': {
        const root = bytesToHex(message.certificate.root)
        this.remember(seenKey('certificate', toHex(message.certificate.root)))
        await signed?.mark(root, 'certified')
        await backup?.onCertificate(batchCertificateParts(message.certificate))
      }
    }
  }

  /** Gossips this node's proposal; an aggregator that also operates signs it here too (gossip does not deliver own messages). */
  async publishProposal (proposal: BatchProposalContent): Promise<void> {
    this.remember(seenKey('proposal', proposal.root.slice(2).toLowerCase()))
    await this.watch(proposal.root, async (c) => { await c.batchProposal(proposal.root, proposal.leaves) })
    await this.components.gossip.publish('batches', encodeBatchGossip({ kind: 'proposal', proposal: batchProposalOf(proposal) }))
    await this.components.signer?.onProposal(proposal)
  }

  /** Gossips this operator's signature; the node's own batcher counts it directly. */
  async publishSignature (proposal: BatchProposalContent, share: { operatorIndex: number, blsSig: Uint8Array }): Promise<void> {
    const summaryHash = batchSummaryHash(proposal.summary)
    this.remember(seenKey('signature', proposal.root.slice(2).toLowerCase(), share.operatorIndex))
    await this.components.batcher?.addSignature(proposal.root, share)
    await this.components.gossip.publish('batches', encodeBatchGossip({
      kind: 'signature', signature: batchSignatureOf({ root: proposal.root, epoch: proposal.epoch, summaryHash, operatorIndex: share.operatorIndex, signature: share.blsSig })
    })).catch(err => { log('batch %s: gossiping the signature failed: %s', proposal.root, (err as Error).message) })
  }

  async publishCertificate (proposal: BatchProposalContent, qc: BatchQuorumCertificate): Promise<void> {
    this.remember(seenKey('certificate', qc.root.slice(2).toLowerCase()))
    await this.components.signed?.mark(qc.root, 'certified')
    const certificate = batchCertificateOf({ root: qc.root, epoch: qc.epoch, summary: proposal.summary, signerBitmap: qc.signerBitmap, signature: qc.aggregateSig })
    batchCertificateParts(certificate) // throws for a summary the wire would refuse, before it leaves
    await this.components.gossip.publish('batches', encodeBatchGossip({ kind: 'certificate', certificate }))
  }

  /** Hands a batch message to the conflict watch; a failure there (a store write) is logged, never stops the batch path. */
  private async watch (root: Hex, action: (conflicts: NonNullable<BatchGossipComponents['conflicts']>) => Promise<void>): Promise<void> {
    const { conflicts } = this.components
    if (conflicts == null) return
    try {
      await action(conflicts)
    } catch (err) {
      log.error('batch %s: holding it against the attestations held here failed: %s', root, (err as Error).message)
    }
  }

  private remember (key: string): void {
    this.seen.add(key)
    if (this.seen.size > SEEN_BATCH_MESSAGES) this.seen.delete(this.seen.values().next().value!)
  }
}

function seenKey (kind: BatchGossipMessage['kind'], rootHex: string, operatorIndex?: number): string {
  return `${kind}/${rootHex.replace(/^0x/, '').toLowerCase()}/${operatorIndex ?? ''}`
}
