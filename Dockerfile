# The fireopt image the Kubernetes example (examples/ci/fireopt-cronjob.yaml) runs:
#   docker build -t ghcr.io/example/fireopt:0.1.0 .
# `fireopt` is on PATH (this checkout's bin/fireopt, not a package fetched from the registry: the
# package is private). Models, traces, run directories and releases are mounted, never baked in.
FROM node:20-bookworm-slim

# A C++ compiler for the optional native kernels (npm ci's postinstall builds them; without one fireopt
# runs on the wasm kernels). They are built with -march=native: on a node whose CPU differs from the
# build machine's, fireopt refuses the addon and uses the wasm kernels, so the image still runs anywhere.
RUN apt-get update \
  && apt-get install -y --no-install-recommends g++ ca-certificates \
  && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/fireopt
COPY package.json package-lock.json tsconfig.json ./
COPY bin ./bin
COPY scripts ./scripts
COPY native/kernels.cc ./native/kernels.cc
COPY src ./src
COPY configs ./configs
COPY datasets ./datasets
# npm ci runs `prepare` (tsc → dist/) and `postinstall` (native kernels); then the build-only packages go.
RUN npm ci && npm prune --omit=dev && npm cache clean --force \
  && ln -s /opt/fireopt/bin/fireopt /usr/local/bin/fireopt \
  && fireopt --version

WORKDIR /data
ENTRYPOINT ["fireopt"]
CMD ["--help"]
