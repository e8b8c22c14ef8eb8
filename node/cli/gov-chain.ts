/**
 * What the `poi gov` commands read beside contracts/governance.ts: a proposal's calls found again
 * from its ProposalCreated event (queue and execute must be given the calls and the description
 * again; the CLI takes only the id), and the list of proposals. The governor's clock is the
 * registry's (timestamp: unix seconds), so every timepoint here is a time.
 */
import type { PublicClient } from 'viem'
import { PoiGovernorAbi, readProposal, type Proposal, type ProposalStatus } from '../../contracts/index.js'

export type Address = `0x${string}`

/** A proposal: its calls and description as proposed, its proposer, and its state and tally now. */
export interface ProposalView extends ProposalStatus {
  proposal: Proposal
  proposer: Address
}

async function proposalsCreated (client: PublicClient, governor: Address, fromBlock: bigint): Promise<Array<{ id: bigint, proposal: Proposal, proposer: Address }>> {
  const events = await client.getContractEvents({ address: governor, abi: PoiGovernorAbi, eventName: 'ProposalCreated', fromBlock, strict: true })
  return events.map(e => ({
    id: e.args.proposalId,
    proposer: e.args.proposer,
    proposal: { targets: [...e.args.targets], values: [...e.args.values], calldatas: [...e.args.calldatas], description: e.args.description }
  }))
}

/** Proposal `id` with its calls (from its ProposalCreated event, scanned from `fromBlock`) and its status; undefined when the governor has none. */
export async function findProposal (client: PublicClient, governor: Address, id: bigint, fromBlock: bigint): Promise<ProposalView | undefined> {
  const created = (await proposalsCreated(client, governor, fromBlock)).find(p => p.id === id)
  if (created === undefined) return undefined
  return { ...await readProposal(client, governor, id), proposal: created.proposal, proposer: created.proposer }
}

/** Every proposal id the governor has, oldest first. */
export async function listProposalIds (client: PublicClient, governor: Address, fromBlock: bigint): Promise<bigint[]> {
  return (await proposalsCreated(client, governor, fromBlock)).map(p => p.id)
}

/** The chain's time now: the latest block's timestamp (the governor's clock). */
export async function chainNow (client: PublicClient): Promise<bigint> {
  return (await client.getBlock({ blockTag: 'latest' })).timestamp
}
