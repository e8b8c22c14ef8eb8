/**
 * aggregator-killed: two aggregators; the one that formed a task's certificate is SIGKILLed
 * after forming it and before its transaction lands. Deterministically: anvil stops mining
 * before the task, the kill follows the aggregator's `certificate` line, and whatever it had
 * sent is dropped from the mempool (as if it died before sending) before mining resumes. The
 * other aggregator holds the certificate from gossip and posts it after its backup delay: it
 * never forms one of its own, for its grace window is long and one operator is down from the
 * start, so no task is signed by every operator (which would end the window at once). The killed one, restarted on its data directory,
 * finds its pending submission settled by the other and stands down: one CertificateAccepted
 * per task on-chain, no second transaction, no failed submission.
 */
import { join } from 'node:path'
import { TaskManagerAbi } from '../../contracts/index.js'
import { ChildNode, prepareNodeDir } from '../../node/cli/launcher.js'
import { loadKeystore } from '../../node/keys.js'
import { anvilControl, crash, ETHER, meshed, READY_TIMEOUT_MS, restart, scenario, SETTLE_TIMEOUT_MS, TASK_TIMEOUT_MS, type ChaosNetwork } from './harness.js'
import type { Scenario } from './scenario.js'

/** One of them is stopped before the first task: the other four hold the quorum (80 %), never all. */
const OPERATORS = 5
/** The first aggregator forms a certificate as soon as the quorum is there. */
const FIRST_GRACE_MS = 0
/** The second waits this long after the quorum: the first one's certificate reaches it long before. */
const SECOND_GRACE_MS = 10_000
/** Gas money for the second aggregator. */
const AGGREGATOR_FUNDING_WEI = 100n * ETHER

const expectation = 'SIGKILL the aggregator between its certificate and its transaction: the other posts it, the restarted one adds no duplicate'

const hex = (id: string): Uint8Array => Uint8Array.from(Buffer.from(id.replace(/^0x/, ''), 'hex'))

/** CertificateAccepted events per task id (lower-case 0x hex) on the network's TaskManager. */
async function acceptances (c: ChaosNetwork): Promise<Map<string, Array<{ submitter: string, txHash: string }>>> {
  const { publicClient, config } = c.chain.client
  const events = await publicClient.getContractEvents({ address: config.taskManager, abi: TaskManagerAbi, eventName: 'CertificateAccepted', fromBlock: config.deployedAtBlock ?? 0n, toBlock: 'latest', strict: true })
  const byTask = new Map<string, Array<{ submitter: string, txHash: string }>>()
  for (const e of events) {
    const id = e.args.taskId.toLowerCase()
    byTask.set(id, [...(byTask.get(id) ?? []), { submitter: e.args.submitter.toLowerCase(), txHash: e.transactionHash }])
  }
  return byTask
}

export const aggregatorKilled: Scenario = {
  name: 'aggregator-killed',
  expectation,
  run: async (ctx) => await scenario(ctx, { name: 'aggregator-killed', expectation }, { operators: OPERATORS, graceMs: FIRST_GRACE_MS }, async (c, tasks, details) => {
    const failures: string[] = []
    const first = c.net.aggregator
    const firstAddress = (await loadKeystore(join(c.net.root, 'aggregator', 'keys'))).account.address.toLowerCase()
    const dirs = await prepareNodeDir(c.net.root, 'aggregator-b')
    const secondAddress = dirs.keys.account.address.toLowerCase()
    await c.chain.fund(dirs.keys.account.address, AGGREGATOR_FUNDING_WEI)
    ctx.progress('starting a second aggregator')
    const second = new ChildNode('aggregator-b', ['aggregator', '--keystore', dirs.keystore, '--data-dir', dirs.dataDir, '--chain', c.chain.deploymentPath,
      '--listen', '/ip4/127.0.0.1/tcp/0', '--http', '127.0.0.1:0', '--bootstrap', c.net.bootstrapAddr, '--grace-ms', String(SECOND_GRACE_MS)], join(c.net.root, 'aggregator-b.log'))
    c.extra.push(second)
    await second.ready(READY_TIMEOUT_MS)
    await meshed(second, false)
    details.aggregators = { first: { address: firstAddress, pid: first.proc.pid }, second: { address: secondAddress, pid: second.proc.pid } }

    const absent = c.net.operators[OPERATORS - 1]
    await absent.stop()
    ctx.progress(`stopped ${absent.name}; warm-up task, settled by the first aggregator`)
    const warm = await tasks.send(c, 400)
    if (warm.kind !== 'certified') return { failures: [`the warm-up task did not certify: ${warm.reason ?? warm.kind}`], recoverMs: null }
    await c.chain.client.waitForAcceptance(hex(warm.taskId!), SETTLE_TIMEOUT_MS)

    const anvil = anvilControl(c)
    await anvil.setAutomine(false)
    let killedAt = 0
    let faultId: string | undefined
    try {
      ctx.progress('mining stopped; the task the first aggregator is killed on')
      const earlier = new Set(first.events.flatMap(e => e.event === 'certificate' ? [e.taskId] : []))
      const fault = tasks.send(c, 401)
      const formed = await first.waitForEvent('certificate', e => !earlier.has(e.taskId), TASK_TIMEOUT_MS, 'certificate formed by the first aggregator')
      faultId = formed.taskId.toLowerCase()
      await crash(first)
      killedAt = Date.now()
      details.droppedTransactions = await anvil.dropPendingFrom(firstAddress as `0x${string}`)
      ctx.progress(`killed the first aggregator (pid ${first.proc.pid}) after it formed the certificate of ${faultId}; dropped ${String(details.droppedTransactions)} pending transactions of its`)
      await anvil.setAutomine(true)
      const outcome = await fault
      if (outcome.kind !== 'certified') failures.push(`the task did not certify: ${outcome.reason ?? outcome.kind}`)
    } finally {
      await anvil.setAutomine(true)
    }
    const accepted = await c.chain.client.waitForAcceptance(hex(faultId), SETTLE_TIMEOUT_MS)
    const settledAt = Date.now()
    details.settledBy = accepted.submitter
    if (accepted.submitter.toLowerCase() !== secondAddress) failures.push(`the certificate was posted by ${accepted.submitter}, not by the second aggregator ${secondAddress}`)

    ctx.progress(`posted by ${accepted.submitter} ${((settledAt - killedAt) / 1000).toFixed(1)} s after the kill; restarting the first aggregator on its data`)
    const again = restart(c, first, 'aggregator-restarted')
    await again.ready(READY_TIMEOUT_MS)
    const id = faultId.slice(2)
    const resumed = await again.waitFor(e => (e.event === 'submitted' || e.event === 'submission-settled-by-other' || e.event === 'submission-failed') && e.kind === 'certificate' && e.id === id,
      SETTLE_TIMEOUT_MS, `the restarted aggregator's verdict on its pending submission ${id}`)
    details.restartedVerdict = resumed.event
    details.restartedPid = again.proc.pid
    if (resumed.event !== 'submission-settled-by-other') failures.push(`the restarted aggregator's pending submission ended ${resumed.event}, not settled-by-other`)

    await meshed(again, false)
    ctx.progress('one more task with both aggregators up')
    const after = await tasks.send(c, 402)
    if (after.kind !== 'certified') failures.push(`the task after the restart did not certify: ${after.reason ?? after.kind}`)
    else await c.chain.client.waitForAcceptance(hex(after.taskId!), SETTLE_TIMEOUT_MS)

    // One settlement per task, and no submission of either aggregator failed (a revert is no loss, but counted here).
    const onChain = await acceptances(c)
    const certified = tasks.outcomes.filter(o => o.kind === 'certified').map(o => o.taskId!.toLowerCase())
    const wrongCount = certified.filter(t => (onChain.get(t)?.length ?? 0) !== 1)
    if (wrongCount.length > 0) failures.push(`tasks without exactly one CertificateAccepted: ${wrongCount.map(t => `${t} (${onChain.get(t)?.length ?? 0})`).join(', ')}`)
    details.settlements = Object.fromEntries(certified.map(t => [t, onChain.get(t) ?? []]))
    const failed = [first, second, again].flatMap(n => n.events.filter(e => e.event === 'submission-failed').map(e => `${n.name}: ${JSON.stringify(e)}`))
    if (failed.length > 0) failures.push(`failed submissions: ${failed.join('; ')}`)
    details.killToSettledMs = settledAt - killedAt
    return { failures, recoverMs: settledAt - killedAt }
  })
}
