/**
 * Waiting until nodes have the models they were asked to fetch, so what is reported about the
 * fetches ("4 of 4 operators fetched the model") is counted after they finished, not raced.
 */
import { PoiError } from '../../protocols/wire/index.js'
import type { EventOf, Hex, PoiEvent } from './events.js'

/** A node whose events can be awaited: a ChildNode, or an EventLog in a test. */
export interface EventSource {
  readonly name: string
  waitFor: (pred: (e: PoiEvent) => boolean, timeoutMs: number, what: string) => Promise<PoiEvent>
}

/** How one node's fetch of one model ended. */
export type ModelOutcome =
  | { node: string, modelId: string, fetched: EventOf<'model'> }
  | { node: string, modelId: string, failed: string }

/** Some nodes did not finish fetching some models (in time, or exited); the message names each node and model. */
export class ModelWaitError extends PoiError {
  readonly unfinished: Array<{ node: string, modelId: string, reason: string }>

  constructor (total: number, unfinished: Array<{ node: string, modelId: string, reason: string }>) {
    super('ERR_MODEL_WAIT', `${unfinished.length} of ${total} model fetches did not finish: ${unfinished.map(u => u.reason).join('; ')}`)
    this.unfinished = unfinished
  }
}

export interface WaitForModelsOptions {
  /**
   * A task that makes the nodes fetch the models (no prefetch, as without a chain): its
   * `failed` event (the node could not get the model for it) also ends the wait.
   */
  taskId?: Hex
}

/**
 * Each node's outcome for each model: the `model` event (it has the model), or why it could not
 * get it (`prefetch-failed`, or `failed` for `options.taskId`). Every (node, model) pair has
 * `timeoutMs` from the call; if any is still open then, this rejects with a
 * ModelWaitError naming every node and model that did not finish.
 */
export async function waitForModels (nodes: readonly EventSource[], modelIds: readonly string[], timeoutMs: number, options: WaitForModelsOptions = {}): Promise<ModelOutcome[]> {
  const { taskId } = options
  const pairs = nodes.flatMap(node => modelIds.map(modelId => ({ node, modelId })))
  const settled = await Promise.allSettled(pairs.map(async ({ node, modelId }): Promise<ModelOutcome> => {
    const outcomeOf = (e: PoiEvent): ModelOutcome | undefined => {
      if (e.event === 'model' && e.modelId === modelId) return { node: node.name, modelId, fetched: e }
      if (e.event === 'prefetch-failed' && e.modelId === modelId) return { node: node.name, modelId, failed: `prefetch failed: ${e.reason}` }
      if (e.event === 'failed' && taskId !== undefined && e.taskId === taskId) return { node: node.name, modelId, failed: `cannot attest task ${taskId}: ${e.reason}` }
      return undefined
    }
    const e = await node.waitFor(e => outcomeOf(e) !== undefined, timeoutMs, `model or prefetch-failed event for model ${modelId}`)
    return outcomeOf(e) as ModelOutcome
  }))
  const unfinished = settled.flatMap((s, i) => s.status === 'rejected'
    ? [{ node: pairs[i].node.name, modelId: pairs[i].modelId, reason: s.reason instanceof Error ? s.reason.message : String(s.reason) }]
    : [])
  if (unfinished.length > 0) throw new ModelWaitError(pairs.length, unfinished)
  return settled.map(s => (s as PromiseFulfilledResult<ModelOutcome>).value)
}
