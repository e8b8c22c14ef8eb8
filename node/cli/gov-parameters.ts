/**
 * The governed parameters as a person types and reads them: each parameter's unit (basis points,
 * seconds, epochs, an amount, an address) and the bounds its contract's setParameter enforces,
 * checked here first so a proposal past a bound is refused before anything is sent, with the
 * bound, rather than failing at execution after a vote. Which contract holds a parameter and how
 * its call is encoded are contracts/governance.ts's.
 */
import { decodeFunctionData, formatUnits, getAddress, isAddress, parseUnits, type PublicClient } from 'viem'
import {
  GOVERNED_PARAMETERS as CONTRACT_PARAMETERS, OperatorRegistryAbi, SlashingManagerAbi, TaskManagerAbi, isGovernedParameter, readParameters, readPause,
  type GovernedContract, type GovernedParameter, type ParameterValue
} from '../../contracts/index.js'
import type { ChainConfig } from '../config.js'
import { UsageError } from './args.js'
import type { Address } from './gov-chain.js'

/** The governed deployment's contracts, the governor and the timelock among them. */
export interface GovernedDeployment {
  governor: Address
  timelock: Address
  registry: Address
  taskManager: Address
  slashing: Address
}

/** The deployment's governor and timelock; a deployment made before governance (or with keepOwner) has none. */
export function governedDeployment (config: ChainConfig, file: string): GovernedDeployment {
  const { governor, timelock } = config
  if (governor === undefined || timelock === undefined) {
    throw new UsageError(`${file} names no governor and timelock: this network is not governed (deployed before governance, or with its deployer as owner); its parameters change only through its owner`)
  }
  return { governor, timelock, registry: config.registry, taskManager: config.taskManager, slashing: config.slashing }
}

/** Which deployment contract holds a parameter. */
type ContractKey = GovernedContract
const CONTRACT_NAMES: Record<ContractKey, string> = { registry: 'OperatorRegistry', taskManager: 'TaskManager', slashing: 'SlashingManager' }

/** How a value is typed and shown: basis points, seconds, epochs, an amount of ETH or of the payment asset (wei), an address. */
type Kind = 'bps' | 'seconds' | 'epochs' | 'eth' | 'asset' | 'address'

interface ParameterSpec {
  kind: Kind
  /** The bounds the contract's setter enforces, in words (constants named as in the contract). */
  bounds: string
  /** Static bounds, inclusive (the contract's constants); relations to other parameters are checked in `relation`. */
  min?: bigint
  max?: bigint
  /** A bound that depends on other current values: the reason it is refused, or undefined. */
  relation?: (value: bigint, now: Record<string, bigint>) => string | undefined
}

const HOUR = 3600n
const DAY = 24n * HOUR
const UINT128_MAX = 2n ** 128n - 1n

/** The deposit rule both sides of which are governed: withdrawalDelay > maxTaskLife + settlementWindow (WithdrawalDelayTooShort). */
function withdrawalRule (delay: bigint, life: bigint, window: bigint): string | undefined {
  return delay > life + window
    ? undefined
    : `withdrawalDelay (${delay} s) must exceed maxTaskLife + settlementWindow (${life} + ${window} s), or a requester could withdraw before a task it signed settles (WithdrawalDelayTooShort)`
}

/**
 * Every governed parameter by the name its contract's setParameter takes. The bounds are the
 * contracts' (OperatorRegistry MIN_EXIT_DELAY…, TaskManager MIN_QUORUM_BPS…, SlashingManager
 * MIN_SLASH_BPS…); test/gov-cli.test.ts holds them against the deployed constants.
 */
export const PARAMETER_SPECS: Record<GovernedParameter, ParameterSpec> = {
  minStake: { kind: 'eth', bounds: 'more than 0', min: 1n },
  exitDelay: { kind: 'seconds', bounds: '1 h (MIN_EXIT_DELAY; below, stake could leave before it is slashable) to 30 d', min: HOUR, max: 30n * DAY },
  epochDuration: { kind: 'seconds', bounds: '5 min to 7 d', min: 300n, max: 7n * DAY },
  quorumBps: { kind: 'bps', bounds: '6667 (two thirds, MIN_QUORUM_BPS) to 10000', min: 6667n, max: 10_000n },
  maxEpochAge: {
    kind: 'epochs',
    bounds: '1 to the registry\'s maxCertificateAge',
    min: 1n,
    relation: (v, now) => now.maxCertificateAge !== undefined && v > now.maxCertificateAge
      ? `maxEpochAge ${v} exceeds the registry's maxCertificateAge (${now.maxCertificateAge}): certificates of epochs whose stake may be withdrawn would be accepted (EpochAgeExceedsRegistry)`
      : undefined
  },
  treasury: { kind: 'address', bounds: 'any address but zero' },
  protocolFeeBps: { kind: 'bps', bounds: '0 to 2000 (MAX_PROTOCOL_FEE_BPS: 20 % of what is left after the model owner\'s fee)', min: 0n, max: 2000n },
  minTaskFee: { kind: 'asset', bounds: '0 to 2^128 - 1 wei of the payment asset', min: 0n, max: UINT128_MAX },
  maxTaskLife: {
    kind: 'seconds',
    bounds: '10 min (the node\'s longest task TTL) to 1 d, and below withdrawalDelay - settlementWindow',
    min: 600n,
    max: DAY,
    relation: (v, now) => withdrawalRule(now.withdrawalDelay, v, now.settlementWindow)
  },
  settlementWindow: {
    kind: 'seconds',
    bounds: '5 min to 1 d, and below withdrawalDelay - maxTaskLife',
    min: 300n,
    max: DAY,
    relation: (v, now) => withdrawalRule(now.withdrawalDelay, now.maxTaskLife, v)
  },
  withdrawalDelay: {
    kind: 'seconds',
    bounds: 'above maxTaskLife + settlementWindow, at most 30 d',
    max: 30n * DAY,
    relation: (v, now) => withdrawalRule(v, now.maxTaskLife, now.settlementWindow)
  },
  slashBps: { kind: 'bps', bounds: '1000 (MIN_SLASH_BPS) to 10000', min: 1000n, max: 10_000n },
  reporterBps: { kind: 'bps', bounds: '0 to 5000 (MAX_REPORTER_BPS)', min: 0n, max: 5000n }
}

/** The governed parameters' names, in contracts/governance.ts's order. */
export const GOVERNED_PARAMETER_NAMES = Object.keys(CONTRACT_PARAMETERS) as GovernedParameter[]

function contractName (name: GovernedParameter): string {
  return CONTRACT_NAMES[CONTRACT_PARAMETERS[name].contract]
}

/** Each parameter (or those of `names`) with its contract, unit and bounds, one per line, for an error message. */
export function describeBounds (names: readonly GovernedParameter[] = GOVERNED_PARAMETER_NAMES): string {
  const width = Math.max(...names.map(n => n.length))
  return names.map(n => `  ${n.padEnd(width)}  ${contractName(n).padEnd(16)} ${UNIT_WORDS[PARAMETER_SPECS[n].kind]}; ${PARAMETER_SPECS[n].bounds}`).join('\n')
}

const UNIT_WORDS: Record<Kind, string> = {
  bps: 'basis points',
  seconds: 'seconds (or 90m, 2h, 1d)',
  epochs: 'epochs',
  eth: 'ETH (like 1.5) or wei (like 123wei)',
  asset: 'the payment asset (like 0.0001) or wei (like 123wei)',
  address: 'an address'
}

/** The payment asset's decimals and symbol, for minTaskFee. */
export interface AssetUnits { decimals: number, symbol: string }
const ETH_UNITS: AssetUnits = { decimals: 18, symbol: 'ETH' }
const DURATION_UNITS: Record<string, bigint> = { s: 1n, m: 60n, min: 60n, h: HOUR, d: DAY }

/**
 * `name` as a governed parameter; a UsageError listing every parameter with its unit and bounds
 * when it is not one.
 */
export function parameterName (name: string | undefined): GovernedParameter {
  if (name !== undefined && isGovernedParameter(name)) return name
  throw new UsageError(`${name === undefined ? 'no parameter given' : `unknown parameter ${JSON.stringify(name)}`}; the governed parameters are:\n${describeBounds()}`)
}

/**
 * A value as a person types it (`50`, `2h`, `0.5`, `123wei`, `0x…`) as setParameter takes it; a
 * UsageError with the unit and the bounds when it is not one (contracts' parseParameterValue
 * takes the contract's own units only, and checks no bound).
 */
export function parseTypedValue (name: GovernedParameter, text: string, asset: AssetUnits = ETH_UNITS): ParameterValue {
  const spec = PARAMETER_SPECS[name]
  const t = text.trim()
  const refuse = (why: string): UsageError => new UsageError(`${name} ${JSON.stringify(text)}: ${why}; ${name} is in ${UNIT_WORDS[spec.kind]}, ${spec.bounds}`)
  let value: bigint
  switch (spec.kind) {
    case 'bps':
    case 'epochs':
      if (!/^\d+$/.test(t)) throw refuse('not a whole number')
      value = BigInt(t)
      break
    case 'seconds': {
      const m = /^(\d+)\s*(s|m|min|h|d)?$/.exec(t)
      if (m === null) throw refuse('not a duration')
      value = BigInt(m[1]) * DURATION_UNITS[m[2] ?? 's']
      break
    }
    case 'eth':
    case 'asset': {
      const units = spec.kind === 'eth' ? ETH_UNITS : asset
      const wei = /^(\d+)\s*wei$/i.exec(t)
      if (wei !== null) value = BigInt(wei[1])
      else if (/^\d+(\.\d+)?$/.test(t) && (t.split('.')[1]?.length ?? 0) <= units.decimals) value = parseUnits(t, units.decimals)
      else throw refuse(`not an amount of ${units.symbol}`)
      break
    }
    case 'address':
      if (!isAddress(t, { strict: false })) throw refuse('not a 0x-prefixed 20-byte address')
      if (BigInt(t) === 0n) throw refuse('the zero address')
      return getAddress(t)
  }
  if (spec.min !== undefined && value < spec.min) throw refuse(`below the minimum ${formatValue(name, spec.min, asset)}`)
  if (spec.max !== undefined && value > spec.max) throw refuse(`above the maximum ${formatValue(name, spec.max, asset)}`)
  return value
}

/** A value as a person reads it: `500 bps (5 %)`, `3600 s (1 h)`, `1 ETH`, `0x…`. */
export function formatValue (name: GovernedParameter, value: ParameterValue, asset: AssetUnits = ETH_UNITS): string {
  if (typeof value === 'string') return getAddress(value)
  switch (PARAMETER_SPECS[name].kind) {
    case 'bps': return `${value} bps (${Number(value) / 100} %)`
    case 'epochs': return `${value} epoch${value === 1n ? '' : 's'}`
    case 'seconds': return `${value} s${value >= 60n ? ` (${formatDuration(value)})` : ''}`
    case 'eth': return `${formatUnits(value, 18)} ETH`
    case 'asset': return `${formatUnits(value, asset.decimals)} ${asset.symbol} (${value} wei)`
    case 'address': return getAddress(`0x${value.toString(16).padStart(40, '0')}`)
  }
}

/** `1 d 2 h`, `5 min`. */
function formatDuration (s: bigint): string {
  const d = s / DAY
  const h = (s % DAY) / HOUR
  const m = (s % HOUR) / 60n
  const rest = s % 60n
  return [d > 0n ? `${d} d` : '', h > 0n ? `${h} h` : '', m > 0n ? `${m} min` : '', rest > 0n ? `${rest} s` : ''].filter(x => x !== '').join(' ')
}

/** A value as an event line carries it: decimal, or the address. */
export function valueText (value: ParameterValue): string {
  return typeof value === 'string' ? getAddress(value) : value.toString()
}

/** Every governed parameter's value now, and the registry's maxCertificateAge (which bounds maxEpochAge). */
export async function readParameterValues (client: PublicClient, gov: GovernedDeployment): Promise<Record<GovernedParameter, ParameterValue> & { maxCertificateAge: bigint }> {
  const [values, maxCertificateAge] = await Promise.all([
    readParameters(client, gov),
    client.readContract({ address: gov.registry, abi: OperatorRegistryAbi, functionName: 'maxCertificateAge' })
  ])
  return { ...values, maxCertificateAge }
}

/**
 * Throws a UsageError when setting `name` to `value` breaks a bound that depends on the other
 * parameters' values now (the withdrawal rule, maxEpochAge ≤ maxCertificateAge).
 */
export function checkRelations (name: GovernedParameter, value: ParameterValue, now: Record<GovernedParameter, ParameterValue> & { maxCertificateAge: bigint }, asset?: AssetUnits): void {
  const relation = PARAMETER_SPECS[name].relation
  if (relation === undefined || typeof value !== 'bigint') return
  const numbers: Record<string, bigint> = Object.fromEntries(Object.entries(now).map(([k, v]) => [k, typeof v === 'bigint' ? v : BigInt(v)]))
  const broken = relation(value, numbers)
  if (broken !== undefined) throw new UsageError(`${name} ${formatValue(name, value, asset)}: ${broken}`)
}

/** Every parameter's value now (for people and for event lines), the guardian and the pause. */
export async function readGovernanceState (client: PublicClient, gov: GovernedDeployment, asset?: AssetUnits): Promise<{
  parameters: Array<{ name: GovernedParameter, contract: Address, value: string, display: string }>
  guardian: Address
  paused: boolean
}> {
  const [values, pause] = await Promise.all([readParameters(client, gov), readPause(client, gov.registry)])
  return {
    parameters: GOVERNED_PARAMETER_NAMES.map(name => ({
      name,
      contract: gov[CONTRACT_PARAMETERS[name].contract],
      value: valueText(values[name]),
      display: formatValue(name, values[name], asset)
    })),
    guardian: pause.guardian,
    paused: pause.paused
  }
}

const ABI_OF = { registry: OperatorRegistryAbi, taskManager: TaskManagerAbi, slashing: SlashingManagerAbi } as const

/** A proposal's calls in words: `TaskManager.setParameter(protocolFeeBps, 50 bps (0.5 %))`, `OperatorRegistry.unpause()`. */
export function describeCalls (gov: GovernedDeployment, calls: { targets: readonly Address[], calldatas: ReadonlyArray<`0x${string}`> }): string[] {
  return calls.targets.map((target, i) => {
    const key = (Object.keys(CONTRACT_NAMES) as ContractKey[]).find(k => gov[k].toLowerCase() === target.toLowerCase())
    const data = calls.calldatas[i]
    if (key === undefined) return `${target} call ${data.slice(0, 10)}`
    return `${CONTRACT_NAMES[key]}.${decodeCall(key, data)}`
  })
}

function decodeCall (key: ContractKey, data: `0x${string}`): string {
  let decoded: { functionName: string, args?: readonly unknown[] }
  try {
    decoded = decodeFunctionData({ abi: ABI_OF[key], data })
  } catch {
    return `call ${data.slice(0, 10)} (not a function of this contract)`
  }
  const args = decoded.args ?? []
  if (decoded.functionName === 'setParameter' && args.length === 2) {
    const name = Buffer.from((args[0] as string).slice(2), 'hex').toString('utf8').replace(/\0+$/, '')
    const value = args[1] as bigint
    return isGovernedParameter(name) ? `setParameter(${name}, ${formatValue(name, value)})` : `setParameter(${name}, ${value})`
  }
  return `${decoded.functionName}(${args.map(a => String(a)).join(', ')})`
}
