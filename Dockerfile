# syntax=docker/dockerfile:1
# postern's image: TypeScript built with the dev dependencies, run with the production ones only,
# as an unprivileged user under tini. No secret is baked in: pass them at run time as POSTERN_*
# variables or, better, as files named by POSTERN_*_FILE (compose secrets).
# NODE_IMAGE is the Node.js LTS in .node-version (test/dockerfile.test.ts keeps them in step);
# the suite builds this same file on a local Debian trixie base with that Node (scripts/container-base.sh).
ARG NODE_IMAGE=node:26.12.1-trixie-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
# tini as PID 1: forwards SIGTERM to node and reaps zombies (node is no init). The package
# managers the base brings (npm, npx, corepack, yarn) are not needed to run postern: gone.
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && apt-get clean \
  && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
  && rm -rf /usr/local/lib/node_modules /opt/yarn-* \
  && rm -f /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg \
  && groupadd --system --gid 10001 postern \
  && useradd --system --uid 10001 --gid postern --home-dir /nonexistent --no-create-home \
    --shell /usr/sbin/nologin postern
WORKDIR /app
# In a container the listeners bind every interface of the container's own network namespace;
# compose puts the internal one on an internal network and never publishes it.
ENV NODE_ENV=production \
  POSTERN_INTERNAL_LISTEN=0.0.0.0:9082 \
  POSTERN_WEB_LISTEN=0.0.0.0:8080
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
USER postern:postern
EXPOSE 8080 9082
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "/app/dist/main.js", "health"]
# Docker's and Podman's stop grace is 10 s; postern's own (POSTERN_SHUTDOWN_TIMEOUT_MS) is 8 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--max-semi-space-size=32", "/app/dist/main.js"]
CMD ["serve"]
