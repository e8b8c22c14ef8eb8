/**
 * Processes as Linux's /proc shows them, for tests that check a command leaves nothing running
 * (the devnet's children, the gateway it starts).
 */
import { readdirSync, readFileSync } from 'node:fs'

/** "pid (comm) state ppid …" of a process, or undefined once it is gone. */
export function procStat (pid: number): { state: string, ppid: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const [state, ppid] = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return { state, ppid: Number(ppid) }
  } catch {
    return undefined
  }
}

/** The process exists and is not a zombie. */
export const running = (pid: number): boolean => { const s = procStat(pid); return s !== undefined && s.state !== 'Z' }

/** A process's command line, its arguments joined by spaces ('' once it is gone). */
export function cmdline (pid: number): string {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ') } catch { return '' }
}

/** Every running descendant of `root`, with its command line. */
export function descendants (root: number): Array<{ pid: number, cmd: string }> {
  const children = new Map<number, number[]>()
  for (const name of readdirSync('/proc')) {
    const pid = Number(name)
    if (!Number.isInteger(pid)) continue
    const s = procStat(pid)
    if (s === undefined || s.state === 'Z') continue
    children.set(s.ppid, [...(children.get(s.ppid) ?? []), pid])
  }
  const found: number[] = []
  const queue = [root]
  while (queue.length > 0) for (const c of children.get(queue.shift()!) ?? []) { found.push(c); queue.push(c) }
  return found.map(pid => ({ pid, cmd: cmdline(pid) }))
}
