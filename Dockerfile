# syntax=docker/dockerfile:1

# Build stage: dev dependencies and the TypeScript compiler.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The workspaces' manifests, for npm ci; packages/verify is built with the service.
COPY packages/verify/package.json packages/verify/
COPY examples/notes-service/package.json examples/notes-service/
RUN npm ci --no-audit --no-fund
COPY packages/verify packages/verify
COPY tsconfig.json tsconfig.build.json app.ts server.ts config.ts errors.ts keys.ts ./
COPY plugins plugins
COPY routes routes
COPY schemas schemas
COPY scripts scripts
RUN npm run build && npm prune --omit=dev

# Runtime stage: compiled output and production dependencies only, as a non-root user.
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules node_modules
COPY --from=build --chown=node:node /app/dist dist
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/server.js"]
