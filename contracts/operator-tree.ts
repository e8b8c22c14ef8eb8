/**
 * The commitment OperatorRegistry stores for each epoch, rebuilt in TypeScript: the same leaves,
 * padding and pair hashing as `OperatorTree` in contracts/src/OperatorRegistry.sol, so proofs made
 * here verify on-chain and roots read from the chain can be checked here.
 *
 *   leaf_i = keccak256(abi.encode(uint256 i, address operator, bytes32 keccak256(abi.encode(pubkey)), uint256 stake))
 *   leaves padded with bytes32(0) to the next power of two (at least 1); parent = keccak256(left ‖ right)
 *
 * where abi.encode(pubkey) is the key's 128-byte EIP-2537 form (four bytes32 words).
 */
import { concat, encodeAbiParameters, keccak256, type Hex } from 'viem'
import { g1ToEip2537, type G1Point, type G2Point, type Operator, type OperatorSet } from '../consensus/index.js'
import { PoiError } from '../protocols/wire/index.js'

/** solady's BLS.G1Point / BLS.G2Point as viem passes them (consensus/eip2537.ts converts). */
export type { G1Point, G2Point }

/**
 * An epoch's operator set as the chain committed it: the OperatorSet the off-chain verifier uses,
 * plus the Merkle leaves and root the contracts check non-signer and evidence proofs against.
 */
export type OnChainOperatorSet = OperatorSet & {
  /** leaves[i] is operator i's leaf (unpadded: length = operators.length). */
  leaves: readonly Hex[]
  root: Hex
}

export class OperatorTreeError extends PoiError {
  constructor (message: string) {
    super('ERR_OPERATOR_TREE', message)
  }
}

const ZERO_LEAF: Hex = `0x${'00'.repeat(32)}`
const G1_POINT_ABI = [{ type: 'tuple', components: [{ name: 'x_a', type: 'bytes32' }, { name: 'x_b', type: 'bytes32' }, { name: 'y_a', type: 'bytes32' }, { name: 'y_b', type: 'bytes32' }] }] as const
const LEAF_ABI = [{ type: 'uint256' }, { type: 'address' }, { type: 'bytes32' }, { type: 'uint256' }] as const

/** keccak256(abi.encode(pubkey)): how the registry names a key (leaves, keyUsed). */
export function publicKeyHash (pubkey: G1Point): Hex {
  return keccak256(encodeAbiParameters(G1_POINT_ABI, [pubkey]))
}

export function operatorLeaf (index: number, address: `0x${string}`, pubkey: G1Point, stake: bigint): Hex {
  return keccak256(encodeAbiParameters(LEAF_ABI, [BigInt(index), address, publicKeyHash(pubkey), stake]))
}

/** Levels above the leaves: ceil(log2(count)), 0 for count ≤ 1 (OperatorTree.depth). */
export function treeDepth (count: number): number {
  let depth = 0
  while (2 ** depth < count) depth++
  return depth
}

function hashPair (left: Hex, right: Hex): Hex {
  return keccak256(concat([left, right]))
}

/** Every level of the padded tree, leaves first, root last. */
function treeLevels (leaves: readonly Hex[]): Hex[][] {
  const level: Hex[] = [...leaves]
  // padded to a power of two, and never empty: an epoch with no operators has root bytes32(0)
  while (level.length < 2 ** treeDepth(leaves.length)) level.push(ZERO_LEAF)
  const levels = [level]
  while (levels[levels.length - 1].length > 1) {
    const below = levels[levels.length - 1]
    const above: Hex[] = []
    for (let i = 0; i < below.length; i += 2) above.push(hashPair(below[i], below[i + 1]))
    levels.push(above)
  }
  return levels
}

export function merkleRoot (leaves: readonly Hex[]): Hex {
  const levels = treeLevels(leaves)
  return levels[levels.length - 1][0]
}

/** Siblings from the leaf up, as OperatorTree.verify consumes them. */
export function merkleProof (leaves: readonly Hex[], index: number): Hex[] {
  if (!Number.isInteger(index) || index < 0 || index >= leaves.length) {
    throw new OperatorTreeError(`no leaf ${index} in a tree of ${leaves.length} operators`)
  }
  const levels = treeLevels(leaves)
  const proof: Hex[] = []
  let position = index
  for (let level = 0; level < levels.length - 1; level++) {
    proof.push(levels[level][position ^ 1])
    position >>= 1
  }
  return proof
}

/** The same check as OperatorTree.verify (exact proof length, index below count). */
export function verifyMerkleProof (root: Hex, count: number, index: number, leaf: Hex, proof: readonly Hex[]): boolean {
  if (!Number.isInteger(index) || index < 0 || index >= count || proof.length !== treeDepth(count)) return false
  let node = leaf
  for (let level = 0; level < proof.length; level++) {
    node = ((index >> level) & 1) === 0 ? hashPair(node, proof[level]) : hashPair(proof[level], node)
  }
  return node.toLowerCase() === root.toLowerCase()
}

export function operatorLeafOf (operator: Operator): Hex {
  return operatorLeaf(operator.index, operator.address, g1ToEip2537(operator.blsPublicKey), operator.stake)
}

/** Adds the leaves and root the registry computes for `set` (same order, same stakes). */
export function toOnChainOperatorSet (set: OperatorSet): OnChainOperatorSet {
  const leaves = set.operators.map(operatorLeafOf)
  return { ...set, leaves, root: merkleRoot(leaves) }
}
