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
 *   node/requester                     the requester's calls, above the node
 *   node/client                        the client library (PoiClient), above node/requester; below node/api and node/cli
 *   node/cli                           on top; node/fixtures only for the CLI, tests and benchmarks
 *
 * and no cycle, between files or folders. test/ and bench/ may import anything.
 */
const SOURCE = '^(protocols|consensus|storage|contracts|node)/'

/** A layer rule: files under `from` may not import files under `to`. */
function layer (name, from, to, comment) {
  return { name, comment, severity: 'error', from: { path: from }, to: { path: to } }
}

module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'A cycle between modules makes their layers meaningless and their load order fragile.',
      severity: 'error',
      from: { path: SOURCE },
      to: { circular: true }
    },
    layer('wire-is-the-bottom', '^protocols/wire/', '^(protocols/(?!wire/)|consensus/|storage/|contracts/|node/)',
      'protocols/wire imports nothing of poi outside itself.'),
    layer('consensus-above-wire-only', '^consensus/', '^(protocols/(?!wire/)|storage/|contracts/|node/)'),
    layer('storage-above-wire-only', '^storage/', '^(protocols/(?!wire/)|consensus/|contracts/|node/)'),
    layer('protocols-below-node', '^protocols/', '^(contracts/|node/)',
      'Gossip and exchanges sit above consensus and storage, below the node.'),
    layer('contracts-above-consensus-only', '^contracts/', '^(protocols/(?!wire/)|storage/|node/)'),
    layer('inference-has-no-network', '^node/inference/', '^(protocols/(?!wire/)|consensus/|storage/|contracts/|node/(?!inference/))',
      'Inference runs models; it knows nothing of peers, storage, consensus or the chain.'),
    layer('services-below-the-root', '^node/(roles|models|inference)/', '^node/(poi-node\\.ts|requester/|client/|cli/|api/)',
      'Role services, models and inference are wired by the composition root, never the other way round.'),
    layer('client-below-api-and-cli', '^node/client/', '^node/(cli|api)/',
      'The client library is what the gateway (node/api) and the CLI are built on, never the other way round.'),
    layer('requester-below-client', '^node/(requester|poi-node\\.ts)', '^node/client/',
      'PoiClient wraps the requester and the node; they know nothing of it.'),
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
        path: '^(protocols/[^/]+|consensus|storage|contracts|node/(?:inference|models|fixtures|roles|requester|client))/[^/]+\\.ts$',
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
