#!/usr/bin/env bash
# `make compose-test`: the README's `docker compose up`, run for real against a Docker engine.
#
#   1. as root, installs what is missing (Debian's docker.io, docker-compose, debootstrap);
#   2. starts dockerd if no engine answers (and stops it again at the end);
#   3. builds the stand-in base images when a tag is missing (docker/standin/build-bases.sh;
#      kept in the engine's image store between runs), the RTSP demo camera and framebus:dev;
#   4. runs pytest on tests/engine/ (each test module brings up and takes down its own stack).
#
# Everything it started (containers, networks, volumes of its projects, the daemon) is removed
# at the end, also on failure or Ctrl-C. Images stay, as a cache for the next run.
#
# Exit status: pytest's; 77 when it could not run here at all (not root and no engine, packages
# not installable, or an engine that does not start). The reason is printed, and also written
# to $COMPOSE_TEST_SKIP_FILE when that is set (.ci/run uses it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"
STARTED="$(date +%s)"
WORK="$(mktemp -d /tmp/framebus-compose-test.XXXXXX)"
LOG="$WORK/compose-test.log"

# Debian's docker CLI first: a newer CLI in /usr/local/bin may lack buildx, and then refuses
# DOCKER_BUILDKIT=1 builds. docker-compose 1.29 builds through the CLI when asked to.
export PATH="/usr/bin:/usr/sbin:$PATH"
export DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1
export COMPOSE_TEST_PROJECT_PREFIX="fbtest$$"
export COMPOSE_TEST_STARTED="$STARTED"

log() { printf 'compose-test: %s\n' "$*" >&2; }

cannot_run() {
    log "CANNOT RUN: $*"
    if [ -n "${COMPOSE_TEST_SKIP_FILE:-}" ]; then printf '%s\n' "$*" >"$COMPOSE_TEST_SKIP_FILE"; fi
    exit 77
}

TIMINGS=""
timed() { # timed LABEL COMMAND...: run it, add "LABEL: N s" to the timings pytest prints
    local label="$1" t0 rc=0 tenths
    shift
    t0="$(date +%s%N)"
    "$@" || rc=$?
    tenths=$((($(date +%s%N) - t0) / 100000000))
    TIMINGS+="$label: $((tenths / 10)).$((tenths % 10)) s;"
    return "$rc"
}

# ---- teardown: only what this run started ----------------------------------------------------

DOCKERD_PID=""
engine_answers() { timeout 20 docker info >/dev/null 2>&1; }

remove_projects() { # containers, then networks and volumes, of the compose projects we named
    local label="com.docker.compose.project" id project
    docker ps --all --filter "label=$label" --format "{{.ID}} {{.Label \"$label\"}}" |
        while read -r id project; do
            case "$project" in "$COMPOSE_TEST_PROJECT_PREFIX"*) docker rm --force --volumes "$id" ;; esac
        done
    docker network ls --filter "label=$label" --format "{{.ID}} {{.Label \"$label\"}}" |
        while read -r id project; do
            case "$project" in "$COMPOSE_TEST_PROJECT_PREFIX"*) docker network rm "$id" ;; esac
        done
    docker volume ls --filter "label=$label" --format "{{.Name}} {{.Label \"$label\"}}" |
        while read -r id project; do
            case "$project" in "$COMPOSE_TEST_PROJECT_PREFIX"*) docker volume rm "$id" ;; esac
        done
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if engine_answers; then remove_projects >>"$LOG" 2>&1; fi
    if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        kill -TERM "$DOCKERD_PID" 2>/dev/null || true
        for _ in $(seq 1 150); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
        if kill -0 "$DOCKERD_PID" 2>/dev/null; then
            log "dockerd (pid $DOCKERD_PID) did not stop within 30 s; killing it"
            kill -KILL "$DOCKERD_PID" 2>/dev/null || true
        fi
    fi
    # Silent from here on: the output ends with pytest's summary line. Logs stay on failure.
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]; then rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- 1. packages ------------------------------------------------------------------------------

missing_packages() {
    local missing=()
    [ -x /usr/bin/docker ] && [ -x /usr/sbin/dockerd ] || missing+=(docker.io)
    command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
    # debootstrap only builds missing stand-in bases (docker/standin), which needs root anyway
    if [ "$(id -u)" -eq 0 ]; then command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap); fi
    echo "${missing[@]}"
}

[ -x "$VENV/bin/python" ] || cannot_run "$VENV missing: run 'make setup' first"

read -r -a missing <<<"$(missing_packages)"
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        cannot_run "not root, and ${missing[*]} missing: run 'sudo apt-get install ${missing[*]}' (or run as root)"
    fi
    log "installing ${missing[*]} (apt-get)"
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; } >>"$LOG" 2>&1 \
        || cannot_run "apt-get could not install ${missing[*]}: $(tail -n 3 "$LOG" | tr '\n' ' ')"
fi

# ---- 2. the engine ------------------------------------------------------------------------------

if engine_answers; then
    log "using the Docker engine that answers ($(docker version --format '{{.Server.Version}}'))"
else
    [ "$(id -u)" -eq 0 ] || cannot_run "no Docker engine answers and only root can start one"
    log "starting dockerd (log $WORK/dockerd.log)"
    dockerd --pidfile "$WORK/dockerd.pid" >"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 1 120); do
        engine_answers && break
        kill -0 "$DOCKERD_PID" 2>/dev/null || break
        sleep 0.5
    done
    engine_answers || cannot_run "dockerd does not start here: $(tail -n 3 "$WORK/dockerd.log" | tr '\n' ' ')"
fi
# The README's `docker compose` when the CLI has Compose v2, else Debian's docker-compose 1.29.
if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi
export COMPOSE_CMD="${COMPOSE[*]}"
log "docker CLI $(command -v docker) $(docker version --format '{{.Client.Version}}'), compose: $COMPOSE_CMD $("${COMPOSE[@]}" version --short 2>/dev/null)"
log "logs of this run: $WORK (kept if it fails)"

# ---- 3. images ------------------------------------------------------------------------------------

log "base images (stand-ins built from Debian only where a tag is missing)"
timed "base images (build or reuse)" docker/standin/build-bases.sh
log "RTSP demo camera image (docker/rtsp-demo)"
timed "rtsp-demo image build" docker build --quiet -t "framebus-rtsp-demo:${FRAMEBUS_TAG:-dev}" docker/rtsp-demo >>"$LOG" 2>&1 \
    || { tail -n 30 "$LOG" >&2; exit 1; }
log "framebus image ($COMPOSE_CMD build, BuildKit)"
timed "framebus + lb image build" "${COMPOSE[@]}" -f docker-compose.yml -f docker-compose.replicas.yml build \
    >>"$LOG" 2>&1 || { tail -n 40 "$LOG" >&2; exit 1; }

# ---- 4. the stacks -----------------------------------------------------------------------------------

export COMPOSE_TEST_TIMINGS="$TIMINGS"
log "running tests/engine (each module: up -d, checks, down)"
set +e
"$VENV/bin/python" -m pytest tests/engine -p no:cacheprovider ${PYTEST_ARGS:-}
rc=$?
set -e
exit "$rc"
