import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { randomBytes } from 'node:crypto'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { blsPublicKeyOf, generateBlsSecretKey } from '../../consensus/index.js'
import type { Keystore } from '../../node/keys.js'

/** An in-memory keystore for a throwaway test peer. */
export async function freshKeysAsync (): Promise<Keystore> {
  const privateKey = await generateKeyPairFromSeed('Ed25519', randomBytes(32))
  const bls = generateBlsSecretKey()
  return { dir: '(memory)', privateKey, peerId: peerIdFromPrivateKey(privateKey), blsSecretKey: bls, blsPublicKey: blsPublicKeyOf(bls), account: privateKeyToAccount(generatePrivateKey()) }
}
