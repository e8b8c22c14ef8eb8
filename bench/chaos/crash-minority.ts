/**
 * crash-minority: f < n/3 operators SIGKILLed while tasks are in flight. The rest still hold
 * the quorum (5 of 7 equal stakes is 71 %, above the default 66.67 %), so every task, those in
 * flight at the kill included, must certify; recoverMs is from the kill to the next certificate.
 */
import { crash, operatorIndexOf, scenario } from './harness.js'
import type { Scenario } from './scenario.js'

const OPERATORS = 7
/** The largest f with f < n/3. */
const KILLED = 2
/** Tasks in flight at once: the kill lands while some are being signed. */
const CONCURRENCY = 3
/** Tasks sent in all; the kill comes after KILL_AFTER of them were sent. */
const TASKS = 12
const KILL_AFTER = 4

const expectation = `SIGKILL ${KILLED} of ${OPERATORS} operators mid-run: every task still certifies`

export const crashMinority: Scenario = {
  name: 'crash-minority',
  expectation,
  run: async (ctx) => await scenario(ctx, { name: 'crash-minority', expectation }, { operators: OPERATORS }, async (c, tasks, details) => {
    const failures: string[] = []
    ctx.progress('warm-up task (operators load the model)')
    const warm = await tasks.send(c, 1)
    if (warm.kind !== 'certified') return { failures: [`the warm-up task did not certify: ${warm.reason ?? warm.kind}`], recoverMs: null }
    const victims = [c.net.operators[1], c.net.operators[OPERATORS - 2]]
    const victimIndices = victims.map(operatorIndexOf)
    details.killed = victims.map(v => ({ name: v.name, pid: v.proc.pid, operatorIndex: operatorIndexOf(v) }))
    let killedAt = 0
    let sent = 0
    let kill: Promise<void> | undefined
    ctx.progress(`sending ${TASKS} tasks, ${CONCURRENCY} at a time; killing ${victims.map(v => v.name).join(' and ')} after ${KILL_AFTER}`)
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (sent < TASKS) {
        const seed = 100 + sent++
        if (sent === KILL_AFTER + 1) {
          kill = (async () => {
            killedAt = Date.now()
            await Promise.all(victims.map(crash))
            ctx.progress(`killed ${victims.map(v => `${v.name} (pid ${v.proc.pid})`).join(', ')} with ${tasks.outcomes.length - 1} tasks done`)
          })()
        }
        await tasks.send(c, seed)
      }
    }))
    await kill
    const run = tasks.outcomes.slice(1)
    if (run.some(o => o.kind !== 'certified')) failures.push(`not every task certified: ${tasks.uncertified()}`)
    // Tasks announced after the kill cannot carry a dead operator's signature.
    const afterKill = run.filter(o => o.sentAt > killedAt && o.kind === 'certified')
    const ghost = afterKill.filter(o => o.signers?.some(s => victimIndices.includes(s)))
    if (ghost.length > 0) failures.push(`${ghost.length} tasks sent after the kill name a killed operator as a signer`)
    details.inFlightAtKill = run.filter(o => o.sentAt <= killedAt && o.endedAt >= killedAt).length
    details.signersPerTask = tasks.outcomes.map(o => o.signers?.length ?? 0)
    return { failures, recoverMs: tasks.recoverMs(killedAt) }
  })
}
