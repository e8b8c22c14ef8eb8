/**
 * A node whose first dial of its bootstrap node fails keeps trying (node/p2p.ts, PeerConnector):
 * on a loaded machine a network's processes start together and a dial may time out, and a node
 * that gave up after one attempt stayed alone for good (bench/scale.ts found operators with no
 * gossip mesh minutes after start). Real libp2p nodes over TCP on 127.0.0.1: the bootstrap
 * address names a port nobody listens on yet, and the bootstrap node starts there later.
 */
import { strict as assert } from 'node:assert'
import { createServer } from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createPoiLibp2p, EXPLORE_RETRY_MAX_MS, type PoiLibp2p } from '../node/p2p.js'
import { until } from './helpers/wait.js'

/** A loopback port free now (the OS picks it; it is released at once for the bootstrap node to take later). */
async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

describe('p2p: redialing the bootstrap node', function () {
  this.timeout(EXPLORE_RETRY_MAX_MS + 30_000)
  const started: PoiLibp2p[] = []
  after(async () => { await Promise.all(started.map(async n => await n.stop())) })

  it('connects to a bootstrap node that was not there when it first dialed', async () => {
    const bootKey = await generateKeyPair('Ed25519')
    const bootId = peerIdFromPrivateKey(bootKey)
    const port = await freePort()
    const bootAddr = `/ip4/127.0.0.1/tcp/${port}/p2p/${bootId.toString()}`
    const node = await createPoiLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [bootAddr], dhtClientMode: false })
    started.push(node)
    // Its first dial is refused (nothing listens): the node is alone.
    await new Promise(resolve => setTimeout(resolve, 1_000))
    assert.equal(node.getConnections().length, 0)
    const boot = await createPoiLibp2p({ privateKey: bootKey, listen: [`/ip4/127.0.0.1/tcp/${port}`], bootstrap: [], dhtClientMode: false })
    started.push(boot)
    await until(() => node.getConnections(bootId).length > 0, EXPLORE_RETRY_MAX_MS + 10_000, 'a connection to the bootstrap node started late')
  })
})
