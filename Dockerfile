# workspace-kernel: multi-stage image.
#   build:   compiles the sandbox (QuickJS guest → wasm32-wasi, wasmtime addon via napi-rs) with the
#            project's own script (npm run build:runtime), then drops dev dependencies.
#   runtime: Node 20 slim, sources run through tsx, as the non-root `node` user.
# docker build -t workspace-kernel . && docker run --rm -p 3000:3000 workspace-kernel

FROM node:20-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32 python3 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
# the toolchain wasm-runtime/Cargo.toml pins (rust-version)
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH
RUN curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain 1.95.0
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build:runtime && npm run build:inspector && npm prune --omit=dev

FROM node:20-bookworm-slim AS runtime
# python3 for the process bridge's `python` processes (bash comes with the base image); bubblewrap is
# its sandbox (run the container with --cap-add SYS_ADMIN, or a runtime that allows user namespaces)
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 bubblewrap util-linux \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/bin ./bin
COPY --from=build /app/app.ts /app/server.ts /app/config.ts ./
COPY --from=build /app/plugins ./plugins
COPY --from=build /app/routes ./routes
COPY --from=build /app/schemas ./schemas
COPY --from=build /app/inspector/dist ./inspector/dist
COPY --from=build /app/wasm-runtime/*.ts ./wasm-runtime/
COPY --from=build /app/wasm-runtime/build/guest.wasm /app/wasm-runtime/build/wasm_runtime.node ./wasm-runtime/build/
# code stays root-owned (read-only for the server); the server runs unprivileged, its only
# writable places are the workspace folder and the panel store (/data/kernel.db)
RUN mkdir /workspace /data && chown node:node /workspace /data
USER node
ENV NODE_ENV=production WK_NODE_ENV=production WK_HOST=0.0.0.0 WK_PORT=3000 WK_WORKERS_WORKSPACE_ROOT=/workspace WK_PROCESSES_WORKSPACE_ROOT=/workspace WK_DATA_DIR=/data
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.WK_PORT||3000)+(process.env.WK_PREFIX||'')+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "bin/workspace-kernel.js"]
