# One image for every brandq entry point; the compose file picks the command.
FROM node:22-bookworm-slim
RUN npm i -g pnpm@10 && apt-get update && apt-get install -y --no-install-recommends redis-tools && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json ./
COPY apps ./apps
COPY packages ./packages
COPY tsconfig.json turbo.json ./
RUN pnpm install --frozen-lockfile
ENV NODE_ENV=production LOG_FORMAT=json
CMD ["pnpm", "worker"]
