# One image for every brandq entry point (worker, board, producer CLIs); docker-compose.yml
# picks the command. Build: docker compose build (or docker build -t brandq:local .).
FROM node:22-bookworm-slim
RUN npm i -g pnpm@10 && apt-get update && apt-get install -y --no-install-recommends redis-tools && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json tsconfig.json turbo.json ./
COPY apps ./apps
COPY packages ./packages
RUN pnpm install --frozen-lockfile
ENV NODE_ENV=production LOG_FORMAT=json
# Node itself is PID 1's child (compose sets init: true), so SIGTERM reaches the worker and
# it finishes its active jobs before exiting; `pnpm worker` would sit in between.
CMD ["node", "--import", "tsx", "--conditions=@brandq/source", "apps/worker/src/main.ts"]
