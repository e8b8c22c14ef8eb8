/**
 * What every chaos scenario reports, and the table and JSON `npm run chaos` writes from them.
 * A scenario starts its own network (separate processes on 127.0.0.1, or network namespaces),
 * injects one fault, sends tasks through it, and counts how each task ended. It checks its
 * expectation itself (e.g. "every task certifies", "the equivocator is slashed") and says
 * whether it held; the runner only collects.
 */

/** How the tasks a scenario sent ended, and how long the network took to recover. */
export interface ScenarioResult {
  /** Short id, e.g. 'crash-minority'. */
  name: string
  /** What the scenario expects, in one sentence (printed in the table). */
  expectation: string
  /** Tasks tried: announced, or refused before announcing (sent = certified + noQuorum + refused + lost). */
  sent: number
  /** Tasks that ended with a verified quorum certificate. */
  certified: number
  /** Tasks that ended NoQuorum (too few signers before the task's deadline). */
  noQuorum: number
  /** Tasks refused before announcing, with a reason (e.g. the burst's admission limits). */
  refused: number
  /** Tasks announced that never resolved either way. */
  lost: number
  /**
   * Milliseconds from the end of the fault (kill, heal, restart, end of flood) to the first
   * task certified after it; null where the scenario has no recovery to time.
   */
  recoverMs: number | null
  /** Whether the expectation held. */
  passed: boolean
  /** Scenario-specific figures (peak RSS, score of the flooder, slashed amount, …). */
  details: Record<string, unknown>
  /** Why the expectation did not hold (or the error that ended the scenario early). */
  failure?: string
  /** Why the scenario did not run here (e.g. not root for network namespaces); `passed` is then false but no expectation failed. */
  skipped?: string
}

export interface ScenarioContext {
  /** A fresh directory for this scenario's keys, data and logs; the runner removes it unless --keep. */
  root: string
  /** Progress lines for a person watching (stderr). */
  progress: (line: string) => void
}

export interface Scenario {
  name: string
  /** Needs root and network namespaces (skipped with a reason otherwise). */
  needsNetns?: boolean
  /** Its expectation, for a result the runner writes itself (skipped, or the scenario threw). */
  expectation?: string
  run: (ctx: ScenarioContext) => Promise<ScenarioResult>
}

/** The table printed at the end of `npm run chaos` (also pasted into the README). */
export function chaosTable (results: ScenarioResult[]): string {
  const head = '| scenario | sent | certified | no-quorum | refused | lost | recover | held |'
  const rule = '|---|---|---|---|---|---|---|---|'
  const rows = results.map(r => `| ${r.name} | ${r.sent} | ${r.certified} | ${r.noQuorum} | ${r.refused} | ${r.lost} | ${r.recoverMs == null ? '–' : `${(r.recoverMs / 1000).toFixed(1)} s`} | ${r.skipped !== undefined ? `skipped: ${r.skipped}` : r.passed ? 'yes' : `NO: ${r.failure ?? ''}`} |`)
  return [head, rule, ...rows].join('\n')
}
