/**
 * A paid network for admission tests: an anvil chain with three registered operators (anvil
 * accounts 1-3, 10 ETH each), the shipped model registered with a fee by its manifest's owner
 * (account 0), and in-process nodes that read the chain for the operator set, the model gate
 * and payments. Tests start the nodes they need with `start`; `stop` ends them all.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import { ANVIL_PRIVATE_KEYS, deposit, registerModel, type OnChainOperatorSet } from '../../contracts/index.js'
import { ChainClient } from '../../node/chain-client.js'
import { resolveConfig } from '../../node/config.js'
import { SHIPPED_MODEL_DIR, encodeManifest, loadModelDir } from '../../node/inference/index.js'
import { generateKeystore, loadKeystore, type Keystore } from '../../node/keys.js'
import { PoiNode, type PoiNodeOptions } from '../../node/poi-node.js'
import { ETHER } from '../consensus-fixtures.js'
import { nextEpoch, registerAll, startPoiChain, walletFor, type PoiChain } from './poi-chain.js'

/** The operators every paid network registers: three make a set a request can be certified by. */
const OPERATORS = 3

export interface PaidNodeRole { operate?: boolean, aggregate?: boolean, light?: boolean }

/** More of a node's configuration: its model directories (default: the shipped model) and other node options. */
export type PaidNodeExtras = { modelDirs?: string[] } & Partial<Pick<PoiNodeOptions, 'prove' | 'settlement'>>

export interface PaidNetwork {
  chain: PoiChain
  client: ChainClient
  set: OnChainOperatorSet
  /** A temporary directory for the nodes' keys and data (removed by stop). */
  root: string
  modelId: Uint8Array
  /** The model's fee plus the network minimum: the least fee a task can offer. */
  required: bigint
  /** The registered operators' keystores, in registration order. */
  operatorKeys: Keystore[]
  /** Every node started, the first one being every later node's bootstrap. */
  nodes: PoiNode[]
  account: (i: number) => PrivateKeyAccount
  /** Deposits `amount` wei for anvil account `i`. */
  fund: (i: number, amount: bigint) => Promise<void>
  /**
   * Starts a node named `name` (its directory under root) with the given role and keys (fresh
   * ones by default); `extra` sets its model directories and any other node option (e.g. `prove`, `settlement`).
   */
  start: (name: string, role?: PaidNodeRole, keys?: Keystore, extra?: PaidNodeExtras) => Promise<PoiNode>
  stop: () => Promise<void>
}

export async function startPaidNetwork (prefix: string, modelFee: bigint): Promise<PaidNetwork> {
  const root = await mkdtemp(join(tmpdir(), prefix))
  const chain = await startPoiChain({ epochDuration: 0n })
  const nodes: PoiNode[] = []
  try {
    const operatorKeys: Keystore[] = []
    for (let i = 0; i < OPERATORS; i++) {
      await generateKeystore(join(root, `op${i}`, 'keys'))
      operatorKeys.push(await loadKeystore(join(root, `op${i}`, 'keys')))
    }
    await registerAll(chain, operatorKeys.map(k => k.blsSecretKey), operatorKeys.map(() => 10n * ETHER))
    await nextEpoch(chain)
    // the shipped manifest names anvil's first account (wallets[0]) as its owner
    const shipped = await loadModelDir(SHIPPED_MODEL_DIR)
    await registerModel(chain.wallets[0], chain.publicClient, chain.deployment.modelRegistry, shipped.modelId, encodeManifest(shipped.manifest), modelFee)
    const client = await ChainClient.connect({ rpcUrl: chain.anvil.rpcUrl, ...chain.deployment })
    const set = await client.operatorSet()
    const account = (i: number): PrivateKeyAccount => privateKeyToAccount(ANVIL_PRIVATE_KEYS[i])

    const start = async (name: string, role: PaidNodeRole = {}, keys?: Keystore, extra: PaidNodeExtras = {}): Promise<PoiNode> => {
      const { modelDirs, ...options } = extra
      const dir = join(root, name)
      if (keys == null) {
        await generateKeystore(join(dir, 'keys'))
        keys = await loadKeystore(join(dir, 'keys'))
      }
      const light = role.light === true
      const node = await PoiNode.start({
        operate: role.operate === true,
        aggregate: role.aggregate === true,
        light,
        keystore: keys,
        config: resolveConfig({
          keystore: join(dir, 'keys'), dataDir: join(dir, 'data'), genesis: join(root, 'unused-genesis.json'), chain: client.config,
          listen: light ? [] : ['/ip4/127.0.0.1/tcp/0'], bootstrap: nodes.length > 0 ? [nodes[0].addresses()[0]] : [], graceMs: 250,
          ...(modelDirs !== undefined ? { modelDirs } : {})
        }),
        operatorSet: set,
        modelGate: client,
        payments: client,
        backupAggregation: false,
        ...options
      })
      nodes.push(node)
      return node
    }
    return {
      chain, client, set, root, modelId: shipped.modelId, required: modelFee + chain.params.minTaskFee, operatorKeys, nodes, account, start,
      fund: async (i, amount) => { await deposit(walletFor(chain.anvil.rpcUrl, account(i)), chain.publicClient, chain.deployment.taskManager, amount) },
      stop: async () => {
        await Promise.all(nodes.map(async n => await n.stop()))
        await chain.stop()
        await rm(root, { recursive: true, force: true })
      }
    }
  } catch (err) {
    await chain.stop()
    await rm(root, { recursive: true, force: true })
    throw err
  }
}
