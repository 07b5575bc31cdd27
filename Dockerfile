# syntax=docker/dockerfile:1
# GraphiQL's browser builds, installed from graph/ide's lockfile: the same two npm steps as `python -m graph build-ide`.
FROM node:20-slim AS ide
WORKDIR /ide
COPY graph/ide/package.json graph/ide/package-lock.json graph/ide/assets.json graph/ide/copy-assets.mjs ./
RUN npm ci --ignore-scripts --no-audit --no-fund && npm run build

# Build stage: a wheel of the package (the GraphiQL assets included) and its runtime dependencies, no test or
# build tools carried forward.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY graph ./graph
COPY resolvers ./resolvers
COPY --from=ide /ide/static ./graph/ide/static
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Final stage: the wheels only, run as a non-root user. Keys are mounted as files (ALIPAY_*_FILE), never baked in.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 graph
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER graph
ENV GRAPH_LOG_FORMAT=json
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["uvicorn", "--factory", "graph.app:from_environ", "--host", "0.0.0.0", "--port", "8000", "--no-access-log"]
