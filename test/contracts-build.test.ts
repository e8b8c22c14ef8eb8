import { strict as assert } from 'node:assert'
import { readFile } from 'node:fs/promises'
import { ARTIFACTS_FILE, EVM_VERSION, renderArtifacts } from '../contracts/build.js'
import { compiledContracts } from './helpers/contracts-cache.js'

describe('contract artifacts', function () {
  // a cold compile of every contract, the governor and the timelock included, takes two minutes
  // and more on a loaded two-core machine
  this.timeout(300_000)

  // The compile is reused while solc, the sources, their imports and build.ts are unchanged
  // (test/helpers/contracts-cache.ts): the comparison below always runs.
  it('the committed ABIs and bytecode are what the sources compile to (run `npm run build:contracts` after editing a .sol file)', async () => {
    const { contracts, solcVersion, cached } = await compiledContracts()
    assert.ok(contracts.some(c => c.name === 'TaskManager'))
    const committed = await readFile(ARTIFACTS_FILE, 'utf8')
    assert.ok(committed === renderArtifacts(contracts, solcVersion), `${ARTIFACTS_FILE} is stale: regenerate it with npm run build:contracts (compiled ${cached ? 'earlier from the same inputs' : 'now'})`)
    assert.equal(EVM_VERSION, 'prague')
  })
})
