/**
 * Running the `poi` binary from tests, as a user would: this test's Node (24), the built CLI.
 */
import { strict as assert } from 'node:assert'
import { execFile, spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

/** The built CLI (dist/node/cli/main.js). */
export const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../node/cli/main.js')

export interface CliResult { code: number | null, stdout: string, stderr: string }

/**
 * Runs `poi <args>` with HOME pointed at `home` (so the ~/.poi defaults never touch the real
 * home) and DEBUG unset (logs stay quiet); resolves with its exit code and output whatever the
 * code, and rejects only if it does not exit within `timeoutMs` (it is killed then).
 */
export async function runPoi (home: string, timeoutMs: number, ...args: string[]): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home }
  delete env.DEBUG
  return await runProcess(process.execPath, [CLI, ...args], { env, timeoutMs })
}

/**
 * Runs `command <args>` (in `cwd`, with `env`); resolves with its exit code and output whatever
 * the code, and rejects only if it does not exit within `timeoutMs` (it is killed then).
 */
export async function runProcess (command: string, args: string[], opts: { env?: NodeJS.ProcessEnv, cwd?: string, timeoutMs: number }): Promise<CliResult> {
  const child = spawn(command, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  return await new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${command} ${args.join(' ')} did not exit within ${opts.timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`))
    }, opts.timeoutMs)
    child.once('error', (err) => { clearTimeout(timer); reject(err) })
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

/** Runs `poi <args>` in this environment; rejects (with code and stderr) if it exits non-zero. */
export async function poi (...args: string[]): Promise<{ stdout: string, stderr: string }> {
  return await execFileAsync(process.execPath, [CLI, ...args])
}

/** Runs `poi <args>`, which must fail: returns its exit code and stderr. */
export async function poiFails (...args: string[]): Promise<{ code: number, stderr: string }> {
  const failed = await poi(...args).then(() => undefined, (err: { code: number, stderr: string }) => err)
  assert.ok(failed != null, `poi ${args.join(' ')} succeeded`)
  return failed
}
