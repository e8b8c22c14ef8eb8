#!/usr/bin/env bash
# A poi testnet on docker swarm (deploy/swarm/stack.yml): chain (anvil), deployer + faucet,
# bootstrap node, N operators, 2 aggregators and a requester gateway.
#
#   deploy/testnet.sh build [--local-base]   build the image (--local-base: on deploy/base-image.sh's
#                                            Debian base, for machines that reach no image registry)
#   deploy/testnet.sh up [N] [--rpc URL]     deploy with N operators (default 4) and wait until every
#                                            container is healthy; --rpc: an external chain (needs
#                                            POI_DEPLOYER_KEY, a funded private key), no anvil
#   deploy/testnet.sh scale N                N operators; waits until all are healthy (in the epoch)
#   deploy/testnet.sh status                 services, replicas and each container's /health
#   deploy/testnet.sh chaos                  kill one random operator container, report its replacement
#   deploy/testnet.sh down                   remove the stack, its containers, volumes and network
#
# Environment: POI_STACK (default poi), POI_IMAGE (default poi:latest), POI_UP_TIMEOUT_S (default
# 900), and the stack's own variables (POI_EPOCH_S, POI_*_PORT; see stack.yml). Needs a swarm
# manager (`docker swarm init`).
set -euo pipefail
cd "$(dirname "$0")/.."

STACK=${POI_STACK:-poi}
export POI_IMAGE=${POI_IMAGE:-poi:latest}
UP_TIMEOUT_S=${POI_UP_TIMEOUT_S:-900}
STACK_FILE=deploy/swarm/stack.yml
BASE_TAG=poi-base:bookworm-node24
# The services besides the operators: chain, deployer, bootstrap, 2 aggregators, gateway.
FIXED_CONTAINERS=6

say () { echo "testnet.sh: $*"; }
die () { echo "testnet.sh: $*" >&2; exit 1; }

stack_containers () { docker ps -q --filter "label=com.docker.stack.namespace=$STACK" "$@"; }
count () { grep -c . || true; }

need_swarm () {
  [ "$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" = active ] \
    || die "this Docker engine is not in a swarm: run \`docker swarm init\` first"
}

# Waits until `want` containers of the stack are running and healthy (no other counts, no timeout shorter than UP_TIMEOUT_S).
wait_healthy () {
  local want=$1 start=$SECONDS healthy running
  say "waiting for $want healthy containers (up to ${UP_TIMEOUT_S}s)"
  while :; do
    healthy=$(stack_containers --filter health=healthy | count)
    running=$(stack_containers | count)
    [ "$healthy" -ge "$want" ] && [ "$running" -eq "$healthy" ] && break
    [ $((SECONDS - start)) -ge "$UP_TIMEOUT_S" ] && { status; die "only $healthy of $want containers healthy after ${UP_TIMEOUT_S}s (see \`docker service logs ${STACK}_<service>\`)"; }
    sleep 5
  done
  say "$healthy containers healthy after $((SECONDS - start))s"
}

operators () { docker service inspect "${STACK}_operator" --format '{{.Spec.Mode.Replicated.Replicas}}'; }

# A docker client that builds with BuildKit (cache and secret mounts): one with buildx, or an
# engine-bundled client before 23 (Debian's docker.io 20.10) with DOCKER_BUILDKIT=1.
builder () {
  local c
  for c in docker /usr/bin/docker; do
    command -v "$c" >/dev/null 2>&1 || continue
    if "$c" buildx version >/dev/null 2>&1; then echo "$c"; return; fi
    if [ "$("$c" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)" -lt 23 ] 2>/dev/null; then echo "$c"; return; fi
  done
  die "no docker client here builds with BuildKit: install docker-buildx (or Debian's docker.io)"
}

build () {
  local args=()
  if [ "${1:-}" = --local-base ]; then
    deploy/base-image.sh --tag "$BASE_TAG"
    args+=(--build-arg "BASE_IMAGE=$BASE_TAG")
  fi
  # Behind a TLS-inspecting proxy the host trusts its CA through NODE_EXTRA_CA_CERTS; npm in the build needs it too.
  if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -s "$NODE_EXTRA_CA_CERTS" ]; then args+=(--secret "id=ca,src=$NODE_EXTRA_CA_CERTS"); fi
  DOCKER_BUILDKIT=1 "$(builder)" build "${args[@]}" -t "$POI_IMAGE" .
  docker image ls "$POI_IMAGE" --format "testnet.sh: {{.Repository}}:{{.Tag}} {{.Size}}"
}

up () {
  local n=4
  while [ $# -gt 0 ]; do
    case "$1" in
      --rpc) export POI_RPC="$2" POI_CHAIN_REPLICAS=0; shift ;;
      [0-9]*) n=$1 ;;
      *) die "up: unknown argument $1" ;;
    esac
    shift
  done
  need_swarm
  docker image inspect "$POI_IMAGE" >/dev/null 2>&1 || die "no image $POI_IMAGE: run \`deploy/testnet.sh build\` (or build --local-base)"
  if [ -n "${POI_RPC:-}" ] && [ -z "${POI_DEPLOYER_KEY:-}" ]; then die "--rpc needs POI_DEPLOYER_KEY: the private key of a funded account on that chain (it deploys and funds the faucet)"; fi
  export POI_OPERATORS=$n
  docker stack deploy --prune -c "$STACK_FILE" "$STACK"
  wait_healthy $((FIXED_CONTAINERS - 1 + ${POI_CHAIN_REPLICAS:-1} + n))
  say "up: gateway http://127.0.0.1:${POI_GATEWAY_PORT:-18080} (token: docker exec \$(docker ps -q -f name=${STACK}_gateway) cat /data/keys/gateway-token), faucet http://127.0.0.1:${POI_FAUCET_PORT:-18546}"
}

scale () {
  local n=${1:?usage: testnet.sh scale N}
  need_swarm
  local chain
  chain=$(docker service inspect "${STACK}_chain" --format '{{.Spec.Mode.Replicated.Replicas}}')
  docker service scale --detach "${STACK}_operator=$n" >/dev/null
  wait_healthy $((FIXED_CONTAINERS - 1 + chain + n))
}

status () {
  docker stack services "$STACK" --format 'table {{.Name}}\t{{.Replicas}}\t{{.Ports}}' 2>/dev/null || { say "no stack $STACK"; return 0; }
  local c name health
  for c in $(stack_containers); do
    name=$(docker inspect --format '{{index .Config.Labels "com.docker.swarm.task.name"}}' "$c")
    health=$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}}' "$c")
    if [[ $name == "${STACK}_chain."* ]]; then
      printf '%-28s %-10s %s\n' "$name" "$health" "(anvil)"
    else
      printf '%-28s %-10s %s\n' "$name" "$health" "$(docker exec "$c" sh -c 'node -e "fetch(process.env.POI_HEALTH_URL ?? \"http://127.0.0.1:\" + process.env.POI_HTTP_PORT + \"/health\").then(r=>r.text()).then(t=>process.stdout.write(t.slice(0,300)),e=>process.stdout.write(e.message))"' 2>&1)"
    fi
  done
}

chaos () {
  need_swarm
  local victims victim name start
  mapfile -t victims < <(docker ps -q --filter "label=com.docker.swarm.service.name=${STACK}_operator")
  [ "${#victims[@]}" -gt 0 ] || die "chaos: no operator container running"
  victim=${victims[RANDOM % ${#victims[@]}]}
  name=$(docker inspect --format '{{index .Config.Labels "com.docker.swarm.task.name"}}' "$victim")
  start=$SECONDS
  docker kill "$victim" >/dev/null
  say "chaos: killed $name ($victim); swarm restarts its slot with the same keystore"
  wait_healthy $((FIXED_CONTAINERS - 1 + $(docker service inspect "${STACK}_chain" --format '{{.Spec.Mode.Replicated.Replicas}}') + $(operators)))
  say "chaos: $name replaced and healthy again after $((SECONDS - start))s"
}

down () {
  local start=$SECONDS
  docker stack rm "$STACK" >/dev/null 2>&1 || true
  # Containers first (volumes in use cannot be removed), then the volumes and the network.
  while [ -n "$(docker ps -aq --filter "label=com.docker.stack.namespace=$STACK")" ]; do
    [ $((SECONDS - start)) -ge 120 ] && docker ps -aq --filter "label=com.docker.stack.namespace=$STACK" | xargs -r docker rm -f >/dev/null
    sleep 1
  done
  docker volume ls -q --filter "label=com.docker.stack.namespace=$STACK" | xargs -r docker volume rm >/dev/null
  while [ -n "$(docker network ls -q --filter "label=com.docker.stack.namespace=$STACK")" ]; do
    [ $((SECONDS - start)) -ge 120 ] && { docker network ls -q --filter "label=com.docker.stack.namespace=$STACK" | xargs -r docker network rm >/dev/null; }
    sleep 1
  done
  say "down: stack $STACK removed with its containers, volumes and network in $((SECONDS - start))s"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  build) build "$@" ;;
  up) up "$@" ;;
  scale) scale "$@" ;;
  status) status ;;
  chaos) chaos ;;
  down) down ;;
  *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; [ -z "$cmd" ] || [ "$cmd" = help ] || exit 2 ;;
esac
