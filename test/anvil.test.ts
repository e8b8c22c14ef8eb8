import { strict as assert } from 'node:assert'
import { createServer, type AddressInfo } from 'node:net'
import { createPublicClient, createTestClient, http } from 'viem'
import { foundry } from 'viem/chains'
import { ChainError, startAnvil, type Anvil } from '../contracts/index.js'

describe('startAnvil', function () {
  const started: Anvil[] = []
  after(async () => { await Promise.all(started.map(async a => await a.stop())) })

  it('lets anvil take the port the OS gives it, and the URL reaches that anvil', async () => {
    started.push(await startAnvil(), await startAnvil())
    const [a, b] = started
    assert.notEqual(a.rpcUrl, b.rpcUrl)
    // A block mined on one chain only: each URL reaches its own anvil.
    const ca = createPublicClient({ chain: foundry, transport: http(a.rpcUrl) })
    const cb = createPublicClient({ chain: foundry, transport: http(b.rpcUrl) })
    await createTestClient({ chain: foundry, mode: 'anvil', transport: http(a.rpcUrl) }).mine({ blocks: 1 })
    assert.equal(await ca.getBlockNumber(), 1n)
    assert.equal(await cb.getBlockNumber(), 0n)
    await a.stop()
    assert.ok(a.process.exitCode != null || a.process.signalCode != null, 'anvil still runs after stop()')
  })

  it('a port given and taken is a ChainError carrying anvil\'s reason', async () => {
    const busy = createServer()
    await new Promise<void>(resolve => busy.listen(0, '127.0.0.1', resolve))
    try {
      const port = (busy.address() as AddressInfo).port
      await assert.rejects(startAnvil({ port }), (err: unknown) => err instanceof ChainError && /exited before listening: .*Address already in use/.test(err.message))
    } finally {
      await new Promise(resolve => busy.close(resolve))
    }
  })
})
