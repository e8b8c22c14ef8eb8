/**
 * `npm test` runs the files test/helpers/suite-order.ts lists, slowest first: the list must hold
 * every test file once (a file left out would silently not run) and name only files that exist.
 */
import { strict as assert } from 'node:assert'
import { readFileSync, readdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { RUN_ALONE, SLOWEST_FIRST, suiteOrder } from './helpers/suite-order.js'

describe('the order npm test runs the files in', () => {
  const dir = dirname(fileURLToPath(import.meta.url))
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter(f => f.endsWith('.test.js'))

  it('holds every test file exactly once, the slowest known ones first, but those run alone', () => {
    const order = suiteOrder(dir)
    assert.deepEqual([...order, ...RUN_ALONE.map(name => `${name}.test.js`)].sort(), [...files].sort())
    assert.equal(new Set(order).size, order.length)
    assert.deepEqual(order.slice(0, SLOWEST_FIRST.length), SLOWEST_FIRST.map(name => `${name}.test.js`))
  })

  it('names only test files that exist (a renamed file must be renamed in the list too)', () => {
    for (const name of SLOWEST_FIRST) assert.ok(files.includes(`${name}.test.js`), `no test/${name}.test.ts`)
  })

  it('npm test runs each file of RUN_ALONE by itself after the parallel run', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: { test: string } }
    const [parallel, ...alone] = pkg.scripts.test.split(' && ')
    assert.match(parallel, /^mocha --parallel .*suite-order\.js\)$/)
    assert.deepEqual(alone, RUN_ALONE.map(name => `mocha dist/test/${name}.test.js`))
    for (const name of RUN_ALONE) assert.ok(files.includes(`${name}.test.js`), `no test/${name}.test.ts`)
  })
})
