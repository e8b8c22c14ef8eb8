/**
 * The ERC-8004 Identity and Validation registries on a real anvil, deployed by deployPoi, through
 * contracts/erc8004.ts: an agent is registered, its owner (or operator) asks a validator to
 * validate, the named validator responds (as the TaskManager will: 100, a poi:// task URI, the
 * result hash, tag poi-qc), and the status and summary views report it. Every bad input is
 * refused with its named custom error, both in simulation and when actually mined, and the
 * registry's state is the same afterwards.
 */
import assert from 'node:assert/strict'
import { getAddress, keccak256, parseEventLogs, stringToHex, toHex, type TransactionReceipt } from 'viem'
import {
  Erc8004Error, IdentityRegistryAbi, MAX_VALIDATION_RESPONSE, POI_VALIDATION_TAG, ValidationRegistryAbi, poiTaskUri, readValidationStatus,
  readValidationSummary, registerAgent, requestValidation, respondToValidation, type Erc8004ErrorReason, type ValidationStatus
} from '../contracts/index.js'
import { expectRevert, startPoiChain, type PoiChain, type Wallet } from './helpers/poi-chain.js'

const CHAIN_TIMEOUT_MS = 60_000
/** Gas for a transaction sent without estimation, so a refused call is mined (and reverts) rather than stopped by eth_estimateGas. */
const FORCED_GAS = 500_000n
/**
 * Upper bounds, measured with solc 0.8.37, via IR, 200 runs: an agent's first request writes six
 * fresh slots (the packed request slot, the agent id, and the length and first entry of the
 * agent's and the validator's lists): 165,536 measured; a first response writes the response hash
 * and the tag (2 fresh slots) and rewrites the packed slot: 81,716 measured (41,916 for a later one).
 */
const REQUEST_GAS_BOUND = 175_000n
const RESPONSE_GAS_BOUND = 90_000n
const ZERO_HASH = `0x${'00'.repeat(32)}` as const

let requests = 0
/** A fresh request hash: keccak256 of a request payload, as the ERC asks. */
function newRequestHash (): `0x${string}` {
  return keccak256(stringToHex(JSON.stringify({ request: requests++, test: 'erc8004' })))
}

async function expectRefusal (action: Promise<unknown>, reason: Erc8004ErrorReason): Promise<Erc8004Error> {
  try {
    await action
  } catch (err) {
    assert.ok(err instanceof Erc8004Error, `expected Erc8004Error ${reason}, got ${String(err)}`)
    assert.equal(err.reason, reason, err.message)
    return err
  }
  assert.fail(`expected Erc8004Error ${reason}, but the call succeeded`)
}

describe('contracts: ERC-8004 identity and validation registries', function () {
  this.timeout(CHAIN_TIMEOUT_MS)
  let chain: PoiChain
  let owner: Wallet
  let operator: Wallet
  let validator: Wallet
  let otherValidator: Wallet
  let stranger: Wallet
  /** Never approved for anything by anyone. */
  let outsider: Wallet
  const identity = (): `0x${string}` => chain.deployment.identityRegistry
  const validation = (): `0x${string}` => chain.deployment.validationRegistry

  before(async () => {
    chain = await startPoiChain({}, { accounts: 7 })
    ;[, owner, operator, validator, otherValidator, stranger, outsider] = chain.wallets
  })
  after(async () => { await chain?.stop() })

  /** What the registry holds about `agentId` and `hashes`: compared before and after a refused call. */
  async function snapshot (agentId: bigint, hashes: ReadonlyArray<`0x${string}`>): Promise<unknown> {
    return {
      statuses: await Promise.all(hashes.map(async h => await readValidationStatus(chain.publicClient, validation(), h))),
      agent: await chain.publicClient.readContract({ address: validation(), abi: ValidationRegistryAbi, functionName: 'getAgentValidations', args: [agentId] }),
      validator: await chain.publicClient.readContract({ address: validation(), abi: ValidationRegistryAbi, functionName: 'getValidatorRequests', args: [validator.account.address] }),
      summary: await readValidationSummary(chain.publicClient, validation(), agentId),
      owner: await chain.publicClient.readContract({ address: identity(), abi: IdentityRegistryAbi, functionName: 'ownerOf', args: [agentId] })
    }
  }

  /**
   * `send(gas)` must be refused with `errorName`: in simulation (eth_estimateGas), and when mined
   * with forced gas (status reverted); the state of `agentId` and `hashes` is the same afterwards.
   */
  async function refusedOnChain (
    send: (gas?: bigint) => Promise<`0x${string}`>, errorName: string, agentId: bigint, hashes: ReadonlyArray<`0x${string}`>
  ): Promise<readonly unknown[]> {
    const before = await snapshot(agentId, hashes)
    const args = await expectRevert(send(), errorName)
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash: await send(FORCED_GAS) })
    assert.equal(receipt.status, 'reverted', `${errorName}: the forced transaction was mined without reverting`)
    assert.deepEqual(await snapshot(agentId, hashes), before, `${errorName}: the refused call changed the registry`)
    return args
  }

  const request = (by: Wallet, validatorAddress: `0x${string}`, agentId: bigint, requestURI: string, requestHash: `0x${string}`) =>
    async (gas?: bigint) => await by.writeContract({
      address: validation(), abi: ValidationRegistryAbi, functionName: 'validationRequest', args: [validatorAddress, agentId, requestURI, requestHash], gas
    })
  const respond = (by: Wallet, requestHash: `0x${string}`, response: number, tag = POI_VALIDATION_TAG) =>
    async (gas?: bigint) => await by.writeContract({
      address: validation(), abi: ValidationRegistryAbi, functionName: 'validationResponse', args: [requestHash, response, 'poi://x', ZERO_HASH, tag], gas
    })

  async function blockTime (receipt: TransactionReceipt): Promise<bigint> {
    return (await chain.publicClient.getBlock({ blockNumber: receipt.blockNumber })).timestamp
  }

  it('deployPoi deploys the identity registry and a validation registry over it', async () => {
    const { identityRegistry, validationRegistry, registry, taskManager, slashing, modelRegistry } = chain.deployment
    assert.equal(new Set([registry, taskManager, slashing, modelRegistry, identityRegistry, validationRegistry]).size, 6)
    assert.equal(getAddress(await chain.publicClient.readContract({ address: validationRegistry, abi: ValidationRegistryAbi, functionName: 'getIdentityRegistry' })), getAddress(identityRegistry))
    // ERC-721 (0x80ac58cd) with metadata (0x5b5e139f), as the ERC's "ERC-721 with the URIStorage extension" asks
    for (const id of ['0x80ac58cd', '0x5b5e139f'] as const) {
      assert.equal(await chain.publicClient.readContract({ address: identityRegistry, abi: IdentityRegistryAbi, functionName: 'supportsInterface', args: [id] }), true, id)
    }
  })

  it('registers agents with incremental ids, the caller as owner and the agentURI as tokenURI', async () => {
    const first = await registerAgent(owner, chain.publicClient, identity(), 'ipfs://agent-card-1')
    const second = await registerAgent(owner, chain.publicClient, identity())
    assert.equal(second, first + 1n)
    assert.equal(await chain.publicClient.readContract({ address: identity(), abi: IdentityRegistryAbi, functionName: 'ownerOf', args: [first] }), owner.account.address)
    assert.equal(await chain.publicClient.readContract({ address: identity(), abi: IdentityRegistryAbi, functionName: 'tokenURI', args: [first] }), 'ipfs://agent-card-1')
    assert.equal(await chain.publicClient.readContract({ address: identity(), abi: IdentityRegistryAbi, functionName: 'tokenURI', args: [second] }), '')

    // register() (no URI) emits Registered with an empty URI; the owner sets it later with setAgentURI
    const hash = await stranger.writeContract({ address: identity(), abi: IdentityRegistryAbi, functionName: 'register', args: [] })
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash })
    const [registered] = parseEventLogs({ abi: IdentityRegistryAbi, logs: receipt.logs, eventName: 'Registered' })
    assert.deepEqual(registered.args, { agentId: second + 1n, agentURI: '', owner: stranger.account.address })
    const set = await stranger.writeContract({ address: identity(), abi: IdentityRegistryAbi, functionName: 'setAgentURI', args: [second + 1n, 'https://example.org/agent.json'] })
    const [updated] = parseEventLogs({ abi: IdentityRegistryAbi, logs: (await chain.publicClient.waitForTransactionReceipt({ hash: set })).logs, eventName: 'URIUpdated' })
    assert.deepEqual(updated.args, { agentId: second + 1n, newURI: 'https://example.org/agent.json', updatedBy: stranger.account.address })
    const args = await expectRevert(owner.writeContract({ address: identity(), abi: IdentityRegistryAbi, functionName: 'setAgentURI', args: [second + 1n, 'https://evil'] }), 'NotAgentOwnerOrOperator')
    assert.deepEqual(args, [second + 1n, owner.account.address])
  })

  it('records a request from the agent\'s owner, the named validator\'s response, and reports both', async () => {
    const agentId = await registerAgent(owner, chain.publicClient, identity(), 'ipfs://agent-card')
    const requestHash = newRequestHash()
    const taskId = keccak256(toHex('a task'))
    const requested = await requestValidation(owner, chain.publicClient, validation(), { validator: validator.account.address, agentId, requestURI: 'ipfs://request', requestHash })
    assert.ok(requested.gasUsed < REQUEST_GAS_BOUND, `validationRequest used ${requested.gasUsed} gas`)
    const [requestEvent] = parseEventLogs({ abi: ValidationRegistryAbi, logs: requested.logs, eventName: 'ValidationRequest' })
    assert.deepEqual(requestEvent.args, { validatorAddress: validator.account.address, agentId, requestURI: 'ipfs://request', requestHash })
    // the ERC's indexed fields: validatorAddress, agentId and requestHash are topics
    assert.deepEqual(requestEvent.topics.slice(1), [
      `0x${validator.account.address.slice(2).toLowerCase().padStart(64, '0')}`, toHex(agentId, { size: 32 }), requestHash
    ])

    const pending: ValidationStatus = {
      validator: validator.account.address, agentId, response: 0, responseHash: ZERO_HASH, tag: '', lastUpdate: await blockTime(requested), responded: false
    }
    assert.deepEqual(await readValidationStatus(chain.publicClient, validation(), requestHash), pending)
    assert.deepEqual(await readValidationSummary(chain.publicClient, validation(), agentId), { count: 0n, averageResponse: 0 })

    const resultHash = keccak256(toHex('the result'))
    const responded = await respondToValidation(validator, chain.publicClient, validation(), {
      requestHash, response: MAX_VALIDATION_RESPONSE, responseURI: poiTaskUri(taskId), responseHash: resultHash, tag: POI_VALIDATION_TAG
    })
    assert.ok(responded.gasUsed < RESPONSE_GAS_BOUND, `validationResponse used ${responded.gasUsed} gas`)
    const [responseEvent] = parseEventLogs({ abi: ValidationRegistryAbi, logs: responded.logs, eventName: 'ValidationResponse' })
    assert.deepEqual(responseEvent.args, {
      validatorAddress: validator.account.address, agentId, requestHash, response: 100, responseURI: `poi://task/${taskId}`, responseHash: resultHash, tag: 'poi-qc'
    })
    assert.equal(responseEvent.topics[3], requestHash)

    assert.deepEqual(await readValidationStatus(chain.publicClient, validation(), requestHash), {
      ...pending, response: 100, responseHash: resultHash, tag: 'poi-qc', lastUpdate: await blockTime(responded), responded: true
    })
    assert.deepEqual(await readValidationSummary(chain.publicClient, validation(), agentId), { count: 1n, averageResponse: 100 })
    assert.deepEqual(await chain.publicClient.readContract({ address: validation(), abi: ValidationRegistryAbi, functionName: 'getAgentValidations', args: [agentId] }), [requestHash])
    const ofValidator = await chain.publicClient.readContract({ address: validation(), abi: ValidationRegistryAbi, functionName: 'getValidatorRequests', args: [validator.account.address] })
    assert.equal(ofValidator[ofValidator.length - 1], requestHash)
  })

  it('summarises over responded requests, filtered by validator and tag; a new response replaces the last', async () => {
    const agentId = await registerAgent(owner, chain.publicClient, identity())
    const [a, b, c] = [newRequestHash(), newRequestHash(), newRequestHash()]
    await requestValidation(owner, chain.publicClient, validation(), { validator: validator.account.address, agentId, requestURI: 'ipfs://a', requestHash: a })
    await requestValidation(owner, chain.publicClient, validation(), { validator: otherValidator.account.address, agentId, requestURI: 'ipfs://b', requestHash: b })
    await requestValidation(owner, chain.publicClient, validation(), { validator: validator.account.address, agentId, requestURI: 'ipfs://c', requestHash: c })
    await respondToValidation(validator, chain.publicClient, validation(), { requestHash: a, response: 100, tag: 'poi-qc' })
    await respondToValidation(otherValidator, chain.publicClient, validation(), { requestHash: b, response: 41, tag: 'soft' })
    // c is never answered: it counts nowhere

    const summary = async (filters: { validators?: Array<`0x${string}`>, tag?: string } = {}): Promise<unknown> =>
      await readValidationSummary(chain.publicClient, validation(), agentId, filters)
    assert.deepEqual(await summary(), { count: 2n, averageResponse: 70 }) // (100 + 41) / 2 rounded down
    assert.deepEqual(await summary({ validators: [validator.account.address] }), { count: 1n, averageResponse: 100 })
    assert.deepEqual(await summary({ validators: [stranger.account.address, otherValidator.account.address] }), { count: 1n, averageResponse: 41 })
    assert.deepEqual(await summary({ tag: 'soft' }), { count: 1n, averageResponse: 41 })
    assert.deepEqual(await summary({ tag: 'poi-qc', validators: [otherValidator.account.address] }), { count: 0n, averageResponse: 0 })

    // progressive validation: the validator responds again (hard finality); the latest counts once
    await respondToValidation(otherValidator, chain.publicClient, validation(), { requestHash: b, response: 0, tag: 'hard' })
    assert.deepEqual(await summary(), { count: 2n, averageResponse: 50 })
    assert.deepEqual(await summary({ tag: 'soft' }), { count: 0n, averageResponse: 0 })
    const status = await readValidationStatus(chain.publicClient, validation(), b)
    assert.equal(status?.response, 0)
    assert.equal(status?.responded, true, 'a response of 0 is a failed validation, not a missing one')
    assert.equal((await readValidationStatus(chain.publicClient, validation(), c))?.responded, false)
    assert.deepEqual(await chain.publicClient.readContract({ address: validation(), abi: ValidationRegistryAbi, functionName: 'getAgentValidations', args: [agentId] }), [a, b, c])
  })

  it('lets approved operators request for an agent, and its owner only while it owns it', async () => {
    const agentId = await registerAgent(owner, chain.publicClient, identity())
    const forAgent = (by: Wallet): Promise<TransactionReceipt> =>
      requestValidation(by, chain.publicClient, validation(), { validator: validator.account.address, agentId, requestURI: 'ipfs://op', requestHash: newRequestHash() })

    await expectRefusal(forAgent(operator), 'NotAgentOwnerOrOperator')
    await chain.publicClient.waitForTransactionReceipt({ hash: await owner.writeContract({ address: identity(), abi: IdentityRegistryAbi, functionName: 'approve', args: [operator.account.address, agentId] }) })
    await forAgent(operator)
    await expectRefusal(forAgent(stranger), 'NotAgentOwnerOrOperator')
    await chain.publicClient.waitForTransactionReceipt({ hash: await owner.writeContract({ address: identity(), abi: IdentityRegistryAbi, functionName: 'setApprovalForAll', args: [stranger.account.address, true] }) })
    await forAgent(stranger)

    await chain.publicClient.waitForTransactionReceipt({
      hash: await owner.writeContract({ address: identity(), abi: IdentityRegistryAbi, functionName: 'transferFrom', args: [owner.account.address, validator.account.address, agentId] })
    })
    const refused = await expectRefusal(forAgent(owner), 'NotAgentOwnerOrOperator')
    assert.match(refused.message, new RegExp(`account ${owner.account.address} neither owns agent ${agentId}`))
    await expectRefusal(forAgent(operator), 'NotAgentOwnerOrOperator') // a token approval ends with the transfer
    await forAgent(validator)
    await chain.publicClient.waitForTransactionReceipt({ hash: await owner.writeContract({ address: identity(), abi: IdentityRegistryAbi, functionName: 'setApprovalForAll', args: [stranger.account.address, false] }) })
    const ownersNext = await registerAgent(owner, chain.publicClient, identity())
    await expectRefusal(requestValidation(stranger, chain.publicClient, validation(), { validator: validator.account.address, agentId: ownersNext, requestURI: 'ipfs://op', requestHash: newRequestHash() }), 'NotAgentOwnerOrOperator')
  })

  it('refuses every bad request with its named error and changes nothing', async () => {
    const agentId = await registerAgent(owner, chain.publicClient, identity())
    const taken = newRequestHash()
    await requestValidation(owner, chain.publicClient, validation(), { validator: validator.account.address, agentId, requestURI: 'ipfs://taken', requestHash: taken })
    const fresh = newRequestHash()
    const v = validator.account.address

    assert.deepEqual(await refusedOnChain(request(outsider, v, agentId, 'ipfs://r', fresh), 'NotAgentOwnerOrOperator', agentId, [taken, fresh]), [agentId, outsider.account.address])
    assert.deepEqual(await refusedOnChain(request(owner, otherValidator.account.address, agentId, 'ipfs://again', taken), 'RequestExists', agentId, [taken, fresh]), [taken])
    assert.deepEqual(await refusedOnChain(request(owner, v, 10_000n, 'ipfs://r', fresh), 'UnknownAgent', agentId, [taken, fresh]), [10_000n])
    await refusedOnChain(request(owner, '0x0000000000000000000000000000000000000000', agentId, 'ipfs://r', fresh), 'ZeroValidator', agentId, [taken, fresh])
    await refusedOnChain(request(owner, v, agentId, 'ipfs://r', ZERO_HASH), 'ZeroRequestHash', agentId, [taken, fresh])
    await refusedOnChain(request(owner, v, agentId, '', fresh), 'EmptyRequestURI', agentId, [taken, fresh])
    assert.equal(await readValidationStatus(chain.publicClient, validation(), fresh), undefined, 'no refused request was recorded')

    // through the helper, a refusal is an Erc8004Error a caller can branch on
    const err = await expectRefusal(requestValidation(owner, chain.publicClient, validation(), { validator: v, agentId, requestURI: 'ipfs://x', requestHash: taken }), 'RequestExists')
    assert.match(err.message, /exists already/)
  })

  it('refuses every bad response with its named error and changes nothing', async () => {
    const agentId = await registerAgent(owner, chain.publicClient, identity())
    const requestHash = newRequestHash()
    await requestValidation(owner, chain.publicClient, validation(), { validator: validator.account.address, agentId, requestURI: 'ipfs://q', requestHash })
    await respondToValidation(validator, chain.publicClient, validation(), { requestHash, response: 80, tag: 'first' })
    const unknown = newRequestHash()

    assert.deepEqual(await refusedOnChain(respond(otherValidator, requestHash, 100), 'NotRequestValidator', agentId, [requestHash]),
      [requestHash, validator.account.address, otherValidator.account.address])
    assert.deepEqual(await refusedOnChain(respond(owner, requestHash, 100), 'NotRequestValidator', agentId, [requestHash]),
      [requestHash, validator.account.address, owner.account.address])
    assert.deepEqual(await refusedOnChain(respond(validator, requestHash, 101), 'ResponseOutOfRange', agentId, [requestHash]), [101, 100])
    assert.deepEqual(await refusedOnChain(respond(validator, requestHash, 255), 'ResponseOutOfRange', agentId, [requestHash]), [255, 100])
    assert.deepEqual(await refusedOnChain(respond(validator, unknown, 100), 'UnknownRequest', agentId, [requestHash]), [unknown])

    const status = await readValidationStatus(chain.publicClient, validation(), requestHash)
    assert.equal(status?.response, 80)
    assert.equal(status?.tag, 'first')
    assert.equal(await readValidationStatus(chain.publicClient, validation(), unknown), undefined)
    await expectRevert(chain.publicClient.readContract({ address: validation(), abi: ValidationRegistryAbi, functionName: 'getValidationStatus', args: [unknown] }), 'UnknownRequest')
    await expectRefusal(respondToValidation(validator, chain.publicClient, validation(), { requestHash, response: 101 }), 'ResponseOutOfRange')
  })

  it('names a task as poi://task/0x<64 hex> and refuses what is not a 32-byte task id', () => {
    const taskId = new Uint8Array(32).map((_, i) => i)
    assert.equal(poiTaskUri(taskId), 'poi://task/0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f')
    assert.equal(poiTaskUri(`0x${'AB'.repeat(32)}`), `poi://task/0x${'ab'.repeat(32)}`)
    for (const bad of [new Uint8Array(31), `0x${'ab'.repeat(33)}`, '0xzz'] as const) {
      assert.throws(() => poiTaskUri(bad as Uint8Array | `0x${string}`), (err: unknown) => err instanceof Erc8004Error && err.reason === 'INVALID_TASK_ID')
    }
  })
})
