/**
 * The layer rules (DESIGN §11), written once in .dependency-cruiser.cjs: imports point down,
 * other folders are reached through their index.ts, and nothing is cyclic. dependency-cruiser
 * reads the TypeScript sources (type-only imports too).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const DEPCRUISE = join(REPO, 'node_modules', '.bin', 'depcruise')
const CONFIG = join(REPO, '.dependency-cruiser.cjs')
const LAYERS = ['protocols', 'consensus', 'storage', 'contracts', 'node']
/** dependency-cruiser parses every source file with the TypeScript compiler: a few seconds. */
const CRUISE_TIMEOUT_MS = 120_000

async function cruise (cwd: string, folders: string[]): Promise<{ ok: boolean, report: string }> {
  try {
    const { stdout } = await run(process.execPath, [DEPCRUISE, '--config', CONFIG, '--output-type', 'err', ...folders], { cwd, timeout: CRUISE_TIMEOUT_MS })
    return { ok: true, report: stdout }
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string, stderr?: string }
    return { ok: false, report: `${stdout}${stderr}` }
  }
}

describe('layers: imports point down, through index.ts, without cycles', function () {
  this.timeout(CRUISE_TIMEOUT_MS + 10_000)

  it('the source tree breaks none of the rules in .dependency-cruiser.cjs', async () => {
    const { ok, report } = await cruise(REPO, LAYERS)
    assert.ok(ok, `layer violations:\n${report}`)
  })

  it('the rules catch an upward import, a reach past index.ts and a cycle', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'poi-layers-'))
    try {
      const files: Record<string, string> = {
        'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }),
        'protocols/wire/index.ts': "export const wire = 1\n",
        'consensus/index.ts': "export { up } from '../node/roles/up.js'\n",
        'node/roles/up.ts': "import { wire } from '../../protocols/wire/index.js'\nexport const up = wire\n",
        'storage/a.ts': "import { b } from './b.js'\nexport const a = b\n",
        'storage/b.ts': "import { a } from './a.js'\nexport const b = 1 + (a ?? 0)\n",
        'contracts/index.ts': "export { up } from '../node/roles/up.js'\n"
      }
      for (const [path, text] of Object.entries(files)) {
        await mkdir(dirname(join(dir, path)), { recursive: true })
        await writeFile(join(dir, path), text)
      }
      const { ok, report } = await cruise(dir, ['protocols', 'consensus', 'storage', 'contracts', 'node'])
      assert.equal(ok, false, `expected violations, got:\n${report}`)
      assert.match(report, /consensus-above-wire-only: consensus\/index\.ts → node\/roles\/up\.ts/)
      assert.match(report, /index-is-the-public-face: contracts\/index\.ts → node\/roles\/up\.ts/)
      assert.match(report, /no-cycles: storage\/a\.ts/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
