/**
 * What the partition, flood and burst scenarios share: how a task sent through PoiClient ended
 * (certified, NoQuorum, refused with a reason, or lost), and the resident memory of the nodes'
 * processes read from /proc.
 */
import { readFileSync } from 'node:fs'
import { NoQuorumError, PoiError, TaskRefusedError, type PoiClient, type SubmittedTask } from '../../node/client/index.js'
import { inputOf } from './harness.js'
import type { ScenarioResult } from './scenario.js'

/**
 * How long past its deadline a task's result may take to settle before it counts as lost: the
 * requester asks full nodes for the certificate after the deadline (RESULT_LOOKUP_TIMEOUT_MS,
 * 3 s) and a busy machine adds seconds more.
 */
export const SETTLE_SLACK_MS = 15_000

export type Outcome =
  | { kind: 'certified', taskId: string, at: number, latencyMs: number }
  | { kind: 'noQuorum', taskId: string, at: number }
  | { kind: 'refused', taskId?: string, at: number, reason: string }
  | { kind: 'lost', taskId?: string, at: number, reason: string }


/** A refusal's reason with task ids and numbers blanked, so reasons can be counted. */
export function reasonKind (err: unknown): string {
  const text = err instanceof TaskRefusedError ? err.reason : err instanceof PoiError ? `${err.code}: ${err.message}` : String(err)
  return text.replace(/0x[0-9a-fA-F]+/g, '0x…').replace(/\d+/g, 'N').slice(0, 160)
}

/**
 * Sends one task and says how it ended; never throws. Refused: submit() said no before
 * announcing, or a full node said it refused the task. NoQuorum: the requester's NoQuorumError.
 * Lost: announced, and neither a certificate nor an answer came within the deadline and
 * SETTLE_SLACK_MS (or an error that is neither). `onAnnounced` hears the task id once announced.
 */
export async function sendTask (client: PoiClient, model: string, seed: number, timeoutMs: number, onAnnounced?: (taskId: string) => void): Promise<Outcome> {
  let submitted: SubmittedTask
  const start = performance.now()
  try {
    submitted = await client.submit({ model, input: inputOf(seed), timeoutMs })
  } catch (err) {
    return { kind: 'refused', at: Date.now(), reason: reasonKind(err) }
  }
  const { taskId } = submitted
  onAnnounced?.(taskId)
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'late'>(resolve => { timer = setTimeout(() => resolve('late'), Math.max(0, submitted.deadline - Date.now()) + SETTLE_SLACK_MS) })
  try {
    const r = await Promise.race([submitted.result, late])
    if (r === 'late') return { kind: 'lost', taskId, at: Date.now(), reason: 'no certificate and no answer by the deadline' }
    return { kind: 'certified', taskId, at: Date.now(), latencyMs: performance.now() - start }
  } catch (err) {
    if (err instanceof NoQuorumError) return { kind: 'noQuorum', taskId, at: Date.now() }
    if (err instanceof TaskRefusedError) return { kind: 'refused', taskId, at: Date.now(), reason: reasonKind(err) }
    return { kind: 'lost', taskId, at: Date.now(), reason: reasonKind(err) }
  } finally {
    clearTimeout(timer)
  }
}

export interface Tally {
  sent: number
  certified: number
  noQuorum: number
  refused: number
  lost: number
  /** Refusal and loss reasons, counted. */
  reasons: Record<string, number>
}

export function tally (outcomes: Outcome[]): Tally {
  const t: Tally = { sent: outcomes.length, certified: 0, noQuorum: 0, refused: 0, lost: 0, reasons: {} }
  for (const o of outcomes) {
    t[o.kind]++
    if (o.kind === 'refused' || o.kind === 'lost') t.reasons[`${o.kind}: ${o.reason}`] = (t.reasons[`${o.kind}: ${o.reason}`] ?? 0) + 1
  }
  return t
}

/** A process's resident set size in bytes (VmRSS), or undefined once it is gone. */
export function rssBytes (pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m != null ? Number(m[1]) * 1024 : undefined
  } catch {
    return undefined
  }
}

export const MiB = 1024 * 1024

/**
 * Samples the RSS of named processes every `intervalMs` and keeps each one's peak; `stop()`
 * ends the sampling. A process gone (crashed) is recorded as such.
 */
export class RssSampler {
  readonly peak = new Map<string, number>()
  readonly gone = new Set<string>()
  private readonly timer: NodeJS.Timeout

  constructor (private readonly pids: Map<string, number>, intervalMs = 250) {
    this.sample()
    this.timer = setInterval(() => { this.sample() }, intervalMs)
  }

  sample (): Map<string, number> {
    const now = new Map<string, number>()
    for (const [name, pid] of this.pids) {
      const rss = rssBytes(pid)
      if (rss === undefined) { this.gone.add(name); continue }
      now.set(name, rss)
      this.peak.set(name, Math.max(this.peak.get(name) ?? 0, rss))
    }
    return now
  }

  stop (): void { clearInterval(this.timer) }
}

/** `{ name: MiB }` rounded to a tenth, for details. */
export function inMiB (m: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...m].map(([k, v]) => [k, Math.round(v / MiB * 10) / 10]))
}

export const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** Ends a result once its checks ran: it held when nothing failed, else the failures are its reason. */
export function conclude (result: ScenarioResult, failures: string[]): void {
  result.passed = failures.length === 0
  if (!result.passed) result.failure = failures.join('; ')
}

/** A scenario that threw before its checks: failed, with what stopped it. */
export function endedEarly (result: ScenarioResult, err: unknown): void {
  result.passed = false
  result.failure = `ended early: ${err instanceof Error ? err.message : String(err)}`
}
