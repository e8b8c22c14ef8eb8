import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, stat, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import { blsPublicKeyOf, generateBlsSecretKey } from '../consensus/index.js'
import { PoiError, fromHex, to0xHex, toHex } from '../protocols/wire/index.js'

/**
 * A keystore is a directory of three files, each one hex line, mode 0600:
 *   peer.key  libp2p Ed25519 private key (protobuf encoding)
 *   bls.key   BLS12-381 secret key (32 bytes)
 *   eth.key   Ethereum secp256k1 private key (32 bytes)
 */
export const KEY_FILES = { peer: 'peer.key', bls: 'bls.key', eth: 'eth.key' } as const
const SECRET_FILE_MODE = 0o600
const KEYSTORE_DIR_MODE = 0o700

/** A key file cannot be read, written or parsed; `path` names the file (or the keystore directory). */
export class KeystoreError extends PoiError {
  readonly path: string
  constructor (path: string, message: string) {
    super('ERR_KEYSTORE', `${path}: ${message}`)
    this.path = path
  }
}

export interface Keystore {
  dir: string
  privateKey: PrivateKey
  peerId: PeerId
  blsSecretKey: Uint8Array
  blsPublicKey: Uint8Array
  account: PrivateKeyAccount
}

export interface PublicKeys {
  peerId: string
  blsPublicKey: `0x${string}`
  address: `0x${string}`
}

export async function generateKeystore (dir: string, opts: { force?: boolean } = {}): Promise<PublicKeys> {
  const force = opts.force === true
  try {
    await mkdir(dir, { recursive: true, mode: KEYSTORE_DIR_MODE })
  } catch (err) {
    throw new KeystoreError(dir, `cannot create keystore directory: ${(err as Error).message}`)
  }
  if (!force) {
    // Checked up front so a keystore with one key already present is not half overwritten.
    for (const file of Object.values(KEY_FILES)) {
      const exists = await stat(join(dir, file)).then(() => true, () => false)
      if (exists) throw new KeystoreError(join(dir, file), ALREADY_EXISTS)
    }
  }
  const peer = await generateKeyPair('Ed25519')
  const bls = generateBlsSecretKey()
  let eth = randomBytes(32)
  // A secp256k1 key must be below the group order; 2^-128 odds, but check.
  while (BigInt(to0xHex(eth)) >= 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n || eth.every(b => b === 0)) eth = randomBytes(32)
  await writeSecret(join(dir, KEY_FILES.peer), toHex(privateKeyToProtobuf(peer)), force)
  await writeSecret(join(dir, KEY_FILES.bls), toHex(bls), force)
  await writeSecret(join(dir, KEY_FILES.eth), to0xHex(eth), force)
  const ks = await loadKeystore(dir)
  return publicKeysOf(ks)
}

const ALREADY_EXISTS = 'already exists; refusing to overwrite a key (pass --force to replace it)'

async function writeSecret (path: string, hex: string, overwrite: boolean): Promise<void> {
  let fh: FileHandle
  try {
    // 'wx' fails if the file appeared since the check above (another `keys generate`), so a key is never silently replaced.
    fh = await open(path, overwrite ? 'w' : 'wx', SECRET_FILE_MODE)
  } catch (err: any) {
    if (err?.code === 'EEXIST') throw new KeystoreError(path, ALREADY_EXISTS)
    throw new KeystoreError(path, `cannot write key file: ${err?.message ?? String(err)}`)
  }
  try {
    // Set the mode before writing: an overwritten file keeps its old (maybe world-readable)
    // mode on open, and the umask may have narrowed a new file's mode below 0600.
    await fh.chmod(SECRET_FILE_MODE)
    await fh.writeFile(hex + '\n')
    await fh.sync()
  } catch (err) {
    throw new KeystoreError(path, `cannot write key file: ${(err as Error).message}`)
  } finally {
    await fh.close()
  }
}

async function readHex (path: string, bytes?: number): Promise<Uint8Array> {
  let text: string
  try {
    text = (await readFile(path, 'utf8')).trim()
  } catch (err: any) {
    if (err?.code === 'ENOENT') throw new KeystoreError(path, 'key file not found; create a keystore with `poi keys generate --dir <dir>`')
    throw new KeystoreError(path, `cannot read key file: ${err?.message ?? String(err)}`)
  }
  const out = fromHex(text)
  if (out === undefined || out.length === 0) throw new KeystoreError(path, 'malformed key file: expected one line of hex')
  if (bytes != null && out.length !== bytes) throw new KeystoreError(path, `malformed key file: expected ${bytes} bytes, found ${out.length}`)
  return out
}

export async function loadKeystore (dir: string): Promise<Keystore> {
  const peerPath = join(dir, KEY_FILES.peer)
  const blsPath = join(dir, KEY_FILES.bls)
  const ethPath = join(dir, KEY_FILES.eth)
  let privateKey: PrivateKey
  try {
    privateKey = privateKeyFromProtobuf(await readHex(peerPath))
  } catch (err) {
    if (err instanceof KeystoreError) throw err
    throw new KeystoreError(peerPath, `malformed libp2p key: ${(err as Error).message}`)
  }
  if (privateKey.type !== 'Ed25519') throw new KeystoreError(peerPath, `expected an Ed25519 key, found ${privateKey.type}`)
  const blsSecretKey = await readHex(blsPath, 32)
  let blsPublicKey: Uint8Array
  try {
    blsPublicKey = blsPublicKeyOf(blsSecretKey)
  } catch (err) {
    throw new KeystoreError(blsPath, `malformed BLS secret key: ${(err as Error).message}`)
  }
  const ethKey = await readHex(ethPath, 32)
  let account: PrivateKeyAccount
  try {
    account = privateKeyToAccount(to0xHex(ethKey))
  } catch (err) {
    throw new KeystoreError(ethPath, `malformed Ethereum key: ${(err as Error).message}`)
  }
  return { dir, privateKey, peerId: peerIdFromPrivateKey(privateKey), blsSecretKey, blsPublicKey, account }
}

export function publicKeysOf (ks: Keystore): PublicKeys {
  return { peerId: ks.peerId.toString(), blsPublicKey: to0xHex(ks.blsPublicKey), address: ks.account.address }
}
