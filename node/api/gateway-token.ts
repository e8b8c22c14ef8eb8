/**
 * The gateway's bearer token: what a client must show to submit tasks (signed with the gateway's
 * key, paid from its deposit) when the gateway listens beyond loopback. It lives in the keystore
 * directory beside the keys it stands in for, with the same care: created once, mode 0600, never
 * printed (the gateway says where it is, not what it is).
 */
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto'
import { open, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { PoiError } from '../../protocols/wire/index.js'

/** The token's file in the keystore directory. */
export const GATEWAY_TOKEN_FILE = 'gateway-token'
/** 32 random bytes: as hard to guess as a private key. */
export const GATEWAY_TOKEN_BYTES = 32
/** Owner read/write only: anyone who reads it can spend the gateway's deposit. */
const TOKEN_FILE_MODE = 0o600
const TOKEN_PATTERN = new RegExp(`^[0-9a-f]{${GATEWAY_TOKEN_BYTES * 2}}$`)

/** The token file cannot be made or read, or is not safe to use. */
export class GatewayTokenError extends PoiError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_GATEWAY_TOKEN', message, options)
  }
}

/**
 * The token of `<keystoreDir>/gateway-token`, created (random, mode 0600) when absent. A file
 * others can read, or that is not 64 hex digits, is refused with what to do about it.
 */
export async function loadOrCreateGatewayToken (keystoreDir: string): Promise<{ token: string, path: string, created: boolean }> {
  const path = join(keystoreDir, GATEWAY_TOKEN_FILE)
  const token = randomBytes(GATEWAY_TOKEN_BYTES).toString('hex')
  try {
    // 'wx': never overwrite a token clients already hold, even if two gateways start at once.
    const file = await open(path, 'wx', TOKEN_FILE_MODE)
    try {
      await file.writeFile(`${token}\n`)
    } finally {
      await file.close()
    }
    return { token, path, created: true }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new GatewayTokenError(`cannot create the gateway token ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (is the keystore directory writable?)`, { cause: err })
  }
  const info = await stat(path)
  if ((info.mode & 0o077) !== 0) throw new GatewayTokenError(`the gateway token ${path} is readable by others (mode ${(info.mode & 0o777).toString(8)}): run \`chmod 600 ${path}\`, or delete it for a new one`)
  const existing = (await readFile(path, 'utf8')).trim()
  if (!TOKEN_PATTERN.test(existing)) throw new GatewayTokenError(`the gateway token ${path} is not ${GATEWAY_TOKEN_BYTES * 2} hex digits: delete it and the gateway makes a new one`)
  return { token: existing, path, created: false }
}

/**
 * Whether `header` (an Authorization header) carries `token` as `Bearer <token>`. Both sides are
 * hashed first so the comparison takes the same time whatever the length or content given.
 */
export function bearerMatches (header: string | undefined, token: string): boolean {
  if (header === undefined) return false
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header)
  if (m == null) return false
  return timingSafeEqual(sha256(m[1]), sha256(token))
}

function sha256 (s: string): Buffer {
  return createHash('sha256').update(s).digest()
}
