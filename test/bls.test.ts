import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { QuorumCertificate, uint256ToBytes } from '../protocols/wire/index.js'
import {
  AttestationFieldError, BufferedVerifier, GenesisError, InvalidPublicKeyError, InvalidSecretKeyError,
  TaskAggregation, VerifierError, attestationMessage, attestationSignatureSet, blsPublicKeyOf,
  blsSecretKeyFromHex, blsSecretKeyToHex, blsSign, createOperatorSet, decodeSignerBitmap,
  encodeSignerBitmap, generateBlsSecretKey, genesisToJson, loadGenesis, parseGenesis,
  proofOfPossessionMessage, signProofOfPossession, validateBlsPublicKey, verifyCertificate,
  verifyProofOfPossession, verifySignatureSets, writeGenesis, type OperatorSet, type SignatureSet,
  type VerifyCertificateResult
} from '../consensus/index.js'
import { ETHER, TEST_DOMAIN, attest, hash32, makeOperators, operatorAddress, taskResult, type TestOperators } from './consensus-fixtures.js'

const INFINITY_G1 = Uint8Array.from([0xc0, ...new Uint8Array(47)])

function rejected (result: VerifyCertificateResult, reasonPattern: RegExp): void {
  assert.equal(result.ok, false, 'certificate should have been rejected')
  if (!result.ok) assert.match(result.reason, reasonPattern)
}

function randomSets (count: number): SignatureSet[] {
  return Array.from({ length: count }, (_, i) => {
    const sk = generateBlsSecretKey()
    const message = hash32(`message ${i}`)
    return { publicKey: blsPublicKeyOf(sk), message, signature: blsSign(sk, message) }
  })
}

describe('consensus: BLS keys and signatures', () => {
  it('signs an attestation that verifies under the operator key and nowhere else', () => {
    const ops = makeOperators([32n, 32n])
    const result = taskResult('t1', 'cat')
    const att = attest(ops, 0, result)
    assert.equal(att.version, 1)
    assert.equal(att.blsSig.length, 96)
    assert.equal(ops.set.operators[0].blsPublicKey.length, 48)

    const set = attestationSignatureSet(att, ops.set)
    assert.ok(set !== null)
    assert.deepEqual(verifySignatureSets([set]), [true])
    // same signature presented as operator 1's
    assert.deepEqual(verifySignatureSets([{ ...set, publicKey: ops.set.operators[1].blsPublicKey }]), [false])
    // a different result hash is a different message
    const other = attestationMessage(ops.set.domain, { ...att, resultHash: hash32('dog') })
    assert.deepEqual(verifySignatureSets([{ ...set, message: other }]), [false])
  })

  it('binds the attestation message to every field and to the domain', () => {
    const fields = { taskId: hash32('a'), resultHash: hash32('b'), outputRef: hash32('c'), epoch: 7n }
    const base = attestationMessage(TEST_DOMAIN, fields)
    assert.equal(base.length, 32)
    assert.deepEqual(attestationMessage(TEST_DOMAIN, { ...fields }), base)
    const variants = [
      attestationMessage({ ...TEST_DOMAIN, chainId: 1n }, fields),
      attestationMessage({ ...TEST_DOMAIN, taskManager: operatorAddress(9) }, fields),
      attestationMessage(TEST_DOMAIN, { ...fields, taskId: hash32('x') }),
      attestationMessage(TEST_DOMAIN, { ...fields, resultHash: hash32('x') }),
      attestationMessage(TEST_DOMAIN, { ...fields, outputRef: hash32('x') }),
      attestationMessage(TEST_DOMAIN, { ...fields, epoch: 8n })
    ]
    for (const variant of variants) assert.notDeepEqual(variant, base)
    assert.throws(() => attestationMessage(TEST_DOMAIN, { ...fields, taskId: new Uint8Array(31) }), (err: unknown) => err instanceof AttestationFieldError && err.field === 'taskId')
    assert.throws(() => attestationMessage(TEST_DOMAIN, { ...fields, epoch: 1n << 64n }), AttestationFieldError)
  })

  it('rejects invalid public keys and secret keys with typed errors', () => {
    assert.throws(() => { validateBlsPublicKey(INFINITY_G1) }, InvalidPublicKeyError)
    assert.throws(() => { validateBlsPublicKey(new Uint8Array(48).fill(0xaa)) }, InvalidPublicKeyError)
    assert.throws(() => { validateBlsPublicKey(new Uint8Array(47)) }, /48 bytes/)
    validateBlsPublicKey(blsPublicKeyOf(generateBlsSecretKey()))

    const sk = generateBlsSecretKey()
    assert.deepEqual(blsSecretKeyFromHex(blsSecretKeyToHex(sk)), sk)
    assert.throws(() => blsSecretKeyFromHex(`0x${'00'.repeat(32)}`), InvalidSecretKeyError)
    assert.throws(() => blsSecretKeyFromHex(`0x${'ff'.repeat(32)}`), InvalidSecretKeyError)
    assert.throws(() => blsSecretKeyFromHex('0x1234'), InvalidSecretKeyError)
  })

  it('verifies a proof of possession only for its own key and address', () => {
    const sk = generateBlsSecretKey()
    const pk = blsPublicKeyOf(sk)
    const address = operatorAddress(0)
    const pop = signProofOfPossession(sk, address)
    assert.equal(verifyProofOfPossession(pk, address, pop), true)
    assert.equal(verifyProofOfPossession(pk, operatorAddress(1), pop), false, 'other address')
    const otherSk = generateBlsSecretKey()
    assert.equal(verifyProofOfPossession(blsPublicKeyOf(otherSk), address, pop), false, 'other key')
    // a plain signature over the PoP message by someone else's key is not a proof for pk
    assert.equal(verifyProofOfPossession(pk, address, blsSign(otherSk, proofOfPossessionMessage(address, pk))), false)
    // an attestation-style signature over other bytes is not a proof
    assert.equal(verifyProofOfPossession(pk, address, blsSign(sk, hash32('not a pop'))), false)
    assert.equal(verifyProofOfPossession(pk, address, new Uint8Array(96).fill(7)), false, 'garbage bytes')
    assert.equal(verifyProofOfPossession(INFINITY_G1, address, pop), false, 'infinity key')
  })
})

describe('consensus: genesis operator set', () => {
  let ops: TestOperators
  let dir: string

  before(async () => {
    ops = makeOperators([32n, 32n, 16n])
    ops.set.operators[1].peerId = '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo'
    dir = await mkdtemp(join(tmpdir(), 'poi-genesis-'))
  })

  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('round-trips through JSON and a file', async () => {
    const json = JSON.parse(JSON.stringify(genesisToJson(ops.set, ops.proofsOfPossession)))
    assert.equal(json.operators[0].stake, (32n * ETHER).toString())
    const parsed = parseGenesis(json)
    assert.deepEqual(parsed, ops.set)
    assert.equal(parsed.totalStake, 80n * ETHER)

    const path = join(dir, 'genesis.json')
    await writeGenesis(path, ops.set, ops.proofsOfPossession)
    assert.deepEqual(await loadGenesis(path), ops.set)
  })

  function expectGenesisError (mutate: (json: any) => void, field: string, operatorIndex: number | undefined, pattern: RegExp): void {
    const json = JSON.parse(JSON.stringify(genesisToJson(ops.set, ops.proofsOfPossession)))
    mutate(json)
    assert.throws(() => parseGenesis(json), (err: unknown) => {
      assert.ok(err instanceof GenesisError, `expected GenesisError, got ${String(err)}`)
      assert.equal(err.field, field)
      assert.equal(err.operatorIndex, operatorIndex)
      assert.match(err.message, pattern)
      return true
    })
  }

  it('names the field and operator of every invalid entry', () => {
    expectGenesisError(j => { j.operators[2].address = j.operators[0].address.toLowerCase() }, 'operators[2].address', 2, /already operator 0/)
    expectGenesisError(j => { j.operators[1].blsPublicKey = j.operators[0].blsPublicKey }, 'operators[1].blsPublicKey', 1, /already used by operator 0/)
    expectGenesisError(j => { j.operators[1].stake = '0' }, 'operators[1].stake', 1, /greater than zero/)
    expectGenesisError(j => { j.operators[0].stake = 32 }, 'operators[0].stake', 0, /decimal integer string/)
    expectGenesisError(j => { j.operators[2].blsPublicKey = '0x' + Buffer.from(INFINITY_G1).toString('hex') }, 'operators[2].blsPublicKey', 2, /infinity/)
    expectGenesisError(j => { j.operators[0].blsPublicKey = '0x1234' }, 'operators[0].blsPublicKey', 0, /48 bytes/)
    // proofs swapped between operators 0 and 1: both are real signatures, neither is valid for its entry
    expectGenesisError(j => { [j.operators[0].proofOfPossession, j.operators[1].proofOfPossession] = [j.operators[1].proofOfPossession, j.operators[0].proofOfPossession] },
      'operators[0].proofOfPossession', 0, /not a valid proof of possession/)
    expectGenesisError(j => { j.operators[1].peerId = '' }, 'operators[1].peerId', 1, /non-empty/)
    expectGenesisError(j => { j.taskManager = '0x1234' }, 'taskManager', undefined, /address/)
    expectGenesisError(j => { j.chainId = '-1' }, 'chainId', undefined, /decimal/)
    expectGenesisError(j => { j.epoch = (1n << 64n).toString() }, 'epoch', undefined, /out of range/)
    expectGenesisError(j => { j.operators = [] }, 'operators', undefined, /non-empty/)
  })

  it('builds sets from local keys with createOperatorSet, validating each key', () => {
    const sk = generateBlsSecretKey()
    assert.throws(() => createOperatorSet({ epoch: 0n, domain: TEST_DOMAIN, operators: [{ address: operatorAddress(0), blsPublicKey: INFINITY_G1, stake: 1n }] }), GenesisError)
    const set = createOperatorSet({ epoch: 0n, domain: TEST_DOMAIN, operators: [{ address: operatorAddress(0), blsPublicKey: blsPublicKeyOf(sk), stake: 1n }] })
    assert.equal(set.totalStake, 1n)
  })

  it('names the file when loading fails', async () => {
    const missing = join(dir, 'missing.json')
    await assert.rejects(loadGenesis(missing), (err: unknown) => err instanceof GenesisError && err.message.includes(missing))
    const broken = join(dir, 'broken.json')
    await writeFile(broken, '{ "chainId": ')
    await assert.rejects(loadGenesis(broken), (err: unknown) => err instanceof GenesisError && err.message.includes(broken) && /not valid JSON/.test(err.message))
    const zeroStake = join(dir, 'zero-stake.json')
    const json = genesisToJson(ops.set, ops.proofsOfPossession)
    json.operators[2].stake = '0'
    await writeFile(zeroStake, JSON.stringify(json))
    await assert.rejects(loadGenesis(zeroStake), (err: unknown) => err instanceof GenesisError && err.message.startsWith(zeroStake) && err.operatorIndex === 2)
    assert.ok((await readFile(join(dir, 'genesis.json'), 'utf8')).endsWith('\n'))
  })
})

describe('consensus: quorum certificate verification', () => {
  // 4 equal operators; operators 0, 1, 2 sign: 75% of the stake, 3 signers
  let ops: TestOperators
  let qc: QuorumCertificate
  const result = taskResult('qc', 'tabby cat')

  before(() => {
    ops = makeOperators([32n, 32n, 32n, 32n])
    const aggregation = new TaskAggregation({ operatorSet: ops.set, taskId: result.taskId, quorumBps: 6667, deadline: Date.now() + 60_000 })
    for (const i of [0, 1, 2]) assert.equal(aggregation.add(attest(ops, i, result), Date.now()).kind, 'accepted')
    const resultHash = aggregation.quorumReached()
    assert.ok(resultHash !== null)
    qc = aggregation.buildCertificate(resultHash)
  })

  function tampered (changes: Partial<QuorumCertificate>): QuorumCertificate {
    return { ...qc, ...changes }
  }

  it('accepts a QC built from 3 of 4 signers, also after a wire round trip', () => {
    const verified = verifyCertificate(qc, ops.set)
    assert.deepEqual(verified, { ok: true, signers: [0, 1, 2], signedStake: 96n * ETHER })
    assert.deepEqual(qc.signerBitmap, Uint8Array.of(0b0111))
    assert.deepEqual(verifyCertificate(QuorumCertificate.decode(QuorumCertificate.encode(qc)), ops.set), verified)
  })

  it('rejects a bitmap naming another signer (stake kept consistent)', () => {
    rejected(verifyCertificate(tampered({ signerBitmap: Uint8Array.of(0b1011) }), ops.set), /aggregate signature does not verify/)
  })

  it('rejects a bitmap claiming a signer whose signature is not in the aggregate', () => {
    rejected(verifyCertificate(tampered({ signerBitmap: Uint8Array.of(0b1111), signedStake: uint256ToBytes(128n * ETHER) }), ops.set), /aggregate signature does not verify/)
  })

  it('rejects a forged aggregate signature', () => {
    const outsider = generateBlsSecretKey()
    const forged = blsSign(outsider, attestationMessage(ops.set.domain, qc))
    rejected(verifyCertificate(tampered({ aggregateSig: Uint8Array.from(forged) }), ops.set), /aggregate signature does not verify/)
    rejected(verifyCertificate(tampered({ aggregateSig: new Uint8Array(96).fill(3) }), ops.set), /not a valid G2 point/)
    rejected(verifyCertificate(tampered({ aggregateSig: new Uint8Array(10) }), ops.set), /96 bytes/)
  })

  it('rejects the signatures replayed on another task, result or output reference', () => {
    rejected(verifyCertificate(tampered({ taskId: Uint8Array.from(hash32('another task')) }), ops.set), /aggregate signature does not verify/)
    rejected(verifyCertificate(tampered({ resultHash: Uint8Array.from(hash32('dog')) }), ops.set), /aggregate signature does not verify/)
    rejected(verifyCertificate(tampered({ outputRef: Uint8Array.from(hash32('elsewhere')) }), ops.set), /aggregate signature does not verify/)
  })

  it('rejects another epoch', () => {
    rejected(verifyCertificate(tampered({ epoch: 1n }), ops.set), /epoch 1 does not match operator set epoch 0/)
    // same keys registered again for epoch 1: the epoch-0 signatures must not carry over
    const nextEpoch: OperatorSet = { ...ops.set, epoch: 1n }
    rejected(verifyCertificate(tampered({ epoch: 1n }), nextEpoch), /aggregate signature does not verify/)
  })

  it('recomputes the stake instead of trusting the QC', () => {
    rejected(verifyCertificate(tampered({ signedStake: uint256ToBytes(128n * ETHER) }), ops.set), /signedStake .* does not match/)
    rejected(verifyCertificate(tampered({ totalStake: uint256ToBytes(96n * ETHER) }), ops.set), /totalStake .* does not match/)
    rejected(verifyCertificate(tampered({ signedStake: Uint8Array.of(0, 1) }), ops.set), /malformed stake/)
  })

  it('rejects a QC checked against another chain or TaskManager', () => {
    rejected(verifyCertificate(qc, { ...ops.set, domain: { ...ops.set.domain, chainId: 1n } }), /aggregate signature does not verify/)
    rejected(verifyCertificate(qc, { ...ops.set, domain: { ...ops.set.domain, taskManager: operatorAddress(42) } }), /aggregate signature does not verify/)
  })

  it('rejects non-canonical or out-of-range bitmaps, too few signers and too little stake', () => {
    rejected(verifyCertificate(tampered({ signerBitmap: Uint8Array.of(0b0111, 0) }), ops.set), /trailing zero/)
    rejected(verifyCertificate(tampered({ signerBitmap: Uint8Array.of(0b10111) }), ops.set), /operator 4/)
    rejected(verifyCertificate(tampered({ signerBitmap: new Uint8Array(0) }), ops.set), /empty/)
    rejected(verifyCertificate(qc, ops.set, { quorumBps: 7501 }), /below the quorum/)
    assert.equal(verifyCertificate(qc, ops.set, { quorumBps: 7500 }).ok, true, 'exactly 75% meets 7500 bps')
    rejected(verifyCertificate(qc, ops.set, { minSigners: 4 }), /3 signers, at least 4/)
    rejected(verifyCertificate(tampered({ version: 2 }), ops.set), /version 2/)
    rejected(verifyCertificate(tampered({ taskId: new Uint8Array(3) }), ops.set), /taskId must be 32 bytes/)
  })

  it('encodes bitmaps canonically, LSB first', () => {
    assert.deepEqual(encodeSignerBitmap([0, 9]), Uint8Array.of(0b1, 0b10))
    assert.deepEqual(decodeSignerBitmap(Uint8Array.of(0b1, 0b10), 10), { ok: true, signers: [0, 9] })
    assert.equal(decodeSignerBitmap(Uint8Array.of(0b1, 0b10), 9).ok, false)
  })
})

describe('consensus: signature set verification', () => {
  it('finds exactly the one bad set among many', () => {
    const sets = randomSets(16)
    sets[5] = { ...sets[5], message: hash32('tampered') }
    const results = verifySignatureSets(sets)
    assert.deepEqual(results, sets.map((_, i) => i !== 5))
  })

  it('returns false for malformed bytes instead of throwing', () => {
    const [good, other] = randomSets(2)
    const results = verifySignatureSets([
      good,
      { ...other, signature: other.signature.subarray(0, 95) },
      { ...other, publicKey: INFINITY_G1 },
      { ...other, signature: new Uint8Array(96) },
      { ...other, publicKey: new Uint8Array(48).fill(0xaa) }
    ])
    assert.deepEqual(results, [true, false, false, false, false])
    assert.deepEqual(verifySignatureSets([]), [])
  })
})

describe('consensus: BufferedVerifier (worker thread)', () => {
  let verifier: BufferedVerifier | undefined

  afterEach(async () => {
    await verifier?.close()
    verifier = undefined
  })

  it('verifies 50 concurrent sets, two of them bad, off the main thread', async () => {
    verifier = new BufferedVerifier()
    const sets = randomSets(50)
    sets[11] = { ...sets[11], signature: sets[12].signature }
    sets[37] = { ...sets[37], publicKey: new Uint8Array(48).fill(0xaa) }
    const results = await Promise.all(sets.map(async set => await verifier!.verify(set)))
    assert.deepEqual(results, sets.map((_, i) => i !== 11 && i !== 37))
  })

  it('verifies across several workers and small batches, and reports each batch\'s size', async () => {
    const batches: number[] = []
    verifier = new BufferedVerifier({ workers: 2, maxBufferedSets: 4, onBatch: (n) => { batches.push(n) } })
    const sets = randomSets(10)
    sets[0] = { ...sets[0], message: hash32('tampered') }
    const results = await Promise.all(sets.map(async set => await verifier!.verify(set)))
    assert.deepEqual(results, sets.map((_, i) => i !== 0))
    assert.equal(batches.reduce((a, n) => a + n, 0), sets.length, `every set went in one batch: ${batches.join(', ')}`)
    assert.ok(batches.every(n => n >= 1 && n <= 4), `batches of 1 to maxBufferedSets: ${batches.join(', ')}`)
  })

  it('rejects work after close and closes idempotently', async () => {
    verifier = new BufferedVerifier()
    const [set] = randomSets(1)
    const pending = assert.rejects(verifier.verify(set), VerifierError)
    await verifier.close()
    await pending
    await assert.rejects(verifier.verify(set), VerifierError)
    await verifier.close()
  })

})
