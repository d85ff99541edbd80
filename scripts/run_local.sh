#!/usr/bin/env bash
# What `make run` executes: gateway + capture(s) + viewer under honcho, plus a throw-away
# redis-server when a Redis transport is used and nothing answers at REDIS_URL.
#
#   CAMERAS=2 TRANSPORT=http scripts/run_local.sh
#
# The environment is passed through to the services (TRANSPORT, REDIS_URL, GATEWAY_URL,
# CAPTURE_SOURCE, *_PORT, AUTH_SECRET, ...). Ctrl-C / SIGTERM stops everything, including that
# redis-server. That redis-server has ACL users (deploy/redis/): capture and viewer each connect
# as their own user with a password made up for this run (never printed; the admin URL is in
# .run/redis-admin.url, readable by you only). Auth is off unless AUTH_SECRET is set in the shell
# (`AUTH_SECRET=$(python -c 'import secrets; print(secrets.token_urlsafe(32))') make run`); then
# the banner prints a viewer link with a freshly minted 8-hour read token.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="${VENV:-$ROOT/.venv}"
[ -x "$VENV/bin/python" ] || {
    echo "run_local: $VENV missing; run 'make setup' (or scripts/setup.sh run) first" >&2
    exit 1
}
export PATH="$VENV/bin:$PATH"
export PYTHONUNBUFFERED=1

RUN_DIR="$ROOT/.run"
mkdir -p "$RUN_DIR"

CAMERAS="${CAMERAS:-1}"
if ! [[ "$CAMERAS" =~ ^[1-4]$ ]]; then
    echo "run_local: CAMERAS must be 1..4 (got '$CAMERAS'); add lines to Procfile.cameras for more" >&2
    exit 2
fi
REDIS_URL="${REDIS_URL:-redis://localhost:6379/0}"
export REDIS_URL
VIEWER_PORT="${VIEWER_PORT:-8000}"
VIEWER_URL="http://localhost:${VIEWER_PORT}/"

TRANSPORT="${TRANSPORT:-redis}"
if [ "$CAMERAS" -gt 1 ] && [ -z "${VIEWER_CAMERAS:-}" ]; then
    cams="cam1"
    for ((i = 2; i < CAMERAS; i++)); do cams="$cams,cam$i"; done
    export VIEWER_CAMERAS="$cams"
fi

log() { printf 'run_local: %s\n' "$*"; }

REDIS_PID=""
HONCHO_PID=""
BANNER_PID=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$BANNER_PID" ]; then kill "$BANNER_PID" 2>/dev/null || true; fi
    if [ -n "$HONCHO_PID" ] && kill -0 "$HONCHO_PID" 2>/dev/null; then
        kill -TERM "$HONCHO_PID" 2>/dev/null || true
        wait "$HONCHO_PID" 2>/dev/null || true
    fi
    if [ -n "$REDIS_PID" ] && kill -0 "$REDIS_PID" 2>/dev/null; then
        log "stopping redis-server (pid $REDIS_PID)"
        kill -TERM "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Procfile: base processes + CAMERAS-1 extra captures ---------------------------------------
PROCFILE="$RUN_DIR/Procfile"
cp Procfile "$PROCFILE"
if [ "$CAMERAS" -gt 1 ]; then
    grep -E '^[A-Za-z0-9_-]+:' Procfile.cameras | head -n "$((CAMERAS - 1))" >>"$PROCFILE"
fi

# honcho lets .env override the shell; keep only .env lines whose variable the shell does not set,
# so `TRANSPORT=http make run` always wins over a value pinned in .env.
ENV_FILE="$RUN_DIR/env"
: >"$ENV_FILE"
if [ -f .env ]; then
    while IFS= read -r line || [ -n "$line" ]; do
        key="${line%%=*}"
        key="${key#export }"
        # Compose's secrets (FRAMEBUS_AUTH_SECRET, REDIS_*_PASSWORD) are no business of these processes.
        case "$key" in FRAMEBUS_AUTH_SECRET | REDIS_*_PASSWORD) continue ;; esac
        if [[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] && [ "$key" != "$line" ] && [ -z "${!key+x}" ]; then
            printf '%s\n' "$line" >>"$ENV_FILE"
        fi
    done <.env
fi

# --- settings: checked before anything starts, so that an error comes before the banner ------
# Each Procfile process with the environment honcho will give it (the shell, the .env lines the
# shell does not override, the line's own VAR=value words). On success prints the gateway's
# token: the one capture sends and the gateway requires, shown in the banner.
GATEWAY_TOKEN_SHOWN="$(python - "$PROCFILE" "$ENV_FILE" <<'PYEOF'
import os
import shlex
import sys
from importlib import import_module

from pydantic import ValidationError

from shared.settings import describe_settings_error

SETTINGS = {
    "services.capture": "CaptureSettings",
    "services.gateway": "GatewaySettings",
    "services.viewer": "ViewerSettings",
}


def read_env_file(path: str) -> dict[str, str]:
    values = {}
    for line in open(path):
        key, sep, value = line.rstrip("\n").removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if sep:
            values[key.strip()] = value
    return values


procfile, env_file = sys.argv[1:3]
shell, dotenv, token = dict(os.environ), read_env_file(env_file), ""
for raw in open(procfile):
    line = raw.strip()
    if not line or line.startswith("#"):
        continue
    name, _, command = line.partition(":")
    words = shlex.split(command)
    own = dict(word.split("=", 1) for word in words[: words.index("python")] if "=" in word)
    module = words[words.index("-m") + 1]
    cls = getattr(import_module(f"{module}.settings"), SETTINGS[module])
    os.environ.clear()
    os.environ.update({**shell, **dotenv, **own})
    try:
        settings = cls()
    except ValidationError as exc:
        print(f"run_local: {name}: {describe_settings_error(exc, cls)}", file=sys.stderr)
        sys.exit(2)
    if module == "services.gateway":
        token = settings.gateway_token or ""
print(token)
PYEOF
)" || exit 2
TOKEN_ORIGIN="the shell"
[ -n "${GATEWAY_TOKEN+x}" ] || TOKEN_ORIGIN=".env"

# ALGORITHM=1: the example algorithm (examples/algorithm/motion_boxes.py: boxes around motion,
# drawn over the viewer's picture) reads cam0 through the gateway and posts its results there.
if [ "${ALGORITHM:-0}" = 1 ]; then
    if [ -n "${AUTH_SECRET:-}" ]; then
        FRAMEBUS_TOKEN="$(python -m framebus.token --read "${CAMERA_ID:-cam0}" --publish "${CAMERA_ID:-cam0}" --ttl 1d --subject algorithm)"
        export FRAMEBUS_TOKEN
    fi
    printf '%s\n' 'algorithm: exec python examples/algorithm/motion_boxes.py --camera "${CAMERA_ID:-cam0}" --url "${GATEWAY_URL:-http://localhost:8080}"' >>"$PROCFILE"
fi

# --- Redis, only when a service actually uses it ---------------------------------------------
needs_redis=0
for t in "${CAPTURE_TRANSPORT:-$TRANSPORT}" "${VIEWER_TRANSPORT:-$TRANSPORT}"; do
    case "$t" in redis | both) needs_redis=1 ;; esac
done
# The gateway is the bus's HTTP edge (its Redis backplane) unless GATEWAY_BACKPLANE=none.
export GATEWAY_BACKPLANE="${GATEWAY_BACKPLANE:-redis}"
[ "$GATEWAY_BACKPLANE" = none ] || needs_redis=1

new_password() { python -c 'import secrets; print(secrets.token_urlsafe(24))'; }

# The throw-away redis-server gets the ACL users of deploy/redis/users.acl.template, with
# passwords made up now unless the shell provides them; each service gets its own REDIS_URL.
start_redis_with_acl() {
    local port="$1" user var
    for user in capture viewer gateway admin; do
        var="REDIS_${user^^}_PASSWORD"
        [ -n "${!var:-}" ] || printf -v "$var" '%s' "$(new_password)"
        export "${var?}"
    done
    (umask 077 && printf 'redis://admin:%s@127.0.0.1:%s/0\n' "$REDIS_ADMIN_PASSWORD" "$port" >"$RUN_DIR/redis-admin.url")
    deploy/redis/redis-with-acl.sh "$RUN_DIR/redis-users.acl" --port "$port" --bind 127.0.0.1 \
        --save '' --appendonly no --dir "$RUN_DIR" --logfile "$RUN_DIR/redis.log" --daemonize no </dev/null &
    REDIS_PID=$!
    export CAPTURE_REDIS_URL="redis://capture:${REDIS_CAPTURE_PASSWORD}@127.0.0.1:${port}/0"
    export VIEWER_REDIS_URL="redis://viewer:${REDIS_VIEWER_PASSWORD}@127.0.0.1:${port}/0"
    export GATEWAY_REDIS_URL="redis://gateway:${REDIS_GATEWAY_PASSWORD}@127.0.0.1:${port}/0"
    unset REDIS_CAPTURE_PASSWORD REDIS_VIEWER_PASSWORD REDIS_GATEWAY_PASSWORD REDIS_ADMIN_PASSWORD  # in redis-server only
}

redis_ping() {
    python - "$REDIS_URL" <<'EOF' >/dev/null 2>&1
import sys
import redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=0.5, socket_timeout=0.5).ping()
EOF
}

if [ "$needs_redis" -eq 1 ]; then
    if redis_ping; then
        log "using the Redis already answering at $REDIS_URL"
    else
        read -r r_host r_port < <(python - "$REDIS_URL" <<'EOF'
import sys
from urllib.parse import urlsplit
u = urlsplit(sys.argv[1])
print(u.hostname or "localhost", u.port or 6379)
EOF
)
        case "$r_host" in
            localhost | 127.0.0.1 | ::1) ;;
            *)
                echo "run_local: nothing answers at $REDIS_URL and $r_host is not local; start Redis there or unset REDIS_URL" >&2
                exit 1
                ;;
        esac
        command -v redis-server >/dev/null 2>&1 || {
            echo "run_local: redis-server not installed; run 'make setup' (or use TRANSPORT=http GATEWAY_BACKPLANE=none)" >&2
            exit 1
        }
        log "starting redis-server on 127.0.0.1:$r_port with ACL users capture, viewer, gateway, admin (no persistence, log .run/redis.log)"
        start_redis_with_acl "$r_port"
        for _ in $(seq 1 50); do
            redis_ping && break
            kill -0 "$REDIS_PID" 2>/dev/null || {
                echo "run_local: redis-server exited; see .run/redis.log" >&2
                tail -n 5 "$RUN_DIR/redis.log" >&2 || true
                exit 1
            }
            sleep 0.1
        done
        redis_ping || {
            echo "run_local: redis-server did not answer PING within 5 s" >&2
            exit 1
        }
    fi
else
    log "TRANSPORT=$TRANSPORT: no Redis needed"
fi

# With AUTH_SECRET the viewer wants a token: mint a link now (here, on your terminal, not in a
# service's log, which may be shipped and kept; the token is a credential for 8 hours).
viewer_link() {
    if [ -n "${AUTH_SECRET:-}" ]; then
        python -m framebus.token --read '*' --ttl 8h --subject make-run --link "$VIEWER_URL" ||
            printf '%s  (could not mint a link: see the error above)' "$VIEWER_URL"
    else
        printf '%s' "$VIEWER_URL"
    fi
}

banner() {
    printf '\n==============================================================\n'
    printf '  framebus viewer:  %s\n' "$(viewer_link)"
    printf '  transport=%s cameras=%s  (Ctrl-C stops everything)\n' "$TRANSPORT" "$CAMERAS"
    if [ -n "$GATEWAY_TOKEN_SHOWN" ]; then
        printf '  gateway token:    %s  (GATEWAY_TOKEN from %s)\n' "$GATEWAY_TOKEN_SHOWN" "$TOKEN_ORIGIN"
    else
        printf '  gateway token:    none (GATEWAY_TOKEN unset: ingest is open)\n'
    fi
    if [ -z "${AUTH_SECRET:-}" ]; then
        printf '  AUTH IS OFF: AUTH_SECRET is not set; anyone who can reach these ports can watch.\n'
        printf '  (fine on 127.0.0.1; set AUTH_SECRET to require tokens)\n'
    else
        printf '  auth is on: the link above carries an 8-hour read token for every camera\n'
    fi
    printf '==============================================================\n\n'
}
banner

# Print the URL again once the viewer answers, so it is not lost in the logs.
(
    for _ in $(seq 1 60); do
        if python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" \
            "http://127.0.0.1:${VIEWER_PORT}/livez" >/dev/null 2>&1; then
            banner
            exit 0
        fi
        sleep 0.5
    done
) &
BANNER_PID=$!

honcho start -f "$PROCFILE" -d "$ROOT" -e "$ENV_FILE" </dev/null &
HONCHO_PID=$!
set +e
wait "$HONCHO_PID"
rc=$?
set -e
HONCHO_PID=""
exit "$rc"
