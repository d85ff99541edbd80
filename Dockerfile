# One image for every framebus service; the command picks the service:
#   docker run framebus:dev                                  # viewer (default)
#   docker run framebus:dev python -m services.gateway       # or services.capture
# docker-compose.yml sets `command` per service.
#
# No `# syntax=` line on purpose: it makes BuildKit fetch a frontend image, which fails offline;
# the built-in frontend already supports `RUN --mount=type=cache`. Build with BuildKit
# (DOCKER_BUILDKIT=1, the default of Docker 23+).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: resolve and install everything into /opt/venv ----------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first (their own layer, rebuilt only when pyproject.toml changes). Every
# dependency ships manylinux wheels for amd64 and arm64; --only-binary keeps a missing wheel
# from silently needing a compiler that this stage does not have.
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --only-binary=:all: -r /tmp/requirements.txt

# Then the project itself (pure Python, installed non-editable with its package data).
COPY README.md ./
COPY services ./services
COPY shared ./shared
COPY framebus ./framebus
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps .

# ---- runtime: the venv on a slim base, no compilers, no source tree ---------------------
FROM ${PYTHON_IMAGE} AS runtime

# opencv-python-headless bundles its codecs (FFmpeg, libpng, ...); `ldd` on cv2.abi3.so and
# on the bundled libs needs only libc, libstdc++, libgcc_s and zlib, which the slim base
# already has: no libGL, no libglib, nothing to apt-get here.
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BIND_HOST=0.0.0.0

RUN groupadd --system --gid 10001 framebus \
    && useradd --system --uid 10001 --gid framebus --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin framebus

COPY --from=builder /opt/venv /opt/venv

# Fail the build, not the first container start, if a shared library is missing.
RUN python -c "import cv2, numpy; ok, _ = cv2.imencode('.jpg', numpy.zeros((16, 16, 3), numpy.uint8)); assert ok" \
    && python -c "import framebus, services.capture.settings, services.gateway.settings, services.viewer.settings"

WORKDIR /app
# The example algorithm (compose profile `algorithm`): one script on top of the framebus package.
COPY examples/algorithm/motion_boxes.py ./examples/algorithm/motion_boxes.py
USER 10001:10001

# viewer, gateway, capture (metrics/health)
EXPOSE 8000 8080 8081

CMD ["python", "-m", "services.viewer"]
