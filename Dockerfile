# lossgrad container image.
#
#   docker build -t lossgrad .
#   docker run --rm -p 8000:8000 lossgrad
#
# Two stages: "build" installs everything into a virtual environment at /opt/venv,
# "runtime" copies only that environment onto a clean base, so no build leftovers
# (pip caches, wheels, the source tree) reach the image. Both stages use the same
# base so the venv's interpreter link and script shebangs stay valid.
# tests/deploy/test_docker_image.py replays these steps on the host, since CI has
# no Docker engine: keep RUN steps plain POSIX shell.

FROM python:3.11.15-slim-trixie AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH="/opt/venv/bin:$PATH"

RUN python -m venv /opt/venv

WORKDIR /src

# Dependencies first, read from pyproject.toml alone: this layer is rebuilt only when
# the dependency list changes, not on every source edit.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(deps))" > requirements.txt \
    && pip install --no-cache-dir -r requirements.txt

# Then the package itself, without touching the dependencies installed above;
# pip check fails the build if pyproject.toml and that layer ever disagree.
COPY README.md ./
COPY service ./service
RUN pip install --no-cache-dir --no-deps . \
    && pip check


FROM python:3.11.15-slim-trixie AS runtime

# Settings are LOSSGRAD_* environment variables (service/settings.py); override any
# of them with `docker run -e`. One worker is the right default for a container:
# scale with more containers, or raise LOSSGRAD_WORKERS on a single big host.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH="/opt/venv/bin:$PATH" \
    LOSSGRAD_HOST=0.0.0.0 \
    LOSSGRAD_PORT=8000 \
    LOSSGRAD_WORKERS=1 \
    LOSSGRAD_LOG_FORMAT=json

COPY --from=build /opt/venv /opt/venv

# A numeric user with no home and no login: Kubernetes' runAsNonRoot can verify it,
# and the root-owned venv stays read-only to the process.
USER 10001:10001

EXPOSE 8000

# No curl in a slim image; the venv's Python checks the live route on the port the
# server was told to use.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('LOSSGRAD_PORT', '8000') + '/health/live', timeout=4)"]

CMD ["lossgrad", "serve"]
