/**
 * The TaskManager as an ERC-8004 validator, on a real anvil with the registries deployPoi deploys:
 * a task that names a validation request gets, when its certificate is accepted, the response
 * 100 with a poi:// URI of the task, the result hash and the tag poi-qc. A task naming a request
 * the registry cannot answer (unknown, or addressed to another validator) still settles: the
 * failure is an event, never a revert. A task that never certifies gets no response.
 */
import assert from 'node:assert/strict'
import { keccak256, parseEventLogs, stringToHex, toBytes, toHex } from 'viem'
import { generateBlsSecretKey } from '../consensus/index.js'
import {
  POI_VALIDATION_TAG, TaskManagerAbi, ValidationRegistryAbi, poiTaskUri, readOperatorSet, readValidationStatus, registerAgent, requestValidation,
  submitCertificate, type OnChainOperatorSet
} from '../contracts/index.js'
import { deposit } from '../contracts/payments.js'
import { ETHER } from './consensus-fixtures.js'
import { makeCertificate, nextEpoch, paidTask, registerAll, resultOf, startPoiChain, type PoiChain, type Wallet } from './helpers/poi-chain.js'

const CHAIN_TIMEOUT_MS = 60_000
const STAKES = [10n, 20n, 30n, 40n].map(s => s * ETHER)
const ALL_SIGNERS = [0, 1, 2, 3]

describe('contracts: the TaskManager answers ERC-8004 validation requests', function () {
  this.timeout(CHAIN_TIMEOUT_MS)
  const keys = STAKES.map(() => generateBlsSecretKey())
  let chain: PoiChain
  let set: OnChainOperatorSet
  let requester: Wallet
  let submitter: Wallet
  let agentId: bigint
  let requests = 0

  /** A fresh validation request by the requester's agent, addressed to `validator`. */
  async function newRequest (validator: `0x${string}`): Promise<`0x${string}`> {
    const requestHash = keccak256(stringToHex(`poi validation request ${requests++}`))
    await requestValidation(requester, chain.publicClient, chain.deployment.validationRegistry, {
      validator, agentId, requestURI: 'https://agent.example/work.json', requestHash
    })
    return requestHash
  }

  before(async () => {
    chain = await startPoiChain({}, { accounts: 8 })
    requester = chain.wallets[7]
    submitter = chain.wallets[6]
    await registerAll(chain, keys, STAKES)
    await nextEpoch(chain)
    set = await readOperatorSet(chain.publicClient, chain.deployment, 1n)
    await deposit(requester, chain.publicClient, chain.deployment.taskManager, ETHER)
    agentId = await registerAgent(requester, chain.publicClient, chain.deployment.identityRegistry, 'https://agent.example/card.json')
  })
  after(async () => { await chain?.stop() })

  it('responds 100 with the task URI, the result hash and tag poi-qc when the certificate is accepted', async () => {
    const requestHash = await newRequest(chain.deployment.taskManager)
    const task = await paidTask(chain, 'validated', { requester: 7, validationRequest: toBytes(requestHash) })
    const result = resultOf(chain, task, 'validated', 'out')
    const before = await readValidationStatus(chain.publicClient, chain.deployment.validationRegistry, requestHash)
    assert.equal(before?.responded, false)

    const { accepted } = await submitCertificate(submitter, chain.publicClient, chain.deployment.taskManager, makeCertificate(set, keys, ALL_SIGNERS, result), set, task)
    assert.equal(accepted, true)
    const status = await readValidationStatus(chain.publicClient, chain.deployment.validationRegistry, requestHash)
    assert.ok(status !== undefined)
    assert.equal(status.responded, true)
    assert.equal(status.response, 100)
    assert.equal(status.tag, POI_VALIDATION_TAG)
    assert.equal(status.responseHash, toHex(result.resultHash))
    assert.equal(status.validator.toLowerCase(), chain.deployment.taskManager.toLowerCase())
    assert.equal(status.agentId, agentId)
    const responses = await chain.publicClient.getContractEvents({
      address: chain.deployment.validationRegistry, abi: ValidationRegistryAbi, eventName: 'ValidationResponse', fromBlock: 0n
    })
    const ours = responses.find(e => e.args.requestHash === requestHash)
    assert.equal(ours?.args.responseURI, poiTaskUri(result.taskId))
  })

  it('still settles a task whose request it may not answer, and says why in an event', async () => {
    for (const [label, requestHash] of [
      ['unknown request', keccak256(stringToHex('never requested'))],
      ['request for another validator', await newRequest(submitter.account.address)]
    ] as const) {
      const task = await paidTask(chain, label, { requester: 7, validationRequest: toBytes(requestHash) })
      const { accepted, receipt } = await submitCertificate(submitter, chain.publicClient, chain.deployment.taskManager, makeCertificate(set, keys, ALL_SIGNERS, resultOf(chain, task, label, 'out')), set, task)
      assert.equal(accepted, true, label)
      const failed = parseEventLogs({ abi: TaskManagerAbi, logs: receipt.logs, eventName: 'ValidationResponseFailed' })
      assert.equal(failed.length, 1, `${label}: one ValidationResponseFailed event`)
      assert.equal(failed[0].args.requestHash, requestHash)
      const status = await readValidationStatus(chain.publicClient, chain.deployment.validationRegistry, requestHash)
      assert.ok(status === undefined || !status.responded, `${label}: no response recorded`)
    }
  })

  it('gives no response to a task that never certified', async () => {
    const requestHash = await newRequest(chain.deployment.taskManager)
    const task = await paidTask(chain, 'no quorum', { requester: 7, validationRequest: toBytes(requestHash) })
    // Two of four operators (30 of 100 ether) cannot meet the quorum: the certificate is refused.
    await assert.rejects(submitCertificate(submitter, chain.publicClient, chain.deployment.taskManager, makeCertificate(set, keys, [0, 1], resultOf(chain, task, 'no quorum', 'out')), set, task))
    const status = await readValidationStatus(chain.publicClient, chain.deployment.validationRegistry, requestHash)
    assert.equal(status?.responded, false)
  })
})
