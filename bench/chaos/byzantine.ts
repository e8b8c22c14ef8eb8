/**
 * byzantine: of 7 operators, one signs a wrong result for every task and one equivocates (signs
 * a wrong and the right result for every task), switched on with the operator role's test hook
 * (POI_TEST_FAULT, node/roles/test-faults.ts). The 5 honest ones hold the quorum (71 %). Every
 * task must certify without either of them among its signers, and the equivocator must be
 * slashed on-chain (its stake reduced) on the evidence the aggregator submits; the operator
 * that is merely wrong is not slashed (a lone wrong result proves nothing).
 */
import { join } from 'node:path'
import { SlashingManagerAbi } from '../../contracts/index.js'
import { loadKeystore } from '../../node/keys.js'
import { TEST_FAULT_ENV, TEST_FAULTS_ALLOWED_ENV, type TestFault } from '../../node/roles/test-faults.js'
import { operatorIndexOf, scenario, SETTLE_TIMEOUT_MS } from './harness.js'
import type { Scenario } from './scenario.js'

const OPERATORS = 7
/** Which operator plays which fault (by its place in the network). */
const FAULTS: Record<number, TestFault> = { 1: 'wrong-result', 2: 'equivocate' }
const TASKS = 4
/** How often the chain is asked whether the slash landed. */
const POLL_MS = 250

const expectation = 'a wrong-result and an equivocating operator: neither signs a certificate, every task certifies, the equivocator is slashed'

export const byzantine: Scenario = {
  name: 'byzantine',
  expectation,
  run: async (ctx) => await scenario(ctx, { name: 'byzantine', expectation }, {
    operators: OPERATORS,
    operatorEnv: (i) => FAULTS[i] === undefined ? {} : { [TEST_FAULT_ENV]: FAULTS[i], [TEST_FAULTS_ALLOWED_ENV]: '1' }
  }, async (c, tasks, details) => {
    const failures: string[] = []
    const client = c.chain.client
    const [wrongAt, equivocatorAt] = [1, 2]
    const wrong = c.net.operators[wrongAt]
    const equivocator = c.net.operators[equivocatorAt]
    const indices = { wrong: operatorIndexOf(wrong), equivocator: operatorIndexOf(equivocator) }
    const address = async (i: number): Promise<`0x${string}`> => (await loadKeystore(join(c.net.root, `operator-${i}`, 'keys'))).account.address
    const addresses = { wrong: await address(wrongAt), equivocator: await address(equivocatorAt) }
    const stakeBefore = { wrong: await client.liveStake(addresses.wrong), equivocator: await client.liveStake(addresses.equivocator) }
    details.faulty = {
      wrongResult: { name: wrong.name, operatorIndex: indices.wrong, pid: wrong.proc.pid, address: addresses.wrong },
      equivocator: { name: equivocator.name, operatorIndex: indices.equivocator, pid: equivocator.proc.pid, address: addresses.equivocator }
    }
    ctx.progress(`operator index ${indices.wrong} signs wrong results, index ${indices.equivocator} equivocates; ${TASKS} tasks`)
    for (let i = 0; i < TASKS; i++) await tasks.send(c, 500 + i)
    const certified = tasks.outcomes.filter(o => o.kind === 'certified')
    if (certified.length !== TASKS) failures.push(`not every task certified: ${tasks.uncertified()}`)
    const faultySigners = certified.filter(o => o.signers?.some(s => s === indices.wrong || s === indices.equivocator))
    if (faultySigners.length > 0) failures.push(`${faultySigners.length} certificates name a faulty operator as a signer: ${faultySigners.map(o => `${o.taskId} [${o.signers?.join(', ') ?? ''}]`).join('; ')}`)
    details.signersPerTask = certified.map(o => o.signers)

    // The aggregator keeps each equivocation as evidence and posts it; the chain slashes once per task.
    const slashedFor = async (taskId: `0x${string}`): Promise<boolean> =>
      await client.publicClient.readContract({ address: client.config.slashing, abi: SlashingManagerAbi, functionName: 'slashed', args: [addresses.equivocator, taskId] })
    // Every announced task: the equivocator signs two results whether or not the task certified.
    const announced = tasks.outcomes.flatMap(o => o.taskId !== undefined ? [o.taskId] : [])
    const first = announced[0]
    if (first !== undefined) {
      ctx.progress('waiting for the equivocator\'s slash on-chain')
      const end = Date.now() + SETTLE_TIMEOUT_MS
      while (!await slashedFor(first) && Date.now() < end) await new Promise(resolve => setTimeout(resolve, POLL_MS))
    }
    const slashedTasks: string[] = []
    for (const id of announced) if (await slashedFor(id)) slashedTasks.push(id)
    const stakeAfter = { wrong: await client.liveStake(addresses.wrong), equivocator: await client.liveStake(addresses.equivocator) }
    const evidence = c.net.aggregator.events.filter(e => e.event === 'evidence' && e.operatorIndex === indices.equivocator).length
    const submitted = c.net.aggregator.events.filter(e => e.event === 'submitted' && e.kind === 'evidence').length
    const failedSubmissions = c.net.aggregator.events.filter(e => e.event === 'submission-failed').map(e => JSON.stringify(e))
    details.equivocator = { evidenceAtAggregator: evidence, evidenceSubmitted: submitted, slashedForTasks: slashedTasks.length, stakeBeforeWei: stakeBefore.equivocator.toString(), stakeAfterWei: stakeAfter.equivocator.toString(), slashedWei: (stakeBefore.equivocator - stakeAfter.equivocator).toString() }
    details.wrongResult = { stakeBeforeWei: stakeBefore.wrong.toString(), stakeAfterWei: stakeAfter.wrong.toString() }
    details.failedSubmissions = failedSubmissions
    if (slashedTasks.length === 0) failures.push(`the equivocator was not slashed on-chain within ${SETTLE_TIMEOUT_MS / 1000} s (evidence at the aggregator: ${evidence}, submitted: ${submitted}${failedSubmissions.length > 0 ? `, failed: ${failedSubmissions.join(' ')}` : ''})`)
    if (stakeAfter.equivocator >= stakeBefore.equivocator) failures.push('the equivocator\'s stake did not go down')
    if (stakeAfter.wrong !== stakeBefore.wrong) failures.push('the wrong-result operator\'s stake changed (a lone wrong result is no evidence)')
    return { failures, recoverMs: null }
  })
}
