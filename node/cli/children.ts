/**
 * The processes this process owns (a devnet's anvil and nodes), and how they end with it.
 *
 * Why not a process group: Node cannot make itself a group leader (no setpgid/setsid), so the
 * devnet's children share the group of whoever started it (npm, a shell, a test runner) and
 * signalling "our" group would hit those too; spawning children detached gives each a group
 * of its own, still with no single group to signal. Linux's PR_SET_PDEATHSIG is not reachable
 * from Node. So, two parts:
 *
 * 1. every child is recorded here (own) and the devnet stops them all on its exit and on
 *    SIGINT, SIGTERM and SIGHUP (stopOwned, killOwnedNow; node/cli/devnet.ts);
 * 2. for when the devnet dies without running any handler (SIGKILL, a crash of the runtime),
 *    every child watches a pipe from it. The kernel closes a pipe's write end when its holder
 *    dies, however it dies, so the child learns it at once: a node sees its stdin end and stops
 *    itself (watchParentPipe, called by main.ts); anvil, which cannot be told to, gets a tiny
 *    `sh` guard that waits on such a pipe and then kills it (guardWithPipe). Polling the parent
 *    pid instead would be late by its interval and fooled by a reused pid.
 */
import { spawn, type ChildProcess } from 'node:child_process'

/** Set (to 1) in a node's environment by the launcher: the node exits when its stdin closes. */
export const EXIT_WITH_PARENT_ENV = 'POI_EXIT_WITH_PARENT'
/** How long stopOwned waits after SIGTERM before it sends SIGKILL: a node stops in a second or two. */
const STOP_TIMEOUT_MS = 10_000
/** How long a node whose parent died may take to stop itself before it exits anyway. */
const ORPHAN_STOP_TIMEOUT_MS = 10_000

const owned = new Set<ChildProcess>()

const alive = (p: ChildProcess): boolean => p.exitCode == null && p.signalCode == null

/** Records `proc` as owned until it exits. */
export function own (proc: ChildProcess): void {
  if (!alive(proc)) return
  owned.add(proc)
  proc.once('exit', () => owned.delete(proc))
}

/** The pids of the owned processes still running. */
export function ownedPids (): number[] {
  return [...owned].filter(alive).flatMap(p => p.pid != null ? [p.pid] : [])
}

/** SIGTERM to every owned process, SIGKILL to those still running after STOP_TIMEOUT_MS; resolves when all have exited. */
export async function stopOwned (timeoutMs = STOP_TIMEOUT_MS): Promise<void> {
  const running = [...owned].filter(alive)
  await Promise.all(running.map(async p => {
    const exited = new Promise<void>(resolve => p.once('exit', () => resolve()))
    p.kill('SIGTERM')
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs)
    await exited
    clearTimeout(timer)
  }))
}

/** SIGKILL to every owned process, synchronously: for `process.on('exit')` and a second Ctrl-C. */
export function killOwnedNow (): void {
  for (const p of owned) if (alive(p)) p.kill('SIGKILL')
}

/**
 * Spawns a `sh` guard holding a pipe from this process: when this process dies the pipe
 * closes, `read` returns and the guard kills `proc`. The guard ends (SIGKILL, so it kills
 * nothing) as soon as `proc` exits on its own.
 */
export function guardWithPipe (proc: ChildProcess): void {
  if (proc.pid == null || !alive(proc)) return
  const guard = spawn('sh', ['-c', 'read _; kill -TERM "$1" 2>/dev/null', 'poi-guard', String(proc.pid)], { stdio: ['pipe', 'ignore', 'ignore'] })
  guard.on('error', () => {}) // no sh: the first part (stop on exit and signals) still holds
  own(guard)
  proc.once('exit', () => guard.kill('SIGKILL'))
}

/**
 * In a node started with EXIT_WITH_PARENT_ENV: when stdin (the launcher's pipe) closes, the
 * launcher is gone, and the node stops as on SIGTERM (its graceful shutdown if it has one
 * installed, else the default: exit). The stdin handle does not keep the process alive.
 */
export function watchParentPipe (): void {
  if (process.env[EXIT_WITH_PARENT_ENV] !== '1') return
  const orphaned = (): void => {
    setTimeout(() => process.exit(1), ORPHAN_STOP_TIMEOUT_MS).unref()
    process.kill(process.pid, 'SIGTERM')
  }
  process.stdin.once('end', orphaned)
  process.stdin.once('error', orphaned)
  process.stdin.resume()
  process.stdin.unref()
}
