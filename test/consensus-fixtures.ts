/**
 * Shared fixtures of the consensus tests: a real operator set with real BLS keys and proofs of
 * possession, and helpers to sign attestations as a given operator.
 */
import { createHash } from 'node:crypto'
import type { Attestation } from '../protocols/wire/index.js'
import {
  blsPublicKeyOf, createOperatorSet, generateBlsSecretKey, signAttestation, signProofOfPossession,
  type OperatorSet, type SigningDomain
} from '../consensus/index.js'

export const ETHER = 10n ** 18n

export const TEST_DOMAIN: SigningDomain = { chainId: 31337n, taskManager: '0x5FbDB2315678afecb367f032d93F642f64180aa3' }

export type TestOperators = {
  set: OperatorSet
  secretKeys: Uint8Array[]
  proofsOfPossession: Uint8Array[]
}

export function operatorAddress (index: number): `0x${string}` {
  return `0x${(index + 1).toString(16).padStart(40, '0')}`
}

/** One operator per stake entry (in whole ether), index = position. */
export function makeOperators (stakes: readonly bigint[], options: { epoch?: bigint, domain?: SigningDomain } = {}): TestOperators {
  const secretKeys = stakes.map(() => generateBlsSecretKey())
  const set = createOperatorSet({
    epoch: options.epoch ?? 0n,
    domain: options.domain ?? TEST_DOMAIN,
    operators: stakes.map((stake, i) => ({ address: operatorAddress(i), blsPublicKey: blsPublicKeyOf(secretKeys[i]), stake: stake * ETHER }))
  })
  const proofsOfPossession = secretKeys.map((sk, i) => signProofOfPossession(sk, set.operators[i].address))
  return { set, secretKeys, proofsOfPossession }
}

export function hash32 (label: string): Uint8Array {
  return Uint8Array.from(createHash('sha256').update(label).digest())
}

export type TaskResult = { taskId: Uint8Array, resultHash: Uint8Array, outputRef: Uint8Array, output: Uint8Array }

export function taskResult (task: string, result: string): TaskResult {
  const output = new TextEncoder().encode(result)
  return { taskId: hash32(`task:${task}`), resultHash: hash32(`result:${result}`), outputRef: hash32(`ref:${result}`), output }
}

/** Operator `index` of `ops` signs `result` for the set's epoch and domain. */
export function attest (ops: TestOperators, index: number, result: TaskResult, overrides: { epoch?: bigint, outputRef?: Uint8Array } = {}): Attestation {
  return signAttestation(ops.secretKeys[index], ops.set.domain, {
    ...result,
    outputRef: overrides.outputRef ?? result.outputRef,
    epoch: overrides.epoch ?? ops.set.epoch,
    operatorIndex: index
  })
}
