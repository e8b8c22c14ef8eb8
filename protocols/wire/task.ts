/**
 * Task announcements: EIP-712 signing, signature checks and task ids.
 *
 * A requester signs the task with its Ethereum account under the domain
 * `{ name: 'poi', version: '1', chainId, verifyingContract: taskManager }`, so a signed task is
 * valid on one chain and for one TaskManager contract only, and wallets can show what is signed.
 * The task id is that EIP-712 digest: the TaskManager recomputes it from the task's fields
 * (the dynamic `bytes` fields as their keccak256, as EIP-712 encodes them) and checks the
 * requester's signature with `ecrecover` before it charges anything.
 */
import {
  bytesToHex, hashTypedData, hexToBytes, isAddress, isAddressEqual, recoverAddress, type Address,
  type Hex, type LocalAccount, type TypedDataDomain
} from 'viem'
import { DecodeError, EncodeError } from './codec.js'
import { INPUT_REF_BYTES, PROTOCOL_VERSION, REQUESTER_SIGNATURE_BYTES, TASK_TIERS, type TaskTier } from './constants.js'
import { checkTaskAnnouncement } from './gossip-codecs.js'
import { TaskAnnouncement } from './messages.pb.js'
import { uint256ToBytes, Uint256Error } from './uint256.js'

/** EIP-712 domain name of every poi signature. */
export const TASK_DOMAIN_NAME = 'poi'

/** EIP-712 domain version: follows the wire protocol version, so a v2 task never verifies as v1. */
export const TASK_DOMAIN_VERSION = String(PROTOCOL_VERSION)

/**
 * The signed struct. `chainId` is in the domain; `version` is the domain version. An absent
 * inputRef, validationRequest or inputCommitment is signed as bytes32(0), which is why the codec rejects an
 * all-zero one. contracts/src/TaskManager.sol spells the same type string.
 */
export const TASK_TYPED_DATA_TYPES = {
  TaskAnnouncement: [
    { name: 'modelId', type: 'bytes' },
    { name: 'input', type: 'bytes' },
    { name: 'inputRef', type: 'bytes32' },
    { name: 'params', type: 'bytes' },
    { name: 'fee', type: 'uint256' },
    { name: 'deadline', type: 'uint64' },
    { name: 'quorumBps', type: 'uint16' },
    { name: 'nonce', type: 'uint64' },
    { name: 'requester', type: 'address' },
    { name: 'validationRequest', type: 'bytes32' },
    { name: 'tier', type: 'uint8' },
    { name: 'inputCommitment', type: 'bytes32' }
  ]
} as const

/** What a requester chooses; `signTask` fills in version, requester and signature. */
export interface TaskFields {
  chainId: bigint
  /** CID bytes of the model manifest. */
  modelId: Uint8Array
  /** Inline input, at most MAX_INLINE_INPUT_BYTES; give exactly one of input and inputRef. */
  input?: Uint8Array
  /** 32-byte stream reference of an input too large to inline. */
  inputRef?: Uint8Array
  params?: Uint8Array
  /** wei */
  fee: bigint
  /** unix milliseconds */
  deadline: bigint
  /** share of the epoch stake needed, out of 10000 */
  quorumBps: number
  nonce: bigint
  /** ERC-8004 validation request hash (32 bytes) the TaskManager answers when the task is certified. */
  validationRequest?: Uint8Array
  /** What proves the result (issue 16): a quorum certificate (the default), a zk proof, or both. */
  tier?: TaskTier
  /** The Poseidon commitment of the input (32 bytes, below the BN254 field): required for zk and both, absent otherwise. */
  inputCommitment?: Uint8Array
}

/** secp256k1 group order; signatures with s above half of it are the malleable twin of another. */
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
const SECP256K1_HALF_N = SECP256K1_N / 2n
/** v as Ethereum writes it (27 + recovery id). */
const V_LOW = 27
const V_HIGH = 28

const ZERO_BYTES32: Hex = `0x${'00'.repeat(INPUT_REF_BYTES)}`

/** The EIP-712 domain of tasks for one chain and TaskManager contract. */
export function taskDomain (chainId: bigint, taskManager: Address): TypedDataDomain {
  return { name: TASK_DOMAIN_NAME, version: TASK_DOMAIN_VERSION, chainId, verifyingContract: taskManager }
}

function typedTask (task: TaskAnnouncement, taskManager: Address) {
  return {
    domain: taskDomain(task.chainId, taskManager),
    types: TASK_TYPED_DATA_TYPES,
    primaryType: 'TaskAnnouncement',
    message: {
      modelId: bytesToHex(task.modelId),
      input: bytesToHex(task.input),
      inputRef: task.inputRef.length === 0 ? ZERO_BYTES32 : bytesToHex(task.inputRef),
      params: bytesToHex(task.params),
      fee: bytesToBigInt(task.fee),
      deadline: task.deadline,
      quorumBps: task.quorumBps,
      nonce: task.nonce,
      requester: bytesToHex(task.requester),
      validationRequest: task.validationRequest.length === 0 ? ZERO_BYTES32 : bytesToHex(task.validationRequest),
      tier: task.tier,
      inputCommitment: task.inputCommitment.length === 0 ? ZERO_BYTES32 : bytesToHex(task.inputCommitment)
    }
  } as const
}

function bytesToBigInt (bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(bytesToHex(bytes))
}

function checkTaskManager (taskManager: Address): void {
  if (!isAddress(taskManager, { strict: false })) {
    throw new EncodeError('TaskAnnouncement', 'INVALID_FIELD', 'verifyingContract',
      `task manager ${String(taskManager)} is not a 20-byte hex address; take it from the genesis file`)
  }
}

/**
 * Builds and signs a task. Throws EncodeError when the fields would make a task peers reject
 * (checked before signing, so nothing invalid is ever signed).
 */
export async function signTask (account: LocalAccount, taskManager: Address, fields: TaskFields): Promise<TaskAnnouncement> {
  checkTaskManager(taskManager)
  let fee: Uint8Array<ArrayBuffer>
  try {
    fee = uint256ToBytes(fields.fee)
  } catch (err) {
    if (err instanceof Uint256Error) throw new EncodeError('TaskAnnouncement', 'INVALID_FIELD', 'fee', err.message)
    throw err
  }
  // Copies, so a caller reusing its buffers cannot change a task after it is signed.
  const task: TaskAnnouncement = {
    version: PROTOCOL_VERSION,
    chainId: fields.chainId,
    modelId: new Uint8Array(fields.modelId),
    input: new Uint8Array(fields.input ?? []),
    inputRef: new Uint8Array(fields.inputRef ?? []),
    params: new Uint8Array(fields.params ?? []),
    fee,
    deadline: fields.deadline,
    quorumBps: fields.quorumBps,
    nonce: fields.nonce,
    requester: new Uint8Array(hexToBytes(account.address)),
    requesterSig: new Uint8Array(0),
    validationRequest: new Uint8Array(fields.validationRequest ?? []),
    tier: TASK_TIERS[fields.tier ?? 'replicated'],
    inputCommitment: new Uint8Array(fields.inputCommitment ?? [])
  }
  const bad = checkTaskAnnouncement(task, { signature: false })
  if (bad !== undefined) throw EncodeError.of('TaskAnnouncement', bad)

  const signature = await account.signTypedData(typedTask(task, taskManager))
  task.requesterSig = new Uint8Array(hexToBytes(signature))
  return task
}

/**
 * taskId = the task's EIP-712 digest under the domain of `taskManager` on `task.chainId`: what
 * the requester signs and what the TaskManager recomputes on-chain, so an id names one task on
 * one chain and contract, and a replay elsewhere has another id.
 *
 * The signature is not part of it, so the id is known before signing and cannot be changed by
 * re-signing (ECDSA signatures are randomisable by the signer). Throws EncodeError for a task
 * whose fields (other than the signature) are invalid, or a malformed taskManager address.
 */
export function taskIdOf (task: TaskAnnouncement, taskManager: Address): Uint8Array<ArrayBuffer> {
  const bad = checkTaskAnnouncement(task, { signature: false })
  if (bad !== undefined) throw EncodeError.of('TaskAnnouncement', bad)
  checkTaskManager(taskManager)
  return hexToBytes(hashTypedData(typedTask(task, taskManager))) as Uint8Array<ArrayBuffer>
}

/** r ‖ s ‖ v with v in {27, 28}, 0 < r < n and 0 < s ≤ n/2 (EIP-2: one signature per signer and message). */
export function isCanonicalSignature (sig: Uint8Array): boolean {
  if (sig.length !== REQUESTER_SIGNATURE_BYTES) return false
  const r = BigInt(bytesToHex(sig.subarray(0, 32)))
  const s = BigInt(bytesToHex(sig.subarray(32, 64)))
  const v = sig[64]
  return (v === V_LOW || v === V_HIGH) && r > 0n && r < SECP256K1_N && s > 0n && s <= SECP256K1_HALF_N
}

/**
 * True when `requesterSig` is a canonical EIP-712 signature of this task, for
 * `taskManager` on `task.chainId`, by `task.requester`. Any bad signature bytes give false,
 * never an exception. A task whose other fields are invalid (one that never came through
 * `decodeTaskAnnouncement`) throws DecodeError: that is a caller bug, not a forged task.
 */
export async function verifyTaskSignature (task: TaskAnnouncement, taskManager: Address): Promise<boolean> {
  const bad = checkTaskAnnouncement(task, { signature: false })
  if (bad !== undefined) throw DecodeError.of('TaskAnnouncement', bad)
  checkTaskManager(taskManager)
  if (!(task.requesterSig instanceof Uint8Array) || !isCanonicalSignature(task.requesterSig)) return false

  let signer: Address
  try {
    signer = await recoverAddress({ hash: hashTypedData(typedTask(task, taskManager)), signature: bytesToHex(task.requesterSig) })
  } catch {
    // r that is no curve point's x coordinate: no signer exists, which is the answer.
    return false
  }
  return isAddressEqual(signer, bytesToHex(task.requester))
}
