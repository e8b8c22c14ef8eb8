import { strict as assert } from 'node:assert'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runPoi } from './helpers/cli.js'

/** A peer id for bootstrap addresses that nothing answers as. */
const SOME_PEER = '12D3KooWGzRvmrDmrVGVdAN1EJbGpRvQcwhD5XHXjYNtdyUmyj9w'

describe('poi request refuses what the nodes would refuse, before any network traffic', function () {
  this.timeout(30_000)
  let home: string
  let listener: Server
  let connections = 0
  let bootstrap: string

  // A TCP port that counts connections: the checks below must not dial it.
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'poi-refusals-'))
    listener = createServer((socket) => { connections++; socket.destroy() })
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve))
    const port = (listener.address() as { port: number }).port
    bootstrap = `/ip4/127.0.0.1/tcp/${port}/p2p/${SOME_PEER}`
  })
  after(async () => {
    await new Promise<void>((resolve) => listener.close(() => { resolve() }))
    await rm(home, { recursive: true, force: true })
  })

  const refused = async (args: string[], message: RegExp): Promise<void> => {
    const before = connections
    const r = await runPoi(home, 20_000, 'request', '--bootstrap', bootstrap, '--input', '{"x":{"data":[1]}}', ...args)
    assert.equal(r.code, 1, `exit code: ${r.stderr}`)
    assert.match(r.stderr, message)
    assert.match(r.stderr, /^poi: /, 'a message, not a stack trace')
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')
    assert.doesNotMatch(r.stderr, /Warning/, 'no Node warning')
    assert.equal(r.stdout, '')
    assert.equal(connections, before, 'nothing dialled the bootstrap address')
  }

  it('refuses a timeout beyond the nodes\' maximum task TTL (600 s)', async () => {
    await refused(['--genesis', join(home, 'genesis.json'), '--timeout', '900'], /timeout 900 s is more than the 600 s the network's nodes accept.*at most 600 s/)
  })

  it('refuses a timeout of 0 without a TimeoutNegativeWarning', async () => {
    await refused(['--genesis', join(home, 'genesis.json'), '--timeout', '0'], /timeout must be more than 0 s/)
  })

  it('refuses a quorum outside 1..10000 bps', async () => {
    await refused(['--genesis', join(home, 'genesis.json'), '--quorum', '20000'], /quorum must be a whole number of basis points from 1 to 10000.*got 20000/)
    await refused(['--genesis', join(home, 'genesis.json'), '--quorum', '0'], /got 0/)
  })

  it('refuses --chain together with --genesis', async () => {
    await refused(['--chain', join(home, 'deployment.json'), '--genesis', join(home, 'genesis.json')], /--chain and --genesis are mutually exclusive/)
  })

  it('says which flags give a network when none is given', async () => {
    await refused([], /needs to know the network's operators: give --chain <deployment.json>.*--rpc <url>.*--genesis <file>/)
  })
})
