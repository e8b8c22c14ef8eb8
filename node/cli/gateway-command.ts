/**
 * `poi gateway`: a requester client (PoiClient: a light peer with the keystore's key) and an
 * HTTP server in front of it (node/api/gateway.ts), so programs submit tasks over HTTP and read
 * verified results. Runs until SIGINT/SIGTERM.
 */
import { parseHttpAddress } from '../config.js'
import { createGateway, loadOrCreateGatewayToken, type HealthCheck } from '../api/index.js'
import { PoiClient } from '../client/index.js'
import { POI_VERSION } from '../poi-node.js'
import { connectedPeerIds } from '../requester/index.js'
import { NODE_OPTIONS, UsageError, num, type OptionValues } from './args.js'
import { CliOutput } from './output.js'
import { requesterConfig } from './requester-setup.js'

/** `poi gateway`'s flags: the node options and these (declared with their help in program.ts). */
const GATEWAY_OPTIONS = {
  ...NODE_OPTIONS,
  'rate-limit': { type: 'string' }
} as const

export async function runGateway (values: OptionValues<typeof GATEWAY_OPTIONS>): Promise<void> {
  const out = new CliOutput(values.json === true)
  if (values.http === undefined) throw new UsageError('poi gateway needs --http <host:port>: where it serves HTTP (127.0.0.1:8080 for this machine only; 0.0.0.0:8080 for others, with the bearer token)')
  if (values.keystore === undefined) throw new UsageError('poi gateway needs --keystore <dir>: its key signs (and pays for) the tasks, and its bearer token is kept there (`poi keys --keystore <dir>` makes one)')
  const rateLimit = num(values['rate-limit'], 'rate-limit')
  if (rateLimit !== undefined && (!Number.isInteger(rateLimit) || rateLimit < 1)) throw new UsageError(`--rate-limit must be a whole number of requests per minute, at least 1 (got ${values['rate-limit']})`)
  const { host, port } = parseHttpAddress(values.http)
  const { token, path: tokenFile, created } = await loadOrCreateGatewayToken(values.keystore)
  // Which contracts were accepted is said even with --json (on stderr): it is what results are trusted on.
  const config = await requesterConfig('gateway', values, (line) => { out.notice(line) })
  const client = await PoiClient.connect({ bootstrap: config.bootstrap, config, keystore: values.keystore, onProgress: (line) => { out.progress(line) } })
  const gateway = createGateway(client, { host, port, token, health: async () => clientHealth(client), metricsLabels: { peer_id: client.peerId, version: POI_VERSION }, ...(rateLimit !== undefined ? { rateLimit: { max: rateLimit, windowMs: 60_000 } } : {}) })
  try {
    await gateway.start()
  } catch (err) {
    await client.close()
    throw err
  }
  const url = gateway.url ?? `http://${host}:${port}`
  out.event({ event: 'gateway-ready', url, peerId: client.peerId, address: client.address, tokenRequired: gateway.needsToken, tokenFile },
    `poi gateway on ${url} (light peer ${client.peerId}, tasks signed by ${client.address})\n` +
    `  POST ${url}/v1/tasks, GET ${url}/v1/tasks/<id>?wait=<ms>, GET ${url}/health\n` +
    (gateway.needsToken
      ? `  writes need Authorization: Bearer <the token in ${tokenFile}>${created ? ' (made now)' : ''}`
      : `  on loopback: writes need no token (${tokenFile} holds the one used when bound beyond loopback)`))
  await new Promise<void>((resolve) => {
    const shutdown = (): void => {
      process.off('SIGINT', shutdown)
      process.off('SIGTERM', shutdown)
      const stop = async (): Promise<void> => {
        await gateway.stop()
        await client.close()
      }
      stop().then(resolve, (err) => { console.error(`error while stopping: ${(err as Error).message}`); resolve() })
    }
    process.on('SIGINT', shutdown)
    process.on('SIGTERM', shutdown)
  })
}

/** `GET /health`'s checks of the client: connected to a full node, an operator set to verify against. */
export function clientHealth (client: Pick<PoiClient, 'node'>): HealthCheck[] {
  const peers = connectedPeerIds(client.node).length
  const set = client.node.operatorSet
  return [
    { name: 'peers', ok: peers > 0, detail: `${peers} connected peer${peers === 1 ? '' : 's'}${peers === 0 ? '; check --bootstrap and that the node there runs' : ''}` },
    { name: 'operator-set', ok: set.operators.length > 0, detail: `epoch ${set.epoch}, ${set.operators.length} operator${set.operators.length === 1 ? '' : 's'}` }
  ]
}
