# The poi image: the `poi` CLI with Node 24, production dependencies only.
#
#   docker build -t poi .                                   # from the public node:24-bookworm-slim
#   deploy/base-image.sh && docker build --build-arg BASE_IMAGE=poi-base:bookworm-node24 -t poi .
#
# No `# syntax=` line: machines without a registry cannot pull a frontend image, and the
# builder's built-in frontend handles the cache mounts below.
ARG BASE_IMAGE=node:24-bookworm-slim

# --- build: npm ci with dev dependencies (its prepare script runs the TypeScript build) ---
FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
COPY protocols protocols
COPY consensus consensus
COPY storage storage
COPY contracts contracts
COPY node node
# Not test/ nor bench/: nothing the image runs imports them, tsc builds what is there, and a changed
# test does not send the build back through npm ci.
# The npm cache survives between builds, so a source change does not download every package again.
# Behind a TLS-inspecting proxy, pass its CA bundle as the build secret `ca`
# (`--secret id=ca,src=$NODE_EXTRA_CA_CERTS`; deploy/testnet.sh build does): it is read for this
# step only and never stored in a layer.
RUN --mount=type=cache,target=/root/.npm \
    --mount=type=secret,id=ca,required=false \
    if [ -s /run/secrets/ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca; fi \
 && npm ci --no-audit --no-fund
# Production dependencies only (the optional anvil stays: the stack's chain service runs it), and
# none of the native binaries for other platforms: onnxruntime-node ships darwin, win32 and
# linux/arm64 too (~250 MB), classic-level its prebuilds for every platform.
# TypeScript is in only as a peer of viem's types, which nothing reads at run time.
RUN npm prune --omit=dev --no-audit --no-fund \
 && arch=$(node -p process.arch) \
 && find node_modules/onnxruntime-node/bin -mindepth 2 -maxdepth 2 ! -name linux -exec rm -rf {} + \
 && find node_modules/onnxruntime-node/bin/napi-v*/linux -mindepth 1 -maxdepth 1 ! -name "$arch" -exec rm -rf {} + \
 && find node_modules/classic-level/prebuilds -mindepth 1 -maxdepth 1 ! -name "linux-$arch" -exec rm -rf {} + \
 && rm -rf node_modules/typescript \
 && find dist -name '*.map' -delete

# --- runtime ---
FROM ${BASE_IMAGE} AS runtime
# A fixed uid/gid that no base image uses (node:*-slim has uid 1000), so volume ownership is predictable.
ARG POI_UID=10001
RUN groupadd --gid ${POI_UID} poi \
 && useradd --uid ${POI_UID} --gid poi --home-dir /home/poi --create-home --shell /usr/sbin/nologin poi \
 && mkdir -p /data && chown poi:poi /data \
 && ln -s /data /home/poi/.poi
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/dist dist
COPY --from=build /src/node/bin node/bin
COPY --from=build /src/node/inference/models node/inference/models
COPY deploy/healthcheck.mjs deploy/node-entrypoint.sh deploy/
ENV PATH=/app/node/bin:/app/node_modules/@foundry-rs/anvil-linux-amd64/bin:$PATH \
    NODE_ENV=production \
    POI_HTTP_PORT=8080
USER poi
# ~/.poi is /data: a node's default keystore (~/.poi/keys) and data directory (~/.poi/data) live on the volume.
VOLUME /data
# libp2p, and the HTTP API (/health, /v1/…) when a node is started with --http 0.0.0.0:8080.
EXPOSE 4001 8080
HEALTHCHECK --interval=15s --timeout=10s --start-period=60s --retries=4 CMD ["node", "/app/deploy/healthcheck.mjs"]
ENTRYPOINT ["poi"]
CMD ["--help"]
