/**
 * The V8 flags a poi node process is started with (ChildNode, node/bin/poi).
 *
 * Why: V8 lets the young generation (two semi-spaces) grow to 32 MiB each on a 64-bit machine
 * with a 4 GiB heap limit, and a node's start-up (libp2p, viem, onnxruntime's bindings) allocates
 * enough to grow it there; the pages stay resident for the life of the process. An idle operator
 * so held 64 MiB of new space for a few MiB of live young objects, close to a third of its RSS,
 * and a network of tens of operators on one machine pays it tens of times (bench/scale.ts).
 *
 * On node's command line, not set from inside: V8 reads the semi-space's maximum once, when the
 * process starts, and loading the CLI's modules already grows it to its full size before the
 * first of them runs (measured: setFlagsFromString at the top of main.js came too late).
 * node/bin/poi passes the same flag (MAX_SEMI_SPACE_MIB there); a container can set
 * `NODE_OPTIONS=--max-semi-space-size=1`. Library users (PoiClient) are not touched.
 */

/**
 * Cap of each semi-space in MiB: V8's own starting size on 64-bit machines, so the new space
 * never grows past 2 MiB. Measured side by side with V8's own sizing and with 4 MiB
 * (npm run bench:scale -- --compare; README, Scale).
 */
export const MAX_SEMI_SPACE_MIB = 1

const SEMI_SPACE_FLAGS = ['--max-semi-space-size', '--max_semi_space_size']

/**
 * The flags to start a node with: none when its own flags or NODE_OPTIONS already choose the
 * young generation's size, which is also how to undo the cap (`--max-semi-space-size=0` is
 * V8's own sizing).
 */
export function heapFlags (execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const chosen = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some(a => SEMI_SPACE_FLAGS.some(f => a.startsWith(f)))
  return chosen ? [] : [`--max-semi-space-size=${MAX_SEMI_SPACE_MIB}`]
}
