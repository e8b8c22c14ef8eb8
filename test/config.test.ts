import { strict as assert } from 'node:assert'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  ConfigError, DEFAULT_GRACE_MS, DEFAULT_LISTEN, DEFAULT_MAX_TASK_TTL_MS, defaultConfig, readConfigFile, resolveConfig,
  type NodeConfig
} from '../node/config.js'
import { readDeployment, writeDeployment } from '../node/deployment.js'
import { SHIPPED_MODEL_DIR } from '../node/inference/index.js'

/** A syntactically valid libp2p peer id (Ed25519, identity multihash). */
const PEER_ID = '12D3KooWFDqtLQswCkaNRcSxEvCUgBo6NYKqaQmhur67qBrEynD7'
const BOOTSTRAP = `/ip4/127.0.0.1/tcp/4001/p2p/${PEER_ID}`

/** Asserts `fn` throws (or rejects with) a ConfigError whose message matches every pattern. */
async function configError (fn: () => unknown, ...patterns: Array<RegExp | string>): Promise<void> {
  await assert.rejects(async () => { await fn() }, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`)
    assert.equal(err.code, 'ERR_CONFIG')
    for (const p of patterns) {
      if (typeof p === 'string') assert.ok(err.message.includes(p), `message should contain ${p}: ${err.message}`)
      else assert.match(err.message, p)
    }
    return true
  })
}

describe('config: file, flags and validation', () => {
  let root: string
  before(async () => { root = await mkdtemp(join(tmpdir(), 'poi-config-')) })
  after(async () => { await rm(root, { recursive: true, force: true }) })

  async function configFile (name: string, content: unknown): Promise<string> {
    const path = join(root, name)
    await mkdir(join(path, '..'), { recursive: true })
    await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content))
    return path
  }

  describe('readConfigFile', () => {
    it('resolves relative paths against the file\'s directory, not the working directory', async () => {
      const path = await configFile('etc/node.json', {
        keystore: 'keys',
        dataDir: '../var/data',
        genesis: './genesis.json',
        modelDirs: ['models/a', '/abs/models/b']
      })
      const cfg = await readConfigFile(path)
      assert.equal(cfg.keystore, join(root, 'etc', 'keys'))
      assert.equal(cfg.dataDir, join(root, 'var', 'data'))
      assert.equal(cfg.genesis, join(root, 'etc', 'genesis.json'))
      assert.deepEqual(cfg.modelDirs, [join(root, 'etc', 'models', 'a'), '/abs/models/b'])
    })

    it('keeps absolute paths and non-path settings as written, and only the keys present', async () => {
      const path = await configFile('abs.json', { keystore: '/srv/poi/keys', listen: ['/ip4/0.0.0.0/tcp/4001'], bootstrap: [BOOTSTRAP], graceMs: 100 })
      assert.deepEqual(await readConfigFile(path), { keystore: '/srv/poi/keys', listen: ['/ip4/0.0.0.0/tcp/4001'], bootstrap: [BOOTSTRAP], graceMs: 100 })
    })

    it('an unknown key is a ConfigError naming the file, the key and the known keys', async () => {
      const path = await configFile('unknown.json', { keystore: 'k', gracems: 10 })
      await configError(async () => await readConfigFile(path), path, '"gracems"', 'graceMs')
    })

    it('invalid JSON is a ConfigError naming the file', async () => {
      const path = await configFile('bad.json', '{ "keystore": "k", }')
      await configError(async () => await readConfigFile(path), path, /not valid JSON/)
    })

    it('JSON that is not an object is a ConfigError naming the file', async () => {
      for (const [i, content] of ['[]', '"keys"', 'null', '42'].entries()) {
        const path = await configFile(`not-object-${i}.json`, content)
        await configError(async () => await readConfigFile(path), path, /must hold a JSON object/)
      }
    })

    it('a missing file is a ConfigError naming it', async () => {
      const path = join(root, 'absent.json')
      await configError(async () => await readConfigFile(path), path, /not found/)
    })

    it('a bad value in the file is reported with the file and the setting', async () => {
      const path = await configFile('bad-value.json', { graceMs: -5 })
      await configError(async () => await readConfigFile(path), path, 'graceMs', /non-negative/)
      const path2 = await configFile('bad-listen.json', { listen: '/ip4/127.0.0.1/tcp/1' })
      await configError(async () => await readConfigFile(path2), path2, /listen must be a list/)
    })
  })

  describe('resolveConfig', () => {
    it('with no layers gives the defaults, which are valid', () => {
      const cfg = resolveConfig()
      assert.deepEqual(cfg, defaultConfig())
      assert.deepEqual(cfg.listen, [DEFAULT_LISTEN])
      assert.deepEqual(cfg.bootstrap, [])
      assert.deepEqual(cfg.modelDirs, [SHIPPED_MODEL_DIR])
      assert.equal(cfg.graceMs, DEFAULT_GRACE_MS)
      assert.equal(cfg.maxTaskTtlMs, DEFAULT_MAX_TASK_TTL_MS)
    })

    it('layers defaults ← file ← flags; an undefined flag does not override the file', async () => {
      const path = await configFile('layers.json', { keystore: 'file-keys', dataDir: 'file-data', graceMs: 100, bootstrap: [BOOTSTRAP] })
      const file = await readConfigFile(path)
      const flags: Partial<NodeConfig> = { keystore: '/flag/keys', dataDir: undefined, graceMs: undefined, listen: ['/ip4/127.0.0.1/tcp/4002'] }
      const cfg = resolveConfig(file, flags)
      assert.equal(cfg.keystore, '/flag/keys', 'flag overrides file')
      assert.equal(cfg.dataDir, join(root, 'file-data'), 'undefined flag keeps the file value')
      assert.equal(cfg.graceMs, 100, 'undefined flag keeps the file value')
      assert.deepEqual(cfg.bootstrap, [BOOTSTRAP], 'file overrides default')
      assert.deepEqual(cfg.listen, ['/ip4/127.0.0.1/tcp/4002'], 'flag overrides default')
      assert.equal(cfg.genesis, defaultConfig().genesis, 'default kept when no layer sets it')
      assert.equal(cfg.maxTaskTtlMs, DEFAULT_MAX_TASK_TTL_MS)
    })

    it('a flag of 0 overrides (only undefined means "not given")', () => {
      assert.equal(resolveConfig({ graceMs: 100 }, { graceMs: 0 }).graceMs, 0)
    })

    it('rejects a listen address that is not a multiaddr, with an example', async () => {
      await configError(() => resolveConfig({ listen: ['127.0.0.1:4001'] }), 'listen', '"127.0.0.1:4001"', /not a multiaddr/, '/ip4/127.0.0.1/tcp/4001')
    })

    it('rejects a bootstrap address that is not a multiaddr', async () => {
      await configError(() => resolveConfig({ bootstrap: ['tcp://127.0.0.1:4001'] }), 'bootstrap', /not a multiaddr/)
    })

    it('rejects a bootstrap address without /p2p/<peer id>, saying why it is needed', async () => {
      await configError(() => resolveConfig({ bootstrap: ['/ip4/127.0.0.1/tcp/4001'] }), 'bootstrap', '/ip4/127.0.0.1/tcp/4001', '/p2p/<peer id>', /authenticated/)
    })

    it('rejects a negative, non-finite or non-numeric graceMs / maxTaskTtlMs', async () => {
      await configError(() => resolveConfig({ graceMs: -1 }), 'graceMs', /non-negative number of milliseconds/, '-1')
      await configError(() => resolveConfig({ graceMs: Number.POSITIVE_INFINITY }), 'graceMs')
      await configError(() => resolveConfig({ maxTaskTtlMs: '600' as unknown as number }), 'maxTaskTtlMs', '"600"')
    })

    it('rejects empty paths and a modelDirs that is not a list of strings', async () => {
      await configError(() => resolveConfig({ keystore: '' }), /keystore must be a non-empty path/)
      await configError(() => resolveConfig({ dataDir: 42 as unknown as string }), /dataDir must be a non-empty path/)
      await configError(() => resolveConfig({ modelDirs: [1] as unknown as string[] }), /modelDirs must be a list/)
    })
  })

  describe('deployment files (--chain)', () => {
    const deployment = {
      rpcUrl: 'http://127.0.0.1:8545',
      chainId: 31337,
      registry: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
      taskManager: '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512',
      slashing: '0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0',
      modelRegistry: '0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9',
      identityRegistry: '0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9',
      validationRegistry: '0x5FC8d32690cc91D4c39d9d3abcBD16989F875707',
      deployedAtBlock: 7n
    } as const

    it("what writeDeployment writes, readDeployment reads back as the node's chain setting", async () => {
      const path = join(root, 'deployment.json')
      await writeDeployment(path, deployment)
      assert.deepEqual(await readDeployment(path), deployment)
    })

    it('a malformed deployment file is a ConfigError naming the file and the field', async () => {
      const path = join(root, 'bad-deployment.json')
      await writeFile(path, JSON.stringify({ ...deployment, deployedAtBlock: '7', taskManager: '0x1234' }))
      await configError(async () => await readDeployment(path), path, 'taskManager')
      await writeFile(path, JSON.stringify({ ...deployment, deployedAtBlock: '7', registy: deployment.registry }))
      await configError(async () => await readDeployment(path), path, '"registy"')
      await writeFile(path, JSON.stringify({ ...deployment, deployedAtBlock: '7', validationRegistry: 'none' }))
      await configError(async () => await readDeployment(path), path, 'validationRegistry')
      await configError(async () => await readDeployment(join(root, 'no-such-deployment.json')), 'no-such-deployment.json')
    })
  })
})
