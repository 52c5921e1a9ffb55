# syntax=docker/dockerfile:1
#
# creditgate: the HTTP API image. Build:  docker build -t creditgate .
#
#   docker run --rm -e DATABASE_URL=postgresql://... creditgate creditgate migrate   # schema
#   docker run -d -p 8000:8000 -e DATABASE_URL=postgresql://... creditgate          # serve
#
# Migrations are never run at start: run `creditgate migrate` as its own step (a one-shot
# container, the compose `migrate` service, the Kubernetes Job) before the new version serves.
#
# Layout: the image holds one thing of creditgate's, the virtualenv /opt/venv with the wheel
# installed in it (dependencies, the `creditgate` console script, and the migrations, which
# ship inside the package as `app.migrations`). No source tree, no alembic.ini, no PYTHONPATH.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: a wheel of the project, installed with its dependencies into /opt/venv ----------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# What the wheel is built from. README.md is the project's `readme` in pyproject.toml.
COPY pyproject.toml README.md ./
COPY app ./app
COPY migrations ./migrations

RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/venv/bin/pip install /wheels/creditgate-*.whl

# ---- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="creditgate" \
      org.opencontainers.image.description="Order-time credit checks: approve, hold or prepay" \
      org.opencontainers.image.licenses="Apache-2.0"

# PROMETHEUS_MULTIPROC_DIR: counters shared by the uvicorn workers; `creditgate serve` empties
# it at start. Kubernetes mounts an emptyDir there (its root filesystem is read-only).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PROMETHEUS_MULTIPROC_DIR=/var/lib/creditgate/metrics

RUN groupadd --system --gid 10001 creditgate \
 && useradd --system --uid 10001 --gid creditgate --no-create-home \
            --home-dir /nonexistent --shell /usr/sbin/nologin creditgate \
 && mkdir -p /var/lib/creditgate/metrics \
 && chown -R creditgate:creditgate /var/lib/creditgate

# pip compiled the package's bytecode at install; root owns it, the service user cannot write.
COPY --from=build /opt/venv /opt/venv

# The working directory is the service user's (nothing of creditgate's is read from it).
WORKDIR /var/lib/creditgate
USER 10001:10001

EXPOSE 8000

# Liveness only (never touches the database); readiness is /readyz.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=2).status == 200 else 1)"]

# uvicorn (uvloop + httptools, from uvicorn[standard]) with N worker processes.
CMD ["creditgate", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
