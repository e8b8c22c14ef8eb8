/**
 * `poi chain faucet` (node/cli/faucet-command.ts), what a swarm testnet's deployer serves: each
 * address is funded once with the fixed grant, and every other request is refused with a code
 * the node scripts (deploy/node-entrypoint.sh) can act on. A real anvil, real transfers, real HTTP.
 */
import { strict as assert } from 'node:assert'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { parseEther, type PublicClient } from 'viem'
import { Faucet } from '../node/cli/faucet-command.js'
import { startPoiChain, type PoiChain } from './helpers/poi-chain.js'

const GRANT = parseEther('3')
const MAX_GRANTS = 2

describe('poi chain faucet', function () {
  this.timeout(60_000)
  let chain: PoiChain
  let faucet: Faucet
  let dir: string
  const deploymentJson = '{"served":"as is"}\n'

  before(async () => {
    chain = await startPoiChain()
    dir = await mkdtemp(join(tmpdir(), 'poi-faucet-'))
    faucet = await Faucet.start({
      publicClient: chain.publicClient, wallet: chain.wallets[0], deploymentJson, amount: GRANT, maxGrants: MAX_GRANTS, stateFile: join(dir, 'grants.json'), host: '127.0.0.1', port: 0
    })
  })
  after(async () => {
    await faucet?.stop()
    await chain?.stop()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  const fund = async (body: string): Promise<{ status: number, json: any }> => {
    const res = await fetch(`${faucet.url}/v1/fund`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    return { status: res.status, json: await res.json() }
  }

  it('serves the deployment file as written and its health', async () => {
    const res = await fetch(`${faucet.url}/v1/deployment`)
    assert.equal(res.status, 200)
    assert.equal(await res.text(), deploymentJson)
    const health = await fetch(`${faucet.url}/health`)
    assert.equal(health.status, 200)
    assert.equal(((await health.json()) as { funder: string }).funder, chain.wallets[0].account.address)
  })

  it('funds a new address once with the grant, refuses it the second time, and keeps the grant across a restart', async () => {
    const address = privateKeyToAccount(generatePrivateKey()).address
    const first = await fund(JSON.stringify({ address }))
    assert.equal(first.status, 200, JSON.stringify(first.json))
    assert.equal(first.json.amount, GRANT.toString())
    assert.equal(await (chain.publicClient as PublicClient).getBalance({ address }), GRANT)
    // the same address in other letters is the same address
    const again = await fund(JSON.stringify({ address: address.toLowerCase() }))
    assert.equal(again.status, 409)
    assert.equal(again.json.error.code, 'ERR_ALREADY_FUNDED')
    assert.equal(await (chain.publicClient as PublicClient).getBalance({ address }), GRANT)
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'grants.json'), 'utf8')), [address.toLowerCase()])
  })

  it('refuses what is not an address, and a body that is not JSON', async () => {
    for (const body of [JSON.stringify({ address: '0x1234' }), JSON.stringify({}), JSON.stringify({ address: 42 }), 'not json', 'x'.repeat(2000)]) {
      const r = await fund(body)
      assert.equal(r.status, 400, body.slice(0, 40))
      assert.equal(r.json.error.code, 'ERR_BAD_REQUEST')
    }
  })

  it('funds only --max-grants addresses, even when asked at once', async () => {
    const addresses = [1, 2, 3].map(() => privateKeyToAccount(generatePrivateKey()).address)
    const results = await Promise.all(addresses.map(async address => await fund(JSON.stringify({ address }))))
    // one grant was given in the test above: one more fits
    assert.deepEqual(results.map(r => r.status).sort(), [200, 403, 403])
    assert.ok(results.filter(r => r.status === 403).every(r => r.json.error.code === 'ERR_FAUCET_EXHAUSTED'))
    const balances = await Promise.all(addresses.map(async address => await (chain.publicClient as PublicClient).getBalance({ address })))
    assert.deepEqual(balances.map(b => b.toString()).sort(), ['0', '0', GRANT.toString()])
  })

  it('a restarted faucet still refuses the addresses it funded (from its state file)', async () => {
    const funded = JSON.parse(await readFile(join(dir, 'grants.json'), 'utf8')) as string[]
    assert.equal(funded.length, MAX_GRANTS)
    await faucet.stop()
    faucet = await Faucet.start({
      publicClient: chain.publicClient, wallet: chain.wallets[0], deploymentJson, amount: GRANT, maxGrants: MAX_GRANTS + 5, stateFile: join(dir, 'grants.json'), host: '127.0.0.1', port: 0
    })
    const again = await fund(JSON.stringify({ address: funded[0] }))
    assert.equal(again.status, 409)
    assert.equal(again.json.error.code, 'ERR_ALREADY_FUNDED')
  })

  it('refuses when its account cannot pay one more grant', async () => {
    await chain.testClient.setBalance({ address: chain.wallets[0].account.address, value: GRANT })
    const address = privateKeyToAccount(generatePrivateKey()).address
    const r = await fund(JSON.stringify({ address }))
    assert.equal(r.status, 503)
    assert.equal(r.json.error.code, 'ERR_FAUCET_EMPTY')
    assert.equal((await fetch(`${faucet.url}/health`)).status, 503)
    // not funded, so it may ask again once the faucet is
    await chain.testClient.setBalance({ address: chain.wallets[0].account.address, value: parseEther('100') })
    assert.equal((await fund(JSON.stringify({ address }))).status, 200)
  })
})
