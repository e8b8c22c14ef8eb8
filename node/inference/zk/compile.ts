/**
 * Compiling a Circom 2 source with circom2 (Circom in WebAssembly, run as its CLI): the r1cs the
 * ceremony needs and the witness generator proving needs.
 */
import { execFile } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { basename, dirname, join, resolve } from 'node:path'
import { CircomError } from './ceremony-errors.js'

const require = createRequire(import.meta.url)

/** circom2's CLI and the node_modules holding circomlib, for `include "circomlib/circuits/…"`. */
const CIRCOM_CLI = require.resolve('circom2/cli.js')
const INCLUDE_DIR = resolve(dirname(require.resolve('circomlib/package.json')), '..')

/**
 * The longest a compile may take: the 784→128 layer of the issue's probe (11,251 constraints)
 * compiles in well under a minute; a runaway compile is killed rather than left running.
 */
const COMPILE_TIMEOUT_MS = 10 * 60_000
/** circom's own output is short; a larger one is cut (execFile's buffer), not kept whole. */
const MAX_COMPILER_OUTPUT = 4 * 1024 * 1024
// eslint-disable-next-line no-control-regex
const ANSI_ESCAPE = /\u001b\[[0-9;]*m/g

export interface CompiledCircuit {
  r1cs: string
  /** The witness generator (`<name>_js/<name>.wasm`). */
  wasm: string
  sym: string
}

/**
 * Compiles `source` (a .circom file) into `outDir`. circom2 runs with cwd `/` and absolute
 * paths: its WASI sandbox maps the directories from its cwd up to the root, so any absolute
 * path is reachable. Always `--O2` (the issue's probe: 738 constraints at --O2, 1,200 without).
 */
export async function compileCircom (source: string, outDir: string): Promise<CompiledCircuit> {
  const src = resolve(source)
  const out = resolve(outDir)
  if (!src.endsWith('.circom')) throw new CircomError(`${source} is not a .circom file`)
  await mkdir(out, { recursive: true })
  const args = [CIRCOM_CLI, src, '--O2', '--r1cs', '--wasm', '--sym', '-l', INCLUDE_DIR, '-o', out]
  await new Promise<void>((resolvePromise, reject) => {
    execFile(process.execPath, args, { cwd: '/', timeout: COMPILE_TIMEOUT_MS, maxBuffer: MAX_COMPILER_OUTPUT }, (err, stdout, stderr) => {
      if (err == null) { resolvePromise(); return }
      // circom colours its diagnostics; a message is read in logs and JSON too.
      const said = `${stderr}\n${stdout}`.replace(ANSI_ESCAPE, '').trim()
      reject(new CircomError(`circom2 could not compile ${src}${err.killed ? ` (killed after ${COMPILE_TIMEOUT_MS} ms)` : ''}:\n${said !== '' ? said : err.message}`, { cause: err }))
    })
  })
  const name = basename(src, '.circom')
  return { r1cs: join(out, `${name}.r1cs`), wasm: join(out, `${name}_js`, `${name}.wasm`), sym: join(out, `${name}.sym`) }
}
