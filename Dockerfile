# Production image of the addlink refresh job: `python -m runner ...` (see docs/operations.md).
#
# - Two stages on one base: the builder makes a venv from requirements.txt alone (the pinned
#   runtime set); the runtime stage copies that venv and the three source packages.
# - No models, dumps or configuration inside: the CronJob mounts the models read-only at
#   /models, the config at /etc/addlink, and gets secrets as environment variables.
# - Runs as a numeric non-root user, so `runAsNonRoot` can verify it without /etc/passwd.
# - No HEALTHCHECK: this is a batch job; Kubernetes reads its exit code.
# tests/test_dockerfile.py checks this file against the repository (no Docker engine needed).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 addlink \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin addlink
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY runner/ ./runner/
COPY model/ ./model/
COPY queries/ ./queries/
# The root filesystem is read-only at run time: compile the bytecode now, keep HOME in /tmp.
RUN python -m compileall -q /app
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 10001:10001
ENTRYPOINT ["python", "-m", "runner"]
CMD ["--help"]
