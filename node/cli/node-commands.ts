/**
 * `poi operator`, `poi aggregator`, `poi bootstrap`: start a full node, print what it does (a
 * line for a person, or with --json a PoiEvent line per event) and run until SIGINT/SIGTERM.
 */
import { isAddressEqual } from 'viem'
import { readOperatorRecord, readRegistryState, readReputation } from '../../contracts/index.js'
import { shortHex } from '../../protocols/wire/index.js'
import { ChainClient } from '../chain-client.js'
import { modelIdToString } from '../inference/index.js'
import { loadKeystore } from '../keys.js'
import { NotInOperatorSetError, PoiNode, preciseNow } from '../poi-node.js'
import { peerIdentityOf } from '../peer-identity.js'
import { NODE_OPTIONS, nodeConfig, type OptionValues } from './args.js'
import type { Hex, NodeRoleName } from './events.js'
import { operatorSource, readChain } from './operator-source.js'
import { CliOutput } from './output.js'
import { claimableRewards } from './payment-commands.js'
import { formatUnlock } from './payment-setup.js'

const MIB = 2 ** 20

export async function runRole (role: NodeRoleName, values: OptionValues<typeof NODE_OPTIONS>): Promise<void> {
  const config = await nodeConfig(values)
  const keystore = await loadKeystore(config.keystore)
  const aggregate = role === 'aggregator' || values.aggregate === true
  if (role === 'operator' && config.chain != null && values.chain !== undefined) await checkInOperatorSet(await ChainClient.connect(config.chain), keystore.account.address, values.chain)
  const { operatorSet, chain } = await operatorSource(config, keystore)
  const node = await PoiNode.start({
    operate: role === 'operator',
    aggregate,
    light: false,
    keystore,
    config,
    operatorSet,
    settlement: aggregate ? chain : undefined,
    modelGate: chain?.config.modelRegistry != null ? chain : undefined,
    payments: chain,
    probe: values.probe === true,
    // A certificate of an epoch this node has not polled yet still verifies (read from the chain).
    readOperatorSet: chain != null ? async (epoch) => await chain.operatorSet(epoch) : undefined,
    chainEpoch: chain != null ? async () => await chain.currentEpoch() : undefined,
    claimableRewards: role === 'operator' && chain != null ? async () => await claimableRewards(chain, keystore.account.address) : undefined
  })
  const unwatch = chain?.watchEpochs(set => node.useOperatorSet(set), operatorSet.epoch)
  const out = new CliOutput(values.json === true)
  const addrs = node.addresses()
  const peerId = node.libp2p.peerId.toString()
  const fromStore = node.announcedModelIds.filter(id => !node.modelIds.includes(id))
  out.event({ event: 'ready', role, peerId, addrs, operatorIndex: node.operatorIndex ?? null, models: node.modelIds, announced: node.announcedModelIds, http: node.http?.url ?? null },
    `poi ${node.roles().join('+')} ${peerId}${node.operatorIndex != null ? ` (operator ${node.operatorIndex})` : ''}\n` +
    addrs.map(a => `  listening on ${a}`).join('\n') +
    `\n  models announced on the DHT: ${[...node.modelIds.map(id => `${id} (model dir)`), ...fromStore.map(id => `${id} (block store)`)].join(', ') || 'none'}` +
    (node.http?.url != null ? `\n  HTTP API on ${node.http.url} (GET /health, /v1/network, /v1/tasks, /v1/models)` : '') +
    (node.control == null
      ? ''
      : node.control.listening
        ? `\n  control socket ${node.control.path} (\`poi model publish --data-dir ${config.dataDir}\` publishes through this node)`
        : `\n  no control socket: ${node.control.path} is longer than a Unix socket path may be, so \`poi model publish\` cannot reach this node; use a shorter --data-dir`))
  reportEvents(node, out)
  if (role === 'operator' && chain != null) await reportReputation(chain, keystore.account.address, out)
  const unwatchModels = role === 'operator' && values['no-prefetch'] !== true ? await prefetchRegisteredModels(node, chain) : undefined
  await new Promise<void>((resolve) => {
    const shutdown = (): void => {
      process.off('SIGINT', shutdown)
      process.off('SIGTERM', shutdown)
      unwatch?.()
      unwatchModels?.()
      node.stop().then(resolve, (err) => { console.error(`error while stopping: ${(err as Error).message}`); resolve() })
    }
    process.on('SIGINT', shutdown)
    process.on('SIGTERM', shutdown)
  })
}

/**
 * In chain mode an operator outside the current epoch's set is told what to run: register, or
 * (registered, waiting for its first epoch) advance the epoch or wait for it, or (exiting) that
 * it left the set.
 */
async function checkInOperatorSet (chain: ChainClient, account: `0x${string}`, chainFile: string): Promise<void> {
  const rpc = chain.config.rpcUrl
  const epoch = await readChain('the current epoch', rpc, async () => await chain.currentEpoch())
  if (epoch > 0n && (await readChain('the current operator set', rpc, async () => await chain.operatorSet(epoch))).operators.some(o => isAddressEqual(o.address, account))) return
  const [op, state] = await Promise.all([
    readOperatorRecord(chain.publicClient, chain.config.registry, account),
    readRegistryState(chain.publicClient, chain.config.registry)
  ])
  const now = (await chain.publicClient.getBlock()).timestamp
  const here = `${account} is not in the operator set of epoch ${epoch}`
  if (!op.registered) throw new NotInOperatorSetError(`${here}: it is not registered; run \`poi operator register --stake <eth> --chain ${chainFile}\`, then \`poi epoch advance --chain ${chainFile}\``)
  if (op.exitRequestedAt > 0n) throw new NotInOperatorSetError(`${here}: it asked to exit (out of the set from epoch ${op.exitEpoch}); \`poi operator status --chain ${chainFile}\` says when its stake can be withdrawn`)
  throw new NotInOperatorSetError(`${here}: it is registered and joins at epoch ${op.firstEpoch}; run \`poi epoch advance --chain ${chainFile}\` (possible from ${formatUnlock(state.lastEpochStart + state.epochDuration, now)}) or wait for the next epoch to start`)
}

/** An operator's own record at start (TaskManager.reputationOf): certificates signed, missed, slashings. */
async function reportReputation (chain: ChainClient, operator: `0x${string}`, out: CliOutput): Promise<void> {
  try {
    const r = await readReputation(chain.publicClient, chain.config.taskManager, operator)
    out.event({ event: 'reputation', operator, signed: r.signed, missed: r.missed, slashings: r.slashings },
      `  reputation: signed ${r.signed} certificates, missed ${r.missed}, slashed ${r.slashings} time${r.slashings === 1 ? '' : 's'} (this registration)`)
  } catch (err) {
    // The node runs without it: a reputation is information, not a condition to operate.
    console.error(`cannot read this operator's reputation from ${chain.config.rpcUrl}: ${(err as Error).message.split('\n')[0]}`)
  }
}

/**
 * Operators fetch the registry's active models now, and new ones as they are registered, not
 * when the first task for them is already waiting. Each ends in a `model` or `prefetch-failed`
 * event. Returns the function that stops watching.
 */
async function prefetchRegisteredModels (node: PoiNode, chain: ChainClient | undefined): Promise<(() => void) | undefined> {
  if (chain?.config.modelRegistry == null) return undefined
  try {
    const head = await chain.publicClient.getBlockNumber()
    node.prefetchModels(await chain.activeModels(undefined, head))
    return chain.watchModels(ids => node.prefetchModels(ids), head)
  } catch (err) {
    console.error(`cannot list the registry's models to prefetch from ${chain.config.rpcUrl}: ${(err as Error).message.split('\n')[0]}`)
    return undefined
  }
}

/** Every node event as a PoiEvent line (--json) or a line for a person. */
function reportEvents (node: PoiNode, out: CliOutput): void {
  node.submitter?.addEventListener('confirmed', ({ detail: s }) => out.event(
    // Set on every confirmed submission: the receipt's hash and gas.
    { event: 'submitted', kind: s.kind, id: s.id, txHash: s.txHash as Hex, gasUsed: BigInt(s.gasUsed ?? 0) },
    `${s.kind} ${s.id.slice(0, 16)}… settled on-chain in ${s.txHash} (gas ${s.gasUsed})`))
  node.submitter?.addEventListener('settled-by-other', ({ detail: s }) => out.event(
    // Set on every settled-by-other submission: the other account and its transaction.
    { event: 'submission-settled-by-other', kind: s.kind, id: s.id, settledBy: s.settledBy as Hex, txHash: s.txHash as Hex, resultHash: s.resultHash as Hex | undefined },
    `${s.kind} ${s.id.slice(0, 16)}… already settled on-chain by ${s.settledBy} in ${s.txHash}${s.resultHash != null ? ` (result ${s.resultHash.slice(0, 18)}…)` : ''}; not sent`))
  node.submitter?.addEventListener('failed', ({ detail: s }) => out.warning(
    { event: 'submission-failed', kind: s.kind, id: s.id, reason: s.lastError ?? 'unknown', revert: s.revert },
    `${s.kind} ${s.id.slice(0, 16)}… FAILED, never going on-chain: ${s.revert != null ? `the contract reverts with ${s.revert}` : (s.lastError ?? 'unknown')}`))
  // A stuck submission is visible without flooding: attempts 1, 2, 4, 8, … (it retries every RETRY_CAP_MS meanwhile).
  node.submitter?.addEventListener('retrying', ({ detail: s }) => {
    if ((s.attempts & (s.attempts - 1)) !== 0) return
    out.warning({ event: 'submission-retry', kind: s.kind, id: s.id, attempts: s.attempts, retryInMs: s.retryInMs, reason: (s.lastError ?? '').split('\n')[0] },
      `${s.kind} ${s.id.slice(0, 16)}… not on-chain yet (attempt ${s.attempts}), retrying in ${Math.round(s.retryInMs / 1000)} s: ${(s.lastError ?? '').split('\n')[0]}`)
  })
  // A fetch in progress, at most one line per tenth of the model (humans) or per phase (JSON).
  let lastShown = ''
  node.addEventListener('model-progress', ({ detail: { modelId, progress: p } }) => {
    const tenth = p.bytesTotal > 0 ? Math.floor(10 * p.bytesDone / p.bytesTotal) : 0
    const key = `${p.phase}/${out.json ? 0 : tenth}`
    if (key === lastShown) return
    lastShown = key
    const id = modelIdToString(modelId)
    out.event({ event: 'model-progress', modelId: id, ...p },
      `fetching model ${id.slice(0, 16)}…: ${p.phase}, ${p.chunksDone}/${p.chunksTotal} chunks, ${(p.bytesDone / MIB).toFixed(1)}/${(p.bytesTotal / MIB).toFixed(1)} MiB from ${p.providers} providers${p.dropped > 0 ? ` (${p.dropped} dropped)` : ''}`)
  })
  node.addEventListener('model', ({ detail: m }) => out.event(
    { event: 'model', modelId: modelIdToString(m.modelId), bytes: m.bytes, fromStore: m.fromStore, ms: m.ms },
    `model ${modelIdToString(m.modelId)} ${m.fromStore ? 'loaded from the block store' : 'fetched through the DHT'} (${m.bytes} bytes, ${m.ms} ms)`))
  node.addEventListener('prefetch-failed', ({ detail: f }) => out.event(
    { event: 'prefetch-failed', modelId: modelIdToString(f.modelId), reason: f.reason },
    `prefetching model ${modelIdToString(f.modelId)} failed: ${f.reason} (it is fetched again when a task names it)`))
  node.addEventListener('failed', ({ detail: f }) => out.warning(
    { event: 'failed', taskId: f.taskId, reason: f.reason },
    `task ${shortHex(f.taskId)}: cannot attest: ${f.reason}`))
  node.addEventListener('task', ({ detail: t }) => out.event({ event: 'task', taskId: t.taskId, at: preciseNow() }))
  node.addEventListener('probe', ({ detail: p }) => out.event({ event: 'probe', id: p.id, at: p.at }))
  node.addEventListener('attested', ({ detail: a }) => out.event(
    { event: 'attested', taskId: a.attestation.taskId, resultHash: a.attestation.resultHash, inferenceMs: a.inferenceMs, signMs: a.signMs, at: preciseNow() },
    `attested task ${shortHex(a.attestation.taskId)} result ${shortHex(a.attestation.resultHash)} (inference ${a.inferenceMs.toFixed(1)} ms)`))
  node.addEventListener('certificate', ({ detail: c }) => {
    if (!c.formedHere) return
    out.event({ event: 'certificate', taskId: c.certificate.taskId, resultHash: c.certificate.resultHash, signerBitmap: c.certificate.signerBitmap, verifyMs: c.verifyMs, at: preciseNow() },
      `certificate formed for task ${shortHex(c.certificate.taskId)}`)
  })
  node.addEventListener('no-quorum', ({ detail: n }) => out.event({ event: 'no-quorum', taskId: n.taskId }, `task ${shortHex(n.taskId)} ended with NoQuorum`))
  node.addEventListener('evidence', ({ detail: e }) => out.event({ event: 'evidence', taskId: e.taskId, operatorIndex: e.operatorIndex },
    `equivocation by operator ${e.operatorIndex} on task ${shortHex(e.taskId)} stored as evidence`))
  node.addEventListener('conflict-evidence', ({ detail: c }) => out.event({ event: 'conflict-evidence', taskId: c.taskId, kind: c.kind, id: c.id, accused: c.accused },
    `${c.kind === 'certificates' ? 'conflicting certificates' : 'a certificate and a conflicting attestation'} on task ${shortHex(c.taskId)} stored as evidence against operators ${c.accused.join(', ')}`))
  // Operators see why a message was refused without turning on debug logs.
  node.addEventListener('rejected', ({ detail: r }) => out.warning(
    { event: 'rejected', topic: r.topic, reason: r.reason, from: r.from, verdict: r.verdict },
    `${r.verdict === 'reject' ? 'rejected' : 'ignored'} ${r.topic} from ${r.from}: ${r.reason}`))
  // Two processes with one keystore: loud, since the copy can sign what this operator did not run.
  node.addEventListener('duplicate-identity', ({ detail: d }) => out.warning(
    { event: 'duplicate-identity', ...d, count: peerIdentityOf(node.libp2p)?.duplicateReports() ?? 1 },
    d.self
      ? `ANOTHER LIVE PROCESS USES THIS NODE'S KEYSTORE (peer id ${d.peerId}), reported by ${d.reportedBy}: stop one of them; two copies of one operator key can sign two results for one task and be slashed`
      : `peer ${d.peerId} runs as two live processes (listening on ${d.addresses.map(a => a.join(' ')).join(' and on ')}): its operator has started one keystore twice`))
  if (out.json) {
    // Lets a launcher wait for gossip meshes instead of sleeping.
    let last = ''
    node.libp2p.services.pubsub.addEventListener('gossipsub:heartbeat', () => {
      const mesh = { tasks: node.meshPeers('tasks'), attestations: node.meshPeers('attestations'), certificates: node.meshPeers('certificates'), attestationSubscribers: node.topicPeers('attestations') }
      const now = JSON.stringify(mesh)
      if (now !== last) { last = now; out.event({ event: 'mesh', ...mesh }) }
    })
  }
}
