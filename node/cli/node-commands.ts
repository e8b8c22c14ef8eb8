/**
 * `poi operator`, `poi aggregator`, `poi bootstrap`: start a full node, print what it does (a
 * line for a person, or with --json a PoiEvent line per event) and run until SIGINT/SIGTERM.
 */
import { isAddressEqual } from 'viem'
import { readOperatorRecord, readRegistryState, readReputation } from '../../contracts/index.js'
import { ChainClient } from '../chain-client.js'
import { subscribeNodeEvents, type NodeEventLine } from '../api/index.js'
import { loadKeystore } from '../keys.js'
import { NotInOperatorSetError, PoiNode } from '../poi-node.js'
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
    prove: role === 'operator' && values.prove === true,
    light: false,
    keystore,
    config,
    operatorSet,
    settlement: aggregate ? chain : undefined,
    // issue 15: batches of tab tasks settle through the same client; operators ask it what is settled already
    batchSettlement: aggregate ? chain : undefined,
    tabSettled: chain != null ? async (requester, sequence) => await chain.tabSettled(requester, sequence) : undefined,
    modelGate: chain?.config.modelRegistry != null ? chain : undefined,
    payments: chain,
    probe: values.probe === true,
    // A certificate of an epoch this node has not polled yet still verifies (read from the chain).
    readOperatorSet: chain != null ? async (epoch) => await chain.operatorSet(epoch) : undefined,
    chainEpoch: chain != null ? async () => await chain.currentEpoch() : undefined,
    networkQuorumBps: chain != null ? async () => await chain.networkQuorumBps() : undefined,
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
    (node.http?.url != null ? `\n  HTTP API on ${node.http.url} (GET /health, /metrics, /v1/network, /v1/tasks, /v1/models, /v1/events; the network page at ${node.http.url}/)` : '') +
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

/**
 * Every node event as its line (--json) or a line for a person: the lines come from
 * subscribeNodeEvents (node/api), the same that `GET /v1/events` streams.
 */
function reportEvents (node: PoiNode, out: CliOutput): void {
  subscribeNodeEvents(node, (line) => {
    const human = humanLine(line)
    if (human?.warning === true) out.warning(line, human.text)
    else out.event(line, human?.text)
  }, { progress: out.json ? 'phase' : 'tenth' })
}

/** How a person reads each kind of conflict evidence. */
const CONFLICT_TEXT: Record<Extract<NodeEventLine, { event: 'conflict-evidence' }>['kind'], string> = {
  certificates: 'conflicting certificates',
  'certificate-attestation': 'a certificate and a conflicting attestation',
  'batch-attestation': 'a batch signature over a leaf and a conflicting attestation'
}

/** What a person reads for a node event (warnings on stderr); undefined: nothing (--json only). */
function humanLine (e: NodeEventLine): { text: string, warning?: true } | undefined {
  const short = (hex: string): string => hex.length > 18 ? `${hex.slice(0, 18)}…` : hex
  switch (e.event) {
    case 'submitted': return { text: `${e.kind} ${e.id.slice(0, 16)}… settled on-chain in ${e.txHash} (gas ${e.gasUsed})` }
    case 'submission-settled-by-other': return { text: `${e.kind} ${e.id.slice(0, 16)}… already settled on-chain by ${e.settledBy} in ${e.txHash}${e.resultHash != null ? ` (result ${e.resultHash.slice(0, 18)}…)` : ''}; not sent` }
    case 'submission-failed': return { warning: true, text: `${e.kind} ${e.id.slice(0, 16)}… FAILED, never going on-chain: ${e.revert != null ? `the contract reverts with ${e.revert}` : e.reason}` }
    case 'submission-retry': return { warning: true, text: `${e.kind} ${e.id.slice(0, 16)}… not on-chain yet (attempt ${e.attempts}), retrying in ${Math.round(e.retryInMs / 1000)} s: ${e.reason}` }
    case 'model-progress': return { text: `fetching model ${e.modelId.slice(0, 16)}…: ${e.phase}, ${e.chunksDone}/${e.chunksTotal} chunks, ${(e.bytesDone / MIB).toFixed(1)}/${(e.bytesTotal / MIB).toFixed(1)} MiB from ${e.providers} providers${e.dropped > 0 ? ` (${e.dropped} dropped)` : ''}` }
    case 'model': return { text: `model ${e.modelId} ${e.fromStore ? 'loaded from the block store' : 'fetched through the DHT'} (${e.bytes} bytes, ${e.ms} ms)` }
    case 'prefetch-failed': return { text: `prefetching model ${e.modelId} failed: ${e.reason} (it is fetched again when a task names it)` }
    case 'failed': return { warning: true, text: `task ${short(e.taskId)}: cannot attest: ${e.reason}` }
    case 'attested': return { text: `attested task ${short(e.taskId)} result ${short(e.resultHash)} (inference ${e.inferenceMs.toFixed(1)} ms)` }
    case 'proof': return { text: `${e.provedHere ? 'announced our' : 'checked a'} zk proof of task ${short(e.taskId)} by ${e.prover}${e.provedHere ? '' : ` (${e.verifyMs.toFixed(0)} ms)`}` }
    case 'proved': return { text: `proved task ${short(e.taskId)} for payee ${e.prover} (inference ${e.inferenceMs.toFixed(1)} ms, proof ${(e.provingMs / 1000).toFixed(2)} s)` }
    case 'certificate': return { text: `certificate formed for task ${short(e.taskId)}` }
    case 'no-quorum': return { text: `task ${short(e.taskId)} ended with NoQuorum` }
    case 'evidence': return { text: `equivocation by operator ${e.operatorIndex} on task ${short(e.taskId)} stored as evidence` }
    case 'conflict-evidence': return { text: `${CONFLICT_TEXT[e.kind]} on task ${short(e.taskId)} stored as evidence against operators ${e.accused.join(', ')}` }
    // Operators see why a message was refused without turning on debug logs.
    case 'rejected': return { warning: true, text: `${e.verdict === 'reject' ? 'rejected' : 'ignored'} ${e.topic} from ${e.from}: ${e.reason}` }
    // Two processes with one keystore: loud, since the copy can sign what this operator did not run.
    case 'duplicate-identity': return {
      warning: true,
      text: e.self
        ? `ANOTHER LIVE PROCESS USES THIS NODE'S KEYSTORE (peer id ${e.peerId}), reported by ${e.reportedBy}: stop one of them; two copies of one operator key can sign two results for one task and be slashed`
        : `peer ${e.peerId} runs as two live processes (listening on ${e.addresses.map(a => a.join(' ')).join(' and on ')}): its operator has started one keystore twice`
    }
    case 'task': case 'certified': case 'probe': case 'mesh': return undefined
  }
}
