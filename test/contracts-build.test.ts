import { strict as assert } from 'node:assert'
import { readFile } from 'node:fs/promises'
import { ARTIFACTS_FILE, EVM_VERSION, compileContracts, renderArtifacts } from '../contracts/build.js'

describe('contract artifacts', function () {
  this.timeout(120_000)

  it('the committed ABIs and bytecode are what the sources compile to (run `npm run build:contracts` after editing a .sol file)', async () => {
    const { contracts, solcVersion } = await compileContracts()
    assert.ok(contracts.some(c => c.name === 'TaskManager'))
    const committed = await readFile(ARTIFACTS_FILE, 'utf8')
    assert.ok(committed === renderArtifacts(contracts, solcVersion), `${ARTIFACTS_FILE} is stale: regenerate it with npm run build:contracts`)
    assert.equal(EVM_VERSION, 'prague')
  })
})
