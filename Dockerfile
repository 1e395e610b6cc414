# One image for every brandq entry point (worker, board, producer CLIs); docker-compose.yml
# picks the command. Build: docker compose build (or docker build -t brandq:local .).

# Build: every package compiled to dist/ (pnpm build), then the runtime layout: each
# shipped package's dist/ and runtime files with production dependencies only
# (.ci/runtime-layout.sh; .ci/run assembles the same layout and starts the worker from it).
FROM node:22-bookworm-slim AS build
RUN npm i -g pnpm@10
WORKDIR /src
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json tsconfig.json turbo.json ./
COPY apps ./apps
COPY packages ./packages
COPY .ci/runtime-layout.sh ./.ci/
RUN pnpm install --frozen-lockfile
RUN pnpm build
RUN .ci/runtime-layout.sh /runtime --offline

# Runtime: JavaScript and production dependencies only, no compiler, no pnpm; the files
# belong to root and the process runs as `node`, so it cannot rewrite its own code.
FROM node:22-bookworm-slim
# glibc hands freed heap back to the system sooner: about 20 MB off a worker's peak RSS at
# no measurable CPU cost (docs/benchmarks.md, worker footprint).
ENV NODE_ENV=production LOG_FORMAT=json MALLOC_TRIM_THRESHOLD_=131072
WORKDIR /app
COPY --from=build /runtime ./
# Where `export` and `run` write by default (out/<run>.csv): the only writable folder.
RUN install -d -o node -g node /app/out
USER node
# Healthy: the worker's /metrics answers when METRICS_PORT is set (compose's workers), else
# Redis answers a PING (apps/worker/src/healthcheck.ts).
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 CMD ["node", "apps/worker/dist/healthcheck.js"]
# Node itself is PID 1's child (compose sets init: true), so SIGTERM reaches the worker and
# it finishes its active jobs before exiting; `pnpm worker` would sit in between.
CMD ["node", "apps/worker/dist/main.js"]
