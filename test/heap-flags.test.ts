/**
 * The V8 young-generation cap poi's node processes start with (node/cli/heap-flags.ts): checked
 * in real processes started both ways poi starts them (node/bin/poi, a launcher's ChildNode),
 * whose new space must stay within the cap under an allocation load that grows V8's own sizing
 * past it, and left alone when NODE_OPTIONS chooses the size.
 */
import { strict as assert } from 'node:assert'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { heapFlags, MAX_SEMI_SPACE_MIB } from '../node/cli/heap-flags.js'
import { ChildNode } from '../node/cli/launcher.js'
import { runProcess } from './helpers/cli.js'
import { until } from './helpers/wait.js'

const MIB = 1024 * 1024
/** A real CLI run takes a second or two; a loaded machine, many more. */
const RUN_TIMEOUT_MS = 30_000
/** The npm bin script, from dist/test/. */
const BIN = join(dirname(fileURLToPath(import.meta.url)), '../../node/bin/poi')
/** The cap: two semi-spaces. */
const CAP_BYTES = 2 * MAX_SEMI_SPACE_MIB * MIB

/**
 * Preloaded into the poi process: once the command is done (at exit, so after the CLI's modules
 * loaded), it allocates short-lived objects with enough survivors that V8 grows its new space as
 * far as it may, then prints the new space's size.
 */
const PROBE = `
process.on('exit', () => {
  const v8 = require('node:v8')
  let keep = []
  for (let i = 0; i < 3e6; i++) { keep.push({ i }); if (keep.length > 200000) keep = [] }
  const s = v8.getHeapSpaceStatistics().find(s => s.space_name === 'new_space')
  process.stderr.write('NEW_SPACE_BYTES=' + s.space_size + '\\n')
})
`

describe('heap flags (V8 young generation cap)', function () {
  this.timeout(3 * RUN_TIMEOUT_MS + 10_000)
  let dir: string
  let probe: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poi-heap-flags-'))
    probe = join(dir, 'probe.cjs')
    await writeFile(probe, PROBE)
  })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  const newSpaceIn = (output: string): number => {
    const m = /NEW_SPACE_BYTES=(\d+)/.exec(output)
    assert.ok(m !== null, `the probe printed nothing: ${output}`)
    return Number(m[1])
  }

  /** `poi --help` through the bin script with the probe preloaded (and `nodeOptions` besides); the new space's size in bytes. */
  async function newSpaceViaBin (nodeOptions: string): Promise<number> {
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: dir, NODE_OPTIONS: `${nodeOptions} --require ${probe}`.trim() }
    delete env.DEBUG
    const r = await runProcess(BIN, ['--help'], { env, timeoutMs: RUN_TIMEOUT_MS })
    assert.equal(r.code, 0, r.stderr)
    return newSpaceIn(r.stderr)
  }

  it('caps the new space of poi started by node/bin/poi', async () => {
    const bytes = await newSpaceViaBin('')
    assert.ok(bytes <= CAP_BYTES, `new space ${bytes / MIB} MiB, cap ${CAP_BYTES / MIB} MiB`)
  })

  it('caps the new space of a node a launcher starts (ChildNode)', async () => {
    const logFile = join(dir, 'child.log')
    const child = new ChildNode('help', ['--help'], logFile, { NODE_OPTIONS: `--require ${probe}` })
    const { code } = await child.exited
    assert.equal(code, 0)
    // The launcher copies the child's stderr into its log as it arrives: wait for the probe's line.
    const log = async (): Promise<string> => await readFile(logFile, 'utf8').catch(() => '')
    await until(async () => /NEW_SPACE_BYTES=/.test(await log()), RUN_TIMEOUT_MS, `the probe's line in ${logFile}`)
    const bytes = newSpaceIn(await log())
    assert.ok(bytes <= CAP_BYTES, `new space ${bytes / MIB} MiB, cap ${CAP_BYTES / MIB} MiB`)
  })

  it('leaves the size to NODE_OPTIONS when it chooses one (V8\'s own sizing grows past the cap under the same load)', async () => {
    const bytes = await newSpaceViaBin('--max-semi-space-size=0')
    assert.ok(bytes > CAP_BYTES, `new space ${bytes / MIB} MiB with V8's own sizing: the load does not test the cap`)
  })

  it('adds the flag only when neither node\'s flags nor NODE_OPTIONS choose the size', () => {
    assert.deepEqual(heapFlags([], undefined), [`--max-semi-space-size=${MAX_SEMI_SPACE_MIB}`])
    assert.deepEqual(heapFlags([], '--enable-source-maps'), [`--max-semi-space-size=${MAX_SEMI_SPACE_MIB}`])
    assert.deepEqual(heapFlags(['--max-semi-space-size=16'], undefined), [])
    assert.deepEqual(heapFlags([], '--inspect --max_semi_space_size=8'), [])
  })
})
