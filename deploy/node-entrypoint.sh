#!/usr/bin/env bash
# What each service of the swarm stack (deploy/swarm/stack.yml) runs in the poi image:
#
#   node-entrypoint.sh deployer|bootstrap|operator|aggregator|gateway
#
# deployer    deploys the contracts once (to $POI_RPC; the deployment lands on its volume),
#             registers the shipped model, then serves the deployment file and the faucet
#             (`poi chain faucet` on :$POI_FAUCET_PORT).
# bootstrap   a full node with a stable identity (its keystore on its volume) that the others
#             find by its service name; its peer id is read from its HTTP API (/v1/network).
# operator    generates its keystore on first start under $POI_HOME (one directory per replica
#             slot), gets funded by the faucet, registers with $POI_STAKE, starts the next epoch
#             when it is due (until the epoch counts it), then runs.
# aggregator  funded for the gas of its certificate transactions, then runs.
# gateway     funded, deposits $POI_DEPOSIT once, then serves POST /v1/tasks on :$POI_HTTP_PORT
#             (bearer token: $POI_HOME/keys/gateway-token, `docker exec … cat` it).
#
# Every step is idempotent: a restarted task (or a re-deployed stack on kept volumes) picks up
# where it was. The waits poll: on a loaded machine a service may come up minutes after another.
set -euo pipefail

ROLE=${1:?usage: node-entrypoint.sh deployer|bootstrap|operator|aggregator|gateway}
HOME_DIR=${POI_HOME:-/data}
KEYS=$HOME_DIR/keys
DATA=$HOME_DIR/data
CHAIN_FILE=$HOME_DIR/deployment.json
FAUCET=${POI_FAUCET_URL:-http://deployer:8546}
BOOTSTRAP_HOST=${POI_BOOTSTRAP_HOST:-bootstrap}
P2P_PORT=${POI_P2P_PORT:-4001}
HTTP_PORT=${POI_HTTP_PORT:-8080}
# Seconds between two tries of a step that waits on another service (the chain, the faucet, the bootstrap node).
POLL_S=2
# Seconds between two tries to start the next epoch: each try runs the CLI twice, which costs a
# core for a second or more, and an epoch lasts POI_EPOCH_S (15 s on the stack's testnets) anyway.
EPOCH_POLL_S=5

say () { echo "[$ROLE $(date -u +%H:%M:%S)] $*"; }

# http METHOD URL [BODY] → prints the body; exit 0 on 2xx, 22 otherwise (the body still printed).
http () {
  node -e '
    const [method, url, body] = process.argv.slice(1)
    fetch(url, { method, headers: body ? { "content-type": "application/json" } : {}, body: body || undefined, signal: AbortSignal.timeout(30000) })
      .then(async r => { process.stdout.write(await r.text()); process.exit(r.ok ? 0 : 22) }, e => { console.error(e.message); process.exit(7) })
  ' "$@"
}

# Retries `$@` until it succeeds.
until_ok () { until "$@"; do sleep "$POLL_S"; done; }

keys () {
  if [ ! -f "$KEYS/eth.key" ]; then
    poi keys generate --dir "$KEYS" >/dev/null
    say "new keystore in $KEYS"
  fi
  local shown
  # One CLI start, not two: on a loaded machine each costs seconds.
  shown=$(poi keys show --dir "$KEYS")
  ADDRESS=$(sed -n 's/^address *//p' <<<"$shown")
  PEER_ID=$(sed -n 's/^peer id *//p' <<<"$shown")
  say "address $ADDRESS, peer id $PEER_ID"
}

fetch_deployment () {
  say "waiting for the deployment at $FAUCET/v1/deployment"
  until http GET "$FAUCET/v1/deployment" >"$CHAIN_FILE.tmp" 2>/dev/null; do sleep "$POLL_S"; done
  mv "$CHAIN_FILE.tmp" "$CHAIN_FILE"
}

fund () {
  local out code=0
  out=$(http POST "$FAUCET/v1/fund" "{\"address\":\"$ADDRESS\"}" 2>&1) || code=$?
  case "$code:$out" in
    0:*) say "funded: $out" ;;
    *ERR_ALREADY_FUNDED*) say "funded before" ;;
    *) say "the faucet refused: $out"; return 1 ;;
  esac
}

bootstrap_addr () {
  local id
  say "waiting for the bootstrap node's peer id at http://$BOOTSTRAP_HOST:$HTTP_PORT/v1/network"
  until id=$(http GET "http://$BOOTSTRAP_HOST:$HTTP_PORT/v1/network" 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{process.stdout.write(JSON.parse(s).peerId)}catch{process.exit(1)}})'); do
    sleep "$POLL_S"
  done
  # The service's DNS name, not an IP: a rescheduled bootstrap task keeps its name (and, from its volume, its peer id).
  BOOTSTRAP="/dns4/$BOOTSTRAP_HOST/tcp/$P2P_PORT/p2p/$id"
  say "bootstrap $BOOTSTRAP"
}

# This keystore's operator-status event line (registered, inCurrentEpoch, …).
operator_status () { poi operator status --chain "$CHAIN_FILE" --keystore "$KEYS" --json | tail -1; }

NODE_FLAGS=()
node_flags () {
  NODE_FLAGS=(--keystore "$KEYS" --data-dir "$DATA" --chain "$CHAIN_FILE" --listen "/ip4/0.0.0.0/tcp/$P2P_PORT" --http "0.0.0.0:$HTTP_PORT")
}

mkdir -p "$HOME_DIR"
case "$ROLE" in
  deployer)
    RPC=${POI_RPC:?the deployer needs POI_RPC: the JSON-RPC URL of the chain}
    keys
    if [ -n "${POI_DEPLOYER_KEY:-}" ] && [ "$(cat "$KEYS/eth.key")" != "$POI_DEPLOYER_KEY" ]; then
      # The account that pays for the deployment and the faucet (anvil's first development account on a local chain).
      printf '%s' "$POI_DEPLOYER_KEY" >"$KEYS/eth.key"
      keys
    fi
    say "waiting for the chain at $RPC"
    until_ok http POST "$RPC" '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' >/dev/null 2>&1
    if [ ! -f "$CHAIN_FILE" ]; then
      poi chain deploy --rpc "$RPC" --keystore "$KEYS" --out "$CHAIN_FILE" --epoch-duration "${POI_EPOCH_S:-15}" --yes
      # Nodes on a chain run only registered models: the shipped one, published as its manifest says
      # (same name, rule and owner, so the same model id the nodes hold).
      model=/app/node/inference/models/mlp-classifier
      rule=$(node -p "require('$model/manifest.json').agreement")
      poi model publish "$model/model.onnx" --rule "$rule" --name mlp-classifier --data-dir "$HOME_DIR/models" --keystore "$KEYS" --chain "$CHAIN_FILE"
    fi
    exec poi chain faucet --chain "$CHAIN_FILE" --keystore "$KEYS" --http "0.0.0.0:${POI_FAUCET_PORT:-8546}" --amount "${POI_FAUCET_AMOUNT:-40}"
    ;;
  bootstrap)
    keys
    fetch_deployment
    node_flags
    exec poi bootstrap "${NODE_FLAGS[@]}"
    ;;
  operator)
    keys
    fetch_deployment
    until_ok fund
    if ! operator_status | grep -q '"registered":true'; then
      poi operator register --stake "${POI_STAKE:-32}" --chain "$CHAIN_FILE" --keystore "$KEYS" --yes
    fi
    # It joins at the next epoch: start it when due (anyone may; the first operator to try does).
    until operator_status | grep -q '"inCurrentEpoch":true'; do
      poi epoch advance --chain "$CHAIN_FILE" --keystore "$KEYS" --yes 2>&1 | grep -v '^$' | sed "s/^/[$ROLE] /" || true
      sleep "$EPOCH_POLL_S"
    done
    say "in the current epoch's operator set"
    bootstrap_addr
    node_flags
    exec poi operator "${NODE_FLAGS[@]}" --bootstrap "$BOOTSTRAP"
    ;;
  aggregator)
    keys
    fetch_deployment
    until_ok fund
    bootstrap_addr
    node_flags
    exec poi aggregator "${NODE_FLAGS[@]}" --bootstrap "$BOOTSTRAP"
    ;;
  gateway)
    keys
    fetch_deployment
    until_ok fund
    if [ ! -f "$HOME_DIR/deposited" ]; then
      poi deposit "${POI_DEPOSIT:-1}" --chain "$CHAIN_FILE" --keystore "$KEYS"
      touch "$HOME_DIR/deposited"
    fi
    bootstrap_addr
    exec poi gateway --keystore "$KEYS" --data-dir "$DATA" --chain "$CHAIN_FILE" --listen "/ip4/0.0.0.0/tcp/$P2P_PORT" --http "0.0.0.0:$HTTP_PORT" --bootstrap "$BOOTSTRAP"
    ;;
  *)
    echo "node-entrypoint.sh: unknown role $ROLE (deployer, bootstrap, operator, aggregator, gateway)" >&2
    exit 2
    ;;
esac
