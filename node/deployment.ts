import { chmod, readFile, writeFile } from 'node:fs/promises'
import { deploymentToJson, parseDeployment, type Deployment } from '../contracts/index.js'
import { ConfigError, type ChainConfig } from './config.js'

/**
 * A deployment file names a chain and the poi contracts on it, so every node of a network is
 * pointed at the same registry with one flag (`--chain`): contracts' Deployment as JSON
 * (DeploymentJson), with the RPC URL to reach the chain beside it.
 */
export async function writeDeployment (path: string, d: Deployment & { rpcUrl: string }): Promise<void> {
  await writeFile(path, JSON.stringify({ rpcUrl: d.rpcUrl, ...deploymentToJson(d) }, null, 2) + '\n')
  // Public facts every node and requester of the network needs: readable by all, whatever the umask.
  await chmod(path, DEPLOYMENT_FILE_MODE)
}

const DEPLOYMENT_FILE_MODE = 0o644

/** Reads a deployment file; a malformed one is a ConfigError naming the file and the field. */
export async function readDeployment (path: string): Promise<ChainConfig> {
  let json: unknown
  try {
    json = JSON.parse(await readFile(path, 'utf8'))
  } catch (err) {
    throw new ConfigError(`cannot read deployment file ${path}: ${(err as Error).message}`, { cause: err })
  }
  const source = `deployment file ${path}`
  let deployment: Deployment
  try {
    deployment = parseDeployment(json, { source, otherKeys: ['rpcUrl'] })
  } catch (err) {
    throw new ConfigError((err as Error).message, { cause: err })
  }
  // The URL itself is checked in validateConfig, with the setting name users see.
  return { ...deployment, rpcUrl: (json as { rpcUrl?: unknown }).rpcUrl as string }
}
