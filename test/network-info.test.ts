/**
 * /poi/network/1/ between real libp2p nodes on 127.0.0.1: a requester learns the network's
 * contracts from a bootstrap node; garbage, oversized, wrong-version and late answers from a
 * hand-written bad server are refused with the right codes. The maximum task TTL is opt-in, so
 * requesters and nodes from before it (test/helpers/network-before-ttl.ts) still understand
 * today's.
 */
import { strict as assert } from 'node:assert'
import type { PoiLibp2p } from '../node/p2p.js'
import {
  decodeNetworkInfo, encodeNetworkInfo, fetchNetworkInfo, MAX_NETWORK_INFO_RESPONSE_BYTES,
  NETWORK_PROTOCOL, NETWORK_STATUS, NETWORK_VERSION, NetworkInfo, NetworkInfoRequest, NetworkInfoServer
} from '../protocols/network/index.js'
import type { Deployment } from '../contracts/index.js'
import { deploymentOfNetworkInfo, maxTaskTtlMsOf, networkInfoOf } from '../node/network-info.js'
import { DEFAULT_MAX_TASK_TTL_MS } from '../node/config.js'
import { InvalidRequestError, checkTaskTtl, readNetworkTaskTtl } from '../node/requester/index.js'
import { until } from './helpers/wait.js'
import { DecodeError, EncodeError } from '../protocols/wire/index.js'
import { type ExchangeError, requestOnce } from '../protocols/exchange/index.js'
import { rejectsExchange, startExchangePeers, type ExchangePeers, type RogueAnswer } from './helpers/exchange-peers.js'
import { OLD_REQUEST_CODEC, OLD_RESPONSE_CODEC, oldNetworkInfoServer } from './helpers/network-before-ttl.js'

/** Short limit for the test that waits for a peer that never answers. */
const SHORT_TIMEOUT_MS = 400

const DEPLOYMENT: Deployment = {
  chainId: 31337,
  registry: '0x5fbdb2315678afecb367f032d93f642f64180aa3',
  taskManager: '0xe7f1725e7734ce288f8367e1bb143e90bb3f0512',
  slashing: '0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0',
  modelRegistry: '0xcf7ed3acca5a467e9e704c703e8d87f634fb0fc9',
  deployedAtBlock: 1n
}

function sameDeployment (got: Deployment | undefined, want: Deployment): void {
  assert.ok(got !== undefined, 'expected a deployment, got NO_CHAIN')
  const lower = (d: Deployment): Record<string, string> =>
    Object.fromEntries(Object.entries(d).map(([k, v]) => [k, typeof v === 'string' ? v.toLowerCase() : String(v)]))
  assert.deepEqual(lower(got), lower(want))
}

async function rejects (p: Promise<unknown>, code: string): Promise<ExchangeError> {
  return await rejectsExchange(p, NETWORK_PROTOCOL, code)
}

/** The decode rule a refused answer broke. */
function causeCode (err: ExchangeError): string {
  assert.ok(err.cause instanceof DecodeError, `expected a DecodeError cause, got ${String(err.cause)}`)
  return err.cause.code
}

describe('network info protocol: /poi/network/1/', function () {
  let bootstrap: PoiLibp2p
  let requester: PoiLibp2p
  let rogue: PoiLibp2p
  let peers: ExchangePeers | undefined
  let server: NetworkInfoServer | undefined
  /** What the rogue answers: a raw byte string, one frame, nothing at all, or a closed stream. */
  let rogueAnswer: RogueAnswer = {}
  /** Answers the rogue gives first, one per request, before falling back to rogueAnswer. */
  let rogueQueue: RogueAnswer[] = []
  /** An old node's server in place of the bootstrap node's (stopped after its test). */
  let oldServer: { stop: () => Promise<void> } | undefined

  /** Serves `deployment` (and `maxTaskTtlMs`, unset like an older node) from the bootstrap node in place of the previous server. */
  async function serve (deployment: Deployment | undefined, maxTaskTtlMs?: number): Promise<void> {
    await server?.stop()
    server = new NetworkInfoServer({ libp2p: bootstrap, info: networkInfoOf(deployment, maxTaskTtlMs) })
    await server.start()
  }

  before(async () => {
    peers = await startExchangePeers(NETWORK_PROTOCOL, () => rogueQueue.shift() ?? rogueAnswer)
    ;({ server: bootstrap, client: requester, rogue } = peers)
  })

  afterEach(async () => {
    rogueQueue = []
    await oldServer?.stop()
    oldServer = undefined
  })

  after(async () => {
    await server?.stop()
    await peers?.stop()
  })

  it('tells a requester the contracts of the network (FOUND), with and without a model registry', async () => {
    await serve(DEPLOYMENT)
    const got = deploymentOfNetworkInfo(await fetchNetworkInfo(requester, bootstrap.peerId))
    sameDeployment(got, DEPLOYMENT)
    // addresses come back checksummed, ready for viem
    assert.equal(got?.registry, '0x5FbDB2315678afecb367f032d93F642f64180aa3')

    const { modelRegistry: _, ...withoutModels } = DEPLOYMENT
    await serve({ ...withoutModels, chainId: 8453, deployedAtBlock: 0n })
    const other = deploymentOfNetworkInfo(await fetchNetworkInfo(requester, bootstrap.getMultiaddrs()))
    sameDeployment(other, { ...withoutModels, chainId: 8453, deployedAtBlock: 0n })
    assert.ok(other !== undefined && !('modelRegistry' in other))
  })

  it('answers NO_CHAIN for a node that runs from a genesis file', async () => {
    await serve(undefined)
    const info = await fetchNetworkInfo(requester, bootstrap.peerId)
    assert.equal(info.status, NETWORK_STATUS.NO_CHAIN)
    assert.equal(deploymentOfNetworkInfo(info), undefined)
  })

  it('tells the node\'s maximum task TTL, with a chain or without; an older node\'s answer without it still decodes', async () => {
    await serve(DEPLOYMENT, 20 * 60_000)
    const found = await fetchNetworkInfo(requester, bootstrap.peerId)
    assert.equal(found.maxTaskTtlSeconds, 1200)
    assert.equal(maxTaskTtlMsOf(found), 20 * 60_000)
    sameDeployment(deploymentOfNetworkInfo(found), DEPLOYMENT)
    // a limit in ms is told in whole seconds, rounded down: a requester never goes past it
    await serve(undefined, 90_500)
    const noChain = await fetchNetworkInfo(requester, bootstrap.peerId)
    assert.deepEqual([noChain.status, maxTaskTtlMsOf(noChain)], [NETWORK_STATUS.NO_CHAIN, 90_000])

    // A node from before the field sends exactly the bytes it sent then (field 9 absent): they
    // decode, and say nothing about the limit.
    await serve(DEPLOYMENT)
    const old = await fetchNetworkInfo(requester, bootstrap.peerId)
    assert.equal(maxTaskTtlMsOf(old), undefined)
    assert.deepEqual(encodeNetworkInfo(old), encodeNetworkInfo({ ...old, maxTaskTtlSeconds: 0 }))
  })

  it('answers a request that does not ask for the limit (a requester older than it) with the bytes the old rules decode', async () => {
    // What an old requester sends: its version, nothing else.
    const oldRequest = Uint8Array.from([0x08, 0x01])
    assert.deepEqual(OLD_REQUEST_CODEC.encode({ version: NETWORK_VERSION }), oldRequest)
    const ask = async (request: Uint8Array): Promise<Uint8Array> =>
      await requestOnce(requester, bootstrap.peerId, NETWORK_PROTOCOL, request, { maxResponseBytes: MAX_NETWORK_INFO_RESPONSE_BYTES, timeoutMs: 5_000 })
    for (const deployment of [DEPLOYMENT, undefined]) {
      await serve(deployment, 20 * 60_000)
      const bytes = await ask(oldRequest)
      // the old codec refuses any field it does not know, so field 9 is not in these bytes
      const old = OLD_RESPONSE_CODEC.decode(bytes)
      assert.equal(old.status, deployment === undefined ? NETWORK_STATUS.NO_CHAIN : NETWORK_STATUS.FOUND)
      assert.deepEqual([...bytes], [...encodeNetworkInfo({ ...networkInfoOf(deployment), maxTaskTtlSeconds: 0 })])
      // the same node tells its limit to a requester that asks, which the old rules could not read
      const asked = await ask(NetworkInfoRequest.encode({ version: NETWORK_VERSION, withMaxTaskTtl: true }))
      assert.equal(decodeNetworkInfo(asked).maxTaskTtlSeconds, 1200)
      assert.throws(() => OLD_RESPONSE_CODEC.decode(asked), (err: unknown) => err instanceof DecodeError && err.code === 'NON_CANONICAL')
    }
  })

  it('a node older than the limit refuses the question (BAD_REQUEST): asked again without it, its contracts still come, and the default limit applies', async () => {
    await server?.stop()
    let answered = 0
    const old = oldNetworkInfoServer({ libp2p: bootstrap, info: networkInfoOf(DEPLOYMENT), onAnswer: () => { answered++ } })
    oldServer = old
    await old.start()
    // what the old node does with today's request: its strict codec refuses field 2
    const refused = await requestOnce(requester, bootstrap.peerId, NETWORK_PROTOCOL,
      NetworkInfoRequest.encode({ version: NETWORK_VERSION, withMaxTaskTtl: true }), { maxResponseBytes: MAX_NETWORK_INFO_RESPONSE_BYTES, timeoutMs: 5_000 })
    assert.equal(decodeNetworkInfo(refused).status, NETWORK_STATUS.BAD_REQUEST)
    assert.equal(answered, 0)

    const info = await fetchNetworkInfo(requester, bootstrap.peerId)
    sameDeployment(deploymentOfNetworkInfo(info), DEPLOYMENT)
    assert.equal(maxTaskTtlMsOf(info), undefined)
    assert.equal(answered, 1, 'the second request, without the question, was answered')

    // the rogue is also an old node: it refuses the question, then answers without the limit
    rogueQueue = [{ frame: encodeNetworkInfo({ ...networkInfoOf(undefined), status: NETWORK_STATUS.BAD_REQUEST }) }]
    rogueAnswer = { frame: encodeNetworkInfo(networkInfoOf(undefined)) }
    await until(async () => (await requester.peerStore.get(bootstrap.peerId)).protocols.includes(NETWORK_PROTOCOL) &&
      (await requester.peerStore.get(rogue.peerId)).protocols.includes(NETWORK_PROTOCOL), 10_000, 'identify of both peers')
    const ttl = await readNetworkTaskTtl({ libp2p: requester })
    assert.deepEqual([ttl.maxTaskTtlMs, ttl.peer], [DEFAULT_MAX_TASK_TTL_MS, undefined])
    assert.match(ttl.source, /the default: none of the 2 connected nodes/)
    assert.equal(answered, 2)
    assert.deepEqual(rogueQueue, [], 'the rogue was asked twice')
  })

  it('refuses a limit the request did not ask for, and a peer that refuses both questions', async () => {
    const badRequest = { frame: encodeNetworkInfo({ ...networkInfoOf(undefined), status: NETWORK_STATUS.BAD_REQUEST }) }
    // refuses the question, then tells the limit anyway
    rogueQueue = [badRequest]
    rogueAnswer = { frame: encodeNetworkInfo(networkInfoOf(DEPLOYMENT, 20 * 60_000)) }
    const err = await rejects(fetchNetworkInfo(requester, rogue.peerId), 'INVALID_RESPONSE')
    assert.ok(err.cause instanceof DecodeError && err.cause.field === 'maxTaskTtlSeconds', err.message)
    assert.match(err.message, /did not ask for it/)
    rogueQueue = [badRequest]
    rogueAnswer = badRequest
    await rejects(fetchNetworkInfo(requester, rogue.peerId), 'BAD_REQUEST')
    assert.deepEqual(rogueQueue, [])
  })

  it('readNetworkTaskTtl: the smallest limit the connected nodes report, the default when none reports one', async () => {
    // the rogue answers garbage: skipped, as a failing node is
    rogueAnswer = { frame: Uint8Array.from([0xde, 0xad]) }
    const node = { libp2p: requester }
    await until(async () => (await requester.peerStore.get(bootstrap.peerId)).protocols.includes(NETWORK_PROTOCOL) &&
      (await requester.peerStore.get(rogue.peerId)).protocols.includes(NETWORK_PROTOCOL), 10_000, 'identify of both peers')
    await serve(DEPLOYMENT, 20 * 60_000)
    const reported = await readNetworkTaskTtl(node)
    assert.deepEqual([reported.maxTaskTtlMs, reported.peer], [20 * 60_000, bootstrap.peerId.toString()])
    assert.match(reported.source, /reported by 12D3\S+ over \/poi\/network\/1\//)
    // the rogue now reports a smaller limit: the smallest wins
    rogueAnswer = { frame: encodeNetworkInfo(networkInfoOf(undefined, 5 * 60_000)) }
    assert.deepEqual(await readNetworkTaskTtl(node).then(r => [r.maxTaskTtlMs, r.peer]), [5 * 60_000, rogue.peerId.toString()])
    // nodes older than the field: the default, said as such
    rogueAnswer = { frame: encodeNetworkInfo(networkInfoOf(undefined)) }
    await serve(DEPLOYMENT)
    const fallback = await readNetworkTaskTtl(node)
    assert.deepEqual([fallback.maxTaskTtlMs, fallback.peer], [DEFAULT_MAX_TASK_TTL_MS, undefined])
    assert.match(fallback.source, /the default: none of the 2 connected nodes/)
    assert.throws(() => checkTaskTtl(15 * 60_000, fallback), /15 min|900 s/)
    assert.throws(() => checkTaskTtl(25 * 60_000, reported), (err: Error) => err instanceof InvalidRequestError &&
      /more than the 1200 s the network's nodes accept \(their maximum task TTL, reported by 12D3\S+ over \/poi\/network\/1\/\).*at most 1200 s/.test(err.message))
    checkTaskTtl(15 * 60_000, reported)
  })

  it('answers BAD_REQUEST to another version or garbage, and stops serving after stop()', async () => {
    await serve(DEPLOYMENT)
    for (const request of [NetworkInfoRequest.encode({ version: NETWORK_VERSION + 1 }), Uint8Array.from([0xde, 0xad])]) {
      const bytes = await requestOnce(requester, bootstrap.peerId, NETWORK_PROTOCOL, request, { maxResponseBytes: MAX_NETWORK_INFO_RESPONSE_BYTES, timeoutMs: 5_000 })
      assert.equal(decodeNetworkInfo(bytes).status, NETWORK_STATUS.BAD_REQUEST)
    }
    await server?.stop()
    await rejects(fetchNetworkInfo(requester, bootstrap.peerId), 'DIAL_FAILED')
  })

  it('refuses a server built with a deployment its peers would reject', () => {
    assert.throws(() => new NetworkInfoServer({ libp2p: bootstrap, info: networkInfoOf({ ...DEPLOYMENT, registry: '0x1234' }) }), EncodeError)
    assert.throws(() => new NetworkInfoServer({ libp2p: bootstrap, info: networkInfoOf({ ...DEPLOYMENT, chainId: 0 }) }), EncodeError)
  })

  it('refuses garbage, wrong-version, ill-formed and non-canonical answers (INVALID_RESPONSE)', async () => {
    const found = networkInfoOf(DEPLOYMENT)
    const noChain = networkInfoOf(undefined)
    const cases: Array<[string, Uint8Array, string]> = [
      ['garbage (a tag varint cut off)', Uint8Array.from([0xde, 0xad, 0xbe, 0xef]), 'TRUNCATED'],
      ['garbage (a group)', Uint8Array.from([0x0b, 0x01]), 'MALFORMED'],
      ['another version', NetworkInfo.encode({ ...found, version: NETWORK_VERSION + 1 }), 'UNKNOWN_VERSION'],
      ['an unknown status', NetworkInfo.encode({ ...found, status: 7 }), 'INVALID_FIELD'],
      ['a 19-byte registry', NetworkInfo.encode({ ...found, registry: found.registry.slice(1) }), 'INVALID_FIELD'],
      ['a 21-byte model registry', NetworkInfo.encode({ ...found, modelRegistry: new Uint8Array(21) }), 'INVALID_FIELD'],
      ['FOUND on chain 0', NetworkInfo.encode({ ...found, chainId: 0n }), 'INVALID_FIELD'],
      ['NO_CHAIN with an address', NetworkInfo.encode({ ...noChain, taskManager: found.taskManager }), 'INVALID_FIELD'],
      ['fields out of order', Uint8Array.from([0x10, 0x01, 0x08, 0x01]), 'NON_CANONICAL'],
      ['an unknown field (10, varint)', Uint8Array.from([...encodeNetworkInfo(noChain), 0x50, 0x01]), 'NON_CANONICAL'],
      ['BAD_REQUEST with a task limit', NetworkInfo.encode({ ...noChain, status: NETWORK_STATUS.BAD_REQUEST, maxTaskTtlSeconds: 600 }), 'INVALID_FIELD'],
      ['a default value written out', Uint8Array.from([0x08, 0x01, 0x10, 0x01, 0x18, 0x00]), 'NON_CANONICAL']
    ]
    for (const [what, frame, code] of cases) {
      rogueAnswer = { frame }
      const err = await rejects(fetchNetworkInfo(requester, rogue.peerId), 'INVALID_RESPONSE')
      assert.equal(causeCode(err), code, `${what}: ${err.message}`)
    }
  })

  it('reports a peer that refuses our request as BAD_REQUEST', async () => {
    rogueAnswer = { frame: encodeNetworkInfo({ ...networkInfoOf(undefined), status: NETWORK_STATUS.BAD_REQUEST }) }
    await rejects(fetchNetworkInfo(requester, rogue.peerId), 'BAD_REQUEST')
  })

  it('refuses an oversized answer before reading it, and an empty one', async () => {
    // a length prefix announcing one byte more than any NetworkInfo can take (a two-byte varint: 128 ≤ 129 < 2^14)
    const tooLong = MAX_NETWORK_INFO_RESPONSE_BYTES + 1
    rogueAnswer = { raw: Uint8Array.from([0x80 | (tooLong & 0x7f), tooLong >> 7, 1, 2, 3]) }
    await rejects(fetchNetworkInfo(requester, rogue.peerId), 'OVERSIZED')
    rogueAnswer = { close: true }
    await rejects(fetchNetworkInfo(requester, rogue.peerId), 'NO_RESPONSE')
  })

  it('gives up on a silent peer after the timeout, or when the caller aborts', async () => {
    rogueAnswer = { silent: true }
    const started = Date.now()
    await rejects(fetchNetworkInfo(requester, rogue.peerId, { timeoutMs: SHORT_TIMEOUT_MS }), 'TIMEOUT')
    assert.ok(Date.now() - started < 10 * SHORT_TIMEOUT_MS, 'the timeout was not honoured')
    const controller = new AbortController()
    const pending = fetchNetworkInfo(requester, rogue.peerId, { signal: controller.signal })
    controller.abort()
    await rejects(pending, 'ABORTED')
  })
})
