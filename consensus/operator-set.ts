/**
 * The operator set of one epoch: ordered operators (index = position), their BLS keys and
 * stake, and the signing domain. Loaded from a genesis JSON file on the devnet (the chain's
 * registry fills the same structure elsewhere).
 *
 * Trust: a genesis file is a config file, i.e. untrusted input: every field is checked, every
 * key is validated and every proof of possession verified, so code holding an OperatorSet
 * returned by parseGenesis may treat its keys as valid and rogue-key free.
 */
import { readFile, writeFile } from 'node:fs/promises'
import type { PublicKey } from '@chainsafe/bls/types'
import { bytesToHex, getAddress, hexToBytes, isAddress, isHex } from 'viem'
import { BLS_SIGNATURE_BYTES } from '../protocols/wire/index.js'
import { BLS_PUBLIC_KEY_LENGTH } from './constants.js'
import type { SigningDomain } from './domain.js'
import { GenesisError } from './errors.js'
import { deserializeBlsPublicKey } from './keys.js'
import { proofOfPossessionMessage } from './proof-of-possession.js'
import { type SignatureSet, verifySignatureSets } from './signature-sets.js'

export type Operator = {
  index: number
  address: `0x${string}`
  /** 48-byte compressed G1 key. */
  blsPublicKey: Uint8Array
  stake: bigint
  peerId?: string
}

export type OperatorSet = {
  epoch: bigint
  domain: SigningDomain
  /** Ordered by index: operators[i].index === i. */
  operators: Operator[]
  totalStake: bigint
}

/** The on-disk genesis format. Integers are decimal strings (they exceed 2^53), bytes 0x-hex. */
export type GenesisJson = {
  chainId: string
  taskManager: `0x${string}`
  epoch: string
  operators: Array<{
    address: `0x${string}`
    blsPublicKey: `0x${string}`
    stake: string
    proofOfPossession: `0x${string}`
    peerId?: string
  }>
}

const UINT64_LIMIT = 1n << 64n
const UINT256_LIMIT = 1n << 256n
const DECIMAL = /^(0|[1-9][0-9]*)$/

/** Validates an untrusted genesis object (e.g. JSON.parse output). Throws GenesisError naming the field. */
export function parseGenesis (json: unknown): OperatorSet {
  if (!isRecord(json)) throw new GenesisError('genesis must be a JSON object', { field: '(root)' })
  const chainId = decimal(json.chainId, 'chainId', UINT256_LIMIT)
  const taskManager = address(json.taskManager, 'taskManager')
  const epoch = decimal(json.epoch, 'epoch', UINT64_LIMIT)
  if (!Array.isArray(json.operators) || json.operators.length === 0) {
    throw new GenesisError('genesis operators must be a non-empty array', { field: 'operators' })
  }

  const operators: Operator[] = []
  const seenAddresses = new Map<string, number>()
  const seenKeys = new Map<string, number>()
  const proofs: SignatureSet[] = []
  for (const [index, entry] of (json.operators as unknown[]).entries()) {
    if (!isRecord(entry)) throw new GenesisError(`genesis operators[${index}] must be an object`, { field: `operators[${index}]`, operatorIndex: index })
    const at = (field: string): string => `operators[${index}].${field}`

    const operatorAddress = address(entry.address, at('address'), index)
    const previousAddress = seenAddresses.get(operatorAddress.toLowerCase())
    if (previousAddress !== undefined) {
      throw new GenesisError(`genesis ${at('address')}: ${operatorAddress} is already operator ${previousAddress}`, { field: at('address'), operatorIndex: index })
    }
    seenAddresses.set(operatorAddress.toLowerCase(), index)

    const blsPublicKey = hexBytes(entry.blsPublicKey, at('blsPublicKey'), BLS_PUBLIC_KEY_LENGTH, index)
    try {
      deserializeBlsPublicKey(blsPublicKey)
    } catch (err) {
      throw new GenesisError(`genesis ${at('blsPublicKey')}: ${(err as Error).message}`, { field: at('blsPublicKey'), operatorIndex: index, cause: err })
    }
    const keyHex = bytesToHex(blsPublicKey)
    const previousKey = seenKeys.get(keyHex)
    if (previousKey !== undefined) {
      throw new GenesisError(`genesis ${at('blsPublicKey')}: key ${keyHex} is already used by operator ${previousKey}`, { field: at('blsPublicKey'), operatorIndex: index })
    }
    seenKeys.set(keyHex, index)

    const stake = decimal(entry.stake, at('stake'), UINT256_LIMIT, index)
    if (stake === 0n) throw new GenesisError(`genesis ${at('stake')}: must be greater than zero`, { field: at('stake'), operatorIndex: index })

    const pop = hexBytes(entry.proofOfPossession, at('proofOfPossession'), BLS_SIGNATURE_BYTES, index)
    proofs.push({ publicKey: blsPublicKey, message: proofOfPossessionMessage(operatorAddress, blsPublicKey), signature: pop })

    let peerId: string | undefined
    if (entry.peerId !== undefined) {
      if (typeof entry.peerId !== 'string' || entry.peerId.length === 0) {
        throw new GenesisError(`genesis ${at('peerId')}: must be a non-empty string when present`, { field: at('peerId'), operatorIndex: index })
      }
      peerId = entry.peerId
    }

    operators.push({ index, address: operatorAddress, blsPublicKey, stake, ...(peerId !== undefined ? { peerId } : {}) })
  }

  // all proofs in one batch (one multi-pairing); the fallback names the first bad one
  const proofValid = verifySignatureSets(proofs)
  const badProof = proofValid.indexOf(false)
  if (badProof !== -1) {
    const operator = operators[badProof]
    const field = `operators[${badProof}].proofOfPossession`
    throw new GenesisError(
      `genesis ${field}: not a valid proof of possession of ${bytesToHex(operator.blsPublicKey)} for ${operator.address}; regenerate it with the operator's BLS key (signProofOfPossession)`,
      { field, operatorIndex: badProof })
  }

  const totalStake = operators.reduce((sum, operator) => sum + operator.stake, 0n)
  if (totalStake >= UINT256_LIMIT) throw new GenesisError('genesis total stake does not fit in uint256', { field: 'operators' })
  return { epoch, domain: { chainId, taskManager }, operators, totalStake }
}

/** Reads and validates a genesis file; every error names the file. */
export async function loadGenesis (path: string): Promise<OperatorSet> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new GenesisError(`cannot read genesis file ${path}: ${(err as Error).message}`, { field: '(file)', path, cause: err })
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new GenesisError(`genesis file ${path} is not valid JSON: ${(err as Error).message}`, { field: '(file)', path, cause: err })
  }
  try {
    return parseGenesis(json)
  } catch (err) {
    if (err instanceof GenesisError) {
      throw new GenesisError(`${path}: ${err.message}`, { field: err.field, operatorIndex: err.operatorIndex, path, cause: err })
    }
    throw err
  }
}

/**
 * The genesis JSON of a set; `proofsOfPossession[i]` is operator i's proof (signProofOfPossession).
 * The output passes parseGenesis only if the proofs are valid.
 */
export function genesisToJson (set: OperatorSet, proofsOfPossession: readonly Uint8Array[]): GenesisJson {
  if (proofsOfPossession.length !== set.operators.length) {
    throw new GenesisError(`genesis needs one proof of possession per operator: ${set.operators.length} operators, ${proofsOfPossession.length} proofs`, { field: 'proofOfPossession' })
  }
  return {
    chainId: set.domain.chainId.toString(),
    taskManager: set.domain.taskManager,
    epoch: set.epoch.toString(),
    operators: set.operators.map((operator, i) => ({
      address: operator.address,
      blsPublicKey: bytesToHex(operator.blsPublicKey),
      stake: operator.stake.toString(),
      proofOfPossession: bytesToHex(proofsOfPossession[i]),
      ...(operator.peerId !== undefined ? { peerId: operator.peerId } : {})
    }))
  }
}

/** Writes a genesis file (validated first, so the devnet never writes a file it cannot load). */
export async function writeGenesis (path: string, set: OperatorSet, proofsOfPossession: readonly Uint8Array[]): Promise<void> {
  const json = genesisToJson(set, proofsOfPossession)
  parseGenesis(json)
  await writeFile(path, JSON.stringify(json, null, 2) + '\n', 'utf8')
}

export type CreateOperatorSetParameters = {
  epoch: bigint
  domain: SigningDomain
  operators: Array<{ address: `0x${string}`, blsPublicKey: Uint8Array, stake: bigint, peerId?: string }>
}

/**
 * Builds an OperatorSet from trusted local data (devnet launcher, chain registry reader):
 * assigns indices in order and sums the stake. Keys are validated; proofs of possession are
 * not (use parseGenesis for untrusted input).
 */
export function createOperatorSet (params: CreateOperatorSetParameters): OperatorSet {
  const operators = params.operators.map((operator, index): Operator => {
    if (!isAddress(operator.address, { strict: false })) {
      throw new GenesisError(`operator ${index}: ${String(operator.address)} is not a 20-byte 0x address`, { field: `operators[${index}].address`, operatorIndex: index })
    }
    try {
      deserializeBlsPublicKey(operator.blsPublicKey)
    } catch (err) {
      throw new GenesisError(`operator ${index}: ${(err as Error).message}`, { field: `operators[${index}].blsPublicKey`, operatorIndex: index, cause: err })
    }
    if (operator.stake <= 0n) throw new GenesisError(`operator ${index}: stake must be greater than zero`, { field: `operators[${index}].stake`, operatorIndex: index })
    return { index, address: getAddress(operator.address), blsPublicKey: Uint8Array.from(operator.blsPublicKey), stake: operator.stake, ...(operator.peerId !== undefined ? { peerId: operator.peerId } : {}) }
  })
  return { epoch: params.epoch, domain: { ...params.domain }, operators, totalStake: operators.reduce((sum, o) => sum + o.stake, 0n) }
}

const deserializedKeys = new WeakMap<OperatorSet, PublicKey[]>()

/**
 * The set's keys, deserialized once per OperatorSet object and then trusted (they were validated
 * when the set was built). Used to aggregate signer keys without re-checking subgroups per QC.
 */
export function operatorPublicKeys (set: OperatorSet): PublicKey[] {
  let keys = deserializedKeys.get(set)
  if (keys === undefined || keys.length !== set.operators.length) {
    keys = set.operators.map(operator => deserializeBlsPublicKey(operator.blsPublicKey))
    deserializedKeys.set(set, keys)
  }
  return keys
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function decimal (value: unknown, field: string, limit: bigint, operatorIndex?: number): bigint {
  if (typeof value !== 'string' || !DECIMAL.test(value)) {
    throw new GenesisError(`genesis ${field}: must be a decimal integer string like "32000000000000000000", got ${JSON.stringify(value)}`, { field, operatorIndex })
  }
  const parsed = BigInt(value)
  if (parsed >= limit) throw new GenesisError(`genesis ${field}: ${value} is out of range`, { field, operatorIndex })
  return parsed
}

function address (value: unknown, field: string, operatorIndex?: number): `0x${string}` {
  if (typeof value !== 'string' || !isAddress(value, { strict: false })) {
    throw new GenesisError(`genesis ${field}: must be a 0x-prefixed 20-byte address, got ${JSON.stringify(value)}`, { field, operatorIndex })
  }
  return getAddress(value)
}

function hexBytes (value: unknown, field: string, length: number, operatorIndex?: number): Uint8Array {
  if (typeof value !== 'string' || !isHex(value, { strict: true })) {
    throw new GenesisError(`genesis ${field}: must be 0x-prefixed hex, got ${JSON.stringify(value)}`, { field, operatorIndex })
  }
  const bytes = hexToBytes(value)
  if (bytes.length !== length) {
    throw new GenesisError(`genesis ${field}: must be ${length} bytes, got ${bytes.length}`, { field, operatorIndex })
  }
  return bytes
}
