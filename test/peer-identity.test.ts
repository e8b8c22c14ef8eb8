/**
 * Issue 9, findings 5 and 7: a dial of `…/p2p/<id>` reaches that id or fails naming both ids
 * (raw dials, `poi request --rpc`'s contract lookup, a light requester's wait for peers), and
 * a second process with the same keystore neither cuts the original off nor goes unreported.
 */
import { strict as assert } from 'node:assert'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createOperatorSet, type OperatorSet } from '../consensus/index.js'
import { exampleInput } from '../node/cli/devnet.js'
import { NetworkDiscoveryError, requesterConfig } from '../node/cli/requester-setup.js'
import { resolveConfig } from '../node/config.js'
import { loadModelDir, SHIPPED_MODEL_DIR } from '../node/inference/index.js'
import { createPoiLibp2p, multiaddr, type PoiLibp2p } from '../node/p2p.js'
import { PeerIdentityMismatchError, peerIdentityOf } from '../node/peer-identity.js'
import { PoiNode } from '../node/poi-node.js'
import { requestInference, waitForNetwork } from '../node/requester/index.js'
import { NETWORK_PROTOCOL } from '../protocols/network/index.js'
import { freshKeysAsync } from './helpers/keys.js'
import { startTestNetwork, STAKE, TEST_CHAIN_ID, TEST_TASK_MANAGER, type TestNetwork } from './helpers/network.js'
import { until, waitForEvent } from './helpers/wait.js'

/** Connections, identify and gossip meshes on a loaded 2-core machine. */
const CONNECT_TIMEOUT_MS = 20_000
/** A task's deadline: inference takes well under a second, the rest is gossip. */
const TASK_TIMEOUT_MS = 15_000

/** The message names the peer id the address named and the one the remote proved. */
function namesBoth (expected: string, proven: string): (err: Error) => boolean {
  return (err) => {
    assert.ok(err.message.includes(expected), `"${err.message}" should name the expected peer id ${expected}`)
    assert.ok(err.message.includes(proven), `"${err.message}" should name the proven peer id ${proven}`)
    return true
  }
}

describe('peer identity', function () {
  this.timeout(60_000)

  describe('a node with another key at the bootstrap address', () => {
    let root: string
    let impostor: PoiNode
    let expected: string
    let proven: string
    let wrongAddr: string
    let operatorSet: OperatorSet
    const started: Array<{ stop: () => void | Promise<void> }> = []

    before(async () => {
      root = await mkdtemp(join(tmpdir(), 'poi-identity-'))
      const keys = await freshKeysAsync()
      operatorSet = createOperatorSet({
        epoch: 0n,
        domain: { chainId: TEST_CHAIN_ID, taskManager: TEST_TASK_MANAGER },
        operators: [{ address: keys.account.address, blsPublicKey: keys.blsPublicKey, stake: STAKE }]
      })
      // A working poi bootstrap node: before the fix it was accepted and answered as the expected one.
      impostor = await PoiNode.start({
        operate: false, aggregate: false, light: false, keystore: keys, operatorSet,
        config: resolveConfig({ keystore: join(root, 'impostor', 'keys'), dataDir: join(root, 'impostor', 'data'), genesis: join(root, 'genesis.json'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [] })
      })
      started.push(impostor)
      proven = impostor.libp2p.peerId.toString()
      expected = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
      wrongAddr = impostor.libp2p.getMultiaddrs()[0].decapsulateCode(421).encapsulate(`/p2p/${expected}`).toString()
    })
    after(async () => {
      for (const s of started.reverse()) await s.stop()
      await rm(root, { recursive: true, force: true })
    })

    async function dialer (): Promise<PoiLibp2p> {
      const node = await createPoiLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: [], bootstrap: [], dhtClientMode: true })
      started.push(node)
      await node.start()
      return node
    }

    it('refuses a raw dial and dialProtocol of /p2p/<expected>, naming both peer ids', async () => {
      const node = await dialer()
      await assert.rejects(node.dial(multiaddr(wrongAddr)), namesBoth(expected, proven))
      await assert.rejects(node.dialProtocol(multiaddr(wrongAddr), NETWORK_PROTOCOL), namesBoth(expected, proven))
      assert.equal(node.getConnections().length, 0, 'no connection to the impostor is left open')
      const refused = peerIdentityOf(node)?.mismatches().at(-1)
      assert.ok(refused instanceof PeerIdentityMismatchError)
      assert.equal(refused.expected, expected)
      assert.equal(refused.proven, proven)
      // The same node at its true id is reached.
      const conn = await node.dial(impostor.libp2p.getMultiaddrs()[0])
      assert.equal(conn.remotePeer.toString(), proven)
    })

    it('poi request --rpc refuses it before asking it which contracts the network uses', async () => {
      const lines: string[] = []
      // The RPC URL is never reached: the bootstrap is refused first.
      await assert.rejects(requesterConfig('request', { bootstrap: [wrongAddr], rpc: 'http://127.0.0.1:9' }, l => lines.push(l)), (err: Error) => {
        assert.ok(err instanceof NetworkDiscoveryError, `${err.name}: ${err.message}`)
        assert.ok(err.cause instanceof PeerIdentityMismatchError)
        return namesBoth(expected, proven)(err)
      })
      assert.deepEqual(lines, [], 'nothing was named by the impostor')
    })

    it('a light requester waiting for peers fails at once, naming both peer ids', async () => {
      const keys = await freshKeysAsync()
      const requester = await PoiNode.start({
        operate: false, aggregate: false, light: true, keystore: keys, operatorSet,
        config: resolveConfig({ keystore: join(root, 'req', 'keys'), dataDir: join(root, 'req', 'data'), genesis: join(root, 'genesis.json'), listen: [], bootstrap: [wrongAddr] })
      })
      started.push(requester)
      const t0 = Date.now()
      await assert.rejects(waitForNetwork(requester, { timeoutMs: CONNECT_TIMEOUT_MS }), (err: Error) => {
        assert.ok(err instanceof PeerIdentityMismatchError, `${err.name}: ${err.message}`)
        return namesBoth(expected, proven)(err)
      })
      assert.ok(Date.now() - t0 < CONNECT_TIMEOUT_MS / 2, 'failed on the refusal, not on the connect timeout')
      assert.equal(requester.libp2p.getConnections().length, 0)
    })
  })

  describe('one process with two connections', () => {
    const nodes: PoiLibp2p[] = []
    after(async () => { for (const n of nodes) await n.stop() })

    it('is not reported as a duplicate when its two identify answers carry different record sequence numbers', async () => {
      // A node that has not stored its own signed peer record yet seals a fresh one per identify
      // answer (seq = the time in ms): two connections opened at once (a simultaneous dial) got
      // two seqs, and every 6-operator devnet reported its nodes as duplicates of themselves.
      const start = async (listen: string[]): Promise<PoiLibp2p> => {
        const node = await createPoiLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen, bootstrap: [], dhtClientMode: listen.length === 0 })
        nodes.push(node)
        await node.start()
        return node
      }
      const listener = await start(['/ip4/127.0.0.1/tcp/0'])
      const dialer = await start([])
      const seqs: bigint[] = []
      const identified = new Promise<void>(resolve => {
        dialer.addEventListener('peer:identify', (evt) => {
          if (!evt.detail.peerId.equals(listener.peerId)) return
          seqs.push(evt.detail.signedPeerRecord?.seq ?? -1n)
          if (seqs.length === 2) resolve()
        })
      })
      await dialer.dial(listener.getMultiaddrs()[0])
      // A second connection, a few ms later, as a simultaneous dial leaves.
      await new Promise(resolve => setTimeout(resolve, 5))
      await dialer.dial(listener.getMultiaddrs()[0], { force: true })
      await identified
      assert.equal(dialer.getConnections(listener.peerId).length, 2, 'two open connections to one process')
      assert.equal(new Set(seqs).size, 2, `the case under test: two identify answers with different seqs (got ${seqs.join(', ')})`)
      assert.equal(peerIdentityOf(dialer)?.duplicateReports(), 0, 'one process is not its own duplicate')
    })
  })

  describe('a second process with the same keystore', () => {
    let net: TestNetwork
    // Three operators of equal stake: quorum (6667 bps) needs all three, so a certificate proves
    // the original's attestation reached the aggregator.
    before(async () => { net = await startTestNetwork({ operators: 3, graceMs: 1_000 }) })
    after(async () => { await net?.stop() })

    it('does not cut the original off, and both it and the network report the duplicate', async () => {
      const model = await loadModelDir(SHIPPED_MODEL_DIR)
      const original = net.operators[0]!
      const peer = original.libp2p.peerId
      const toldOriginal = waitForEvent(original, 'duplicate-identity', { timeoutMs: CONNECT_TIMEOUT_MS, what: 'duplicate-identity report on the original', filter: d => d.self })
      const seenByBootstrap = waitForEvent(net.bootstrap, 'duplicate-identity', { timeoutMs: CONNECT_TIMEOUT_MS, what: 'duplicate-identity seen by the bootstrap', filter: d => d.peerId === peer.toString() })
      const duplicate = await PoiNode.start({
        operate: true, aggregate: false, light: false, keystore: net.keys[0], operatorSet: net.operatorSet,
        config: resolveConfig({ keystore: join(net.root, 'op0', 'keys'), dataDir: join(net.root, 'op0-copy', 'data'), genesis: join(net.root, 'genesis.json'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [net.bootstrapAddr] })
      })
      // Which process is behind a connection: its identify answer's listen addresses. Counting
      // connections is not enough: one process often holds two connections to another (a
      // simultaneous dial), so "at most one left" failed whenever the original had two. (421: /p2p,
      // which identify's listen addresses do not carry.)
      const duplicateAddrs = duplicate.libp2p.getMultiaddrs().map(a => a.decapsulateCode(421).toString()).sort().join(',')
      const duplicatesAt = (n: PoiNode): number => n.libp2p.getConnections(peer)
        .filter(c => peerIdentityOf(n.libp2p)?.listenAddressesOf(c.id)?.join(',') === duplicateAddrs).length
      try {
        const told = await toldOriginal
        assert.equal(told.peerId, peer.toString())
        assert.equal(told.how, 'peer-notice')
        const seen = await seenByBootstrap
        assert.equal(seen.how, 'two-connections')
        assert.equal(seen.addresses.length, 2)
        assert.ok((peerIdentityOf(original.libp2p)?.duplicateReports() ?? 0) >= 1, 'counted')
        // The duplicate reaches the aggregator too (through the DHT): the case that broke the original.
        await until(() => duplicatesAt(net.aggregator) >= 1, CONNECT_TIMEOUT_MS, 'the duplicate connecting to the aggregator')
        const during = await requestInference(net.requester, net.requesterKeys.account, { modelId: model.modelId, input: exampleInput(), timeoutMs: TASK_TIMEOUT_MS })
        assert.deepEqual(during.signers, [0, 1, 2])
      } finally {
        await duplicate.stop()
      }
      const left = (): string => [net.aggregator, net.bootstrap].map((n, i) => `${['aggregator', 'bootstrap'][i]}: ` +
        n.libp2p.getConnections(peer).map(c => `${c.id} ${c.direction} ${c.remoteAddr.toString()} listening on ${peerIdentityOf(n.libp2p)?.listenAddressesOf(c.id)?.join(',') ?? '?'}, opened ${Date.now() - c.timeline.open} ms ago`).join('; ')).join(' | ')
      await until(() => [net.aggregator, net.bootstrap].every(n => duplicatesAt(n) === 0), CONNECT_TIMEOUT_MS,
        () => `the duplicate's connections closing (the duplicate listened on ${duplicateAddrs}; left: ${left()})`)
      assert.ok([net.aggregator, net.bootstrap].every(n => n.libp2p.getConnections(peer).length >= 1), `the original is still connected (${left()})`)
      // Before the fix: NoQuorum, the original's attestations never reached the aggregator again.
      for (let i = 0; i < 2; i++) {
        const after = await requestInference(net.requester, net.requesterKeys.account, { modelId: model.modelId, input: exampleInput(), timeoutMs: TASK_TIMEOUT_MS })
        assert.deepEqual(after.signers, [0, 1, 2], 'the original operator (index 0) signed')
      }
    })
  })
})
