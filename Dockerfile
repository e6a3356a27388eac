# Production image of addlink: the refresh job (`python -m runner ...`, the ENTRYPOINT; see
# docs/operations.md) and the recommendation service (command `gunicorn -c
# /app/service/gunicorn_conf.py 'service.app:create_app()'`; docs/service.md).
#
# - Two stages on one base: the builder makes a venv from requirements.txt alone (the pinned
#   runtime set); the runtime stage copies that venv and the source packages.
# - No models, dumps or configuration inside: the CronJob mounts the models read-only at
#   /models, the config at /etc/addlink, and gets secrets as environment variables.
# - Runs as a numeric non-root user, so `runAsNonRoot` can verify it without /etc/passwd.
# - No HEALTHCHECK: the job's exit code and the service's Kubernetes probes say it all.
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
COPY service/ ./service/
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
