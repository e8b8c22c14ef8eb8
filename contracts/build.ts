/**
 * Compiles contracts/src/*.sol offline with solc-js and writes
 * contracts/generated/artifacts.ts: each contract's ABI `as const` (so viem
 * infers every call's types) and its creation bytecode.
 *
 *   npm run build:contracts        (regenerate after editing a .sol file)
 *
 * The generated file is committed; test/contracts-build.test.ts recompiles
 * and fails if it no longer matches the sources.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PoiError } from '../protocols/wire/index.js'

const require = createRequire(import.meta.url)

/** The repository root, from dist/contracts/build.js or contracts/build.ts alike. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), fileURLToPath(import.meta.url).includes('/dist/') ? '../..' : '..')
export const SOURCES_DIR = join(REPO_ROOT, 'contracts', 'src')
export const ARTIFACTS_FILE = join(REPO_ROOT, 'contracts', 'generated', 'artifacts.ts')
/** Prague: the hard fork that brought the EIP-2537 BLS12-381 precompiles (solc's default is newer). */
export const EVM_VERSION = 'prague'
const OPTIMIZER_RUNS = 10_000
/** Where `import "solady/…"` resolves. */
const REMAPPINGS: Record<string, string> = {
  'solady/': join(REPO_ROOT, 'node_modules', 'solady', 'src') + '/',
  '@openzeppelin/contracts/': join(REPO_ROOT, 'node_modules', '@openzeppelin', 'contracts') + '/'
}

/**
 * Contracts of imported files that get artifacts as they are (no wrapper of ours): the
 * TimelockController that deployPoi deploys unchanged (PoiGovernor.sol imports it).
 */
const IMPORTED_CONTRACTS: Record<string, readonly string[]> = {
  '@openzeppelin/contracts/governance/TimelockController.sol': ['TimelockController']
}

export class ContractBuildError extends PoiError {
  constructor (message: string) {
    super('ERR_CONTRACT_BUILD', message)
  }
}

export interface CompiledContract {
  name: string
  abi: unknown[]
  bytecode: `0x${string}`
}

interface SolcOutput {
  errors?: Array<{ severity: string, formattedMessage: string }>
  contracts?: Record<string, Record<string, { abi: unknown[], evm: { bytecode: { object: string } } }>>
}

/** solc-js as build.ts (and contracts/zk-verifier.ts) use it. */
export type Solc = { compile: (input: string, opts: { import: (p: string) => { contents: string } | { error: string } }) => string, version: () => string }

/**
 * The settings every contract compiles with, but for outputSelection: the committed contracts
 * here, and the per-circuit zk verifiers compiled at runtime (contracts/zk-verifier.ts), so a
 * verifier's bytecode is as reproducible from its key as the artifacts are from the sources.
 */
export const COMPILER_SETTINGS = {
  evmVersion: EVM_VERSION,
  optimizer: { enabled: true, runs: OPTIMIZER_RUNS },
  viaIR: true,
  // No metadata hash: the bytecode then depends only on the sources and settings.
  metadata: { bytecodeHash: 'none', appendCBOR: false }
} as const

/** solc-js, the version package.json pins (loading it takes seconds: the compiler is WebAssembly). */
export function loadSolc (): Solc {
  return require('solc') as Solc
}

/**
 * The compiler's standard-JSON input: every contracts/src/*.sol file and the settings. With
 * solc's version, the imported files' contents and this module, it decides the output (what the
 * contract-artifacts test's cache keys on).
 */
export async function compilerInput (): Promise<{ files: string[], input: string }> {
  const files = (await readdir(SOURCES_DIR)).filter(f => f.endsWith('.sol')).sort()
  const sources: Record<string, { content: string }> = {}
  for (const f of files) sources[f] = { content: await readFile(join(SOURCES_DIR, f), 'utf8') }
  const input = {
    language: 'Solidity',
    sources,
    settings: {
      ...COMPILER_SETTINGS,
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } }
    }
  }
  return { files, input: JSON.stringify(input) }
}

/** The contents of a file a contract imports (`solady/…`, `@openzeppelin/contracts/…`), as solc's import callback answers. */
export function readImport (path: string): { contents: string } | { error: string } {
  for (const [prefix, target] of Object.entries(REMAPPINGS)) {
    if (path.startsWith(prefix)) {
      try {
        return { contents: require('node:fs').readFileSync(target + path.slice(prefix.length), 'utf8') as string }
      } catch (err) {
        return { error: `cannot read ${path}: ${(err as Error).message}` }
      }
    }
  }
  return { error: `import ${path} is outside contracts/src and has no remapping` }
}

/** The contracts compiled, solc's version, and the contents of every file the sources imported (by import path). */
export async function compileContracts (): Promise<{ contracts: CompiledContract[], solcVersion: string, imports: Record<string, string> }> {
  const solc = loadSolc()
  const { files, input } = await compilerInput()
  const imports: Record<string, string> = {}
  const findImport = (path: string): { contents: string } | { error: string } => {
    const found = readImport(path)
    if ('contents' in found) imports[path] = found.contents
    return found
  }
  const output = JSON.parse(solc.compile(input, { import: findImport })) as SolcOutput
  const errors = (output.errors ?? []).filter(e => e.severity === 'error')
  if (errors.length > 0) throw new ContractBuildError('solc failed:\n' + errors.map(e => e.formattedMessage).join('\n'))
  const contracts: CompiledContract[] = []
  for (const file of files) {
    for (const [name, c] of Object.entries(output.contracts?.[file] ?? {})) {
      if (c.evm.bytecode.object.length === 0) continue // libraries and interfaces without code
      contracts.push({ name, abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` })
    }
  }
  for (const [file, names] of Object.entries(IMPORTED_CONTRACTS)) {
    for (const name of names) {
      const c = output.contracts?.[file]?.[name]
      if (c === undefined) throw new ContractBuildError(`${name} of ${file} was not compiled: does a contract in contracts/src still import it?`)
      contracts.push({ name, abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` })
    }
  }
  return { contracts, solcVersion: solc.version(), imports }
}

export function renderArtifacts (contracts: CompiledContract[], solcVersion: string): string {
  const lines = [
    '// Generated by contracts/build.ts from contracts/src/*.sol — do not edit.',
    `// solc ${solcVersion}, evmVersion ${EVM_VERSION}, optimizer runs ${OPTIMIZER_RUNS}, via IR.`,
    ''
  ]
  for (const c of contracts) {
    lines.push(`export const ${c.name}Abi = ${JSON.stringify(c.abi, null, 2)} as const`, '')
    lines.push(`export const ${c.name}Bytecode = '${c.bytecode}' as const`, '')
  }
  return lines.join('\n')
}

async function main (): Promise<void> {
  const started = Date.now()
  const { contracts, solcVersion } = await compileContracts()
  await writeFile(ARTIFACTS_FILE, renderArtifacts(contracts, solcVersion))
  console.log(`compiled ${contracts.map(c => c.name).join(', ')} with solc ${solcVersion} in ${((Date.now() - started) / 1000).toFixed(1)} s → ${ARTIFACTS_FILE}`)
}

if (process.argv[1] != null && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main().catch((err) => { console.error(err instanceof ContractBuildError ? err.message : err); process.exitCode = 1 })
}
