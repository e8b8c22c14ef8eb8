/**
 * checkDeployment against a real anvil with two real poi deployments: the right deployment
 * passes; a wrong chain id, swapped addresses, an address without code, a contract of the
 * wrong kind and a second deployment's TaskManager mixed into the first are each refused with
 * the reason a user can act on.
 */
import { strict as assert } from 'node:assert'
import { checkDeployment, deployPoi, DeploymentMismatchError, type Deployment, type DeploymentMismatchReason } from '../contracts/index.js'
import { startPoiChain, type PoiChain } from './helpers/poi-chain.js'

async function refused (p: Promise<unknown>, reason: DeploymentMismatchReason, contract?: string): Promise<DeploymentMismatchError> {
  try {
    await p
  } catch (err) {
    assert.ok(err instanceof DeploymentMismatchError, `expected DeploymentMismatchError, got ${String(err)}`)
    assert.equal(err.reason, reason, err.message)
    if (contract !== undefined) assert.equal(err.contract, contract, err.message)
    return err
  }
  assert.fail(`expected DeploymentMismatchError [${reason}], the deployment was accepted`)
}

describe('checkDeployment: a named deployment against the chain', function () {
  let chain: PoiChain
  /** What a bootstrap node would announce for the first deployment. */
  let first: Deployment
  let second: Deployment

  before(async () => {
    chain = await startPoiChain()
    first = chain.deployment
    second = await deployPoi(chain.wallets[0], chain.publicClient)
  })

  after(async () => {
    await chain?.stop()
  })

  it('accepts a real deployment, with or without its model registry, as fetchNetworkInfo returns it', async () => {
    await checkDeployment(chain.publicClient, first)
    const { modelRegistry: _, ...withoutModels } = first
    await checkDeployment(chain.publicClient, withoutModels)
    const { identityRegistry: _i, validationRegistry: _v, ...withoutErc8004 } = first
    await checkDeployment(chain.publicClient, withoutErc8004)
    await checkDeployment(chain.publicClient, second)
  })

  it('refuses ERC-8004 registries that are not this deployment\'s pair or not registries at all', async () => {
    // the second deployment's validation registry points at the second identity registry
    await refused(checkDeployment(chain.publicClient, { ...first, validationRegistry: second.validationRegistry }), 'VALIDATION_IDENTITY_REGISTRY', 'validationRegistry')
    await refused(checkDeployment(chain.publicClient, { ...first, identityRegistry: second.identityRegistry }), 'VALIDATION_IDENTITY_REGISTRY', 'validationRegistry')
    const { identityRegistry: _, ...noIdentity } = first
    await refused(checkDeployment(chain.publicClient, noIdentity), 'VALIDATION_IDENTITY_REGISTRY', 'validationRegistry')
    await refused(checkDeployment(chain.publicClient, { ...first, validationRegistry: first.taskManager }), 'NOT_A_POI_CONTRACT', 'validationRegistry')
    await refused(checkDeployment(chain.publicClient, { ...first, identityRegistry: chain.wallets[5].account.address }), 'NO_CODE', 'identityRegistry')
    const { validationRegistry: _v, ...identityOnly } = first
    await refused(checkDeployment(chain.publicClient, { ...identityOnly, identityRegistry: first.taskManager }), 'NOT_A_POI_CONTRACT', 'identityRegistry')
  })

  it('deployPoi names the chain it deployed on', async () => {
    assert.equal(first.chainId, await chain.publicClient.getChainId())
  })

  it('refuses a deployment on another chain than the RPC serves', async () => {
    const err = await refused(checkDeployment(chain.publicClient, { ...first, chainId: first.chainId + 1 }), 'WRONG_CHAIN')
    assert.match(err.message, /RPC URL of chain 31338/)
  })

  it('refuses an address without code and one that is not hex', async () => {
    const eoa = chain.wallets[5].account.address
    await refused(checkDeployment(chain.publicClient, { ...first, taskManager: eoa }), 'NO_CODE', 'taskManager')
    await refused(checkDeployment(chain.publicClient, { ...first, modelRegistry: eoa }), 'NO_CODE', 'modelRegistry')
    await refused(checkDeployment(chain.publicClient, { ...first, slashing: '0xnot-an-address' }), 'INVALID_ADDRESS', 'slashing')
  })

  it('refuses swapped task manager and slashing addresses', async () => {
    await refused(checkDeployment(chain.publicClient, { ...first, taskManager: first.slashing, slashing: first.taskManager }), 'REGISTRY_SLASHER', 'registry')
  })

  it('refuses a second deployment\'s contracts mixed into the first', async () => {
    await refused(checkDeployment(chain.publicClient, { ...first, taskManager: second.taskManager }), 'TASK_MANAGER_REGISTRY', 'taskManager')
    await refused(checkDeployment(chain.publicClient, { ...first, slashing: second.slashing }), 'REGISTRY_SLASHER', 'registry')
    // the whole set rooted at another registry but with the first's task manager
    await refused(checkDeployment(chain.publicClient, { ...first, registry: second.registry, slashing: second.slashing }), 'TASK_MANAGER_REGISTRY', 'taskManager')
  })

  it('refuses a contract of the wrong kind and a deployment block past the head', async () => {
    await refused(checkDeployment(chain.publicClient, { ...first, modelRegistry: first.taskManager }), 'NOT_A_POI_CONTRACT', 'modelRegistry')
    await refused(checkDeployment(chain.publicClient, { ...first, taskManager: chain.deployment.modelRegistry }), 'NOT_A_POI_CONTRACT', 'taskManager')
    const head = await chain.publicClient.getBlockNumber()
    await refused(checkDeployment(chain.publicClient, { ...first, deployedAtBlock: head + 1n }), 'DEPLOYED_AFTER_HEAD')
  })
})
