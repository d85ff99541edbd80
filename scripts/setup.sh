#!/usr/bin/env bash
# Idempotent set-up for `make test`, `make run`, `make bench`.
#
#   scripts/setup.sh [run|test|bench|all]     (default: test)
#
#   run   : redis-server + the venv
#   test  : run + ffmpeg, GStreamer RTSP server (for docker/rtsp-demo/rtsp_camera.py), chromium, promtool, a JDK,
#           haproxy (tests/bus), and as root iproute2 + iptables (the network-namespace tests)
#   bench : same as test
#
# Installs missing Debian packages (only when root; otherwise prints the apt-get command and
# exits 1), creates .venv with python3 >= 3.11 and runs `pip install -e '.[run,test,bench]'` only
# when pyproject.toml changed since the last successful install. Works with no stdin / CI=true.
set -euo pipefail

PROFILE="${1:-test}"
case "$PROFILE" in
    run | test | bench | all) ;;
    -h | --help)
        sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "setup: unknown profile '$PROFILE' (use run, test, bench or all)" >&2
        exit 2
        ;;
esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_NO_INPUT=1

VENV="${VENV:-$ROOT/.venv}"
STAMP="$VENV/.framebus-install-stamp"
SYSTEM_PYTHON="${SYSTEM_PYTHON:-/usr/bin/python3}"

step() { printf 'setup: %s\n' "$*"; }
die() {
    printf 'setup: ERROR: %s\n' "$*" >&2
    exit 1
}

# --- (a) Debian packages ------------------------------------------------------------------
missing=()

have_gst_rtsp() {
    [ -x "$SYSTEM_PYTHON" ] || return 1
    "$SYSTEM_PYTHON" - <<'EOF' >/dev/null 2>&1
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer  # noqa: F401
Gst.init(None)
for name in ("videotestsrc", "x264enc", "rtph264pay", "capsfilter"):
    assert Gst.ElementFactory.find(name) is not None, name
EOF
}

have_venv_module() {
    local tmp
    tmp="$(mktemp -d)"
    if python3 -m venv --without-pip "$tmp/v" >/dev/null 2>&1 && python3 -m ensurepip --version >/dev/null 2>&1; then
        rm -rf "$tmp"
        return 0
    fi
    rm -rf "$tmp"
    return 1
}

command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)

if [ "$PROFILE" != run ]; then
    command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
    have_gst_rtsp || missing+=(python3 python3-gi python3-gst-1.0 gir1.2-gst-rtsp-server-1.0
        gstreamer1.0-rtsp gstreamer1.0-plugins-base gstreamer1.0-plugins-good
        gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad)
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    # promtool checks and unit-tests the alert rules in docs/alerts.yml.
    command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
    # tests/test_java.py runs examples/java/*.java with `java X.java` (JDK 11+; Debian 12 has 17).
    command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
    # HAProxy is the load balancer in front of gateway replicas in tests/bus (sbin: not on every PATH).
    command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
    # The many-hosts tests (network namespaces) run only as root; only root needs these.
    if [ "$(id -u)" -eq 0 ]; then
        command -v ip >/dev/null 2>&1 || missing+=(iproute2)
        command -v iptables >/dev/null 2>&1 || missing+=(iptables)
    fi
fi

# Only check python3-venv when the venv still has to be created.
if [ ! -x "$VENV/bin/python" ]; then
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    if command -v python3 >/dev/null 2>&1 && ! have_venv_module; then
        missing+=(python3-venv)
    fi
fi

if [ "${#missing[@]}" -gt 0 ]; then
    # de-duplicate, keep order
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
    if [ "$(id -u)" -eq 0 ]; then
        step "installing Debian packages: ${missing[*]}"
        apt-get update -qq </dev/null >/dev/null ||
            die "apt-get update failed"
        apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/tmp/framebus-apt.log 2>&1 ||
            {
                tail -n 20 /tmp/framebus-apt.log >&2
                die "apt-get install failed (full log: /tmp/framebus-apt.log)"
            }
        if [ "$PROFILE" != run ] && ! have_gst_rtsp; then
            die "GStreamer RTSP server still not importable by $SYSTEM_PYTHON after installing packages"
        fi
    else
        echo "setup: missing Debian packages: ${missing[*]}" >&2
        echo "setup: run this as root, then re-run 'make':" >&2
        echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
        exit 1
    fi
else
    step "Debian packages for '$PROFILE' present"
fi

# --- (b) virtualenv -----------------------------------------------------------------------
python_ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1; }

if [ -x "$VENV/bin/python" ] && ! python_ok "$VENV/bin/python"; then
    die "$VENV uses $("$VENV/bin/python" -V 2>&1); framebus needs Python >= 3.11. Remove $VENV (make clean) and re-run."
fi

if [ ! -x "$VENV/bin/python" ]; then
    PY=""
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 && python_ok "$(command -v "$candidate")"; then
            PY="$(command -v "$candidate")"
            break
        fi
    done
    [ -n "$PY" ] || die "no Python >= 3.11 found (python3 is $(python3 -V 2>&1 || echo missing)); install it or set PYTHON=/path/to/python3.11"
    step "creating virtualenv $VENV with $("$PY" -V 2>&1)"
    "$PY" -m venv "$VENV" || die "'$PY -m venv' failed (install python3-venv)"
    rm -f "$STAMP"
fi

want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
    step "installing Python packages: pip install -e '.[run,test,bench]' (log: $VENV/pip-install.log)"
    if ! "$VENV/bin/python" -m pip install -q -e '.[run,test,bench]' </dev/null >"$VENV/pip-install.log" 2>&1; then
        tail -n 30 "$VENV/pip-install.log" >&2
        die "pip install failed (full log: $VENV/pip-install.log)"
    fi
    printf '%s\n' "$want" >"$STAMP"
else
    step "Python packages up to date (pyproject.toml unchanged)"
fi

step "ready ($PROFILE)"
