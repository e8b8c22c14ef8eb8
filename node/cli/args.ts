/**
 * Reading a parsed command line (program.ts parses it): the types of each command's option
 * values, checks of their values that report mistakes as UsageError, and the node options every
 * node-like command (operator, aggregator, bootstrap, request, result) shares.
 */
import { resolve } from 'node:path'
import type { ParseArgsConfig, parseArgs } from 'node:util'
import { ConfigError, parseHttpAddress, readConfigFile, resolveConfig, type NodeConfig } from '../config.js'
import { readDeployment } from '../deployment.js'
import { UsageError } from './usage-error.js'

export { UsageError } from './usage-error.js'

/** The value types of the node options (declared with their help in program.ts). */
export const NODE_OPTIONS = {
  config: { type: 'string' },
  keystore: { type: 'string' },
  'data-dir': { type: 'string' },
  listen: { type: 'string', multiple: true },
  bootstrap: { type: 'string', multiple: true },
  genesis: { type: 'string' },
  'model-dir': { type: 'string', multiple: true },
  'no-model-dir': { type: 'boolean' },
  'no-prefetch': { type: 'boolean' },
  'grace-ms': { type: 'string' },
  'batch-max-leaves': { type: 'string' },
  'batch-max-wait-ms': { type: 'string' },
  json: { type: 'boolean' },
  chain: { type: 'string' },
  rpc: { type: 'string' },
  registry: { type: 'string' },
  aggregate: { type: 'boolean' },
  prove: { type: 'boolean' },
  probe: { type: 'boolean' },
  http: { type: 'string' }
} satisfies ParseArgsConfig['options']

type Options = NonNullable<ParseArgsConfig['options']>
type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ args: string[], options: O, strict: true, allowPositionals: true }>>

/**
 * The option values a command receives, typed from a table of flag types (`{ dir: { type:
 * 'string' } }` → `{ dir?: string }`, `multiple` → string[]), keyed by flag name as typed.
 */
export type OptionValues<O extends Options> = Parsed<O>['values']

/** A non-negative number flag (`--timeout 30`), or undefined when absent. */
export function num (value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${name} must be a non-negative number, got ${JSON.stringify(value)}`)
  return n
}

/** The node configuration: defaults, then the `--config` file, then the flags. */
export async function nodeConfig (values: Record<string, unknown>): Promise<NodeConfig> {
  const file = typeof values.config === 'string' ? await readConfigFile(values.config) : {}
  const deployment = typeof values.chain === 'string' ? await readDeployment(values.chain) : undefined
  // --rpc points a deployment file at another endpoint of the same chain.
  const chain = deployment != null && typeof values.rpc === 'string' ? { ...deployment, rpcUrl: values.rpc } : deployment
  if (typeof values.http === 'string') {
    try {
      parseHttpAddress(values.http)
    } catch (err) {
      if (err instanceof ConfigError) throw new UsageError(`--http: ${JSON.stringify(values.http)} is not an address to serve HTTP on (host:port, :port or port; port 0 picks a free one), e.g. --http 127.0.0.1:8080`)
      throw err
    }
  }
  const abs = (v: unknown): string | undefined => typeof v === 'string' ? resolve(v) : undefined
  return resolveConfig(file, {
    keystore: abs(values.keystore),
    dataDir: abs(values['data-dir']),
    listen: values.listen as string[] | undefined,
    bootstrap: values.bootstrap as string[] | undefined,
    genesis: abs(values.genesis),
    modelDirs: values['no-model-dir'] === true ? [] : (values['model-dir'] as string[] | undefined)?.map(d => resolve(d)),
    graceMs: num(values['grace-ms'] as string | undefined, 'grace-ms'),
    batchMaxLeaves: num(values['batch-max-leaves'] as string | undefined, 'batch-max-leaves'),
    batchMaxWaitMs: num(values['batch-max-wait-ms'] as string | undefined, 'batch-max-wait-ms'),
    chain,
    http: typeof values.http === 'string' ? values.http : undefined
  })
}
