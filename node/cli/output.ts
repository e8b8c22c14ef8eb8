/**
 * What the CLI prints. With `--json`, stdout carries only event lines (PoiEvent, one per line)
 * so a program can read it; without, stdout has the lines a person reads, and progress and
 * warnings go to stderr so the output can still be piped.
 */
import { serializeEvent, type PoiEventInput } from './events.js'

export class CliOutput {
  readonly json: boolean

  constructor (json: boolean) {
    this.json = json
  }

  /** An event: its JSON line with --json, else `human` (if any) on stdout. */
  event (event: PoiEventInput, human?: string): void {
    if (this.json) writeEvent(event)
    else if (human !== undefined && human !== '') console.log(human)
  }

  /** An event a person should see as a warning: its JSON line with --json, else `human` on stderr. */
  warning (event: PoiEventInput, human: string): void {
    if (this.json) writeEvent(event)
    else console.error(human)
  }

  /** Progress on long work (connecting, looking up): on stderr, and not with --json. */
  progress (line: string): void {
    if (!this.json) console.error(line)
  }

  /** What a result is trusted on (the contracts accepted): on stderr even with --json. */
  notice (line: string): void {
    console.error(line)
  }

  /** The human form of a command's answer, when it has no event line (--json prints the event instead). */
  print (text: string): void {
    if (!this.json) console.log(text)
  }
}

/** One event line on stdout. */
export function writeEvent (event: PoiEventInput): void {
  process.stdout.write(serializeEvent(event) + '\n')
}
