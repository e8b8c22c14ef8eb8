/** `poi help`: every command and the node options. */
export const USAGE = `poi — proof-of-inference node

Usage:
  poi keys generate --dir <keystore> [--force]   create libp2p, BLS and Ethereum keys (files mode 0600)
  poi keys show --dir <keystore>                 print peer id, BLS public key and address
  poi genesis create --out <file> --keystore <dir> [--keystore <dir> …] [--stake <wei>] [--chain-id <id>]
                                                 write an operator set from operators' keystores
  poi operator   [node options] [--aggregate]    run models and attest results (optionally aggregate too);
                                                 'poi operator register|status|exit|withdraw' are the lifecycle
                                                 subcommands below (a first argument with that name), anything
                                                 else starts the node
  poi aggregator [node options]                  build quorum certificates from attestations
  poi bootstrap  [node options]                  relay gossip and answer DHT queries (peer discovery)
  poi request --bootstrap <addr> (--rpc <url> | --chain <deployment.json> | --genesis <file>) --input <json|@file>
              [--model <id|dir>] [--timeout <s>] [--quorum <bps>] [--fee <amount>] [--keystore <dir>] [--json]
                                                 announce a task, wait for its certificate, verify it
                                                 (inputs above 64 KiB go by stream reference, up to 1 MiB);
                                                 on a chain the fee defaults to the model's fee + the network's
                                                 minimum and is paid from the keystore account's deposit
  poi result <task id> --bootstrap <addr> (--rpc <url> | --chain <deployment.json> | --genesis <file>) [--json]
                                                 ask full nodes for a task's certificate and output, verify
                                                 both (and, with --chain, against the on-chain result)
  poi deposit <amount> --chain <deployment.json> [--keystore <dir>] [--token <address>] [--json]
                                                 deposit ETH (or the deployment's ERC-20) to pay for tasks;
                                                 amounts like 0.5 (units of the asset) or 123wei
  poi withdraw [<amount>] --chain <deployment.json> [--keystore <dir>] [--json]
                                                 with an amount: request a withdrawal and show when it unlocks;
                                                 without: complete the pending one once unlocked
  poi rewards --chain <deployment.json> [--keystore <dir>] [--claim] [--withdraw-credit] [--json]
                                                 an operator's rewards per epoch and reputation, and the account's
                                                 credit as model owner or treasury; --claim and --withdraw-credit
                                                 pay them out
  poi network --chain <deployment.json> [--json] every operator of the current epoch: stake, reputation
                                                 (signed, missed, slashed) and rewards to claim in the epoch
  poi chain deploy --rpc <url> --keystore <dir> [--out deployment.json] [--force] [--min-stake <eth>]
              [--epoch-duration <s>] [--exit-delay <s>] [--quorum-bps <bps>] [--max-epoch-age <n>]
              [--max-certificate-age <n>] [--protocol-fee-bps <bps>] [--min-task-fee <eth>] [--treasury <address>]
              [--slash-bps <bps>] [--reporter-bps <bps>] [--asset <erc20>] [--max-task-life <s>]
              [--settlement-window <s>] [--withdrawal-delay <s>] [--yes] [--json]
                                                 deploy the contracts to any EVM chain with EIP-2537 (Prague) from
                                                 the keystore's account and write the deployment file (refuses to
                                                 overwrite it without --force)
  poi operator register --stake <eth> --chain <deployment.json> [--keystore <dir>] [--yes] [--json]
                                                 stake and register the keystore's BLS key with its proof of
                                                 possession; it joins the set at the next epoch
  poi operator status --chain <deployment.json> [--keystore <dir> | --address <0x…>] [--json]
                                                 registered or not, first epoch, in the current epoch or not,
                                                 stake, exit and withdrawal times, rewards, reputation
  poi operator exit --chain <deployment.json> [--keystore <dir>] [--yes] [--json]
                                                 leave the operator set from the next epoch
  poi operator withdraw --chain <deployment.json> [--keystore <dir>] [--yes] [--json]
                                                 take the stake back once unlocked (says when if too early)
  poi epoch advance --chain <deployment.json> [--keystore <dir>] [--yes] [--json]
                                                 start the next epoch (anyone may, once the current one has
                                                 lasted the registry's epoch duration; says when if too early)
                                                 Transaction commands print a preview (action, account, value,
                                                 estimated gas) and ask on a terminal; --yes sends without asking;
                                                 without a terminal they need --yes
  poi models                                     list the models in the configured model directories
  poi model publish <file.onnx> --rule <rule> [--data-dir <dir>] [--name <n>] [--keystore <dir>] [--owner <address>] [--chain <deployment.json> [--fee <wei>]]
                                                 store a model as content-addressed shards in a node's data dir
                                                 (the node announces them on the DHT) and register it on-chain;
                                                 its manifest names the keystore's account (or --owner) as owner,
                                                 the only account that can register it (--chain needs --keystore)
  poi model ls [--data-dir <dir>]                models held in a node's block store
  poi model show <model id> [--data-dir <dir>]   a stored model's manifest
  poi devnet [--operators <n>] [--keep] [--dir <dir> [--force]] [--offchain] [--npm-models <keys|none>]
                                                 launch anvil, deploy, register operators and models, and run
                                                 tasks end to end with their certificates settled on-chain:
                                                 the shipped model, then real npm models (default ppocr-cls;
                                                 keys: silero-vad, ppocr-cls, ppocr-rec); --dir on a stopped
                                                 devnet's directory resumes it (same chain and keys); --force
                                                 deletes the devnet already in --dir and starts over

Node options:
  --config <file>       JSON config (keys: keystore, dataDir, listen, bootstrap, genesis, modelDirs, graceMs, maxTaskTtlMs)
  --keystore <dir>      default ~/.poi/keys
  --data-dir <dir>      default ~/.poi/data
  --listen <addr>       multiaddr, repeatable; default /ip4/127.0.0.1/tcp/0
  --bootstrap <addr>    multiaddr with /p2p/<peer id>, repeatable
  --genesis <file>      operator set; default ~/.poi/genesis.json (not used with --chain)
  --chain <file>        deployment JSON {rpcUrl, registry, taskManager, slashing, modelRegistry, deployedAtBlock}:
                        operator set from the on-chain registry; aggregators post certificates there; only
                        models active in the ModelRegistry run, and operators prefetch them at start
  --no-prefetch         (operators with --chain) fetch a registered model only when a task names it
  --rpc <url>           chain RPC endpoint: overrides the deployment file's; poi request and poi result
                        with --rpc and no --chain ask the bootstrap node for the contracts over
                        /poi/network/1/ and check them on the chain before using them
  --registry <address>  with --rpc: the OperatorRegistry the network must use (pins the bootstrap's answer)
  --model-dir <dir>     model directory (manifest.json + model.onnx), repeatable; default the shipped model.
                        Full nodes store these as content-addressed shards and announce them on the DHT
  --no-model-dir        start without local models: fetch each model through the DHT when a task names it
  --grace-ms <ms>       aggregation grace window after quorum (default 250)
  --json                print machine-readable event lines on stdout
  --probe               relay and report gossip latency probes (benchmarks)

Logs: quiet by default; DEBUG=poi:* for detail.`
