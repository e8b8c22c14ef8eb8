/**
 * The on-chain BLS12-381 library (contracts/src/BLS12381.sol, through BlsHarness) against the
 * off-chain one (@chainsafe/bls, blst) on a real anvil chain with the EIP-2537 precompiles:
 * both must hash every message to the same G2 point and agree on every signature.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import bls from '../consensus/bls.js'
import {
  BaseError, ContractFunctionRevertedError, createPublicClient, createWalletClient, http, toHex,
  type Hex, type PublicClient
} from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { foundry } from 'viem/chains'
import { ANVIL_PRIVATE_KEYS, BlsHarnessAbi, BlsHarnessBytecode, startAnvil, type Anvil } from '../contracts/index.js'
import {
  Eip2537EncodingError, blsPublicKeyOf, blsSecretKeyFromBytes, blsSign, decodeG1, encodeG1, encodeG2, g1FromEip2537,
  g1ToEip2537, g2FromEip2537, g2ToEip2537, generateBlsSecretKey, proofOfPossessionMessage, signProofOfPossession,
  type G1Point, type G2Point
} from '../consensus/index.js'

const POP_DST = 'BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_'
/** Random 32-byte digests on top of the edge-case lengths below: ≥ 50 vectors in all. */
const RANDOM_DIGESTS = 40
/** Lengths around the SHA-256 block (64), the word (32) and the one-byte boundaries of expand_message_xmd. */
const EDGE_LENGTHS = [0, 1, 31, 32, 33, 63, 64, 65, 111, 255, 256, 300, 1_000, 4_096]
/** Aggregate size for the aggregate-signature test. */
const AGGREGATE_SIZE = 5
/**
 * Gas budget of the library calls on the QC hot path (TaskManager's goal is < 250,000 per QC):
 * hash-to-curve is 2 × MAP_FP2_TO_G2 (23,800) + G2ADD (600) + SHA-256/MODEXP; verify adds the
 * 2-pair pairing check (102,900).
 */
const HASH_TO_G2_GAS_BUDGET = 55_000
const VERIFY_GAS_BUDGET = 160_000

const INFINITY_G1: G1Point = decodeG1(new Uint8Array(128))

/** H(m) computed off-chain: a signature with secret key 1 is 1·H(m). */
const SECRET_KEY_ONE = blsSecretKeyFromBytes(Uint8Array.from({ length: 32 }, (_, i) => (i === 31 ? 1 : 0)))
function offChainHashToG2 (message: Uint8Array): G2Point {
  return g2ToEip2537(blsSign(SECRET_KEY_ONE, message))
}

/** A compressed point on the curve (G1: 48 bytes, G2: 96 bytes) that is NOT in the prime-order subgroup. */
function pointOutsideSubgroup (length: 48 | 96): Uint8Array {
  for (;;) {
    const bytes = randomBytes(length)
    // compressed flag, no infinity flag, x below p (top nibble small enough)
    bytes[0] = 0x80 | (bytes[0] & 0x0f)
    const decode = length === 48
      ? (validate: boolean) => bls.PublicKey.fromBytes(bytes, undefined, validate)
      : (validate: boolean) => bls.Signature.fromBytes(bytes, undefined, validate)
    try {
      decode(false) // on the curve: x³ + b is a square (about half of all x)
    } catch {
      continue
    }
    try {
      decode(true)
    } catch {
      return bytes // on the curve, outside the subgroup (cofactor ≫ 1: almost every point)
    }
  }
}

async function assertRevertsWith (call: Promise<unknown>, errorName: string): Promise<void> {
  await assert.rejects(call, (err: unknown) => {
    const revert = err instanceof BaseError ? err.walk(e => e instanceof ContractFunctionRevertedError) : null
    assert.ok(revert instanceof ContractFunctionRevertedError, `expected a revert with ${errorName}, got ${String(err)}`)
    assert.equal(revert.data?.errorName, errorName)
    return true
  })
}

describe('consensus: EIP-2537 encodings', () => {
  it('round-trips keys and signatures through the EIP-2537 struct and raw bytes', () => {
    const sk = generateBlsSecretKey()
    const pk = blsPublicKeyOf(sk)
    const sig = blsSign(sk, randomBytes(32))
    const p1 = g1ToEip2537(pk)
    const p2 = g2ToEip2537(sig)
    assert.deepEqual(g1FromEip2537(p1), pk)
    assert.deepEqual(g2FromEip2537(p2), sig)
    assert.deepEqual(g1FromEip2537(encodeG1(pk)), pk)
    assert.deepEqual(g2FromEip2537(encodeG2(sig)), sig)
    assert.deepEqual(encodeG1(p1), encodeG1(pk))
    for (const word of [p1.x_a, p1.y_a, p2.x_c0_a, p2.x_c1_a, p2.y_c0_a, p2.y_c1_a]) {
      assert.match(word, /^0x0{32}[0-9a-f]{32}$/, 'the high word of an Fp has 16 zero bytes')
    }
    // G1 generator (pubkey of sk = 1): x is the well-known constant
    assert.equal(g1ToEip2537(blsPublicKeyOf(SECRET_KEY_ONE)).x_b, '0xc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb')
  })

  it('maps the point at infinity to all zeros and back', () => {
    const infG1 = Uint8Array.from([0xc0, ...new Uint8Array(47)])
    const infG2 = Uint8Array.from([0xc0, ...new Uint8Array(95)])
    assert.deepEqual(encodeG1(infG1), new Uint8Array(128))
    assert.deepEqual(encodeG2(infG2), new Uint8Array(256))
    assert.deepEqual(g1FromEip2537(new Uint8Array(128)), infG1)
    assert.deepEqual(g2FromEip2537(new Uint8Array(256)), infG2)
  })

  it('rejects wrong lengths, non-zero padding and points off the curve with Eip2537EncodingError', () => {
    const pk = blsPublicKeyOf(generateBlsSecretKey())
    const isEncodingError = (group: 'G1' | 'G2') => (err: unknown) => err instanceof Eip2537EncodingError && err.group === group
    assert.throws(() => g1ToEip2537(pk.subarray(1)), isEncodingError('G1'))
    assert.throws(() => g2ToEip2537(new Uint8Array(95)), isEncodingError('G2'))
    assert.throws(() => g1FromEip2537(new Uint8Array(127)), /128 bytes/)
    assert.throws(() => g1ToEip2537(new Uint8Array(48).fill(0xaa)), isEncodingError('G1'))
    const padded = encodeG1(pk)
    padded[0] = 1
    assert.throws(() => g1FromEip2537(padded), /top 16 bytes/)
    const offCurve = encodeG1(pk)
    offCurve[127] ^= 1
    assert.throws(() => g1FromEip2537(offCurve), /not a point on the curve/)
    const sig = encodeG2(blsSign(generateBlsSecretKey(), randomBytes(32)))
    sig[255] ^= 1
    assert.throws(() => g2FromEip2537(sig), isEncodingError('G2'))
    assert.throws(() => encodeG1({ ...g1ToEip2537(pk), x_a: '0x12' }), /32-byte hex/)
  })
})

describe('contracts: BLS12381 library on anvil (EIP-2537)', function () {
  let anvil: Anvil
  let client: PublicClient
  let harness: Hex

  const read = {
    hashToG2: async (m: Uint8Array) => await client.readContract({ address: harness, abi: BlsHarnessAbi, functionName: 'hashToG2', args: [toHex(m)] }),
    verify: async (pk: G1Point, m: Uint8Array, sig: G2Point) =>
      await client.readContract({ address: harness, abi: BlsHarnessAbi, functionName: 'verify', args: [pk, toHex(m), sig] }),
    g1Add: async (a: G1Point, b: G1Point) => await client.readContract({ address: harness, abi: BlsHarnessAbi, functionName: 'g1Add', args: [a, b] }),
    g1Sub: async (a: G1Point, b: G1Point) => await client.readContract({ address: harness, abi: BlsHarnessAbi, functionName: 'g1Sub', args: [a, b] }),
    g1Negate: async (p: G1Point) => await client.readContract({ address: harness, abi: BlsHarnessAbi, functionName: 'g1Negate', args: [p] }),
    isInfinity: async (p: G1Point) => await client.readContract({ address: harness, abi: BlsHarnessAbi, functionName: 'isInfinity', args: [p] })
  }

  before(async function () {
    anvil = await startAnvil()
    client = createPublicClient({ transport: http(anvil.rpcUrl), chain: foundry })
    const wallet = createWalletClient({ account: privateKeyToAccount(ANVIL_PRIVATE_KEYS[0]), transport: http(anvil.rpcUrl), chain: foundry })
    const hash = await wallet.deployContract({ abi: BlsHarnessAbi, bytecode: BlsHarnessBytecode })
    const receipt = await client.waitForTransactionReceipt({ hash })
    assert.ok(receipt.contractAddress != null)
    harness = receipt.contractAddress
  })

  after(async () => {
    await anvil?.stop()
  })

  it('hashes to G2 exactly as blst does, for every message length', async () => {
    assert.equal(
      await client.readContract({ address: harness, abi: BlsHarnessAbi, functionName: 'signatureDst' }),
      toHex(new TextEncoder().encode(POP_DST))
    )
    const messages = [
      ...EDGE_LENGTHS.map(n => randomBytes(n)),
      new Uint8Array(32),
      new Uint8Array(32).fill(0xff),
      ...Array.from({ length: RANDOM_DIGESTS }, () => randomBytes(32))
    ]
    assert.ok(messages.length >= 50)
    const onChain = await Promise.all(messages.map(read.hashToG2))
    messages.forEach((m, i) => {
      assert.deepEqual(onChain[i], offChainHashToG2(m), `H(m) differs for the ${m.length}-byte message ${toHex(m).slice(0, 20)}…`)
    })
  })

  it('verifies a blst signature and rejects it under another key or message', async () => {
    const sk = generateBlsSecretKey()
    const pk = g1ToEip2537(blsPublicKeyOf(sk))
    const message = randomBytes(32)
    const sig = g2ToEip2537(blsSign(sk, message))
    assert.equal(await read.verify(pk, message, sig), true)
    assert.equal(await read.verify(g1ToEip2537(blsPublicKeyOf(generateBlsSecretKey())), message, sig), false, 'other key')
    assert.equal(await read.verify(pk, randomBytes(32), sig), false, 'other message')
    assert.equal(await read.verify(pk, message, g2ToEip2537(blsSign(generateBlsSecretKey(), message))), false, 'signed by another key')
    // the infinity key would pair to 1 with the infinity signature for any message
    assert.equal(await read.verify(INFINITY_G1, message, g2ToEip2537(Uint8Array.from([0xc0, ...new Uint8Array(95)]))), false, 'infinity key')
  })

  it('verifies a proof of possession over the registry message layout', async () => {
    const sk = generateBlsSecretKey()
    const pkBytes = blsPublicKeyOf(sk)
    const operator = privateKeyToAccount(ANVIL_PRIVATE_KEYS[1]).address
    const pop = g2ToEip2537(signProofOfPossession(sk, operator))
    assert.equal(await read.verify(g1ToEip2537(pkBytes), proofOfPossessionMessage(operator, pkBytes), pop), true)
    const other = privateKeyToAccount(ANVIL_PRIVATE_KEYS[2]).address
    assert.equal(await read.verify(g1ToEip2537(pkBytes), proofOfPossessionMessage(other, pkBytes), pop), false)
  })

  it('reverts InvalidPoint for a signature or key outside the subgroup or off the curve', async () => {
    const sk = generateBlsSecretKey()
    const pk = g1ToEip2537(blsPublicKeyOf(sk))
    const message = randomBytes(32)
    const sig = g2ToEip2537(blsSign(sk, message))

    const rogueSig = g2ToEip2537(pointOutsideSubgroup(96))
    await assertRevertsWith(read.verify(pk, message, rogueSig), 'InvalidPoint')
    const rogueKey = g1ToEip2537(pointOutsideSubgroup(48))
    await assertRevertsWith(read.verify(rogueKey, message, sig), 'InvalidPoint')

    const offCurveSig = { ...sig, y_c0_b: toHex(BigInt(sig.y_c0_b) ^ 1n, { size: 32 }) }
    await assertRevertsWith(read.verify(pk, message, offCurveSig), 'InvalidPoint')
    const nonCanonical = { ...sig, x_c0_a: toHex(1n << 200n, { size: 32 }) }
    await assertRevertsWith(read.verify(pk, message, nonCanonical), 'InvalidPoint')
  })

  it('aggregates keys with g1Add and removes one with g1Sub', async () => {
    const sks = Array.from({ length: AGGREGATE_SIZE }, () => generateBlsSecretKey())
    const pks = sks.map(blsPublicKeyOf)
    const message = randomBytes(32)
    const sigs = sks.map(sk => blsSign(sk, message))

    let apk = g1ToEip2537(pks[0])
    for (const pk of pks.slice(1)) apk = await read.g1Add(apk, g1ToEip2537(pk))
    assert.deepEqual(apk, g1ToEip2537(bls.PublicKey.aggregate(pks.map(pk => bls.PublicKey.fromBytes(pk))).toBytes()))
    const aggregateSig = g2ToEip2537(bls.Signature.aggregate(sigs.map(s => bls.Signature.fromBytes(s))).toBytes())
    assert.equal(await read.verify(apk, message, aggregateSig), true)

    // a non-signer's key is subtracted: the rest's aggregate signature verifies against apk − pk
    const last = g1ToEip2537(pks[AGGREGATE_SIZE - 1])
    const withoutLast = await read.g1Sub(apk, last)
    assert.deepEqual(withoutLast, g1ToEip2537(bls.PublicKey.aggregate(pks.slice(0, -1).map(pk => bls.PublicKey.fromBytes(pk))).toBytes()))
    const partialSig = g2ToEip2537(bls.Signature.aggregate(sigs.slice(0, -1).map(s => bls.Signature.fromBytes(s))).toBytes())
    assert.equal(await read.verify(withoutLast, message, partialSig), true)
    assert.equal(await read.verify(apk, message, partialSig), false, 'the full key needs every signature')
  })

  it('negates points, keeps infinity as infinity and refuses invalid coordinates', async () => {
    const p = g1ToEip2537(blsPublicKeyOf(generateBlsSecretKey()))
    const minusP = await read.g1Negate(p)
    assert.notDeepEqual(minusP, p)
    assert.deepEqual(await read.g1Negate(minusP), p)
    assert.deepEqual(g1ToEip2537(g1FromEip2537(minusP)), minusP, 'the negation is a point on the curve')
    assert.equal(await read.isInfinity(await read.g1Add(p, minusP)), true)
    assert.deepEqual(await read.g1Sub(p, p), INFINITY_G1)
    assert.deepEqual(await read.g1Sub(p, INFINITY_G1), p)
    assert.deepEqual(await read.g1Negate(INFINITY_G1), INFINITY_G1)
    assert.equal(await read.isInfinity(INFINITY_G1), true)
    assert.equal(await read.isInfinity(p), false)
    const generator = g1ToEip2537(blsPublicKeyOf(SECRET_KEY_ONE))
    assert.deepEqual(
      await client.readContract({ address: harness, abi: BlsHarnessAbi, functionName: 'negG1Generator' }),
      await read.g1Negate(generator)
    )

    const field = 0x1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaabn
    const yEqualsP = { ...p, y_a: toHex(field >> 256n, { size: 32 }), y_b: toHex(field & ((1n << 256n) - 1n), { size: 32 }) }
    await assertRevertsWith(read.g1Negate(yEqualsP), 'InvalidPoint')
    await assertRevertsWith(read.g1Sub(p, yEqualsP), 'InvalidPoint')
    const offCurve = { ...p, y_b: toHex(BigInt(p.y_b) ^ 1n, { size: 32 }) }
    await assertRevertsWith(read.g1Add(p, offCurve), 'InvalidPoint')
  })

  it('reports the gas of hashToG2 and verify', async () => {
    const sk = generateBlsSecretKey()
    const pk = g1ToEip2537(blsPublicKeyOf(sk))
    const digest = randomBytes(32)
    const sig = g2ToEip2537(blsSign(sk, digest))
    const hashGas = await client.readContract({ address: harness, abi: BlsHarnessAbi, functionName: 'hashToG2Gas', args: [toHex(digest)] })
    const [valid, verifyGas] = await client.readContract({ address: harness, abi: BlsHarnessAbi, functionName: 'verifyGas', args: [pk, toHex(digest), sig] })
    assert.equal(valid, true)
    const txHash = await client.estimateContractGas({ address: harness, abi: BlsHarnessAbi, functionName: 'hashToG2', args: [toHex(digest)] })
    const txVerify = await client.estimateContractGas({ address: harness, abi: BlsHarnessAbi, functionName: 'verify', args: [pk, toHex(digest), sig] })
    console.log(`      gas (32-byte digest): hashToG2 ${hashGas} in the library, ${txHash} as a transaction; ` +
      `verify ${verifyGas} in the library, ${txVerify} as a transaction`)
    assert.ok(hashGas < BigInt(HASH_TO_G2_GAS_BUDGET), `hashToG2 used ${hashGas} gas, budget ${HASH_TO_G2_GAS_BUDGET}`)
    assert.ok(verifyGas < BigInt(VERIFY_GAS_BUDGET), `verify used ${verifyGas} gas, budget ${VERIFY_GAS_BUDGET}`)
  })
})
