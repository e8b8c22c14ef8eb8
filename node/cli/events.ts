/**
 * The `--json` event lines: one discriminated union for what a node (and `poi request`,
 * `poi result`, `poi model publish`) prints, one function that writes a line and one that
 * reads it back. The emitter (node/cli/output.ts), the launcher, the devnet and the tests all
 * go through these, so a field renamed here is a compile error everywhere it is read.
 *
 * On the line, bytes are 0x-hex and bigints are decimal strings (JSON has neither). The union
 * describes the line as read (`PoiEvent`); `PoiEventInput` is what an emitter may hand over:
 * the same, with raw bytes for hex fields and bigints for decimal ones.
 *
 * Trust boundary: a line is read from another process's stdout. parseEvent checks the `event`
 * name and every field it declares (type, hex, decimal) before the line is used; fields it does
 * not declare are left alone, so a newer node may add some without breaking an older reader.
 */
import { serializeEvent as serializeLine, type Decimal, type Encodable, type Hex, type NodeEventLine } from '../api/index.js'
import { PoiError } from '../../protocols/wire/index.js'
import type { FetchPhase } from '../models/index.js'
import type { OutputTensorLine } from '../client/index.js'

export type { Decimal, Hex, NodeEventLine } from '../api/index.js'

export type NodeRoleName = 'operator' | 'aggregator' | 'bootstrap'

/**
 * The on-chain result of a task as a requester (`poi request`, `poi result`) prints it; `poi
 * request` adds who posted it when the chain is where it learned the result.
 */
export interface OnChainResultLine { resultHash: Hex, outputRef: Hex, epoch: Decimal, submitter?: Hex, txHash?: Hex }

/** One output tensor of a result (the client library's type: PoiResult.outputTensors is the same). */
export type { OutputTensorLine } from '../client/index.js'

/** An operator's claimable rewards in one epoch. */
export interface RewardEpochLine { epoch: Decimal, pending: Decimal }
/** Certificates signed and missed, slashings (TaskManager.reputationOf). */
export interface ReputationLine { signed: Decimal, missed: Decimal, slashings: number }
/** A payout this command made: the amount and its transaction. */
export interface PayoutLine { amount: Decimal, txHash: Hex }
/** What an executed proposal does (`poi gov propose set|guardian`, `poi gov unpause`). */
export type GovAction = 'set' | 'guardian' | 'unpause'
/** A vote: the Governor's simple counting (0 against, 1 for, 2 abstain). */
export type GovSupport = 'against' | 'for' | 'abstain'
/** The Governor's ProposalState, in its order. */
export const GOV_PROPOSAL_STATES = ['pending', 'active', 'canceled', 'defeated', 'succeeded', 'queued', 'expired', 'executed'] as const
export type GovProposalState = typeof GOV_PROPOSAL_STATES[number]
/** A governed parameter: its name (as the contracts name it), the contract that holds it, its value (decimal, or an address). */
export interface GovParameterLine { name: string, contract: Hex, value: string }
export interface NetworkOperatorLine extends ReputationLine { index: number, address: Hex, stake: Decimal, pendingRewards: Decimal }

export type PoiEvent =
  /**
   * The node listens and knows its models; the first line a launcher waits for. `models`: those
   * of its model directories; `announced`: every model it announces on the DHT (those and every
   * other model in its block store: published to it, fetched earlier).
   */
  | { event: 'ready', role: NodeRoleName, peerId: string, addrs: string[], operatorIndex: number | null, models: string[], announced: string[], http: string | null }
  /** What a running node prints while it works (node/api/events.ts; `GET /v1/events` sends the same lines). */
  | NodeEventLine
  /**
   * A verified result, with everything a script needs to check it again on its own: the
   * certificate's fields as on the wire (`certificateVersion`, `epoch`, `signerBitmap`,
   * `aggregateSig`: 96-byte compressed G2, `signedStake`, `totalStake`, `resultHash`,
   * `outputRef`), the raw canonical `output` (its keccak256 is `resultHash`) and the same output
   * decoded (`outputTensors`). `poi request` adds the model, the fee and the latency; both add
   * the on-chain result when they have a chain (`poi result`: null when not settled). `source`
   * says how `poi request` learned it: a certificate by gossip or from a full node asked after
   * the deadline, or only the chain (no full node showed the certificate): then `signers`,
   * `signerBitmap`, `aggregateSig` and `certificateVersion` are null (the chain gives the stake
   * that signed, not who), `onChain` names the transaction, and `output` is null when no full
   * node served it. `modelId` is null where the command cannot know it (`poi result` without
   * a settled task: the certificate does not name its model; with one, the model and `fee` come
   * from the settling transaction's task).
   */
  | {
    event: 'result', taskId: Hex, modelId: string | null, resultHash: Hex, outputRef: Hex, output: Hex | null, outputTensors: OutputTensorLine[] | null,
    signers: number[] | null, signerBitmap: Hex | null, aggregateSig: Hex | null, certificateVersion: number | null, epoch: Decimal,
    signedStake: Decimal, totalStake: Decimal,
    source?: 'gossip' | 'full-node' | 'chain', latencyMs?: number, onChain?: OnChainResultLine | null,
    /** `poi request`: the fee the task offered (wei of the payment asset). */
    fee?: Decimal
  }
  /** `poi request --tier zk` (issue 16): a zk task's output, its Groth16 proof verified here with the model's key. */
  | {
    event: 'zk-result', taskId: Hex, modelId: string, prover: Hex, inputCommitment: Hex, outputCommitment: Hex, proofRef: Hex, output: Hex,
    outputTensors: OutputTensorLine[] | null, latencyMs: number, verifyMs: number, fee: Decimal
  }
  /**
   * The command failed (a refusal, a timeout, a bad option, an unreachable chain): with `--json`
   * this is the last line on stdout, `code` the error's (ERR_…), `message` what stderr says. The
   * exit code is the same as without `--json`.
   */
  | { event: 'error', code: string, message: string }
  /**
   * `poi model access --json`: the model's access tier after the owner's change, its terms
   * (`price` per period or per credit and `period` in seconds, 0 for the other tiers) and its
   * per-task `fee` (wei).
   */
  | { event: 'model-access', modelId: string, tier: 'open' | 'allowlist' | 'pay-per-use' | 'subscription' | 'credits', price: Decimal, period: Decimal, fee: Decimal, active: boolean, txHash: Hex }
  /**
   * `poi model buy --json`: `units` periods or credits bought for `paid` (wei of `asset`, credited
   * to `owner` at once); after it, the subscription runs until `expiresAt` (unix seconds) or the
   * account holds `credits` (null for the other kind).
   */
  | {
    event: 'model-purchase', modelId: string, account: Hex, owner: Hex, asset: Hex, tier: 'subscription' | 'credits', units: Decimal, paid: Decimal,
    expiresAt: number | null, credits: Decimal | null, txHash: Hex
  }
  /** `poi deposit --json`: the deposit's transaction and the account's vault balance after it. */
  | { event: 'deposit', account: Hex, asset: Hex, amount: Decimal, balance: Decimal, available: Decimal, txHash: Hex }
  /**
   * `poi withdraw --json`: a withdrawal requested (it unlocks at `unlocksAt`, unix seconds) or
   * completed (`withdrawn`: what was paid out); `balance` is the vault balance after it.
   */
  | { event: 'withdrawal', account: Hex, asset: Hex, action: 'requested' | 'withdrawn', amount: Decimal, unlocksAt: number | null, balance: Decimal, txHash: Hex }
  /**
   * `poi rewards --json`: what the account may claim as an operator, per epoch it was in, its
   * reputation, and its credit as a model owner or the treasury; `claimed` and
   * `creditWithdrawn` are the payouts this run made (null: none asked for).
   */
  | {
    event: 'rewards', account: Hex, asset: Hex, epochs: RewardEpochLine[], pending: Decimal, reputation: ReputationLine,
    credit: Decimal, claimed: PayoutLine | null, creditWithdrawn: PayoutLine | null
  }
  /** `poi network --json`: every operator of the current epoch with its stake, reputation and rewards pending in that epoch. */
  | {
    event: 'network', epoch: Decimal, totalStake: Decimal, asset: Hex,
    /** TaskManager.maxTaskLife, seconds: the farthest deadline a certificate settles for (each node's own limit, over /poi/network/1/, is usually lower). */
    maxTaskLife: Decimal,
    /** The ERC-8004 registries of the deployment file; null when it names none. */
    identityRegistry: Hex | null, validationRegistry: Hex | null,
    operators: NetworkOperatorLine[]
  }
  /** `poi operator` with a chain: its reputation when it starts. */
  | { event: 'reputation', operator: Hex, signed: Decimal, missed: Decimal, slashings: number }
  /** A transaction command's preview (poi chain deploy, poi operator register|exit|withdraw, poi epoch advance): printed before it asks or sends. */
  | { event: 'transaction-preview', action: string, from: Hex, to: Hex | null, value: Decimal, gas: Decimal, notes: string[] }
  /** `poi chain deploy --json`: the deployment written to `file`. */
  | { event: 'deployed', file: string, rpcUrl: string, chainId: number, registry: Hex, taskManager: Hex, slashing: Hex, modelRegistry: Hex, identityRegistry: Hex, validationRegistry: Hex, deployedAtBlock: Decimal }
  /** `poi operator register|exit|withdraw --json`: what the transaction did. */
  | { event: 'operator-registered', operator: Hex, stake: Decimal, firstEpoch: Decimal, txHash: Hex }
  | { event: 'operator-exit', operator: Hex, exitEpoch: Decimal, withdrawableAt: number, withdrawableEpoch: Decimal, txHash: Hex }
  | { event: 'stake-withdrawn', operator: Hex, amount: Decimal, txHash: Hex }
  /**
   * `poi operator status --json`: the account's registration; times are unix seconds (null: not
   * applicable), `withdrawableAt` the earliest the stake can be withdrawn (when epoch
   * `withdrawableEpoch` has started).
   */
  | {
    event: 'operator-status', operator: Hex, registered: boolean, stake: Decimal, firstEpoch: Decimal | null, currentEpoch: Decimal,
    inCurrentEpoch: boolean, exitRequestedAt: number | null, exitEpoch: Decimal | null, withdrawableAt: number | null, withdrawableEpoch: Decimal | null,
    pendingRewards: Decimal, reputation: ReputationLine
  }
  /** `poi epoch advance --json`: the epoch started and its operator set's size and stake. */
  | { event: 'epoch-started', epoch: Decimal, operators: number, totalStake: Decimal, txHash: Hex }
  /** `poi model publish --json`. */
  /**
   * `poi model publish`: `via` says how the model reached the store (`node`: through the node
   * running on the data directory, which serves it now; `store`: straight into the store, no
   * node running there); `announced`: every block is on the DHT now (only a running node
   * announces; a node started later announces the store's models at start).
   */
  | { event: 'published', modelId: string, owner: Hex, chunks: number, registeredTx: Hex | null, via: 'node' | 'store', announced: boolean }
  /**
   * `poi gateway`: it serves HTTP at `url`; `peerId` is its light peer, `address` the account
   * that signs (and pays for) its tasks, `tokenFile` the bearer token writes need when
   * `tokenRequired` (not bound to loopback).
   */
  | { event: 'gateway-ready', url: string, peerId: string, address: Hex, tokenRequired: boolean, tokenFile: string }
  /**
   * `poi gov propose|unpause --json`: a proposal made. `action` is what it does once executed:
   * `set` a governed `parameter` to `value` (decimal, or an address), `guardian` (a new
   * guardian, `value` its address), `unpause`. Votes count after `voteStart` until `voteEnd`
   * (unix seconds: the governor's clock is the chain's time), with the stake held at `voteStart`.
   */
  | {
    event: 'gov-proposed', proposalId: Decimal, action: GovAction, parameter: string | null, value: string | null, description: string, proposer: Hex,
    voteStart: number, voteEnd: number, txHash: Hex
  }
  /** `poi gov vote --json`: a vote cast with the voter's stake (`weight`, wei) at the proposal's snapshot. */
  | { event: 'gov-voted', proposalId: Decimal, voter: Hex, support: GovSupport, weight: Decimal, reason: string, txHash: Hex }
  /** `poi gov queue --json`: the proposal is in the timelock; it can be executed from `eta` (unix seconds). */
  | { event: 'gov-queued', proposalId: Decimal, eta: number, txHash: Hex }
  /** `poi gov execute --json`: the timelock ran the proposal's calls. */
  | { event: 'gov-executed', proposalId: Decimal, txHash: Hex }
  /** `poi gov delegate --json`: the delegator's voting power (its active stake) now goes to `delegatee` (itself: taken back). */
  | { event: 'gov-delegated', delegator: Hex, delegatee: Hex, stake: Decimal, txHash: Hex }
  /** `poi gov pause --json`: the guardian paused task settlement and registrations. */
  | { event: 'gov-paused', guardian: Hex, txHash: Hex }
  /**
   * `poi gov status <id> --json`: a proposal's state (the Governor's ProposalState, lower case),
   * its calls in words, its votes and the quorum it needs (wei of stake; null before the
   * snapshot, when it is not known yet), its voting window and, once queued, the time it can be
   * executed from (`eta`); times in unix seconds.
   */
  | {
    event: 'gov-proposal', proposalId: Decimal, state: GovProposalState, description: string, proposer: Hex, actions: string[],
    forVotes: Decimal, againstVotes: Decimal, abstainVotes: Decimal, quorum: Decimal | null,
    voteStart: number, voteEnd: number, eta: number | null
  }
  /**
   * `poi gov status --json` (no id): every governed parameter's current value (decimal, or an
   * address), the guardian, whether settlement and registrations are paused, the governor's
   * settings (seconds; the threshold in wei of stake, the quorum in percent of the active
   * stake) and every proposal's id.
   */
  | {
    event: 'gov-parameters', governor: Hex, timelock: Hex, guardian: Hex, paused: boolean, parameters: GovParameterLine[],
    votingDelay: number, votingPeriod: number, timelockDelay: number, proposalThreshold: Decimal, quorumPercent: number, proposals: Decimal[]
  }

export type PoiEventName = PoiEvent['event']
export type EventOf<K extends PoiEventName> = Extract<PoiEvent, { event: K }>

export type PoiEventInput = Encodable<PoiEvent>

/** A line that is not a poi event (not JSON, an unknown `event`, a field of the wrong type). */
export class EventLineError extends PoiError {
  readonly line: string

  constructor (line: string, reason: string) {
    super('ERR_EVENT_LINE', `not a poi event line (${reason}): ${line.length > 200 ? line.slice(0, 200) + '…' : line}`)
    this.line = line
  }
}

/** One JSON line (without the newline): bytes as 0x-hex, bigints as decimal strings (node/api/events.ts writes it, for `GET /v1/events` too). */
export function serializeEvent (event: PoiEventInput): string {
  return serializeLine(event)
}

/** Parses one line into an event, checking its `event` name and the fields that event declares. */
export function parseEvent (line: string): PoiEvent {
  let json: unknown
  try {
    json = JSON.parse(line)
  } catch {
    throw new EventLineError(line, 'not JSON')
  }
  if (!isRecord(json)) throw new EventLineError(line, 'not a JSON object')
  const name = json.event
  if (typeof name !== 'string' || !Object.hasOwn(EVENT_FIELDS, name)) throw new EventLineError(line, `unknown event ${JSON.stringify(name)}`)
  const fields: Record<string, FieldCheck<unknown>> = EVENT_FIELDS[name as PoiEventName]
  for (const [field, check] of Object.entries(fields)) {
    if (!check.test(json[field])) throw new EventLineError(line, `"${name}" needs ${field} to be ${check.what}, got ${JSON.stringify(json[field])}`)
  }
  return json as PoiEvent
}

/** The task a task-related event (task, attested, certificate, …) is about; undefined for the others. */
export function taskIdOf (event: PoiEvent): Hex | undefined {
  return 'taskId' in event ? event.taskId : undefined
}

interface FieldCheck<T> {
  /** For the error message: "needs taskId to be 0x-hex". */
  readonly what: string
  readonly test: (value: unknown) => value is T
}

function isRecord (v: unknown): v is Record<string, unknown> {
  return v != null && typeof v === 'object' && !Array.isArray(v)
}

function check<T> (what: string, test: (value: unknown) => boolean): FieldCheck<T> {
  return { what, test: test as (value: unknown) => value is T }
}

const str = check<string>('a string', v => typeof v === 'string')
const num = check<number>('a number', v => typeof v === 'number' && Number.isFinite(v))
const bool = check<boolean>('true or false', v => typeof v === 'boolean')
const hex = check<Hex>('0x-hex', v => typeof v === 'string' && /^0x(?:[0-9a-fA-F]{2})*$/.test(v))
const decimal = check<Decimal>('a decimal integer string', v => typeof v === 'string' && /^-?\d+$/.test(v))
const oneOf = <T extends string>(...values: T[]): FieldCheck<T> => check<T>(`one of ${values.join(', ')}`, v => values.includes(v as T))
const listOf = <T>(item: FieldCheck<T>): FieldCheck<T[]> => check<T[]>(`a list of ${item.what}`, v => Array.isArray(v) && v.every(x => item.test(x)))
const optional = <T>(c: FieldCheck<T>): FieldCheck<T | undefined> => check<T | undefined>(`${c.what} or absent`, v => v === undefined || c.test(v))
const nullable = <T>(c: FieldCheck<T>): FieldCheck<T | null> => check<T | null>(`${c.what} or null`, v => v === null || c.test(v))
const record = <T>(fields: { [F in keyof T]-?: FieldCheck<T[F]> }): FieldCheck<T> =>
  check<T>(`an object {${Object.keys(fields).join(', ')}}`, v => isRecord(v) && Object.entries<FieldCheck<unknown>>(fields).every(([k, c]) => c.test(v[k])))

const submissionKind = oneOf('certificate', 'evidence', 'conflict', 'zk')
/** A record, so a phase added to FetchPhase fails to compile here until it is listed. */
const FETCH_PHASES: Record<FetchPhase, true> = { finding: true, manifest: true, chunks: true, storing: true, providing: true, done: true }

const REPUTATION_FIELDS = { signed: decimal, missed: decimal, slashings: num }
const PAYOUT_FIELDS = { amount: decimal, txHash: hex }

const OUTPUT_TENSOR_LINE = record<OutputTensorLine>({
  name: str,
  dtype: str,
  shape: listOf(num),
  encoding: oneOf('exact', 'grid', 'argmax', 'topk'),
  values: listOf(check<number | string>('a number or a string', v => typeof v === 'number' || typeof v === 'string'))
})

/** Every event's fields and their checks; the type makes it list each field of each event. */
const EVENT_FIELDS: { [K in PoiEventName]: { [F in Exclude<keyof EventOf<K>, 'event'>]-?: FieldCheck<EventOf<K>[F]> } } = {
  ready: { role: oneOf('operator', 'aggregator', 'bootstrap'), peerId: str, addrs: listOf(str), operatorIndex: nullable(num), models: listOf(str), announced: listOf(str), http: nullable(str) },
  task: { taskId: hex, at: num },
  attested: { taskId: hex, resultHash: hex, inferenceMs: num, signMs: num, at: num },
  proved: { taskId: hex, prover: hex, inferenceMs: num, provingMs: num, at: num },
  proof: { taskId: hex, prover: hex, outputCommitment: hex, verifyMs: num, provedHere: bool, at: num },
  certificate: { taskId: hex, resultHash: hex, signerBitmap: hex, verifyMs: optional(num), at: num },
  certified: { taskId: hex, resultHash: hex, signerBitmap: hex, at: num },
  'no-quorum': { taskId: hex },
  evidence: { taskId: hex, operatorIndex: num },
  'conflict-evidence': { taskId: hex, kind: oneOf('certificates', 'certificate-attestation', 'batch-attestation'), id: str, accused: listOf(num), root: optional(hex) },
  rejected: { topic: str, reason: str, from: str, verdict: oneOf('reject', 'ignore') },
  failed: { taskId: hex, reason: str },
  probe: { id: str, at: num },
  'model-progress': {
    modelId: str,
    phase: oneOf(...Object.keys(FETCH_PHASES) as FetchPhase[]),
    bytesDone: num,
    bytesTotal: num,
    chunksDone: num,
    chunksTotal: num,
    providers: num,
    dropped: num
  },
  model: { modelId: str, bytes: num, fromStore: bool, ms: num },
  'prefetch-failed': { modelId: str, reason: str },
  mesh: { tasks: num, attestations: num, certificates: num, attestationSubscribers: num },
  submitted: { kind: submissionKind, id: str, txHash: hex, gasUsed: decimal },
  'submission-settled-by-other': { kind: submissionKind, id: str, settledBy: hex, txHash: hex, resultHash: optional(hex) },
  'submission-failed': { kind: submissionKind, id: str, reason: str, revert: optional(str) },
  'submission-retry': { kind: submissionKind, id: str, attempts: num, retryInMs: num, reason: str },
  'zk-result': {
    taskId: hex,
    modelId: str,
    prover: hex,
    inputCommitment: hex,
    outputCommitment: hex,
    proofRef: hex,
    output: hex,
    outputTensors: nullable(listOf(OUTPUT_TENSOR_LINE)),
    latencyMs: num,
    verifyMs: num,
    fee: decimal
  },
  result: {
    taskId: hex,
    modelId: nullable(str),
    resultHash: hex,
    outputRef: hex,
    output: nullable(hex),
    outputTensors: nullable(listOf(OUTPUT_TENSOR_LINE)),
    signers: nullable(listOf(num)),
    signerBitmap: nullable(hex),
    aggregateSig: nullable(hex),
    certificateVersion: nullable(num),
    epoch: decimal,
    signedStake: decimal,
    totalStake: decimal,
    source: optional(oneOf('gossip', 'full-node', 'chain')),
    latencyMs: optional(num),
    onChain: optional(nullable(record<OnChainResultLine>({ resultHash: hex, outputRef: hex, epoch: decimal, submitter: optional(hex), txHash: optional(hex) }))),
    fee: optional(decimal)
  },
  'transaction-preview': { action: str, from: hex, to: nullable(hex), value: decimal, gas: decimal, notes: listOf(str) },
  deployed: {
    file: str, rpcUrl: str, chainId: num, registry: hex, taskManager: hex, slashing: hex, modelRegistry: hex, identityRegistry: hex, validationRegistry: hex, deployedAtBlock: decimal
  },
  'operator-registered': { operator: hex, stake: decimal, firstEpoch: decimal, txHash: hex },
  'operator-exit': { operator: hex, exitEpoch: decimal, withdrawableAt: num, withdrawableEpoch: decimal, txHash: hex },
  'stake-withdrawn': { operator: hex, amount: decimal, txHash: hex },
  'operator-status': {
    operator: hex,
    registered: bool,
    stake: decimal,
    firstEpoch: nullable(decimal),
    currentEpoch: decimal,
    inCurrentEpoch: bool,
    exitRequestedAt: nullable(num),
    exitEpoch: nullable(decimal),
    withdrawableAt: nullable(num),
    withdrawableEpoch: nullable(decimal),
    pendingRewards: decimal,
    reputation: record<ReputationLine>(REPUTATION_FIELDS)
  },
  'epoch-started': { epoch: decimal, operators: num, totalStake: decimal, txHash: hex },
  error: { code: str, message: str },
  published: { modelId: str, owner: hex, chunks: num, registeredTx: nullable(hex), via: oneOf('node', 'store'), announced: bool },
  'model-access': { modelId: str, tier: oneOf('open', 'allowlist', 'pay-per-use', 'subscription', 'credits'), price: decimal, period: decimal, fee: decimal, active: bool, txHash: hex },
  'model-purchase': {
    modelId: str, account: hex, owner: hex, asset: hex, tier: oneOf('subscription', 'credits'), units: decimal, paid: decimal,
    expiresAt: nullable(num), credits: nullable(decimal), txHash: hex
  },
  deposit: { account: hex, asset: hex, amount: decimal, balance: decimal, available: decimal, txHash: hex },
  withdrawal: { account: hex, asset: hex, action: oneOf('requested', 'withdrawn'), amount: decimal, unlocksAt: nullable(num), balance: decimal, txHash: hex },
  rewards: {
    account: hex,
    asset: hex,
    epochs: listOf(record<RewardEpochLine>({ epoch: decimal, pending: decimal })),
    pending: decimal,
    reputation: record<ReputationLine>(REPUTATION_FIELDS),
    credit: decimal,
    claimed: nullable(record<PayoutLine>(PAYOUT_FIELDS)),
    creditWithdrawn: nullable(record<PayoutLine>(PAYOUT_FIELDS))
  },
  network: {
    epoch: decimal,
    totalStake: decimal,
    asset: hex,
    maxTaskLife: decimal,
    identityRegistry: nullable(hex),
    validationRegistry: nullable(hex),
    operators: listOf(record<NetworkOperatorLine>({ ...REPUTATION_FIELDS, index: num, address: hex, stake: decimal, pendingRewards: decimal }))
  },
  reputation: { operator: hex, ...REPUTATION_FIELDS },
  'duplicate-identity': { peerId: str, self: bool, how: oneOf('two-connections', 'peer-notice'), reportedBy: str, addresses: listOf(listOf(str)), count: num },
  batch: {
    state: oneOf('proposed', 'certified', 'settled', 'failed', 'dropped'),
    root: hex,
    epoch: decimal,
    seq: decimal,
    leaves: num,
    taskIds: listOf(hex),
    signers: optional(num),
    txHash: optional(hex),
    gasUsed: optional(decimal),
    settledBy: optional(hex),
    reason: optional(str),
    requeued: optional(num),
    droppedTasks: optional(listOf(record<{ taskId: Hex, code: string, reason: string }>({ taskId: hex, code: str, reason: str }))),
    at: num
  },
  'batch-refused': { root: hex, seq: decimal, code: str, reason: str, taskId: optional(hex) },
  'gateway-ready': { url: str, peerId: str, address: hex, tokenRequired: bool, tokenFile: str },
  'gov-proposed': {
    proposalId: decimal, action: oneOf('set', 'guardian', 'unpause'), parameter: nullable(str), value: nullable(str), description: str, proposer: hex,
    voteStart: num, voteEnd: num, txHash: hex
  },
  'gov-voted': { proposalId: decimal, voter: hex, support: oneOf('against', 'for', 'abstain'), weight: decimal, reason: str, txHash: hex },
  'gov-queued': { proposalId: decimal, eta: num, txHash: hex },
  'gov-executed': { proposalId: decimal, txHash: hex },
  'gov-delegated': { delegator: hex, delegatee: hex, stake: decimal, txHash: hex },
  'gov-paused': { guardian: hex, txHash: hex },
  'gov-proposal': {
    proposalId: decimal,
    state: oneOf(...GOV_PROPOSAL_STATES),
    description: str,
    proposer: hex,
    actions: listOf(str),
    forVotes: decimal,
    againstVotes: decimal,
    abstainVotes: decimal,
    quorum: nullable(decimal),
    voteStart: num,
    voteEnd: num,
    eta: nullable(num)
  },
  'gov-parameters': {
    governor: hex,
    timelock: hex,
    guardian: hex,
    paused: bool,
    parameters: listOf(record<GovParameterLine>({ name: str, contract: hex, value: str })),
    votingDelay: num,
    votingPeriod: num,
    timelockDelay: num,
    proposalThreshold: decimal,
    quorumPercent: num,
    proposals: listOf(decimal)
  }
}

/** Where README's generated event list starts and ends (node/cli/events.ts eventSchemaMarkdown writes what is between). */
export const EVENT_DOC_START = '<!-- event lines: generated by eventSchemaMarkdown() in node/cli/events.ts; do not edit by hand -->'
export const EVENT_DOC_END = '<!-- end of event lines -->'

/**
 * Every event line and its fields, as a Markdown table for the README, written from the same
 * checks parseEvent runs, so the documented schema is the enforced one. Regenerate with
 * `node -e "import('./dist/node/cli/events.js').then(m => console.log(m.eventSchemaMarkdown()))"`.
 */
export function eventSchemaMarkdown (): string {
  const rows = Object.entries<Record<string, FieldCheck<unknown>>>(EVENT_FIELDS).map(([name, fields]) => {
    const described = Object.entries(fields).map(([field, c]) => `\`${field}\`: ${c.what}`).join('; ')
    return `| \`${name}\` | ${described.replaceAll('|', '\\|')} |`
  })
  return [EVENT_DOC_START, '| event | fields (each line also has `"event": "<name>"`) |', '| --- | --- |', ...rows, EVENT_DOC_END].join('\n')
}
