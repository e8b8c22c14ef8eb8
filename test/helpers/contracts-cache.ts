/**
 * The contracts compiled from contracts/src, reusing an earlier compile of the very same inputs.
 *
 * Compiling every contract with solc-js (via IR, 10 000 optimizer runs) costs a minute or more of
 * CPU, the most of any test file, and on two shared cores that minute is taken from the others.
 * The output is a pure function of the solc-js package's version, the standard-JSON input (every .sol file in
 * contracts/src and the settings), the files those import and build.ts's own code, so a compile
 * is cached under a hash of all of these and reused only while each of them is unchanged: an edited
 * .sol file, setting, import (solady, OpenZeppelin) or solc upgrade compiles again. The cache holds
 * the compiler's output, never the committed artifacts, so the test still compares the committed
 * file with what the sources compile to, and fails when it is stale.
 */
import { createHash } from 'node:crypto'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { compileContracts, compilerInput, readImport, type CompiledContract } from '../../contracts/build.js'

/** Per machine, outside the repository (nothing to ignore or commit), shared by worktrees: entries are keyed by content. */
const CACHE_DIR = join(tmpdir(), 'poi-contracts-build-cache')
/**
 * The installed solc-js package's version: the package bundles its compiler, so this names the
 * compiler without loading it (which takes seconds; solc.version() would).
 */
const SOLC_PACKAGE_VERSION = (createRequire(import.meta.url)('solc/package.json') as { version: string }).version
/** build.js itself: how it turns solc's output into contracts is part of what the cache key covers. */
const BUILD_MODULE = fileURLToPath(new URL('../../contracts/build.js', import.meta.url))

interface CacheEntry {
  /** sha256 of each imported file's contents, by import path: the compile's inputs beyond the key. */
  imports: Record<string, string>
  contracts: CompiledContract[]
  solcVersion: string
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')

/** Whether every file the cached compile imported still has the contents it had then. */
function importsUnchanged (imports: Record<string, string>): boolean {
  return Object.entries(imports).every(([path, hash]) => {
    const found = readImport(path)
    return 'contents' in found && sha256(found.contents) === hash
  })
}

/**
 * What compileContracts() returns for the sources as they are now, and whether it came from the
 * cache. A missing, unreadable or outdated entry compiles (and stores the result).
 */
export async function compiledContracts (): Promise<{ contracts: CompiledContract[], solcVersion: string, cached: boolean }> {
  const { input } = await compilerInput()
  const key = sha256(JSON.stringify([SOLC_PACKAGE_VERSION, input, await readFile(BUILD_MODULE, 'utf8')]))
  const file = join(CACHE_DIR, `${key}.json`)
  const entry = await readFile(file, 'utf8').then(text => JSON.parse(text) as CacheEntry, () => undefined)
  if (entry !== undefined && importsUnchanged(entry.imports)) return { contracts: entry.contracts, solcVersion: entry.solcVersion, cached: true }

  const compiled = await compileContracts()
  const imports = Object.fromEntries(Object.entries(compiled.imports).map(([path, contents]) => [path, sha256(contents)]))
  await mkdir(CACHE_DIR, { recursive: true })
  // Written aside and renamed: a test reading the entry meanwhile sees all of it or none.
  const partial = `${file}.${process.pid}.tmp`
  await writeFile(partial, JSON.stringify({ imports, contracts: compiled.contracts, solcVersion: compiled.solcVersion } satisfies CacheEntry))
  await rename(partial, file)
  return { contracts: compiled.contracts, solcVersion: compiled.solcVersion, cached: false }
}
