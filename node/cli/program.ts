/**
 * The `poi` command line, declared once with commander: every command and subcommand, each
 * option with its description (and default), an example in each help, the options that
 * exclude each other, and the exit codes. Parsing only: an action loads its command's module
 * when it runs (so `poi keys` or `poi --help` loads neither libp2p, onnxruntime nor viem) and
 * hands it the parsed options, keyed by flag name as typed (`data-dir`, `no-model-dir`).
 */
import { readFileSync } from 'node:fs'
import { Command, CommanderError, Option } from 'commander'
import { EXIT_OK, EXIT_USAGE, exitCodesHelp } from './exit-codes.js'
import { CommandLineError } from './usage-error.js'

/** The parsed options of one command, keyed by flag name as typed; repeatable flags are arrays. */
export type CommandValues = Record<string, string | string[] | boolean | undefined>

/** What a command's action runs: resolves with an exit code (or nothing for 0). */
type Run<V> = (values: V, positionals: string[]) => Promise<number | undefined | void>

/** Why two options exclude each other, said with the refusal (keyed `a|b` by flag name, in declaration order). */
const CONFLICT_REASONS: Record<string, string> = {
  'chain|genesis': '--chain <deployment.json> reads the operators from the chain, --genesis <file> from a genesis file; give one',
  'rpc|genesis': '--rpc <url> asks the bootstrap node for the contracts on a chain, --genesis <file> runs without a chain; give one',
  'model-dir|no-model-dir': '--model-dir names local models, --no-model-dir starts without any; give one',
  'keystore|address': '--address looks up another operator, --keystore <dir> names this one; give one',
  'offchain|gov': '--gov changes a parameter on the devnet\'s chain, --offchain runs without one; give one',
  'offchain|batch': '--batch settles tab tasks in a batch on the devnet\'s chain, --offchain runs without one; give one'
}

/** `--listen a --listen b` → ['a', 'b']. */
const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value]

function repeatable (flags: string, description: string): Option {
  // 'repeatable' before a '(default: …)' that ends the description.
  return new Option(flags, description.replace(/( \(default: [^)]*\))?$/, '; repeatable$1')).argParser(collect)
}

/**
 * A `--no-…` flag that is a flag of its own (`values['no-model-dir'] === true`), not commander's
 * negation of `--model-dir`: both then have their own name, and `.conflicts()` can refuse the pair.
 */
function noFlag (flags: string, description: string): Option {
  const option = new Option(flags, description)
  option.negate = false
  return option
}

/**
 * Options a command cannot run without. Checked before the action runs, not with commander's
 * mandatory options, which are checked before unknown ones: `--dri` would be reported as a
 * missing `--dir` instead of the typo it is.
 */
const requiredOptions = new WeakSet<Option>()

function required (flags: string, description: string): Option {
  const option = new Option(flags, `${description} (required)`)
  requiredOptions.add(option)
  return option
}

/** The root of this repository (dist/node/cli/ → ../../..), where package.json and node_modules are. */
const REPO_ROOT = new URL('../../../', import.meta.url)

function packageVersion (path: string): string {
  try {
    return (JSON.parse(readFileSync(new URL(path, REPO_ROOT), 'utf8')) as { version?: string }).version ?? 'unknown'
  } catch {
    return 'not installed'
  }
}

/**
 * `poi --version`: poi's version, the onnxruntime-node it runs models with (read from its
 * package.json, not by loading the native addon; manifests pin this version, runtime-version.ts)
 * and the Node running it.
 */
export function versionText (): string {
  return `poi ${packageVersion('package.json')}\nonnxruntime-node ${packageVersion('node_modules/onnxruntime-node/package.json')}\nnode ${process.versions.node}`
}

const example = (lines: string[]): string => `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map(l => `  $ ${l}`).join('\n')}`

/** The options every node-like command (operator, aggregator, bootstrap, request, result) shares. */
function addNodeOptions (cmd: Command, kind: 'operator' | 'aggregator' | 'bootstrap' | 'client' | 'gateway'): Command {
  // A gateway is a client that must have its own key (it signs and pays for every task).
  const role = kind === 'gateway' ? 'client' : kind
  cmd
    .option('--config <file>', 'JSON config (keys: keystore, dataDir, listen, bootstrap, genesis, modelDirs, graceMs, maxTaskTtlMs, http); flags override it')
  if (kind === 'gateway') cmd.addOption(required('--keystore <dir>', 'keystore whose key signs and pays for the tasks; the bearer token is kept there (gateway-token)'))
  else cmd.option('--keystore <dir>', role === 'client' ? 'keystore whose keys sign the task (default: a throwaway identity)' : 'keystore (default: ~/.poi/keys)')
  cmd
    .option('--data-dir <dir>', 'data directory: block store, certificates, outputs (default: ~/.poi/data)')
    .addOption(repeatable('--listen <multiaddr>', 'address to listen on (default: /ip4/127.0.0.1/tcp/0)'))
    .addOption(repeatable('--bootstrap <multiaddr>', 'a node to join through, with /p2p/<peer id>'))
    .addOption(new Option('--genesis <file>', 'operator set from a genesis file, without a chain (default: ~/.poi/genesis.json)').conflicts(role === 'client' ? ['chain', 'rpc'] : ['chain']))
    .addOption(new Option('--chain <deployment.json>', 'deployment file: the operator set from the on-chain registry; aggregators post certificates there; only models active in the ModelRegistry run'))
    .option('--rpc <url>', role === 'client'
      ? 'chain RPC endpoint: with --chain overrides the file\'s; without, the bootstrap node names the contracts (/poi/network/1/), checked on this chain'
      : 'chain RPC endpoint: overrides the deployment file\'s')
    .option('--registry <address>', 'with --rpc and no --chain: the OperatorRegistry the network must use (pins the bootstrap node\'s answer)')
    .addOption(repeatable('--model-dir <dir>', 'model directory (manifest.json + model.onnx) (default: the shipped model)').conflicts('noModelDir'))
    .addOption(noFlag('--no-model-dir', 'start without local models: fetch each through the DHT when a task names it'))
    .option('--grace-ms <ms>', 'aggregation grace window after quorum (default: 250)')
  if (role === 'aggregator' || role === 'operator') {
    cmd.option('--batch-max-leaves <n>', 'aggregators: a batch of tab tasks closes once it holds this many (default: 64)')
    cmd.option('--batch-max-wait-ms <ms>', 'aggregators: a batch closes this long after its first task was certified (default: 10000)')
  }
  cmd
    .option('--json', 'print machine-readable event lines on stdout')
  if (role !== 'client') {
    cmd.option('--probe', 'relay and report gossip latency probes (benchmarks)')
    cmd.option('--http <host:port>', 'serve the HTTP API (/health, /v1/network, /v1/tasks, /v1/models) here; a bare port or :port binds 127.0.0.1, port 0 a free one (default: off)')
  }
  if (role === 'operator') {
    cmd.option('--aggregate', 'also build quorum certificates (an aggregator too)')
    cmd.option('--prove', 'prove zk-tier tasks of models whose manifest names a circuit (Groth16, in a worker thread); the keystore\'s account is the payee the proof names')
    cmd.addOption(noFlag('--no-prefetch', 'with --chain: fetch a registered model only when a task names it, not at start'))
  }
  return cmd
}

/** The flags of every command that sends or reads a transaction on a deployment. */
function addChainOptions (cmd: Command, transaction: boolean): Command {
  cmd
    .option('--chain <deployment.json>', 'deployment file: the network\'s contracts and RPC URL (required; `poi chain deploy` and `poi devnet` write one)')
    .option('--keystore <dir>', 'keystore whose Ethereum account acts (default: ~/.poi/keys)')
    .option('--rpc <url>', 'chain RPC endpoint: overrides the deployment file\'s')
    .option('--config <file>', 'JSON config (keys: keystore, …); flags override it')
    .option('--json', 'print machine-readable event lines on stdout')
  if (transaction) cmd.option('-y, --yes', 'send without asking (needed without a terminal; a preview is printed either way)')
  return cmd
}

/**
 * The whole command line. `onRun` is called with the exit code of the command that ran; a
 * command's module is imported inside its action.
 */
export function createProgram (onRun: (code: number, commandPath: string) => void = () => {}): Command {
  const program = new Command('poi')
  /** Runs `run` with the command's options and operands, and reports its exit code. */
  const action = <V>(load: () => Promise<Run<V>>) => async function (this: Command): Promise<void> {
    for (const option of this.options) {
      if (requiredOptions.has(option) && this.getOptionValue(option.attributeName()) === undefined) {
        throw new CommandLineError(`required option "${option.flags}" not specified`, commandPath(this))
      }
    }
    const run = await load()
    // The declaration above is what produced these values: the command's own option types are its reading of them.
    const code = await run(commandValues(this) as V, this.args)
    onRun(typeof code === 'number' ? code : EXIT_OK, commandPath(this))
  }

  program
    .description('poi: a proof-of-inference network. Staked operators run ONNX models, BLS-sign the outputs, and quorum certificates prove the result.')
    .version(versionText(), '-V, --version', 'print the version of poi, of its onnxruntime-node and of Node')
    .enablePositionalOptions()
    .showSuggestionAfterError(true)
    .addHelpText('after', `${example([
      'poi keys generate --dir ./keys',
      'poi devnet --keep --dir ./devnet',
      'poi request --bootstrap <multiaddr> --chain ./devnet/deployment.json --input \'{"x":{"data":[0.1, …]}}\'',
      'poi help request'
    ])}

Exit codes:
${exitCodesHelp()}

Logs: quiet by default; DEBUG=poi:* for detail.`)

  const keys = program.command('keys').description('an operator\'s keystore: libp2p, BLS and Ethereum keys')
  keys.command('generate').description('create libp2p, BLS and Ethereum keys (files mode 0600)')
    .addOption(required('--dir <keystore>', 'the keystore directory to create'))
    .option('--force', 'overwrite the keys already in --dir')
    .addHelpText('after', example(['poi keys generate --dir ./keys']))
    .action(action(async () => (await import('./key-commands.js')).runKeysGenerate))
  keys.command('show').description('print a keystore\'s peer id, BLS public key and address')
    .addOption(required('--dir <keystore>', 'the keystore directory'))
    .addHelpText('after', example(['poi keys show --dir ./keys']))
    .action(action(async () => (await import('./key-commands.js')).runKeysShow))

  program.command('genesis').description('an operator set for a network without a chain')
    .command('create').description('write an operator set (with proofs of possession) from operators\' keystores')
    .addOption(required('--out <file>', 'the genesis file to write'))
    .addOption(required('--keystore <dir>', 'an operator\'s keystore, in operator order (repeatable, at least one)').argParser(collect))
    .option('--stake <wei>', 'each operator\'s stake in wei (default: 32 ETH)')
    .option('--chain-id <id>', 'chain id of the signing domain (default: 31337)')
    .addHelpText('after', example(['poi genesis create --out genesis.json --keystore ./op-0 --keystore ./op-1 --keystore ./op-2']))
    .action(action(async () => (await import('./key-commands.js')).runGenesisCreate))

  const operator = addNodeOptions(program.command('operator'), 'operator')
    .description('start an operator node: run models and attest results (with --aggregate, aggregate too); or manage the operator on a chain with its subcommands')
    .enablePositionalOptions()
    .addHelpText('after', example([
      'poi operator --keystore ./keys --chain deployment.json --bootstrap <multiaddr>',
      'poi operator --keystore ./keys --genesis genesis.json --bootstrap <multiaddr> --model-dir ./my-model'
    ]))
    .action(action(async () => {
      const { runRole } = await import('./node-commands.js')
      return async (values: Parameters<typeof runRole>[1]) => { await runRole('operator', values) }
    }))
  addChainOptions(operator.command('register'), true)
    .description('stake and register the keystore\'s BLS key with its proof of possession; it joins the set at the next epoch')
    .option('--stake <eth>', 'ETH to stake, at least the registry\'s minimum (required; e.g. 32 or 32000000000000000000wei)')
    .addHelpText('after', example(['poi operator register --stake 32 --chain deployment.json --keystore ./keys']))
    .action(action(async () => (await import('./chain-commands.js')).runRegister))
  addChainOptions(operator.command('status'), false)
    .description('registered or not, first epoch, in the current epoch or not, stake, exit and withdrawal times, rewards, reputation')
    .addOption(new Option('--address <0x…>', 'look up this operator instead of the keystore\'s').conflicts('keystore'))
    .addHelpText('after', example(['poi operator status --chain deployment.json --keystore ./keys', 'poi operator status --chain deployment.json --address 0x… --json']))
    .action(action(async () => (await import('./chain-commands.js')).runStatus))
  addChainOptions(operator.command('exit'), true)
    .description('leave the operator set from the next epoch (the stake unlocks after the exit delay)')
    .addHelpText('after', example(['poi operator exit --chain deployment.json --keystore ./keys --yes']))
    .action(action(async () => (await import('./chain-commands.js')).runExit))
  addChainOptions(operator.command('withdraw'), true)
    .description('take the stake back once unlocked (says when if too early)')
    .addHelpText('after', example(['poi operator withdraw --chain deployment.json --keystore ./keys']))
    .action(action(async () => (await import('./chain-commands.js')).runStakeWithdraw))

  program.command('chain').description('the contracts of a network')
    .command('deploy').description('deploy the contracts to any EVM chain with EIP-2537 (Prague) from the keystore\'s account and write the deployment file')
    .option('--rpc <url>', 'JSON-RPC endpoint of the chain (required)')
    .option('--keystore <dir>', 'keystore whose Ethereum account deploys and pays the gas (required)')
    .option('--out <file>', 'deployment file to write (default: ./deployment.json)')
    .option('--force', 'overwrite the deployment file')
    .option('--min-stake <eth>', 'least stake of an operator')
    .option('--epoch-duration <s>', 'least seconds between epochs')
    .option('--exit-delay <s>', 'seconds an exiting operator\'s stake stays locked')
    .option('--quorum-bps <bps>', 'stake share a certificate needs, in basis points')
    .option('--max-epoch-age <n>', 'how many epochs back a certificate\'s operator set may be')
    .option('--max-certificate-age <n>', 'how old a certificate may be when posted')
    .option('--slash-bps <bps>', 'share of the stake slashed for equivocation, in basis points')
    .option('--reporter-bps <bps>', 'share of a slashing paid to its reporter, in basis points')
    .option('--protocol-fee-bps <bps>', 'share of each task fee paid to the treasury, in basis points')
    .option('--min-task-fee <eth>', 'least fee of a task (network minimum)')
    .option('--treasury <address>', 'account that receives the protocol fee (default: the deployer)')
    .option('--asset <erc20>', 'ERC-20 that pays for tasks (default: ETH)')
    .option('--max-task-life <s>', 'longest a task may live')
    .option('--settlement-window <s>', 'seconds a settled result waits before its fee is paid out')
    .option('--withdrawal-delay <s>', 'seconds a requester\'s withdrawal stays locked')
    .option('-y, --yes', 'deploy without asking (needed without a terminal; a preview is printed either way)')
    .option('--json', 'print machine-readable event lines on stdout')
    .addHelpText('after', `(defaults of the parameters: contracts/src, as \`poi chain deploy\`'s preview prints them)${example(['poi chain deploy --rpc http://127.0.0.1:8545 --keystore ./keys --out deployment.json --epoch-duration 60'])}`)
    .action(action(async () => (await import('./chain-commands.js')).runDeploy))
  program.commands.find(c => c.name() === 'chain')!
    .command('faucet').description('serve a testnet\'s deployment file and fund each new address once from the keystore\'s account (GET /v1/deployment, POST /v1/fund {"address":"0x…"})')
    .addOption(required('--chain <deployment.json>', 'the deployment it serves, on whose chain it funds'))
    .addOption(required('--keystore <dir>', 'keystore whose Ethereum account pays the grants'))
    .addOption(required('--http <host:port>', 'where to serve; a bare port or :port binds 127.0.0.1'))
    .option('--rpc <url>', 'chain RPC endpoint: overrides the deployment file\'s')
    .option('--amount <eth>', 'what each address gets, once (default: 40; at most 1000)')
    .option('--max-grants <n>', 'how many addresses it funds in all (default: 256)')
    .option('--state <file>', 'where the funded addresses are kept across restarts (default: faucet-grants.json beside --chain)')
    .addHelpText('after', example(['poi chain faucet --chain deployment.json --keystore ./keys --http 0.0.0.0:8546 --amount 40',
      'curl -s -X POST http://127.0.0.1:8546/v1/fund -H \'content-type: application/json\' -d \'{"address":"0x…"}\'']))
    .action(action(async () => (await import('./faucet-command.js')).runFaucet))

  addChainOptions(program.command('epoch').description('the epochs of a network')
    .command('advance'), true)
    .description('start the next epoch (anyone may, once the current one has lasted the registry\'s epoch duration; says when if too early)')
    .addHelpText('after', example(['poi epoch advance --chain deployment.json --keystore ./keys --yes']))
    .action(action(async () => (await import('./chain-commands.js')).runAdvance))

  for (const [name, description] of [
    ['aggregator', 'start an aggregator node: build quorum certificates from attestations (and post them on a chain)'],
    ['bootstrap', 'start a bootstrap node: relay gossip and answer DHT queries (peer discovery)']
  ] as const) {
    addNodeOptions(program.command(name), name).description(description)
      .addHelpText('after', example([`poi ${name} --keystore ./keys --chain deployment.json --listen /ip4/0.0.0.0/tcp/4001`]))
      .action(action(async () => {
        const { runRole } = await import('./node-commands.js')
        return async (values: Parameters<typeof runRole>[1]) => { await runRole(name, values) }
      }))
  }

  addNodeOptions(program.command('request'), 'client')
    .description('announce a task, wait for its quorum certificate, verify it and print the output (inputs above 64 KiB go by stream reference, up to 1 MiB)')
    .option('--model <id|dir>', 'model id or model directory (default: the shipped model)')
    .option('--input <json|@file>', 'inline JSON like {"x":{"data":[…]}}, @file.json, or @file in the binary tensor format (required)')
    .option('--timeout <s>', 'seconds to wait for the certificate (default: 30; at most the nodes\' 600)')
    .option('--quorum <bps>', 'stake share the certificate must carry, in basis points (default: 6667)')
    .option('--fee <amount>', 'with a chain: the fee, like 0.01 or 123wei (default: the model\'s fee + the network\'s minimum, from the keystore account\'s deposit)')
    .option('--tab', 'pay from the keystore account\'s credit tab: the task takes the tab\'s next sequence (kept in the keystore directory) and a voucher, and settles in a batch (default: off, the task settles by its own certificate)')
    .option('--tier <tier>', 'replicated (a quorum certificate) or zk (a Groth16 proof from an operator run with --prove, verified here with the model\'s verification key; the model\'s manifest must name a circuit) (default: replicated)')
    .addHelpText('after', example([
      'poi request --bootstrap <multiaddr> --chain deployment.json --keystore ./keys --input \'{"x":{"data":[0.1, …]}}\'',
      'poi request --bootstrap <multiaddr> --rpc http://127.0.0.1:8545 --model 0x… --input @input.json --json'
    ]))
    .action(action(async () => (await import('./request-command.js')).runRequest))

  addNodeOptions(program.command('gateway'), 'gateway')
    .description('serve a requester gateway over HTTP: POST /v1/tasks signs and announces a task with this keystore\'s key, GET /v1/tasks/<id>?wait=<ms> answers with its verified certificate and output')
    .addOption(required('--http <host:port>', 'where to serve; a bare port or :port binds 127.0.0.1 (writes open to this machine); any other address needs the bearer token of <keystore>/gateway-token for writes'))
    .option('--rate-limit <n>', 'requests per minute each client (a token, or an IP) may make (default: 300)')
    .addHelpText('after', example([
      'poi gateway --http 127.0.0.1:8080 --keystore ./keys --bootstrap <multiaddr> --chain deployment.json',
      'curl -s -X POST http://127.0.0.1:8080/v1/tasks -H \'content-type: application/json\' -d \'{"model":"<id>","input":{"x":{"data":[0.1, …]}}}\''
    ]))
    .action(action(async () => (await import('./gateway-command.js')).runGateway))

  addNodeOptions(program.command('result'), 'client')
    .description('ask full nodes for a task\'s certificate and output and verify both (with a chain, also against the on-chain result)')
    .argument('<task-id>', 'the task id: 32 bytes hex')
    .option('--quorum <bps>', 'stake share the certificate must carry, in basis points (default: the network\'s)')
    .addHelpText('after', example(['poi result 0x4f…e1 --bootstrap <multiaddr> --chain deployment.json --json']))
    .action(action(async () => (await import('./result-command.js')).runResult))

  addChainOptions(program.command('deposit'), false)
    .description('deposit ETH (or the deployment\'s ERC-20) to pay for tasks')
    .argument('<amount>', 'like 0.5 (units of the asset) or 123wei')
    .option('--token <address>', 'the ERC-20 to deposit; must be the deployment\'s payment asset')
    .addHelpText('after', example(['poi deposit 0.5 --chain deployment.json --keystore ./keys']))
    .action(action(async () => (await import('./payment-commands.js')).runDeposit))
  addChainOptions(program.command('withdraw'), false)
    .description('with an amount: request a withdrawal of the deposit and say when it unlocks; without: complete the pending one once unlocked')
    .argument('[amount]', 'like 0.5 (units of the asset) or 123wei')
    .addHelpText('after', example(['poi withdraw 0.2 --chain deployment.json --keystore ./keys', 'poi withdraw --chain deployment.json --keystore ./keys']))
    .action(action(async () => (await import('./payment-commands.js')).runWithdraw))
  addChainOptions(program.command('rewards'), false)
    .description('an operator\'s rewards per epoch and reputation, and the account\'s credit as model owner or treasury')
    .option('--claim', 'pay out the operator\'s pending rewards')
    .option('--withdraw-credit', 'pay out the account\'s credit')
    .addHelpText('after', example(['poi rewards --chain deployment.json --keystore ./keys', 'poi rewards --chain deployment.json --keystore ./keys --claim']))
    .action(action(async () => (await import('./payment-commands.js')).runRewards))
  addChainOptions(program.command('network'), false)
    .description('the network: its contracts (payment asset, maximum task life, ERC-8004 registries) and every operator of the current epoch with stake, reputation (signed, missed, slashed) and rewards to claim')
    .addHelpText('after', example(['poi network --chain deployment.json --json']))
    .action(action(async () => (await import('./payment-commands.js')).runNetwork))

  const gov = program.command('gov').description('network governance: operators vote with their stake on parameter changes, which a timelock runs after its delay; the guardian can pause')
  addChainOptions(gov.command('propose'), true)
    .description('propose a governed change: `set <parameter> <value>` (a network parameter, checked against its bounds first), `guardian <address>` or `unpause`; prints the proposal id')
    .argument('<action>', 'set, guardian or unpause')
    .argument('[args...]', 'set: <parameter> <value>; guardian: <address>')
    .option('--reason <text>', 'why: part of the proposal\'s description, which voters read')
    .addHelpText('after', `\nParameters: \`poi gov status\` lists each with its current value; \`poi gov propose set <unknown>\` lists them all with their bounds.${example([
      'poi gov propose set protocolFeeBps 50 --reason "lower the protocol fee" --chain deployment.json --keystore ./keys --yes',
      'poi gov propose guardian 0x… --chain deployment.json --keystore ./keys --yes'
    ])}`)
    .action(action(async () => (await import('./gov-commands.js')).runGovPropose))
  addChainOptions(gov.command('vote'), true)
    .description('vote on an active proposal with the keystore\'s stake (its voting power at the proposal\'s snapshot)')
    .argument('<proposal-id>', 'the id `poi gov propose` printed (decimal or 0x-hex)')
    .argument('<support>', 'for, against or abstain')
    .option('--reason <text>', 'a reason recorded with the vote')
    .addHelpText('after', example(['poi gov vote 4242…17 for --chain deployment.json --keystore ./keys --yes']))
    .action(action(async () => (await import('./gov-commands.js')).runGovVote))
  addChainOptions(gov.command('queue'), true)
    .description('put a succeeded proposal in the timelock; it can be executed once the timelock\'s delay has passed')
    .argument('<proposal-id>', 'the proposal id (decimal or 0x-hex)')
    .addHelpText('after', example(['poi gov queue 4242…17 --chain deployment.json --keystore ./keys --yes']))
    .action(action(async () => (await import('./gov-commands.js')).runGovQueue))
  addChainOptions(gov.command('execute'), true)
    .description('run a queued proposal through the timelock (says how long is left when its delay has not passed)')
    .argument('<proposal-id>', 'the proposal id (decimal or 0x-hex)')
    .addHelpText('after', example(['poi gov execute 4242…17 --chain deployment.json --keystore ./keys --yes']))
    .action(action(async () => (await import('./gov-commands.js')).runGovExecute))
  addChainOptions(gov.command('status'), false)
    .description('with an id: the proposal\'s state, votes, quorum, voting window and execution time; without: every governed parameter\'s value, the guardian, the pause and the governance timings')
    .argument('[proposal-id]', 'the proposal id (decimal or 0x-hex)')
    .addHelpText('after', example(['poi gov status --chain deployment.json', 'poi gov status 4242…17 --chain deployment.json --json']))
    .action(action(async () => (await import('./gov-commands.js')).runGovStatus))
  addChainOptions(gov.command('delegate'), true)
    .description('let another account vote with this operator\'s stake (its own address takes the votes back); counts for proposals made after it')
    .argument('<address>', 'the account that votes with the stake')
    .addHelpText('after', example(['poi gov delegate 0x… --chain deployment.json --keystore ./keys --yes']))
    .action(action(async () => (await import('./gov-commands.js')).runGovDelegate))
  addChainOptions(gov.command('pause'), true)
    .description('the guardian only: pause task settlement and operator registrations at once (deposits, stake past its delay and rewards can still be withdrawn); only a proposal unpauses')
    .addHelpText('after', example(['poi gov pause --chain deployment.json --keystore ./guardian --yes']))
    .action(action(async () => (await import('./gov-commands.js')).runGovPause))
  addChainOptions(gov.command('unpause'), true)
    .description('propose to unpause (only the timelock unpauses): the same as `poi gov propose unpause`')
    .option('--reason <text>', 'why: part of the proposal\'s description')
    .addHelpText('after', example(['poi gov unpause --reason "the incident is fixed" --chain deployment.json --keystore ./keys --yes']))
    .action(action(async () => (await import('./gov-commands.js')).runGovUnpause))

  program.command('models').description('list the models in the configured model directories (what a node started the same way runs)')
    .option('--config <file>', 'JSON config (its modelDirs)')
    .addOption(repeatable('--model-dir <dir>', 'model directory (default: the shipped model)'))
    .addHelpText('after', example(['poi models --model-dir ./my-model']))
    .action(action(async () => (await import('./model-commands.js')).runModels))

  const model = program.command('model').description('models stored as content-addressed shards in a node\'s data directory')
  model.command('publish').description('publish a model to a node: through the node running on --data-dir (it stores the shards and announces them on the DHT at once), or into that data dir\'s store when no node runs there; with --chain, register it on-chain first (all or nothing). A model directory is published with its manifest as it is, and with its circuit\'s files when it has a zk/ folder (`poi model zk-attach`)')
    .argument('<file.onnx|model dir>', 'the ONNX model, or a model directory (manifest.json, model.onnx, and zk/ for the zk tier)')
    .option('--rule <rule>', 'agreement rule: exact, grid:<k>, argmax or topk:<n> (required for a .onnx file; a model directory\'s manifest names it)')
    .option('--data-dir <dir>', 'the node\'s data directory (default: ~/.poi/data)')
    .option('--name <name>', 'model name in the manifest (default: the file name)')
    .option('--keystore <dir>', 'the owner\'s keystore (needed with --chain)')
    .option('--owner <address>', 'owner named in the manifest (default: the keystore\'s account)')
    .option('--chain <deployment.json>', 'register the model in this deployment\'s ModelRegistry')
    .option('--fee <wei>', 'with --chain: the model owner\'s fee per task, in wei')
    .option('--json', 'print machine-readable event lines on stdout')
    .addHelpText('after', example(['poi model publish ./model.onnx --rule argmax --data-dir ./node/data --keystore ./keys --chain deployment.json --fee 1000', 'poi model publish ./my-int8-model --data-dir ./node/data']))
    .action(action(async () => (await import('./model-commands.js')).runModelPublish))
  model.command('ls').description('the models held in a node\'s block store (asked of the node when one runs on --data-dir)')
    .option('--data-dir <dir>', 'the node\'s data directory (default: ~/.poi/data)')
    .addHelpText('after', example(['poi model ls --data-dir ./node/data']))
    .action(action(async () => (await import('./model-commands.js')).runModelLs))
  model.command('show').description('a stored model\'s manifest')
    .argument('<model-id>', 'the model id (0x… hex)')
    .option('--data-dir <dir>', 'the node\'s data directory (default: ~/.poi/data)')
    .addHelpText('after', example(['poi model show 0x1220… --data-dir ./node/data']))
    .action(action(async () => (await import('./model-commands.js')).runModelShow))

  const zkSetup = model.command('zk-setup').description('the Groth16 setup of a model\'s circuit, without a single trusted party: powers of tau generated locally (whoever runs `start` is trusted for them), then a chain of contributions in one directory, each verified by snarkjs before the next; the key is sound if any one contributor was honest')
  zkSetup.command('start').description('start a ceremony in --dir: copy the circuit in, generate the powers of tau it needs (at most 2^15) or copy --ptau, and write the first key and ceremony.json')
    .argument('<circuit.r1cs>', 'the circuit, as circom compiled it')
    .addOption(required('--dir <dir>', 'the ceremony directory to create'))
    .option('--ptau <file>', 'a powers of tau prepared for phase 2 (`snarkjs powersoftau prepare phase2`) instead of generating one; whoever made it is trusted')
    .option('--name <who>', 'who generated the powers of tau, for the record (default: user@host when generated here, none when supplied)')
    .addHelpText('after', example(['poi model zk-setup start ./model.r1cs --dir ./ceremony']))
    .action(action(async () => (await import('./zk-setup-command.js')).runZkSetupStart))
  zkSetup.command('contribute').description('verify the chain of contributions so far (the last key is the one recorded, snarkjs verifies it against the circuit and the powers of tau, it extends every recorded contribution), then add yours with fresh randomness and record its hash')
    .addOption(required('--dir <dir>', 'the ceremony directory'))
    .addOption(required('--name <who>', 'the contributor, written into the key and the record (at most 64 characters)'))
    .option('--entropy <text>', 'more randomness of your own, mixed with the OS\'s')
    .addHelpText('after', example(['poi model zk-setup contribute --dir ./ceremony --name alice']))
    .action(action(async () => (await import('./zk-setup-command.js')).runZkSetupContribute))
  zkSetup.command('finalize').description('verify the chain once more, export the verification key (verification_key.json) and record its sha256 and the proving key')
    .addOption(required('--dir <dir>', 'the ceremony directory'))
    .addHelpText('after', example(['poi model zk-setup finalize --dir ./ceremony']))
    .action(action(async () => (await import('./zk-setup-command.js')).runZkSetupFinalize))

  model.command('zk-attach').description('give a model directory its circuit for the zk tier: the compiled circuit\'s witness generator and a finalized ceremony\'s keys go to <model dir>/zk/, and manifest.json gains a zk section naming them (so the model id changes: the new one is printed); checks that the circuit is the model\'s and the keys are the ones the ceremony recorded')
    .argument('<model dir>', 'the model directory (manifest.json, model.onnx), written in place')
    .addOption(required('--circuit <dir>', 'the model\'s compiled circuit (the directory circom wrote, with model_js/model.wasm), or the .wasm file'))
    .addOption(required('--ceremony <dir>', 'a finalized ceremony directory (`poi model zk-setup finalize`)'))
    .addHelpText('after', example(['poi model zk-attach ./my-int8-model --circuit ./circuit --ceremony ./ceremony']))
    .action(action(async () => (await import('./zk-attach-command.js')).runZkAttach))

  addChainOptions(model.command('access'), false)
    .description('model owner: set the model\'s access tier (open, allowlist, pay-per-use with a fee per task, subscription at a price per period, credits at a price per use); requesters without access are refused by full nodes and at settlement')
    .argument('<model-id>', 'the model id')
    .option('--tier <tier>', 'open | allowlist | pay-per-use | subscription | credits (required)')
    .option('--price <amount>', 'like 0.01 or 123wei: the fee per task (open, allowlist, pay-per-use), per period (subscription) or per credit (credits)')
    .option('--period <duration>', 'subscription: what one period buys, like 30d, 12h or 3600 (seconds)')
    .addHelpText('after', example(['poi model access <model-id> --tier subscription --price 0.01 --period 30d --chain deployment.json --keystore ./owner-keys', 'poi model access <model-id> --tier credits --price 0.0005 --chain deployment.json --keystore ./owner-keys']))
    .action(action(async () => (await import('./access-commands.js')).runModelAccess))
  addChainOptions(model.command('buy'), false)
    .description('requester: buy periods of a subscription model or credits of a credits model, paid from the wallet to the owner at once (not from the deposit)')
    .argument('<model-id>', 'the model id')
    .option('--period <n>', 'periods of a subscription to buy (extends from the current end)')
    .option('--credits <n>', 'credits to buy (each certified task uses one)')
    .addHelpText('after', example(['poi model buy <model-id> --period 1 --chain deployment.json --keystore ./keys', 'poi model buy <model-id> --credits 10 --chain deployment.json --keystore ./keys --json']))
    .action(action(async () => (await import('./access-commands.js')).runModelBuy))

  program.command('devnet').description('launch anvil, deploy, register operators and models, and run tasks end to end with their certificates settled on-chain (what `npm start` runs)')
    .option('--operators <n>', 'number of operators (default: 4, at least 3)')
    .option('--keep', 'keep running (and keep --dir) after the tasks, until Ctrl-C')
    .option('--dir <dir>', 'directory for keys, data, logs, chain state and deployment.json (default: a temporary one, removed at the end); a stopped devnet\'s directory is resumed (same chain and keys)')
    .option('--force', 'with --dir: delete the devnet already there and start over')
    .option('--offchain', 'no chain: operators from a genesis file, certificates only off-chain')
    .option('--npm-models <keys|none>', 'real models from npm to run after the shipped one, comma-separated: silero-vad, ppocr-cls, ppocr-rec (default: ppocr-cls)')
    .addOption(new Option('--gov', 'then change a network parameter through governance: propose, vote with the operators\' stake, queue, execute (anvil\'s clock moved past the voting period and the timelock delay), and print it before and after').conflicts('offchain'))
    .addOption(new Option('--batch', 'then send tab tasks from two requesters (paid from credit tabs), settle them on chain in one batch, prove each leaf with its Merkle proof and print the gas per task').conflicts('offchain'))
    .addOption(new Option('--zk', 'then one zk-tier task: the quantised shipped model\'s circuit, a setup with two operators\' contributions (the powers of tau is made once and cached), its verifier registered on chain, an operator proving with --prove; prints the proof time and the gas').conflicts('offchain'))
    .addHelpText('after', example(['poi devnet', 'poi devnet --operators 5 --keep --dir ./devnet', 'poi devnet --dir ./devnet   # resumes the devnet kept there', 'npm start -- --offchain --npm-models none', 'npm start -- --gov', 'npm start -- --batch', 'npm start -- --zk']))
    .action(action(async () => (await import('./devnet.js')).runDevnetCommand))

  configureTree(program)
  return program
}

/** Help goes to stdout; every refusal is thrown (exitOverride) and remembered with the command that refused it, for the hint. */
function configureTree (cmd: Command): void {
  const path = commandPath(cmd)
  cmd
    .exitOverride()
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
      // main prints the refusal itself (formatError), with --json also as an error line.
      outputError: () => { refusingCommand = path }
    })
  for (const sub of cmd.commands) configureTree(sub)
}

/** The command whose arguments were refused last ('' for the program itself). */
let refusingCommand = ''

/** `operator register` for that command, '' for the program. */
export function commandPath (cmd: Command): string {
  const names: string[] = []
  for (let c: Command | null = cmd; c?.parent != null; c = c.parent) names.unshift(c.name())
  return names.join(' ')
}

/** A command's parsed options keyed by flag name as typed (`data-dir`, `no-model-dir`), only those given. */
export function commandValues (cmd: Command): CommandValues {
  const opts = cmd.opts()
  const values: CommandValues = {}
  for (const option of cmd.options) {
    const value = opts[option.attributeName()] as CommandValues[string]
    if (value !== undefined) values[option.name()] = value
  }
  return values
}

/** Every command and subcommand of `program`, by path (`keys generate`, `operator`, `operator register`, …). */
export function allCommands (program: Command): Array<{ path: string, command: Command }> {
  const found: Array<{ path: string, command: Command }> = []
  const walk = (cmd: Command): void => {
    for (const sub of cmd.commands) {
      found.push({ path: commandPath(sub), command: sub })
      walk(sub)
    }
  }
  walk(program)
  return found
}

/**
 * Parses `argv` (without `node poi`) and runs the command it names. Resolves with the exit code:
 * the command's, 0 after help or the version, 2 when the command line is incomplete (`poi`
 * alone, `poi genesis`: the help is printed on stderr). Rejects with a CommandLineError when the
 * parser refuses the command line, or with what the command threw.
 */
export async function runCommandLine (argv: string[], onCommand?: (commandPath: string) => void): Promise<number> {
  let code = EXIT_OK
  const program = createProgram((c) => { code = c })
  program.hook('preAction', (_root, actionCommand) => { onCommand?.(commandPath(actionCommand)) })
  refusingCommand = ''
  try {
    await program.parseAsync(argv, { from: 'user' })
    return code
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err
    // --help, --version, `poi help <command>`: exit 0. Help shown because a (sub)command is missing: exit 1 from commander, ours is 2.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT_OK
    if (err.code === 'commander.help' || err.code === 'commander.executeSubCommandAsync') return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE
    throw new CommandLineError(refusalMessage(err), refusingCommand)
  }
}

/** Commander's message in poi's words: quotes as poi's messages have them, conflicts with their reason. */
function refusalMessage (err: CommanderError): string {
  const message = err.message.replace(/^error: /, '').replace(/'([^']*)'/g, '"$1"')
  if (err.code !== 'commander.conflictingOption') return message
  const named = [...message.matchAll(/option "--([a-z-]+)/g)].map(m => m[1])
  if (named.length !== 2) return message
  // Said in the order the reason names them.
  const [a, b] = CONFLICT_REASONS[`${named[1]}|${named[0]}`] !== undefined ? [named[1], named[0]] : named
  const reason = CONFLICT_REASONS[`${a}|${b}`]
  return `--${a} and --${b} are mutually exclusive${reason !== undefined ? `: ${reason}` : ': give one of them'}`
}
