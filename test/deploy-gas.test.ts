import { strict as assert } from 'node:assert'
import { getContractAddress, isAddressEqual } from 'viem'
import { DeployError, POI_DEPLOY_ORDER, deployPoi, estimateDeployPoiGas, type PoiContractName } from '../contracts/index.js'
import { startPoiChain, type PoiChain } from './helpers/poi-chain.js'

/**
 * An estimate may exceed what a deployment uses (eth_estimateGas searches for a limit that
 * succeeds, and refunds are not subtracted), but not by much: a preview that doubled the figure
 * would mislead as much as one that covered a single contract. Measured on anvil 1.7.1: every
 * estimate equalled its gasUsed (10.97 M gas in all, the TaskManager 3.84 M of it).
 */
const ESTIMATE_SLACK = 1.1

/**
 * `poi chain deploy`'s preview figure: estimateDeployPoiGas estimates every contract deployPoi
 * deploys, the later ones at the addresses the earlier ones will have.
 */
describe('deployment gas estimate (anvil)', function () {
  this.timeout(120_000)
  let chain: PoiChain

  before(async () => {
    chain = await startPoiChain()
  })

  after(async () => {
    await chain?.stop()
  })

  it('estimates each of the nine deployments (the three TaskManager libraries included), close to what deployPoi then uses', async () => {
    // account 1 has deployed nothing yet: its first nine transactions will be the nine contracts
    const wallet = chain.wallets[1]
    const from = wallet.account.address
    const nonce = await chain.publicClient.getTransactionCount({ address: from })
    const estimate = await estimateDeployPoiGas(chain.publicClient, wallet.account, {})
    assert.deepEqual(Object.keys(estimate.perContract).sort(), [...POI_DEPLOY_ORDER].sort())
    assert.equal(estimate.total, Object.values(estimate.perContract).reduce((a, b) => a + b, 0n))
    // nothing was sent
    assert.equal(await chain.publicClient.getTransactionCount({ address: from }), nonce)

    const deployment = await deployPoi(wallet, chain.publicClient, {})
    const addressOf: Record<PoiContractName, `0x${string}`> = {
      OperatorRegistry: deployment.registry,
      ModelRegistry: deployment.modelRegistry,
      IdentityRegistry: deployment.identityRegistry,
      ValidationRegistry: deployment.validationRegistry,
      // the libraries are in no deployment record (the TaskManager's code holds their addresses): where the estimate put them
      BatchSettlement: getContractAddress({ from, nonce: BigInt(nonce + POI_DEPLOY_ORDER.indexOf('BatchSettlement')) }),
      TaskManagerGovernance: getContractAddress({ from, nonce: BigInt(nonce + POI_DEPLOY_ORDER.indexOf('TaskManagerGovernance')) }),
      ZkSettlement: getContractAddress({ from, nonce: BigInt(nonce + POI_DEPLOY_ORDER.indexOf('ZkSettlement')) }),
      TaskManager: deployment.taskManager,
      SlashingManager: deployment.slashing
    }
    for (const [i, name] of POI_DEPLOY_ORDER.entries()) {
      // the address the estimate assumed is where deployPoi put it
      assert.ok(isAddressEqual(getContractAddress({ from, nonce: BigInt(nonce + i) }), addressOf[name]), `${name} is not at nonce ${nonce + i}'s address`)
      const tx = await chain.publicClient.getTransaction({ blockNumber: deployment.deployedAtBlock + BigInt(i), index: 0 })
      const { gasUsed, contractAddress } = await chain.publicClient.getTransactionReceipt({ hash: tx.hash })
      assert.ok(contractAddress != null && isAddressEqual(contractAddress, addressOf[name]), `block ${deployment.deployedAtBlock + BigInt(i)} does not deploy ${name}`)
      const estimated = estimate.perContract[name]
      assert.ok(estimated >= gasUsed, `${name}: estimated ${estimated} < used ${gasUsed}`)
      assert.ok(Number(estimated) <= Number(gasUsed) * ESTIMATE_SLACK, `${name}: estimated ${estimated}, used only ${gasUsed}`)
    }
  })

  it('refuses parameters deployPoi would refuse, before asking the chain', async () => {
    await assert.rejects(estimateDeployPoiGas(chain.publicClient, chain.wallets[2].account, { quorumBps: 0 }), DeployError)
    await assert.rejects(estimateDeployPoiGas(chain.publicClient, chain.wallets[2].account, { withdrawalDelay: 1n }), /must exceed maxTaskLife \+ settlementWindow/)
  })
})
