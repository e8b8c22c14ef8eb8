/**
 * `poi keys generate|show` and `poi genesis create`: an operator's keystore, and an operator set
 * written from the operators' keystores (with their proofs of possession).
 */
import { resolve } from 'node:path'
import { createOperatorSet, signProofOfPossession, writeGenesis } from '../../consensus/index.js'
import { generateKeystore, loadKeystore, publicKeysOf } from '../keys.js'
import { UsageError, type OptionValues } from './args.js'
import { DEVNET_CHAIN_ID, DEVNET_TASK_MANAGER, STAKE_WEI } from './network-defaults.js'

/** The flags of `poi keys generate|show` (declared with their help in program.ts). */
const KEYS_OPTIONS = { dir: { type: 'string' }, force: { type: 'boolean' } } as const
const GENESIS_OPTIONS = { out: { type: 'string' }, keystore: { type: 'string', multiple: true }, stake: { type: 'string' }, 'chain-id': { type: 'string' } } as const

/** `poi keys generate --dir <keystore> [--force]`. */
export async function runKeysGenerate (values: OptionValues<typeof KEYS_OPTIONS>): Promise<void> {
  if (values.dir === undefined) throw new UsageError('poi keys generate needs --dir <keystore>')
  const pub = await generateKeystore(resolve(values.dir), { force: values.force })
  console.log(`keystore written to ${resolve(values.dir)}\n  peer id        ${pub.peerId}\n  BLS public key ${pub.blsPublicKey}\n  address        ${pub.address}`)
}

/** `poi keys show --dir <keystore>`. */
export async function runKeysShow (values: OptionValues<typeof KEYS_OPTIONS>): Promise<void> {
  if (values.dir === undefined) throw new UsageError('poi keys show needs --dir <keystore>')
  const pub = publicKeysOf(await loadKeystore(resolve(values.dir)))
  console.log(`peer id        ${pub.peerId}\nBLS public key ${pub.blsPublicKey}\naddress        ${pub.address}`)
}

/** `poi genesis create --out <file> --keystore <dir> [--keystore <dir> …] [--stake <wei>] [--chain-id <id>]`. */
export async function runGenesisCreate (values: OptionValues<typeof GENESIS_OPTIONS>): Promise<void> {
  if (values.out === undefined || values.keystore === undefined) throw new UsageError('poi genesis create needs --out <file> and at least one --keystore <dir>')
  const stake = integer(values.stake, 'stake') ?? STAKE_WEI
  const chainId = integer(values['chain-id'], 'chain-id') ?? DEVNET_CHAIN_ID
  const stores = await Promise.all(values.keystore.map(async d => await loadKeystore(resolve(d))))
  const set = createOperatorSet({
    epoch: 0n,
    domain: { chainId, taskManager: DEVNET_TASK_MANAGER },
    operators: stores.map(k => ({ address: k.account.address, blsPublicKey: k.blsPublicKey, stake, peerId: k.peerId.toString() }))
  })
  await writeGenesis(resolve(values.out), set, stores.map(k => signProofOfPossession(k.blsSecretKey, k.account.address)))
  console.log(`genesis with ${stores.length} operators written to ${resolve(values.out)}`)
}

/** A non-negative integer flag (`--stake 32000000000000000000`), or undefined when absent. */
function integer (value: string | undefined, name: string): bigint | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be a non-negative integer, got ${JSON.stringify(value)}`)
  return BigInt(value)
}
