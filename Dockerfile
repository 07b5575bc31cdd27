# syntax=docker/dockerfile:1
# Build stage: a wheel of the package and its runtime dependencies, no test or build tools carried forward.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY graph ./graph
COPY resolvers ./resolvers
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
