import { strict as assert } from 'node:assert'
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { KEY_FILES, KeystoreError, generateKeystore, loadKeystore, publicKeysOf } from '../node/keys.js'

/** BLS12-381 group order r: a secret key must be in [1, r). */
const BLS_CURVE_ORDER_HEX = '73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001'
/** secp256k1 group order n. */
const SECP256K1_ORDER_HEX = 'fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/** Asserts `fn` rejects with a KeystoreError for `file` whose message names it and matches `why`. */
async function rejectsNaming (fn: () => Promise<unknown>, file: string, why: RegExp): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(err instanceof KeystoreError, `expected KeystoreError, got ${String(err)}`)
    assert.equal(err.code, 'ERR_KEYSTORE')
    assert.equal(err.path, file)
    assert.ok(err.message.includes(file), `message should name ${file}: ${err.message}`)
    assert.match(err.message, why)
    return true
  })
}

describe('keys: keystore on disk', () => {
  let root: string
  beforeEach(async () => { root = await mkdtemp(join(tmpdir(), 'poi-keys-')) })
  afterEach(async () => { await rm(root, { recursive: true, force: true }) })

  it('writes peer.key, bls.key and eth.key readable by the owner only, in a 0700 directory', async () => {
    const dir = join(root, 'ks')
    await generateKeystore(dir)
    assert.equal((await stat(dir)).mode & 0o777, 0o700)
    for (const file of Object.values(KEY_FILES)) {
      const s = await stat(join(dir, file))
      assert.equal(s.mode & 0o777, 0o600, `${file} mode ${(s.mode & 0o777).toString(8)}`)
      assert.match((await readFile(join(dir, file), 'utf8')).trim(), /^(0x)?[0-9a-f]+$/)
    }
  })

  it('round-trips: loadKeystore gives the same peer id, BLS public key and address', async () => {
    const dir = join(root, 'ks')
    const generated = await generateKeystore(dir)
    const loaded = await loadKeystore(dir)
    assert.deepEqual(publicKeysOf(loaded), generated)
    assert.equal(loaded.peerId.toString(), generated.peerId)
    assert.equal(`0x${hex(loaded.blsPublicKey)}`, generated.blsPublicKey)
    assert.equal(loaded.account.address, generated.address)
    assert.equal(loaded.privateKey.type, 'Ed25519')
    assert.equal(loaded.blsSecretKey.length, 32)
  })

  it('two keystores get different keys', async () => {
    const a = await generateKeystore(join(root, 'a'))
    const b = await generateKeystore(join(root, 'b'))
    assert.notEqual(a.peerId, b.peerId)
    assert.notEqual(a.blsPublicKey, b.blsPublicKey)
    assert.notEqual(a.address, b.address)
  })

  it('refuses to overwrite an existing key without force, and replaces all keys with force', async () => {
    const dir = join(root, 'ks')
    const first = await generateKeystore(dir)
    const before = await readFile(join(dir, KEY_FILES.bls), 'utf8')
    await rejectsNaming(async () => await generateKeystore(dir), join(dir, KEY_FILES.peer), /already exists.*--force/)
    assert.equal(await readFile(join(dir, KEY_FILES.bls), 'utf8'), before, 'keys untouched after a refusal')

    const second = await generateKeystore(dir, { force: true })
    assert.notEqual(second.peerId, first.peerId)
    assert.notEqual(second.blsPublicKey, first.blsPublicKey)
    assert.deepEqual(publicKeysOf(await loadKeystore(dir)), second)
  })

  it('refuses when only one key file exists (no half-written keystore)', async () => {
    const dir = join(root, 'ks')
    await generateKeystore(dir)
    await rm(join(dir, KEY_FILES.peer))
    await rm(join(dir, KEY_FILES.bls))
    await rejectsNaming(async () => await generateKeystore(dir), join(dir, KEY_FILES.eth), /already exists/)
    await assert.rejects(stat(join(dir, KEY_FILES.peer)), { code: 'ENOENT' })
  })

  it('with force, an overwritten key file that was world-readable ends up 0600', async () => {
    const dir = join(root, 'ks')
    await generateKeystore(dir)
    await writeFile(join(dir, KEY_FILES.eth), 'old', { mode: 0o644 })
    await chmod(join(dir, KEY_FILES.eth), 0o644)
    await generateKeystore(dir, { force: true })
    assert.equal((await stat(join(dir, KEY_FILES.eth))).mode & 0o777, 0o600)
  })

  it('a keystore path that is a regular file gives a KeystoreError naming it', async () => {
    const file = join(root, 'not-a-dir')
    await writeFile(file, 'x')
    await rejectsNaming(async () => await generateKeystore(file), file, /cannot create keystore directory/)
  })

  it('a missing key file gives a KeystoreError naming that file', async () => {
    const dir = join(root, 'ks')
    await generateKeystore(dir)
    for (const file of Object.values(KEY_FILES)) {
      const saved = await readFile(join(dir, file))
      await rm(join(dir, file))
      await rejectsNaming(async () => await loadKeystore(dir), join(dir, file), /not found.*poi keys generate/)
      await writeFile(join(dir, file), saved, { mode: 0o600 })
    }
    await rejectsNaming(async () => await loadKeystore(join(root, 'nowhere')), join(root, 'nowhere', KEY_FILES.peer), /not found/)
  })

  describe('malformed key files are rejected with the file named', () => {
    let dir: string
    const original: Record<string, string> = {}
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'poi-keys-bad-'))
      await generateKeystore(dir)
      for (const file of Object.values(KEY_FILES)) original[file] = await readFile(join(dir, file), 'utf8')
    })
    after(async () => { await rm(dir, { recursive: true, force: true }) })

    /** Replaces one key file with `content` and expects loading to fail on that file with `why`. */
    async function expectRejected (file: string, content: string, why: RegExp): Promise<void> {
      await writeFile(join(dir, file), content)
      try {
        await rejectsNaming(async () => await loadKeystore(dir), join(dir, file), why)
      } finally {
        await writeFile(join(dir, file), original[file])
      }
    }

    it('not hex', async () => {
      await expectRejected(KEY_FILES.bls, 'not a key\n', /expected one line of hex/)
      await expectRejected(KEY_FILES.eth, '0xzz\n', /expected one line of hex/)
      await expectRejected(KEY_FILES.peer, 'abc\n', /expected one line of hex/)
    })

    it('empty file', async () => {
      await expectRejected(KEY_FILES.eth, '', /expected one line of hex/)
    })

    it('wrong length', async () => {
      await expectRejected(KEY_FILES.bls, 'ab'.repeat(31), /expected 32 bytes, found 31/)
      await expectRejected(KEY_FILES.eth, '0x' + 'ab'.repeat(33), /expected 32 bytes, found 33/)
    })

    it('a secp256k1 libp2p key in peer.key', async () => {
      const secp = await generateKeyPair('secp256k1')
      await expectRejected(KEY_FILES.peer, hex(privateKeyToProtobuf(secp)) + '\n', /expected an Ed25519 key, found secp256k1/)
    })

    it('bytes that are not a libp2p key protobuf in peer.key', async () => {
      await expectRejected(KEY_FILES.peer, '0011\n', /malformed libp2p key/)
    })

    it('a BLS secret key that is zero or not below the curve order', async () => {
      await expectRejected(KEY_FILES.bls, '00'.repeat(32), /malformed BLS secret key/)
      await expectRejected(KEY_FILES.bls, BLS_CURVE_ORDER_HEX, /malformed BLS secret key/)
      await expectRejected(KEY_FILES.bls, 'ff'.repeat(32), /malformed BLS secret key/)
    })

    it('an Ethereum key that is zero or not below the secp256k1 order', async () => {
      await expectRejected(KEY_FILES.eth, '0x' + '00'.repeat(32), /malformed Ethereum key/)
      await expectRejected(KEY_FILES.eth, '0x' + SECP256K1_ORDER_HEX, /malformed Ethereum key/)
    })

    it('accepts keys with or without 0x and surrounding whitespace', async () => {
      const before = publicKeysOf(await loadKeystore(dir))
      try {
        await writeFile(join(dir, KEY_FILES.bls), `  0x${original[KEY_FILES.bls].trim()}  \n\n`)
        await writeFile(join(dir, KEY_FILES.eth), original[KEY_FILES.eth].trim().slice(2))
        assert.deepEqual(publicKeysOf(await loadKeystore(dir)), before)
      } finally {
        for (const file of Object.values(KEY_FILES)) await writeFile(join(dir, file), original[file])
      }
    })
  })

  it('publicKeysOf holds no secret material', async () => {
    const dir = join(root, 'ks')
    await generateKeystore(dir)
    const ks = await loadKeystore(dir)
    const json = JSON.stringify(publicKeysOf(ks)).toLowerCase()
    assert.deepEqual(Object.keys(publicKeysOf(ks)).sort(), ['address', 'blsPublicKey', 'peerId'])
    const secrets = [hex(ks.blsSecretKey), hex(ks.privateKey.raw), hex(privateKeyToProtobuf(ks.privateKey))]
    for (const file of Object.values(KEY_FILES)) {
      secrets.push((await readFile(join(dir, file), 'utf8')).trim().replace(/^0x/, '').toLowerCase())
    }
    for (const secret of secrets) {
      assert.ok(!json.includes(secret), 'public keys JSON contains a secret')
      // Not even a long slice of it (e.g. the Ed25519 seed half of the raw key).
      assert.ok(!json.includes(secret.slice(0, 32)), 'public keys JSON contains part of a secret')
    }
  })
})
