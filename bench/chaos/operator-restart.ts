/**
 * operator-restart: an operator SIGKILLed after signing a few tasks and started again with the
 * same keystore and data directory rejoins the gossip meshes, signs the next task (and is among
 * its certificate's signers), and every attestation it had stored before the kill is still in
 * its store, byte for byte (read from its LevelDB right after the kill and again after it ran).
 */
import { join } from 'node:path'
import { encodeAttestation, toHex } from '../../protocols/wire/index.js'
import { NodeStore } from '../../storage/index.js'
import { crash, meshed, operatorIndexOf, READY_TIMEOUT_MS, restart, scenario, TASK_TIMEOUT_MS } from './harness.js'
import type { Scenario } from './scenario.js'

const OPERATORS = 4
/** Tasks the operator signs before it is killed (after the warm-up). */
const BEFORE_KILL = 3
/**
 * Long enough for the restarted operator's signature to reach the certificate: the other three
 * already hold the quorum, and its first task after a restart loads the model's session.
 */
const GRACE_MS = 3_000
/** Which operator is killed. */
const VICTIM = 2

const expectation = 'a SIGKILLed operator restarted on its data rejoins, signs the next task, and keeps every attestation it stored'

/** The operator's own attestations for `taskIds`, encoded (what it would send again), read from its store. */
async function ownAttestations (dataDir: string, taskIds: string[]): Promise<Map<string, string | undefined>> {
  const store = await NodeStore.open(dataDir)
  try {
    const found = new Map<string, string | undefined>()
    for (const id of taskIds) {
      const att = await store.getOwnAttestation(Uint8Array.from(Buffer.from(id.slice(2), 'hex')))
      found.set(id, att === undefined ? undefined : toHex(encodeAttestation(att)))
    }
    return found
  } finally {
    await store.close()
  }
}

export const operatorRestart: Scenario = {
  name: 'operator-restart',
  expectation,
  run: async (ctx) => await scenario(ctx, { name: 'operator-restart', expectation }, { operators: OPERATORS, graceMs: GRACE_MS }, async (c, tasks, details) => {
    const failures: string[] = []
    const victim = c.net.operators[VICTIM]
    const index = operatorIndexOf(victim)
    const dataDir = join(c.net.root, `operator-${VICTIM}`, 'data')
    ctx.progress(`${BEFORE_KILL + 1} tasks before the kill`)
    for (let i = 0; i <= BEFORE_KILL; i++) await tasks.send(c, 200 + i)
    if (tasks.counts().certified !== BEFORE_KILL + 1) return { failures: [`tasks before the kill did not certify: ${tasks.uncertified()}`], recoverMs: null }
    // What it reported signing (the attestation is stored before the event).
    const signed = victim.events.flatMap(e => e.event === 'attested' ? [{ taskId: e.taskId, resultHash: e.resultHash }] : [])
    details.signedBeforeKill = signed.length
    await crash(victim)
    details.killedPid = victim.proc.pid
    const atKill = await ownAttestations(dataDir, signed.map(s => s.taskId))
    const missingAtKill = signed.filter(s => atKill.get(s.taskId) === undefined)
    if (missingAtKill.length > 0) failures.push(`after the kill the store lacks the attestations for ${missingAtKill.map(s => s.taskId).join(', ')}`)
    ctx.progress(`killed ${victim.name} (pid ${victim.proc.pid}) after it signed ${signed.length} tasks; restarting it on its data`)
    const restartedAt = Date.now()
    const again = restart(c, victim, `${victim.name}-restarted`)
    await again.ready(READY_TIMEOUT_MS)
    await meshed(again, true)
    const rejoinedAt = Date.now()
    details.rejoinMs = rejoinedAt - restartedAt
    details.restartedPid = again.proc.pid
    if (operatorIndexOf(again) !== index) failures.push(`restarted with operator index ${operatorIndexOf(again)}, not ${index}`)
    ctx.progress(`rejoined in ${((rejoinedAt - restartedAt) / 1000).toFixed(1)} s; the next task`)
    const next = await tasks.send(c, 300)
    if (next.kind !== 'certified') failures.push(`the next task did not certify: ${next.reason ?? next.kind}`)
    else {
      const att = await again.waitForEvent('attested', e => e.taskId === next.taskId, TASK_TIMEOUT_MS, `attested event for task ${next.taskId}`).catch(() => undefined)
      if (att === undefined) failures.push('the restarted operator did not sign the next task')
      if (next.signers?.includes(index) !== true) failures.push(`the restarted operator (index ${index}) is not a signer of the next task's certificate (signers ${next.signers?.join(', ') ?? 'none'})`)
      details.nextTaskSigners = next.signers
    }
    await again.stop()
    const afterRun = await ownAttestations(dataDir, [...signed.map(s => s.taskId), ...(next.taskId !== undefined ? [next.taskId] : [])])
    const changed = signed.filter(s => afterRun.get(s.taskId) !== atKill.get(s.taskId))
    if (changed.length > 0) failures.push(`after the restart ${changed.length} of the ${signed.length} attestations stored before the kill are missing or differ`)
    details.intactAfterRestart = signed.length - changed.length
    return { failures, recoverMs: tasks.recoverMs(rejoinedAt) }
  })
}
