/**
 * The operator side of batches (issue 15, DESIGN §14): an operator BLS-signs an aggregator's
 * batch proposal only if it could have certified every leaf itself and the summary says exactly
 * what the leaves imply. Otherwise it refuses with a typed reason (logged, and a node event as
 * for refused tasks) and signs nothing.
 *
 * Why each check:
 * - every leaf's task has a valid certificate held here, of the batch's epoch, with exactly the
 *   leaf's result and outputRef: a batch signature must never say more than the task
 *   certificates (issue 15 "Disputes need no new trust": a batch leaf that differs from a task
 *   certificate the operator signed is slashable);
 * - every leaf's result is the one this operator attested for the task, if it attested: an
 *   operator outvoted on a task (its model gave another output) holds a valid certificate for
 *   the quorum's result, but signing that result in a batch beside its own attestation is the
 *   statement SlashingManager.submitBatchLeafAndAttestation slashes, and full nodes post it
 *   (node/roles/conflicts.ts);
 * - leaves strictly ascending: the tree's order is fixed (spec15), so one set of leaves has one
 *   root and a reordered or duplicated leaf cannot be slipped in;
 * - a leaf already in another batch this operator signed (unless that batch failed or expired)
 *   or already settled on chain: a task settles once; signing it into two batches lets an
 *   aggregator waste the network's gas on the loser, so it is refused here, and the chain's
 *   bitmap refuses what slips through (TaskAlreadySettled);
 * - per requester the voucher is the highest one seen among the batch's tasks, and validly
 *   signed: a lower voucher would cap the charge below what the leaves cost (StaleVoucher /
 *   VoucherExceeded on chain, and the batch's gas lost);
 * - the summary is recomputed from the leaves and compared by hash: fees, counts, deadlines,
 *   sequences and ERC-8004 responses come from the tasks, never from the aggregator.
 *
 * What it signed is kept in the node store (SignedBatches), so a restarted operator keeps
 * refusing to sign a leaf twice.
 */
import { logger } from '@libp2p/logger'
import { getAddress, hexToBytes, isAddressEqual, type Hex } from 'viem'
import {
  BatchFormatError, assertBatchOrder, batchSummaryHash, signBatch,
  type BatchLeaf, type BatchSignatureShare, type BatchSummary, type OperatorSet
} from '../../consensus/index.js'
import { bytesEqual, to0xHex, verifyVoucherSignature, type QuorumCertificate, type TaskAnnouncement } from '../../protocols/wire/index.js'
import type { StoreArea } from '../../storage/index.js'
import { buildBatch, compareTaskIds, requesterOf, type BatchItem, type TaskVoucher } from './batch-contents.js'

const log = logger('poi:batch-signer')

/**
 * How long a batch this operator signed holds its leaves, from when it signed: after that the
 * batch is taken to be over, and the leaves may be signed into another batch. Uncertified, the
 * aggregator gave up (it closes batches within seconds and a batch certificate forms within a
 * few gossip rounds). Certified but not seen to settle, it failed on chain or lost every poster:
 * its aggregator posts it at once and backups after BATCH_BACKUP_DELAY_MS (30 s), and the
 * aggregator batches a failed batch's tasks again, which operators must then be able to sign.
 * Safe for money: the chain's settled-sequence bitmap refuses a task settled twice, so an expiry
 * that comes too early costs a reverted simulation, never a double charge.
 */
export const SIGNED_BATCH_EXPIRY_MS = 120_000

/**
 * How long a proposal whose leaf has no certificate here yet is checked again before it is
 * refused: an aggregator may close a batch (on its size bound) the moment it forms the last
 * leaf's certificate, which then reaches this node through the same gossip mesh within tens of
 * ms (about a second seen on the loaded test machine). Polled every MISSING_CERTIFICATE_POLL_MS.
 */
export const MISSING_CERTIFICATE_WAIT_MS = 3_000
const MISSING_CERTIFICATE_POLL_MS = 200

/** What an aggregator proposes (the wire BatchProposal, decoded). */
export interface BatchProposalContent {
  epoch: bigint
  /** The aggregator's batch counter (for logs; not signed). */
  seq: bigint
  root: Hex
  leaves: BatchLeaf[]
  summary: BatchSummary
}

/** Why an operator refuses to sign a batch; each has its own test (test/batch-signing.test.ts). */
export type BatchRefusalCode =
  /** The batch's epoch is not one whose operator set this node knows and is part of. */
  | 'unknown-epoch'
  /** Leaves out of ascending task id order. */
  | 'unordered-leaves'
  /** A task twice among the leaves. */
  | 'duplicate-leaf'
  /** The root is not the Merkle root of the leaves. */
  | 'root-mismatch'
  /** A leaf's task, or its certificate, is not held here. */
  | 'no-certificate'
  /** The held certificate has another result, outputRef or epoch than the leaf. */
  | 'certificate-mismatch'
  /** This operator attested another result for a leaf's task: signing the leaf would be slashable. */
  | 'own-attestation-mismatch'
  /** A leaf's task carries no voucher (a single task: it settles only singly). */
  | 'not-a-tab-task'
  /** A leaf's task asked for more than the network quorum, which is all a batch certificate carries. */
  | 'quorum-above-network'
  /** A leaf is in another batch this node signed (not failed, not expired). */
  | 'leaf-in-other-batch'
  /** A leaf's tab sequence is already settled on chain. */
  | 'already-settled'
  /** A requester's voucher in the summary is not the highest one among its tasks in the batch. */
  | 'stale-voucher'
  /** A requester's voucher in the summary is not signed by that requester. */
  | 'invalid-voucher-signature'
  /** The summary is not what the leaves imply (charges, counts, deadlines, sequences, responses). */
  | 'summary-mismatch'

export interface BatchRefusal {
  code: BatchRefusalCode
  reason: string
  taskId?: Hex
}

/** What the checks read; a node implements it over its store, task book and chain. */
export interface BatchSignerSource {
  /** The task (with its voucher when it is a tab task), if held here. */
  task: (taskId: Hex) => Promise<{ task: TaskAnnouncement, voucher?: TaskVoucher } | undefined>
  /** The certificate this node holds for the task (verified before it was stored). */
  certificate: (taskId: Hex) => Promise<QuorumCertificate | undefined>
  /** The network's quorum (TaskManager.quorumBps), when known. */
  networkQuorumBps: () => number | undefined
  /** Whether the chain already settled this tab sequence of this requester; absent without a chain. */
  tabSettled?: (requester: Hex, sequence: bigint) => Promise<boolean>
  /** The result hash this operator attested for the task, if it did; absent: not checked. */
  ownResult?: (taskId: Hex) => Promise<Uint8Array | undefined>
}

export type BatchCheck = { ok: true, items: BatchItem[] } | { ok: false, refusal: BatchRefusal }

type SignedState = 'signed' | 'certified' | 'failed'
interface SignedRecord { state: SignedState, at: number, leaves: Hex[] }

const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder()

/**
 * The batches this operator signed and their leaves, in a store area: `leaf/<taskId>` → the root
 * of the batch it was signed into, `batch/<root>` → its state and when. A leaf is free again
 * once its batch failed or expired (SIGNED_BATCH_EXPIRY_MS after signing, certified or not).
 */
export class SignedBatches {
  constructor (private readonly area: StoreArea, private readonly expiryMs = SIGNED_BATCH_EXPIRY_MS) {}

  /** The root of another live batch that holds `taskId`, if any. */
  async holder (taskId: Hex, root: Hex, now = Date.now()): Promise<Hex | undefined> {
    const bytes = await this.area.get(`leaf/${taskId.toLowerCase()}`)
    if (bytes === undefined) return undefined
    const other = fromUtf8.decode(bytes) as Hex
    if (other.toLowerCase() === root.toLowerCase()) return undefined
    const record = await this.record(other)
    if (record === undefined || record.state === 'failed') return undefined
    if (now > record.at + this.expiryMs) return undefined
    return other
  }

  async record (root: Hex): Promise<SignedRecord | undefined> {
    const bytes = await this.area.get(`batch/${root.toLowerCase()}`)
    return bytes === undefined ? undefined : JSON.parse(fromUtf8.decode(bytes)) as SignedRecord
  }

  /** Records a signed batch and claims its leaves, in one write. */
  async signed (root: Hex, leaves: readonly Hex[], now = Date.now()): Promise<void> {
    const r = root.toLowerCase()
    await this.area.put([
      [`batch/${r}`, utf8.encode(JSON.stringify({ state: 'signed', at: now, leaves: leaves.map(l => l.toLowerCase()) }))],
      ...leaves.map((leaf): [string, Uint8Array] => [`leaf/${leaf.toLowerCase()}`, utf8.encode(r)])
    ])
  }

  /** A certificate for the batch was seen (its leaves stay claimed), or it failed on chain (they are freed). */
  async mark (root: Hex, state: 'certified' | 'failed'): Promise<void> {
    const record = await this.record(root)
    if (record === undefined) return
    await this.area.put([[`batch/${root.toLowerCase()}`, utf8.encode(JSON.stringify({ ...record, state }))]])
  }
}

function refuse (code: BatchRefusalCode, reason: string, taskId?: Hex): BatchCheck {
  return { ok: false, refusal: { code, reason, taskId } }
}

/**
 * Runs every check on a proposal, cheapest first; the first that fails is the refusal. On
 * success returns the batch's items in leaf order.
 */
export async function reviewBatchProposal (proposal: BatchProposalContent, operatorSet: OperatorSet, source: BatchSignerSource, signed?: SignedBatches): Promise<BatchCheck> {
  const { leaves } = proposal
  if (proposal.epoch !== operatorSet.epoch) return refuse('unknown-epoch', `the batch is of epoch ${proposal.epoch}, this node checks against epoch ${operatorSet.epoch}`)
  try {
    assertBatchOrder(leaves)
  } catch (err) {
    if (!(err instanceof BatchFormatError)) throw err
    for (let k = 1; k < leaves.length; k++) {
      const order = compareTaskIds(leaves[k - 1]!.taskId, leaves[k]!.taskId)
      if (order === 0) return refuse('duplicate-leaf', err.message, leaves[k]!.taskId)
      if (order > 0) return refuse('unordered-leaves', err.message, leaves[k]!.taskId)
    }
    return refuse('unordered-leaves', err.message)
  }

  const network = source.networkQuorumBps()
  const items: BatchItem[] = []
  for (const leaf of leaves) {
    const held = await source.task(leaf.taskId)
    const qc = await source.certificate(leaf.taskId)
    if (held === undefined || qc === undefined) {
      return refuse('no-certificate', `task ${leaf.taskId} has no ${held === undefined ? 'task' : 'certificate'} held here: only certified tasks are batched`, leaf.taskId)
    }
    if (!bytesEqual(qc.resultHash, hexToBytes(leaf.resultHash)) || !bytesEqual(qc.outputRef, hexToBytes(leaf.outputRef)) || qc.epoch !== proposal.epoch) {
      return refuse('certificate-mismatch', `task ${leaf.taskId}: the leaf says result ${leaf.resultHash}, outputRef ${leaf.outputRef}, epoch ${proposal.epoch}; ` +
        `the certificate held here says ${to0xHex(qc.resultHash)}, ${to0xHex(qc.outputRef)}, epoch ${qc.epoch}`, leaf.taskId)
    }
    const own = await source.ownResult?.(leaf.taskId)
    if (own !== undefined && !bytesEqual(own, hexToBytes(leaf.resultHash))) {
      return refuse('own-attestation-mismatch', `task ${leaf.taskId}: the leaf says result ${leaf.resultHash}, this operator attested ${to0xHex(own)}; ` +
        'signing both is slashable (SlashingManager.submitBatchLeafAndAttestation)', leaf.taskId)
    }
    const { task, voucher } = held
    if (voucher === undefined || voucher.sequence !== task.nonce) {
      return refuse('not-a-tab-task', `task ${leaf.taskId} carries no tab voucher for its nonce ${task.nonce}: it settles singly, not in a batch`, leaf.taskId)
    }
    if (network !== undefined && task.quorumBps > network) {
      return refuse('quorum-above-network', `task ${leaf.taskId} asked for a quorum of ${task.quorumBps} bps, above the network's ${network} that a batch certificate carries`, leaf.taskId)
    }
    items.push({ taskId: leaf.taskId, task, voucher, resultHash: leaf.resultHash, outputRef: leaf.outputRef, epoch: qc.epoch })
  }

  if (signed !== undefined) {
    for (const leaf of leaves) {
      const other = await signed.holder(leaf.taskId, proposal.root)
      // Two aggregators that batch the same tasks at once propose different roots, and operators
      // see them in different orders: every operator also signs the lower root, so that one
      // gathers the whole quorum and the tasks settle (the higher one, if it certifies too,
      // reverts on chain and its aggregator drops the tasks settled elsewhere).
      if (other !== undefined && BigInt(proposal.root) >= BigInt(other)) {
        return refuse('leaf-in-other-batch', `task ${leaf.taskId} is already in batch ${other}, which this node signed (a batch with a lower root would be signed)`, leaf.taskId)
      }
    }
  }
  if (source.tabSettled !== undefined) {
    for (const item of items) {
      if (await source.tabSettled(requesterOf(item.task), item.task.nonce)) {
        return refuse('already-settled', `task ${item.taskId} (tab sequence ${item.task.nonce} of ${requesterOf(item.task)}) is already settled on chain`, item.taskId)
      }
    }
  }

  const expected = buildBatch(items, proposal.summary.batchRef)
  if (expected.root.toLowerCase() !== proposal.root.toLowerCase()) {
    return refuse('root-mismatch', `the root ${proposal.root} is not the Merkle root ${expected.root} of the batch's ${leaves.length} leaves`)
  }
  const { chainId, taskManager } = operatorSet.domain
  for (const tab of proposal.summary.tabs) {
    const want = expected.summary.tabs.find(t => isAddressEqual(t.requester, tab.requester))
    if (want === undefined) continue // a requester with no leaf: the summary comparison below refuses it
    if (tab.sequence !== want.sequence || tab.cumulative !== want.cumulative) {
      return refuse('stale-voucher', `requester ${getAddress(tab.requester)}: the summary carries its voucher of sequence ${tab.sequence} (cumulative ${tab.cumulative}), ` +
        `the highest among its tasks in the batch is sequence ${want.sequence} (cumulative ${want.cumulative})`)
    }
    const voucher = { requester: getAddress(tab.requester), taskManager, cumulative: tab.cumulative, sequence: tab.sequence }
    if (!await verifyVoucherSignature(chainId, voucher, tab.signature)) {
      return refuse('invalid-voucher-signature', `requester ${voucher.requester}: the voucher of sequence ${tab.sequence} in the summary is not signed by the requester`)
    }
  }
  if (expected.summaryHash !== batchSummaryHashOf(proposal.summary)) {
    return refuse('summary-mismatch', `the summary (hash ${batchSummaryHashOf(proposal.summary)}) is not what the leaves imply (${expected.summaryHash}): ` +
      describeDifference(proposal.summary, expected.summary))
  }
  return { ok: true, items: expected.items }
}

function batchSummaryHashOf (summary: BatchSummary): Hex {
  try {
    return batchSummaryHash(summary)
  } catch {
    return '0x' as Hex
  }
}

/** The first place two summaries differ, for the refusal's reason. */
function describeDifference (got: BatchSummary, want: BatchSummary): string {
  if (got.leafCount !== want.leafCount) return `leafCount ${got.leafCount}, expected ${want.leafCount}`
  if (got.tabs.length !== want.tabs.length) return `${got.tabs.length} tabs, expected ${want.tabs.length}`
  for (const [k, tab] of got.tabs.entries()) {
    const w = want.tabs[k]!
    if (!isAddressEqual(tab.requester, w.requester)) return `tab ${k} is requester ${tab.requester}, expected ${w.requester}`
    if (tab.firstWord !== w.firstWord || tab.sequenceBits.length !== w.sequenceBits.length || tab.sequenceBits.some((b, i) => b !== w.sequenceBits[i])) return `the settled sequences of ${w.requester} differ`
    if (tab.models.length !== w.models.length) return `${tab.models.length} model charges for ${w.requester}, expected ${w.models.length}`
    for (const [m, charge] of tab.models.entries()) {
      const wm = want.tabs[k]!.models[m]!
      if (charge.modelKey !== wm.modelKey || charge.count !== wm.count || charge.fees !== wm.fees || charge.firstDeadline !== wm.firstDeadline || charge.lastDeadline !== wm.lastDeadline) {
        return `the charge of ${w.requester} for model ${wm.modelKey} differs (count ${charge.count}/${wm.count}, fees ${charge.fees}/${wm.fees}, deadlines ${charge.firstDeadline}-${charge.lastDeadline}/${wm.firstDeadline}-${wm.lastDeadline})`
      }
    }
  }
  if (got.validations.length !== want.validations.length) return `${got.validations.length} ERC-8004 responses, expected ${want.validations.length}`
  return 'the ERC-8004 responses or the voucher signatures differ'
}

export interface BatchSignerComponents {
  blsSecretKey: Uint8Array
  blsPublicKey: Uint8Array
  source: BatchSignerSource
  signed: SignedBatches
  /** The operator set of an epoch, if known here. */
  resolveSet: (epoch: bigint) => Promise<OperatorSet | undefined>
  /** Sends the signature to the network. */
  publish: (proposal: BatchProposalContent, share: BatchSignatureShare) => Promise<void>
  /** Told of every refusal (the node's 'batch-refused' event). */
  onRefusal?: (proposal: BatchProposalContent, refusal: BatchRefusal) => void
}

/**
 * Signs proposals that pass reviewBatchProposal. One proposal at a time: checks read what the
 * last signature claimed, so two proposals sharing a leaf cannot both pass.
 */
export class BatchSigner {
  private queue: Promise<unknown> = Promise.resolve()

  constructor (private readonly components: BatchSignerComponents) {}

  /** Checks, records and signs a proposal; resolves to the share sent, or the refusal. */
  async onProposal (proposal: BatchProposalContent): Promise<{ share: BatchSignatureShare } | { refusal: BatchRefusal }> {
    const run = this.queue.then(async () => await this.handle(proposal))
    this.queue = run.catch(() => {})
    return await run
  }

  private async handle (proposal: BatchProposalContent): Promise<{ share: BatchSignatureShare } | { refusal: BatchRefusal }> {
    const { blsSecretKey, blsPublicKey, source, signed, resolveSet, publish, onRefusal } = this.components
    const set = await resolveSet(proposal.epoch)
    const index = set?.operators.findIndex(o => bytesEqual(o.blsPublicKey, blsPublicKey)) ?? -1
    let refusal: BatchRefusal | undefined
    if (set === undefined || index < 0) {
      refusal = { code: 'unknown-epoch', reason: `this node is not an operator of epoch ${proposal.epoch}, or does not know its operator set` }
    } else {
      const record = await signed.record(proposal.root)
      if (record !== undefined) {
        // already signed (a relayed copy, or after a restart): the same signature again
        const share = signBatch(blsSecretKey, set, { root: proposal.root, epoch: proposal.epoch, summaryHash: batchSummaryHash(proposal.summary) }, index)
        await publish(proposal, share)
        return { share }
      }
      let check = await reviewBatchProposal(proposal, set, source, signed)
      for (const until = Date.now() + MISSING_CERTIFICATE_WAIT_MS; !check.ok && check.refusal.code === 'no-certificate' && Date.now() < until;) {
        await new Promise(resolve => setTimeout(resolve, MISSING_CERTIFICATE_POLL_MS))
        check = await reviewBatchProposal(proposal, set, source, signed)
      }
      if (check.ok) {
        await signed.signed(proposal.root, proposal.leaves.map(l => l.taskId))
        const share = signBatch(blsSecretKey, set, { root: proposal.root, epoch: proposal.epoch, summaryHash: batchSummaryHash(proposal.summary) }, index)
        log('signed batch %s (seq %d, %d leaves, epoch %d)', proposal.root, proposal.seq, proposal.leaves.length, proposal.epoch)
        await publish(proposal, share)
        return { share }
      }
      refusal = check.refusal
    }
    log('refused batch %s (seq %d): %s: %s', proposal.root, proposal.seq, refusal.code, refusal.reason)
    onRefusal?.(proposal, refusal)
    return { refusal }
  }
}
