# syntax=docker/dockerfile:1
# GraphiQL's browser builds, installed from graph/ide's lockfile: the same two npm steps as `python -m graph build-ide`.
FROM node:20-slim AS ide
WORKDIR /ide
COPY graph/ide/package.json graph/ide/package-lock.json graph/ide/assets.json graph/ide/copy-assets.mjs ./
RUN npm ci --ignore-scripts --no-audit --no-fund && npm run build

# Build stage: wheels of the package (the GraphiQL assets included) and of its runtime dependencies (all
# published as wheels: no compiler needed). Nothing of this stage but /wheels reaches the final image.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY graph ./graph
COPY resolvers ./resolvers
COPY --from=ide /ide/static ./graph/ide/static
RUN pip wheel --wheel-dir /wheels .

# Final stage: the installed package and nothing else (no sources, tests, wheels or build tools), run as a
# non-root user. Keys are mounted as files and named by ALIPAY_APP_PRIVATE_KEY_FILE / ALIPAY_PUBLIC_KEY_FILE,
# never baked into the image or its environment.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 --user-group graph
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links /wheels alipay-miniapp-graph && rm -rf /wheels
# Numeric, so an orchestrator's runAsNonRoot check can verify it.
USER 10001:10001
WORKDIR /home/graph
# JSON lines for the log collector even under `docker run -t`, where the default (auto) would see a terminal.
ENV GRAPH_LOG_FORMAT=json
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# SIGTERM (docker stop) lets requests in flight finish for up to GRAPH_SHUTDOWN_GRACE_S (20 s): give
# `docker stop --time` / terminationGracePeriodSeconds a little more than that.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "graph", "serve", "--host", "0.0.0.0", "--port", "8000"]
