/**
 * The deployment record's JSON form (deployment files, a node's `chain` setting): what
 * deploymentToJson writes, parseDeployment reads back; anything malformed is refused with the
 * source and the field named.
 */
import { strict as assert } from 'node:assert'
import { DeploymentFormatError, deploymentToJson, parseDeployment, type Deployment } from '../contracts/index.js'

const DEPLOYMENT: Required<Deployment> = {
  chainId: 31337,
  registry: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
  taskManager: '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512',
  slashing: '0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0',
  modelRegistry: '0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9',
  identityRegistry: '0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9',
  validationRegistry: '0x5FC8d32690cc91D4c39d9d3abcBD16989F875707',
  paymentAsset: '0x0000000000000000000000000000000000000000',
  governor: '0x0165878A594ca255338adfa4d48449f69242Eb8F',
  timelock: '0xa513E6E4b8f2a923D98304ec87F64353C4D5C853',
  deployedAtBlock: 1n
}
const SOURCE = 'deployment file /tmp/d.json'

function refused (json: unknown, field: string | undefined, message: RegExp, options: { otherKeys?: string[] } = {}): void {
  assert.throws(() => parseDeployment(json, { source: SOURCE, ...options }), (err: unknown) => {
    assert.ok(err instanceof DeploymentFormatError, String(err))
    assert.equal(err.code, 'ERR_DEPLOYMENT_FORMAT')
    assert.equal(err.field, field)
    assert.match(err.message, message)
    assert.ok(err.message.startsWith(SOURCE), err.message)
    return true
  })
}

describe('deployment record: JSON form', () => {
  it('round-trips through JSON, the block number as a decimal string', () => {
    const json = JSON.parse(JSON.stringify(deploymentToJson(DEPLOYMENT))) as unknown
    assert.deepEqual(json, { ...DEPLOYMENT, deployedAtBlock: '1' })
    assert.deepEqual(parseDeployment(json, { source: SOURCE }), DEPLOYMENT)
    const { modelRegistry: _, ...withoutModels } = DEPLOYMENT
    assert.deepEqual(parseDeployment(deploymentToJson(withoutModels), { source: SOURCE }), withoutModels)
    const { identityRegistry: _i, validationRegistry: _v, ...withoutErc8004 } = DEPLOYMENT
    assert.deepEqual(parseDeployment(deploymentToJson(withoutErc8004), { source: SOURCE }), withoutErc8004)
    assert.ok(!('identityRegistry' in deploymentToJson(withoutErc8004)) && !('validationRegistry' in deploymentToJson(withoutErc8004)))
  })

  it('reads lower-case addresses (returned checksummed), a string chain id and a numeric block', () => {
    const lower = Object.fromEntries(Object.entries(deploymentToJson(DEPLOYMENT)).map(([k, v]) => [k, typeof v === 'string' ? v.toLowerCase() : v]))
    assert.deepEqual(parseDeployment({ ...lower, chainId: '31337', deployedAtBlock: 1 }, { source: SOURCE }), DEPLOYMENT)
  })

  it('takes a default block only where the caller allows one, and keys the caller reads itself', () => {
    const { deployedAtBlock: _, ...noBlock } = deploymentToJson(DEPLOYMENT)
    refused(noBlock, 'deployedAtBlock', /deployedAtBlock must be a block number/)
    assert.equal(parseDeployment(noBlock, { source: SOURCE, defaultDeployedAtBlock: 0n }).deployedAtBlock, 0n)
    const withUrl = { ...deploymentToJson(DEPLOYMENT), rpcUrl: 'http://127.0.0.1:8545' }
    refused(withUrl, 'rpcUrl', /unknown key "rpcUrl"/)
    assert.deepEqual(parseDeployment(withUrl, { source: SOURCE, otherKeys: ['rpcUrl'] }), DEPLOYMENT)
  })

  it('refuses what is not a deployment, naming the field', () => {
    const good = deploymentToJson(DEPLOYMENT)
    refused([], undefined, /must be an object/)
    refused({ ...good, registry: '0x1234' }, 'registry', /registry must be a 0x-prefixed 20-byte contract address, got "0x1234"/)
    refused({ ...good, modelRegistry: 7 }, 'modelRegistry', /modelRegistry must be/)
    refused({ ...good, identityRegistry: '0x12' }, 'identityRegistry', /identityRegistry must be a 0x-prefixed 20-byte contract address/)
    refused({ ...good, validationRegistry: null }, 'validationRegistry', /validationRegistry must be a 0x-prefixed 20-byte contract address/)
    const { identityRegistry: _, ...noIdentity } = good
    refused(noIdentity, 'identityRegistry', /identityRegistry is missing: a validationRegistry is named only with/)
    refused({ ...good, chainId: 0 }, 'chainId', /chainId must be a chain id/)
    refused({ ...good, chainId: 2 ** 53 }, 'chainId', /chainId must be a chain id/)
    refused({ ...good, chainId: '0x7a69' }, 'chainId', /chainId must be a chain id/)
    refused({ ...good, deployedAtBlock: '-1' }, 'deployedAtBlock', /got "-1"/)
    refused({ ...good, deployedAtBlock: 1.5 }, 'deployedAtBlock', /got 1.5/)
  })
})
