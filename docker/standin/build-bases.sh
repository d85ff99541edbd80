#!/usr/bin/env bash
# Stand-ins for the public base images, built from Debian packages, for machines that cannot
# pull from an image registry (test plumbing for `make compose-test`; a normal machine pulls
# the real images and never runs this).
#
#   docker/standin/build-bases.sh            # builds only the tags that are missing
#
# Tags (what the Dockerfiles and compose files name):
#   debian:bookworm-slim        debootstrap --variant=minbase bookworm + ca-certificates
#   python:3.11-slim-bookworm   + python3.11, venv, pip, `python` on PATH
#   redis:7-alpine              + redis-server/redis-cli, protected mode off (as the official image)
#
# The host's local CA certificates (/usr/local/share/ca-certificates, the ones Debian's
# update-ca-certificates adds) are copied into the stand-in debian base so that apt and pip
# inside builds reach their servers through an intercepting egress proxy. That is why these
# images are stand-ins only: the project's own Dockerfile never copies certificates.
# An existing tag is reused as it is (a pulled official image or a stand-in from a past run);
# a missing one is pulled when a registry answers (FRAMEBUS_NO_PULL=1 skips that), else built.
# Needs root (debootstrap, chroot), a running Docker engine and Debian's docker CLI.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DOCKER="${DOCKER:-docker}"
export DOCKER_BUILDKIT=1
LABEL="org.framebus.stand-in=true"

log() { printf 'build-bases: %s\n' "$*" >&2; }
have() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# The real image when a registry answers (no registry here fails within a second).
reuse_or_pull() {
    if have "$1"; then log "$1: reusing the cached image"; return 0; fi
    if [ "${FRAMEBUS_NO_PULL:-0}" != 1 ] && timeout 300 "$DOCKER" pull --quiet "$1" >/dev/null 2>&1; then
        log "$1: pulled the official image"
        return 0
    fi
    return 1
}

build_debian() {
    local tag="debian:bookworm-slim" root
    reuse_or_pull "$tag" && return
    log "$tag: debootstrap --variant=minbase bookworm from $MIRROR (1-2 min)"
    root="$(mktemp -d /tmp/framebus-standin.XXXXXX)"
    # shellcheck disable=SC2064  # expand $root now: the trap runs after this function returned
    trap "rm -rf '$root'" RETURN
    debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$MIRROR" >/tmp/framebus-debootstrap.log 2>&1 || {
        log "debootstrap failed; last lines of /tmp/framebus-debootstrap.log:"
        tail -n 20 /tmp/framebus-debootstrap.log >&2
        return 1
    }
    if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
        cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
        chroot "$root" update-ca-certificates >/dev/null 2>&1
    fi
    # What the official slim images do: no caches, no docs, no recommends.
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$root/etc/apt/apt.conf.d/90framebus-slim"
    chroot "$root" apt-get clean
    rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/tmp/*
    tar -C "$root" --numeric-owner -c . | "$DOCKER" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change "LABEL $LABEL" \
        --change 'CMD ["bash"]' - "$tag" >/dev/null
    log "$tag: imported"
}

build_from() {
    local tag="$1" dockerfile="$2"
    reuse_or_pull "$tag" && return
    log "$tag: building from $dockerfile"
    "$DOCKER" build --quiet --label "$LABEL" -t "$tag" -f "$HERE/$dockerfile" "$HERE" >/dev/null
    log "$tag: built"
}

build_debian
build_from python:3.11-slim-bookworm python.Dockerfile
build_from redis:7-alpine redis.Dockerfile
