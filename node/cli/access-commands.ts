/**
 * `poi model access <id> --tier …` (the model's owner sets its access tier and terms) and
 * `poi model buy <id> --period N | --credits N` (a requester buys a subscription or credits, paid
 * at once to the owner's credit in the TaskManager's vault, in the network's payment asset, from
 * the wallet: not from the deposit, which stays reserved for task fees). DESIGN §9.
 *
 * Each reads the model first and refuses, in words a person can act on, what the contract would
 * refuse (not the owner, an inactive model, a tier the model does not offer, a wallet that
 * cannot pay); what is left surfaces as the registry's named error (ModelRegistryError).
 */
import { erc20Abi, formatEther, isAddressEqual } from 'viem'
import {
  MODEL_ACCESS_TIERS, buyModelAccess, readAccess, readCredit, readModel, setModelAccessTier, type ModelAccessTier, type OnChainModel
} from '../../contracts/index.js'
import { PoiError } from '../../protocols/wire/index.js'
import { modelIdToString, parseModelId } from '../inference/index.js'
import { UsageError, type OptionValues } from './args.js'
import { CliOutput } from './output.js'
import { formatAmount, isEth, paymentContext, parseAmount, type PaymentContext } from './payment-setup.js'

/** The flags of `poi model access` and `poi model buy` (declared with their help in program.ts). */
const ACCESS_OPTIONS = {
  chain: { type: 'string' }, keystore: { type: 'string' }, rpc: { type: 'string' }, config: { type: 'string' }, json: { type: 'boolean' },
  tier: { type: 'string' }, price: { type: 'string' }, period: { type: 'string' }, credits: { type: 'string' }
} as const
type AccessValues = OptionValues<typeof ACCESS_OPTIONS>

/** Seconds per unit of a `--period` duration (`30d`, `12h`, `90m`, `3600s` or bare seconds). */
const DURATION_UNITS: Readonly<Record<string, bigint>> = { s: 1n, m: 60n, h: 3_600n, d: 86_400n }

/** The model cannot be bought or changed as asked (nothing was sent). */
export class ModelAccessError extends PoiError {
  constructor (message: string) {
    super('ERR_MODEL_ACCESS', message)
  }
}

function modelIdArg (positionals: string[], usage: string): Uint8Array {
  if (positionals[0] === undefined) throw new UsageError(usage)
  try {
    return positionals[0].startsWith('0x') ? Uint8Array.from(Buffer.from(positionals[0].slice(2), 'hex')) : parseModelId(positionals[0])
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

function displayId (modelId: Uint8Array): string {
  try {
    return modelIdToString(modelId)
  } catch {
    return `0x${Buffer.from(modelId).toString('hex')}`
  }
}

/** `--period 30d`: seconds. */
export function parseDuration (text: string): bigint {
  const m = /^(\d+)\s*([smhd]?)$/.exec(text.trim())
  if (m === null) throw new UsageError(`--period must be a duration like 30d, 12h, 90m or 3600 (seconds), got ${JSON.stringify(text)}`)
  const seconds = BigInt(m[1]) * DURATION_UNITS[m[2] === '' ? 's' : m[2]]
  if (seconds === 0n) throw new UsageError('--period must be longer than zero')
  return seconds
}

function positiveCount (text: string, flag: string): bigint {
  if (!/^\d+$/.test(text.trim()) || BigInt(text.trim()) === 0n) throw new UsageError(`${flag} must be a whole number above 0, got ${JSON.stringify(text)}`)
  const n = BigInt(text.trim())
  if (n >= 2n ** 64n) throw new UsageError(`${flag} must fit in a uint64, got ${text}`)
  return n
}

async function registered (ctx: PaymentContext, modelId: Uint8Array): Promise<OnChainModel> {
  const registry = ctx.chain.config.modelRegistry
  if (registry == null) throw new ModelAccessError('the deployment names no ModelRegistry, so models have no access tiers')
  const m = await readModel(ctx.chain.publicClient, registry, modelId)
  if (m === undefined) throw new ModelAccessError(`model ${displayId(modelId)} is not registered in ModelRegistry ${registry}; publish it with poi model publish --chain`)
  return m
}

function terms (m: Pick<OnChainModel, 'accessPolicy' | 'fee' | 'price' | 'period'>, ctx: PaymentContext): string {
  switch (m.accessPolicy) {
    case 'subscription': return `subscription at ${formatAmount(m.price, ctx.asset)} per ${m.period} s`
    case 'credits': return `credits at ${formatAmount(m.price, ctx.asset)} per credit`
    default: return `${m.accessPolicy}, ${m.fee === 0n ? 'no model fee' : `model fee ${formatAmount(m.fee, ctx.asset)} per task`}`
  }
}

/** `poi model access <id> --tier open|allowlist|pay-per-use|subscription|credits [--price <amount>] [--period <duration>]`: owner only. */
export async function runModelAccess (values: AccessValues, positionals: string[]): Promise<void> {
  const usage = `usage: poi model access <model id> --tier ${MODEL_ACCESS_TIERS.join('|')} [--price <amount>] [--period <duration>] --chain <deployment.json> [--keystore <dir>]`
  const modelId = modelIdArg(positionals, usage)
  const tier = values.tier as ModelAccessTier | undefined
  if (tier === undefined || !MODEL_ACCESS_TIERS.includes(tier)) throw new UsageError(`--tier must be one of ${MODEL_ACCESS_TIERS.join(', ')}${values.tier !== undefined ? `, got ${values.tier}` : ''}\n${usage}`)
  const prepaid = tier === 'subscription' || tier === 'credits'
  if (prepaid && values.price === undefined) throw new UsageError(`--tier ${tier} needs --price (per ${tier === 'subscription' ? 'period' : 'credit'}, like 0.01 or 123wei)`)
  if (tier === 'pay-per-use' && values.price === undefined) throw new UsageError('--tier pay-per-use needs --price: the model fee per task, like 0.001 or 123wei')
  if (tier === 'subscription' && values.period === undefined) throw new UsageError('--tier subscription needs --period: what one purchase buys, like 30d or 3600')
  if (tier !== 'subscription' && values.period !== undefined) throw new UsageError(`--period applies to --tier subscription only, not ${tier}`)
  const ctx = await paymentContext('model access', values)
  const price = values.price !== undefined ? parseAmount(values.price, ctx.asset, '--price', tier === 'open' || tier === 'allowlist') : 0n
  const period = values.period !== undefined ? parseDuration(values.period) : 0n
  const m = await registered(ctx, modelId)
  const account = ctx.wallet.account.address
  if (!isAddressEqual(m.owner, account)) throw new ModelAccessError(`account ${account} does not own model ${displayId(modelId)}; its owner ${m.owner} alone sets its tier`)
  const out = new CliOutput(values.json === true)
  out.progress(`model ${displayId(modelId)}: ${terms(m, ctx)} → ${tier} …`)
  const receipt = await setModelAccessTier(ctx.wallet, ctx.chain.publicClient, ctx.chain.config.modelRegistry!, modelId, tier, price, period)
  const after = (await readModel(ctx.chain.publicClient, ctx.chain.config.modelRegistry!, modelId))!
  out.event({ event: 'model-access', modelId: displayId(modelId), tier, price: after.price, period: after.period, fee: after.fee, active: after.active, txHash: receipt.transactionHash }, [
    `model       ${displayId(modelId)}`,
    `access      ${terms(after, ctx)} (tx ${receipt.transactionHash})`,
    ...(after.active ? [] : ['note        the model is inactive: nobody can buy access or have tasks served until its owner reactivates it'])
  ].join('\n'))
}

/** `poi model buy <id> --period N | --credits N`: a requester buys N periods or N credits. */
export async function runModelBuy (values: AccessValues, positionals: string[]): Promise<void> {
  const usage = 'usage: poi model buy <model id> (--period <n> | --credits <n>) --chain <deployment.json> [--keystore <dir>]'
  const modelId = modelIdArg(positionals, usage)
  if ((values.period === undefined) === (values.credits === undefined)) throw new UsageError(`give one of --period <n> (periods of a subscription) or --credits <n>\n${usage}`)
  const kind = values.period !== undefined ? 'subscription' : 'credits'
  const units = kind === 'subscription' ? positiveCount(values.period!, '--period') : positiveCount(values.credits!, '--credits')
  const ctx = await paymentContext('model buy', values)
  const m = await registered(ctx, modelId)
  const id = displayId(modelId)
  if (!m.active) throw new ModelAccessError(`model ${id} is inactive: its owner ${m.owner} switched it off, so access to it cannot be bought`)
  if (m.accessPolicy !== kind) {
    throw new ModelAccessError(`model ${id} is offered as ${terms(m, ctx)}, not ${kind}; ${m.accessPolicy === 'subscription' ? 'buy periods with --period <n>' : m.accessPolicy === 'credits' ? 'buy credits with --credits <n>' : 'it needs no purchase: request tasks directly'}`)
  }
  const cost = m.price * units
  const account = ctx.wallet.account.address
  const { publicClient } = ctx.chain
  const balance = isEth(ctx.asset)
    ? await publicClient.getBalance({ address: account })
    : await publicClient.readContract({ address: ctx.asset.address, abi: erc20Abi, functionName: 'balanceOf', args: [account] })
  if (balance < cost) {
    throw new ModelAccessError(`account ${account} holds ${formatAmount(balance, ctx.asset)}, but ${units} ${kind === 'subscription' ? 'period(s)' : 'credit(s)'} of model ${id} cost ${formatAmount(cost, ctx.asset)}; purchases are paid from the wallet, not from the deposit (poi deposit)`)
  }
  const out = new CliOutput(values.json === true)
  out.progress(`buying ${units} ${kind === 'subscription' ? 'period(s)' : 'credit(s)'} of model ${id} for ${formatAmount(cost, ctx.asset)} …`)
  const bought = await buyModelAccess(ctx.wallet, publicClient, ctx.chain.config.modelRegistry!, modelId, kind, units)
  const access = await readAccess(publicClient, ctx.chain.config.modelRegistry!, modelId, account)
  const ownerCredit = await readCredit(publicClient, ctx.chain.config.taskManager, m.owner)
  out.event({
    event: 'model-purchase', modelId: id, account, owner: m.owner, asset: ctx.asset.address, tier: kind, units, paid: bought.paid,
    expiresAt: kind === 'subscription' ? Number(access.expiresAt) : null, credits: kind === 'credits' ? access.credits : null, txHash: bought.receipt.transactionHash
  }, [
    `bought      ${units} ${kind === 'subscription' ? `period(s) of ${m.period} s` : 'credit(s)'} of model ${id} for ${formatAmount(bought.paid, ctx.asset)} (tx ${bought.receipt.transactionHash})`,
    kind === 'subscription'
      ? `access      until ${new Date(Number(access.expiresAt) * 1000).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC')}: tasks whose deadline is before it are served`
      : `credits     ${access.credits} (each certified task uses one)`,
    `owner       ${m.owner} was credited at once (its credit is now ${isEth(ctx.asset) ? `${formatEther(ownerCredit)} ETH` : formatAmount(ownerCredit, ctx.asset)})`
  ].join('\n'))
}
