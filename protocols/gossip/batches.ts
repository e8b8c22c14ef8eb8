/**
 * The batches gossip topic (issue 15): an aggregator's proposals, operators' signatures of them
 * and formed batch certificates, in one envelope (protocols/wire BatchGossip). This file holds
 * the conversions between the wire messages and consensus/batch.ts's types (so no other code
 * converts by hand) and the topic's checks, as pure functions like validators.ts:
 *
 * - a proposal is rejected unless its root is the Merkle root of its leaves; it is ignored for
 *   an epoch this node cannot judge. Whether an operator SIGNS it (a certificate held for every
 *   leaf with that result, the voucher checks) is the node's decision, not the relay's: a relay
 *   that does not hold every certificate must still pass an honest proposal on.
 * - a signature is rejected unless it is its operator's BLS signature of
 *   POI_BATCH_V1(chainId, taskManager, root, epoch, summaryHash);
 * - a certificate is rejected unless its signers hold the quorum of its epoch's stake and the
 *   aggregate signature verifies over the summary it carries.
 *
 * Trust boundary: bytes are untrusted; operator sets and the signing domain are trusted.
 */
import bls from '@chainsafe/bls/blst-native'
import { bytesToHex, getAddress, hexToBytes, type Hex } from 'viem'
import {
  BatchTree, batchCertificateSignatureSet, batchDigest, batchSummaryHash, decodeSignerBitmap, operatorPublicKeys, DEFAULT_MIN_SIGNERS, DEFAULT_QUORUM_BPS,
  type BatchLeaf, type BatchSummary, type OperatorSet, type SignatureSet, type SigningDomain, type TabCharge
} from '../../consensus/index.js'
import {
  bytesToUint256, decodeBatchGossip, DecodeError, PROTOCOL_VERSION, toHex, uint256ToBytes, BPS_DENOMINATOR,
  type BatchCertificate, type BatchGossipMessage, type BatchProposal, type BatchSignature, type BatchSummaryFields,
  type LeafEntry, type TabChargeEntry
} from '../wire/index.js'
import type { Validation } from './validators.js'

const ZERO_HASH: Hex = `0x${'00'.repeat(32)}`

/** Hex as the generated wire types hold bytes (backed by an ArrayBuffer). */
function bytesOf (hex: Hex): Uint8Array<ArrayBuffer> {
  return new Uint8Array(hexToBytes(hex))
}

// ── conversions ──────────────────────────────────────────────────────────────────────────────

export function leafToWire (leaf: BatchLeaf): LeafEntry {
  return { taskId: bytesOf(leaf.taskId), resultHash: bytesOf(leaf.resultHash), outputRef: bytesOf(leaf.outputRef) }
}

export function leafFromWire (entry: LeafEntry): BatchLeaf {
  return { taskId: bytesToHex(entry.taskId), resultHash: bytesToHex(entry.resultHash), outputRef: bytesToHex(entry.outputRef) }
}

function tabToWire (tab: TabCharge): TabChargeEntry {
  return {
    requester: bytesOf(tab.requester),
    cumulative: uint256ToBytes(tab.cumulative),
    sequence: tab.sequence,
    signature: bytesOf(tab.signature),
    firstWord: tab.firstWord,
    sequenceBits: tab.sequenceBits.map(uint256ToBytes),
    models: tab.models.map(m => ({
      modelKey: bytesOf(m.modelKey), count: m.count, fees: uint256ToBytes(m.fees), firstDeadline: m.firstDeadline, lastDeadline: m.lastDeadline
    }))
  }
}

function tabFromWire (tab: TabChargeEntry): TabCharge {
  return {
    requester: getAddress(bytesToHex(tab.requester)),
    cumulative: bytesToUint256(tab.cumulative),
    sequence: tab.sequence,
    signature: bytesToHex(tab.signature),
    firstWord: tab.firstWord,
    sequenceBits: tab.sequenceBits.map(bytesToUint256),
    models: tab.models.map(m => ({
      modelKey: bytesToHex(m.modelKey), count: m.count, fees: bytesToUint256(m.fees), firstDeadline: m.firstDeadline, lastDeadline: m.lastDeadline
    }))
  }
}

/** A settlement summary as proposals and certificates carry it (batchRef zero → empty). */
export function summaryToWire (summary: BatchSummary): BatchSummaryFields {
  return {
    leafCount: summary.leafCount,
    batchRef: BigInt(summary.batchRef) === 0n ? new Uint8Array(0) : bytesOf(summary.batchRef),
    tabs: summary.tabs.map(tabToWire),
    validations: summary.validations.map(v => ({ taskId: bytesOf(v.taskId), requestHash: bytesOf(v.requestHash), resultHash: bytesOf(v.resultHash) }))
  }
}

/** The settlement summary of a decoded proposal or certificate, as consensus hashes it and submitBatch takes it. */
export function summaryFromWire (fields: BatchSummaryFields): BatchSummary {
  return {
    leafCount: fields.leafCount,
    batchRef: fields.batchRef.length === 0 ? ZERO_HASH : bytesToHex(fields.batchRef),
    tabs: fields.tabs.map(tabFromWire),
    validations: fields.validations.map(v => ({ taskId: bytesToHex(v.taskId), requestHash: bytesToHex(v.requestHash), resultHash: bytesToHex(v.resultHash) }))
  }
}

export interface BatchProposalParts {
  epoch: bigint
  /** The proposing aggregator's counter. */
  seq: bigint
  /** In batch order: ascending task id. */
  leaves: BatchLeaf[]
  summary: BatchSummary
}

/** A proposal over `leaves` (root computed here; BatchFormatError for leaves out of order). */
export function batchProposalOf (parts: BatchProposalParts): BatchProposal {
  const tree = new BatchTree(parts.leaves)
  return { version: PROTOCOL_VERSION, epoch: parts.epoch, seq: parts.seq, leaves: parts.leaves.map(leafToWire), root: bytesOf(tree.root), ...summaryToWire(parts.summary) }
}

/** A decoded proposal in consensus's terms, with the root it claims and its summary hash. */
export function batchProposalParts (p: BatchProposal): BatchProposalParts & { root: Hex, summaryHash: Hex } {
  const summary = summaryFromWire(p)
  return { epoch: p.epoch, seq: p.seq, leaves: p.leaves.map(leafFromWire), summary, root: bytesToHex(p.root), summaryHash: batchSummaryHash(summary) }
}

export function batchSignatureOf (fields: { root: Hex, epoch: bigint, summaryHash: Hex, operatorIndex: number, signature: Uint8Array }): BatchSignature {
  return { version: PROTOCOL_VERSION, root: bytesOf(fields.root), epoch: fields.epoch, summaryHash: bytesOf(fields.summaryHash), operatorIndex: fields.operatorIndex, signature: new Uint8Array(fields.signature) }
}

export interface BatchCertificateParts {
  root: Hex
  epoch: bigint
  summary: BatchSummary
  signerBitmap: Uint8Array
  /** 96-byte compressed G2 aggregate. */
  signature: Uint8Array
}

export function batchCertificateOf (parts: BatchCertificateParts): BatchCertificate {
  return { version: PROTOCOL_VERSION, root: bytesOf(parts.root), epoch: parts.epoch, ...summaryToWire(parts.summary), signerBitmap: new Uint8Array(parts.signerBitmap), signature: new Uint8Array(parts.signature) }
}

export function batchCertificateParts (c: BatchCertificate): BatchCertificateParts & { summaryHash: Hex } {
  const summary = summaryFromWire(c)
  return { root: bytesToHex(c.root), epoch: c.epoch, summary, signerBitmap: c.signerBitmap, signature: c.signature, summaryHash: batchSummaryHash(summary) }
}

// ── signature sets ───────────────────────────────────────────────────────────────────────────

/** The set that checks one operator's batch signature; null when its index is not in the set. */
export function batchSignatureSet (sig: BatchSignature, set: OperatorSet): SignatureSet | null {
  const operator = set.operators[sig.operatorIndex]
  if (operator === undefined) return null
  return { publicKey: operator.blsPublicKey, message: batchDigest(set.domain, bytesToHex(sig.root), sig.epoch, bytesToHex(sig.summaryHash)), signature: sig.signature }
}

/** The set that checks a batch certificate's aggregate (consensus batchCertificateSignatureSet on the wire message); null for an empty or bad bitmap. */
export function wireBatchCertificateSignatureSet (c: BatchCertificate, set: OperatorSet, summaryHash: Hex): SignatureSet | null {
  return batchCertificateSignatureSet({ root: bytesToHex(c.root), epoch: c.epoch, summaryHash, signerBitmap: c.signerBitmap, aggregateSig: c.signature }, set)
}

/** Checks signature sets (batched, off the main thread, in the node); without it, verified here. */
function verifyHere (set: SignatureSet): boolean {
  try {
    return bls.Signature.fromBytes(set.signature, undefined, true).verify(bls.PublicKey.fromBytes(set.publicKey), set.message)
  } catch {
    return false
  }
}

// ── the topic's validator ─────────────────────────────────────────────────────────────────────

export interface BatchCheckContext {
  /** The operator set of an epoch this node can judge (current, or recent); undefined: ignore the message. */
  operatorSetOf: (epoch: bigint) => OperatorSet | undefined | Promise<OperatorSet | undefined>
  /** The network's quorum (a batch has no per-task quorum: spec15); default DEFAULT_QUORUM_BPS. */
  quorumBps?: number
  /** Whether this message's batch (by root) is already known here in this kind: a duplicate, ignored before any work. */
  seen?: (kind: BatchGossipMessage['kind'], root: Uint8Array, operatorIndex?: number) => boolean
  /** Checks a signature set (batched, off the main thread); without it the pairing runs on this thread. */
  verify?: (set: SignatureSet) => Promise<boolean>
}

/** A message of the batches topic: decoded, and checked as far as a relay can (see the file's comment). */
export async function checkBatchMessage (bytes: Uint8Array, ctx: BatchCheckContext): Promise<Validation<BatchGossipMessage>> {
  let message: BatchGossipMessage
  try {
    message = decodeBatchGossip(bytes)
  } catch (err) {
    return { verdict: 'reject', reason: err instanceof DecodeError ? err.message : `undecodable: ${String(err)}` }
  }
  const verify = ctx.verify ?? (async (set: SignatureSet) => verifyHere(set))
  switch (message.kind) {
    case 'proposal': {
      const p = message.proposal
      const root = toHex(p.root)
      if (ctx.seen?.('proposal', p.root) === true) return { verdict: 'ignore', reason: `batch ${root} already proposed`, duplicate: true }
      const set = await ctx.operatorSetOf(p.epoch)
      if (set == null) return { verdict: 'ignore', reason: `batch ${root} names epoch ${p.epoch}, which this node does not know` }
      let tree: BatchTree
      try {
        tree = new BatchTree(p.leaves.map(leafFromWire))
      } catch (err) {
        return { verdict: 'reject', reason: `batch ${root}: ${(err as Error).message}` }
      }
      if (tree.root !== bytesToHex(p.root)) return { verdict: 'reject', reason: `batch ${root}: the root is not the Merkle root of its leaves (${tree.root})` }
      return { verdict: 'accept', message }
    }
    case 'signature': {
      const s = message.signature
      const root = toHex(s.root)
      if (ctx.seen?.('signature', s.root, s.operatorIndex) === true) return { verdict: 'ignore', reason: `batch ${root}: operator ${s.operatorIndex}'s signature already seen`, duplicate: true }
      const set = await ctx.operatorSetOf(s.epoch)
      if (set == null) return { verdict: 'ignore', reason: `batch ${root} signature names epoch ${s.epoch}, which this node does not know` }
      const signatureSet = batchSignatureSet(s, set)
      if (signatureSet == null) return { verdict: 'reject', reason: `batch ${root} signature names unknown operator ${s.operatorIndex}` }
      if (!await verify(signatureSet)) return { verdict: 'reject', reason: `batch ${root}: bad BLS signature for operator ${s.operatorIndex}` }
      return { verdict: 'accept', message }
    }
    case 'certificate': {
      const c = message.certificate
      const root = toHex(c.root)
      if (ctx.seen?.('certificate', c.root) === true) return { verdict: 'ignore', reason: `batch ${root} already certified here`, duplicate: true }
      const set = await ctx.operatorSetOf(c.epoch)
      if (set == null) return { verdict: 'ignore', reason: `batch certificate ${root} names epoch ${c.epoch}, which this node does not know` }
      const bitmap = decodeSignerBitmap(c.signerBitmap, set.operators.length)
      if (!bitmap.ok) return { verdict: 'reject', reason: `batch certificate ${root}: ${bitmap.reason}` }
      const signedStake = bitmap.signers.reduce((sum, i) => sum + set.operators[i]!.stake, 0n)
      const quorumBps = ctx.quorumBps ?? DEFAULT_QUORUM_BPS
      if (bitmap.signers.length < DEFAULT_MIN_SIGNERS || signedStake * BigInt(BPS_DENOMINATOR) < BigInt(quorumBps) * set.totalStake) {
        return { verdict: 'reject', reason: `batch certificate ${root}: ${bitmap.signers.length} signers hold ${signedStake} of ${set.totalStake} stake, below the quorum of ${quorumBps}/${BPS_DENOMINATOR}` }
      }
      const signatureSet = wireBatchCertificateSignatureSet(c, set, batchSummaryHash(summaryFromWire(c)))
      if (signatureSet == null || !await verify(signatureSet)) {
        return { verdict: 'reject', reason: `batch certificate ${root}: the aggregate signature does not verify for its signers over this root, epoch and summary` }
      }
      return { verdict: 'accept', message }
    }
  }
}
