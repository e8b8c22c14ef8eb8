/**
 * `poi chain faucet`: what a testnet's deployer serves once the contracts are deployed (the
 * docker swarm stack, deploy/swarm/stack.yml). Every node of a testnet starts with a fresh
 * keystore and an empty account; it asks the faucet for its deployment file and for ETH to stake
 * or deposit. The faucet funds each address once with a fixed amount, up to a bounded number of
 * addresses, so a misbehaving client cannot drain the funding account.
 *
 *   GET  /health         200 while the chain answers and the funder can pay one more grant, else 503
 *   GET  /v1/deployment  the deployment file (`--chain`), as written by `poi chain deploy`
 *   POST /v1/fund        {"address":"0x…"} → {"address","amount","txHash"} (amount in wei, decimal)
 *
 * Refusals are `{"error":{"code","message"}}` like the node API's: 400 ERR_BAD_REQUEST (no JSON
 * body or no valid address), 409 ERR_ALREADY_FUNDED, 403 ERR_FAUCET_EXHAUSTED (every grant given),
 * 503 ERR_FAUCET_EMPTY (the funder's balance is below one grant plus gas).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { logger } from '@libp2p/logger'
import { formatEther, getAddress, isAddress, type Address, type Hash, type PublicClient } from 'viem'
import { PoiError } from '../../protocols/wire/index.js'
import { ChainClient } from '../chain-client.js'
import { parseHttpAddress } from '../config.js'
import { loadKeystore } from '../keys.js'
import { UsageError, nodeConfig, type OptionValues } from './args.js'
import { CliOutput } from './output.js'
import { parseAmount, type Wallet } from './payment-setup.js'

const log = logger('poi:faucet')

const ETH = { decimals: 18, symbol: 'ETH' }

/** `poi chain faucet`'s flags. */
export const FAUCET_OPTIONS = {
  chain: { type: 'string' },
  keystore: { type: 'string' },
  rpc: { type: 'string' },
  http: { type: 'string' },
  amount: { type: 'string' },
  'max-grants': { type: 'string' },
  state: { type: 'string' }
} as const

/**
 * What one grant is unless told: an operator's default least stake (32 ETH) plus room for its
 * registration's gas and a requester's deposit.
 */
export const DEFAULT_FAUCET_AMOUNT_WEI = 40n * 10n ** 18n
/** The most a single grant may be: a faucet funds testnet nodes, not the funder's whole balance in one go. */
export const MAX_FAUCET_AMOUNT_WEI = 1000n * 10n ** 18n
/** How many addresses are funded unless told: room for a 100-operator testnet with its aggregators, gateway and a few users. */
export const DEFAULT_FAUCET_MAX_GRANTS = 256
/** Gas the funder keeps beyond a grant (a plain transfer costs 21,000 gas; this covers it at any testnet gas price). */
const GAS_RESERVE_WEI = 10n ** 16n
/** A fund request is one small JSON object; anything longer is refused unread. */
const MAX_BODY_BYTES = 1024

/** A refusal of the faucet: `status` is the HTTP status it answers with. */
export class FaucetError extends PoiError {
  readonly status: number
  constructor (code: 'ERR_BAD_REQUEST' | 'ERR_ALREADY_FUNDED' | 'ERR_FAUCET_EXHAUSTED' | 'ERR_FAUCET_EMPTY', status: number, message: string) {
    super(code, message)
    this.status = status
  }
}

export interface FaucetInit {
  /** Reads balances and waits for receipts. */
  publicClient: PublicClient
  /** Sends the grants. */
  wallet: Wallet
  /** The deployment file's text, served as is. */
  deploymentJson: string
  /** Wei per grant. */
  amount: bigint
  maxGrants: number
  /** Where the funded addresses are kept, so a restarted faucet still funds each address once; none: in memory only. */
  stateFile?: string
  host: string
  port: number
}

export interface FaucetGrant { address: Address, amount: string, txHash: Hash }

/** The faucet's HTTP server. Grants are sent one at a time: one funding account, one nonce sequence. */
export class Faucet {
  private readonly init: FaucetInit
  private readonly server: Server
  /** Lower-cased addresses already funded, or being funded now (so two concurrent requests fund once). */
  private readonly granted = new Set<string>()
  private queue: Promise<unknown> = Promise.resolve()

  private constructor (init: FaucetInit, granted: string[]) {
    this.init = init
    for (const a of granted) this.granted.add(a.toLowerCase())
    this.server = createServer((req, res) => { void this.handle(req, res) })
  }

  static async start (init: FaucetInit): Promise<Faucet> {
    const faucet = new Faucet(init, init.stateFile !== undefined ? await readGrants(init.stateFile) : [])
    await new Promise<void>((resolve, reject) => {
      faucet.server.once('error', reject)
      faucet.server.listen(init.port, init.host, () => { faucet.server.off('error', reject); resolve() })
    })
    return faucet
  }

  /** Where it listens (port 0 resolved). */
  get url (): string {
    const a = this.server.address()
    const port = typeof a === 'object' && a != null ? a.port : this.init.port
    return `http://${this.init.host.includes(':') ? `[${this.init.host}]` : this.init.host}:${port}`
  }

  get grants (): number { return this.granted.size }

  async stop (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>(resolve => this.server.close(() => resolve()))
  }

  /** Funds `address` once with the grant; refusals are FaucetErrors. */
  async fund (address: unknown): Promise<FaucetGrant> {
    if (typeof address !== 'string' || !isAddress(address, { strict: false })) {
      throw new FaucetError('ERR_BAD_REQUEST', 400, `"address" must be a 0x-prefixed 20-byte address, got ${JSON.stringify(address)?.slice(0, 60)}`)
    }
    const key = address.toLowerCase()
    if (this.granted.has(key)) throw new FaucetError('ERR_ALREADY_FUNDED', 409, `${getAddress(address)} was funded already: the faucet funds each address once`)
    if (this.granted.size >= this.init.maxGrants) throw new FaucetError('ERR_FAUCET_EXHAUSTED', 403, `the faucet has given all its ${this.init.maxGrants} grants (restart it with a larger --max-grants)`)
    this.granted.add(key)
    const run = this.queue.then(async () => await this.send(getAddress(address)))
    this.queue = run.catch(() => {})
    try {
      return await run
    } catch (err) {
      // Not funded after all: it may ask again.
      this.granted.delete(key)
      throw err
    }
  }

  private async send (to: Address): Promise<FaucetGrant> {
    const { publicClient, wallet, amount } = this.init
    const balance = await publicClient.getBalance({ address: wallet.account.address })
    if (balance < amount + GAS_RESERVE_WEI) {
      throw new FaucetError('ERR_FAUCET_EMPTY', 503, `the faucet's account ${wallet.account.address} holds ${formatEther(balance)} ETH, less than one grant of ${formatEther(amount)} ETH plus gas: fund it`)
    }
    const txHash = await wallet.sendTransaction({ to, value: amount })
    const receipt = await publicClient.waitForTransactionReceipt({ hash: txHash })
    if (receipt.status !== 'success') throw new Error(`the transfer to ${to} reverted (tx ${txHash})`)
    if (this.init.stateFile !== undefined) await writeGrants(this.init.stateFile, [...this.granted])
    log('funded %s with %s ETH (tx %s)', to, formatEther(amount), txHash)
    return { address: to, amount: amount.toString(), txHash }
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]
    try {
      if (path === '/health' && req.method === 'GET') {
        const balance = await this.init.publicClient.getBalance({ address: this.init.wallet.account.address })
        const ok = balance >= this.init.amount + GAS_RESERVE_WEI
        send(res, ok ? 200 : 503, { ok, funder: this.init.wallet.account.address, balance: balance.toString(), grants: this.granted.size, maxGrants: this.init.maxGrants })
      } else if (path === '/v1/deployment' && req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(this.init.deploymentJson)
      } else if (path === '/v1/fund' && req.method === 'POST') {
        send(res, 200, await this.fund(((await readJson(req)) as { address?: unknown } | null)?.address))
      } else {
        send(res, 404, { error: { code: 'ERR_NOT_FOUND', message: `no route ${req.method ?? ''} ${path.slice(0, 100)}: GET /health, GET /v1/deployment, POST /v1/fund {"address":"0x…"}` } })
      }
    } catch (err) {
      if (err instanceof FaucetError) {
        send(res, err.status, { error: { code: err.code, message: err.message } })
      } else {
        log.error('%s %s failed: %s', req.method, path, (err as Error).message)
        send(res, 502, { error: { code: 'ERR_CHAIN', message: `the chain refused or did not answer: ${(err as Error).message.split('\n')[0]}` } })
      }
    }
  }
}

function send (res: ServerResponse, status: number, body: unknown): void {
  if (!res.headersSent) res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

async function readJson (req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) throw new FaucetError('ERR_BAD_REQUEST', 400, `the body is over ${MAX_BODY_BYTES} bytes: send {"address":"0x…"}`)
    chunks.push(chunk as Buffer)
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new FaucetError('ERR_BAD_REQUEST', 400, 'the body is not JSON: send {"address":"0x…"}')
  }
}

async function readGrants (file: string): Promise<string[]> {
  try {
    const json = JSON.parse(await readFile(file, 'utf8')) as unknown
    return Array.isArray(json) ? json.filter((a): a is string => typeof a === 'string') : []
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw new UsageError(`--state ${file} is not the faucet's list of funded addresses: ${(err as Error).message}`)
  }
}

async function writeGrants (file: string, addresses: string[]): Promise<void> {
  // Written aside then renamed: a crash mid-write leaves the previous list, not half of one.
  await writeFile(`${file}.tmp`, JSON.stringify(addresses) + '\n')
  await rename(`${file}.tmp`, file)
}

/** `poi chain faucet --chain <deployment.json> --keystore <dir> --http <host:port> [--amount <eth>] [--max-grants <n>] [--state <file>]`. */
export async function runFaucet (values: OptionValues<typeof FAUCET_OPTIONS>): Promise<number> {
  if (values.chain === undefined) throw new UsageError('poi chain faucet needs --chain <deployment.json>: the deployment it serves and funds on (`poi chain deploy` writes one)')
  if (values.keystore === undefined) throw new UsageError('poi chain faucet needs --keystore <dir>: its Ethereum account pays the grants')
  if (values.http === undefined) throw new UsageError('poi chain faucet needs --http <host:port>: where to serve, e.g. 0.0.0.0:8546')
  const amount = values.amount !== undefined ? parseAmount(values.amount, ETH, '--amount') : DEFAULT_FAUCET_AMOUNT_WEI
  if (amount > MAX_FAUCET_AMOUNT_WEI) throw new UsageError(`--amount ${formatEther(amount)} ETH is above the faucet's cap of ${formatEther(MAX_FAUCET_AMOUNT_WEI)} ETH per grant`)
  const maxGrants = values['max-grants'] !== undefined ? Number(values['max-grants']) : DEFAULT_FAUCET_MAX_GRANTS
  if (!Number.isSafeInteger(maxGrants) || maxGrants < 1) throw new UsageError(`--max-grants must be a whole number of at least 1, got ${JSON.stringify(values['max-grants'])}`)
  const chainFile = resolve(values.chain)
  // nodeConfig checks --http (a UsageError that names it) before it is parsed here.
  const config = await nodeConfig(values)
  const { host, port } = parseHttpAddress(values.http)
  const keystore = await loadKeystore(config.keystore)
  const chain = await ChainClient.connect(config.chain!, keystore.account)
  const out = new CliOutput(false)
  const faucet = await Faucet.start({
    publicClient: chain.publicClient,
    wallet: chain.walletClient!,
    deploymentJson: await readFile(chainFile, 'utf8'),
    amount,
    maxGrants,
    stateFile: values.state !== undefined ? resolve(values.state) : join(dirname(chainFile), 'faucet-grants.json'),
    host,
    port
  })
  out.progress(`faucet on ${faucet.url}: ${formatEther(amount)} ETH once per address from ${keystore.account.address}, ${faucet.grants}/${maxGrants} grants given; GET /v1/deployment serves ${chainFile}`)
  await new Promise<void>(resolve => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  await faucet.stop()
  return 0
}
