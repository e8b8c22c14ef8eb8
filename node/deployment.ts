import { readFile, writeFile } from 'node:fs/promises'
import { ConfigError, type ChainConfig } from './config.js'

/**
 * A deployment file names a chain and the poi contracts on it, so every node
 * of a network is pointed at the same registry with one flag (`--chain`).
 */
export interface DeploymentFile {
  rpcUrl: string
  chainId: number
  registry: `0x${string}`
  taskManager: `0x${string}`
  slashing: `0x${string}`
  modelRegistry?: `0x${string}`
  deployedAtBlock: string
}

export async function writeDeployment (path: string, d: Omit<DeploymentFile, 'deployedAtBlock'> & { deployedAtBlock: bigint }): Promise<void> {
  await writeFile(path, JSON.stringify({ ...d, deployedAtBlock: d.deployedAtBlock.toString() }, null, 2) + '\n')
}

export async function readDeployment (path: string): Promise<ChainConfig> {
  let json: Partial<DeploymentFile>
  try {
    json = JSON.parse(await readFile(path, 'utf8')) as Partial<DeploymentFile>
  } catch (err) {
    throw new ConfigError(`cannot read deployment file ${path}: ${(err as Error).message}`)
  }
  if (json == null || typeof json !== 'object') throw new ConfigError(`deployment file ${path} must hold a JSON object`)
  let deployedAtBlock: bigint | undefined
  try {
    deployedAtBlock = json.deployedAtBlock != null ? BigInt(json.deployedAtBlock) : undefined
  } catch {
    throw new ConfigError(`deployment file ${path}: deployedAtBlock must be a block number`)
  }
  // Field checks happen in validateConfig, with the setting names users see.
  return { rpcUrl: json.rpcUrl as string, registry: json.registry as `0x${string}`, taskManager: json.taskManager as `0x${string}`, slashing: json.slashing as `0x${string}`, modelRegistry: json.modelRegistry, deployedAtBlock }
}
