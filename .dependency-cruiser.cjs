/**
 * The layer rules of poi (DESIGN §11), checked by test/layers.test.ts inside `npm test`.
 * Imports point down only:
 *
 *   protocols/wire                     schemas, generated code, the strict codec, limits
 *   consensus, storage                 above wire only, and not each other
 *   protocols/* (gossip, exchanges)    above consensus and storage
 *   contracts                          above consensus (chain calls, deployment)
 *   node/inference                     no network code: above wire only
 *   node/models, node/roles, node/     the running node: above everything else
 *   node/requester, node/cli           on top; node/fixtures only for the CLI, tests and benchmarks
 *
 * and no cycle, between files or folders. test/ and bench/ may import anything.
 */
const SOURCE = '^(protocols|consensus|storage|contracts|node)/'

module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'A cycle between modules makes their layers meaningless and their load order fragile.',
      severity: 'error',
      from: { path: SOURCE },
      to: { circular: true }
    },
    {
      name: 'wire-is-the-bottom',
      comment: 'protocols/wire imports nothing of poi outside itself.',
      severity: 'error',
      from: { path: '^protocols/wire/' },
      to: { path: '^(protocols/(?!wire/)|consensus/|storage/|contracts/|node/)' }
    },
    {
      name: 'consensus-above-wire-only',
      severity: 'error',
      from: { path: '^consensus/' },
      to: { path: '^(protocols/(?!wire/)|storage/|contracts/|node/)' }
    },
    {
      name: 'storage-above-wire-only',
      severity: 'error',
      from: { path: '^storage/' },
      to: { path: '^(protocols/(?!wire/)|consensus/|contracts/|node/)' }
    },
    {
      name: 'protocols-below-node',
      comment: 'Gossip and exchanges sit above consensus and storage, below contracts users and the node.',
      severity: 'error',
      from: { path: '^protocols/' },
      to: { path: '^(contracts/|node/)' }
    },
    {
      name: 'contracts-above-consensus-only',
      severity: 'error',
      from: { path: '^contracts/' },
      to: { path: '^(protocols/(?!wire/)|storage/|node/)' }
    },
    {
      name: 'inference-has-no-network',
      comment: 'Inference runs models; it knows nothing of peers, storage, consensus or the chain.',
      severity: 'error',
      from: { path: '^node/inference/' },
      to: { path: '^(protocols/(?!wire/)|consensus/|storage/|contracts/|node/(?!inference/))' }
    },
    {
      name: 'services-below-the-root',
      comment: 'Role services, models and inference are wired by the composition root, never the other way round.',
      severity: 'error',
      from: { path: '^node/(roles|models|inference)/' },
      to: { path: '^node/(poi-node\\.ts|requester/|cli/|api/)' }
    },
    {
      name: 'fixtures-are-not-runtime',
      comment: 'Model generators and the npm model registry serve tests, benchmarks and the devnet only.',
      severity: 'error',
      from: { path: SOURCE, pathNot: '^node/(cli|fixtures)/' },
      to: { path: '^node/fixtures/' }
    },
    {
      name: 'cli-on-top',
      severity: 'error',
      from: { path: SOURCE, pathNot: '^node/cli/' },
      to: { path: '^node/cli/' }
    },
    {
      name: 'index-is-the-public-face',
      comment: "Another folder's files are reached through its index.ts.",
      severity: 'error',
      from: { path: '^(protocols/[^/]+|consensus|storage|contracts|node/[^/]+)/[^/]+$' },
      to: {
        path: '^(protocols/[^/]+|consensus|storage|contracts|node/(?:inference|models|fixtures|roles|requester))/[^/]+\\.ts$',
        pathNot: ['^$1/', '/index\\.ts$']
      }
    }
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] }
  }
}
