#!/bin/sh
# Start redis-server with framebus's ACL users (deploy/redis/users.acl.template).
#
#   REDIS_CAPTURE_PASSWORD=… REDIS_VIEWER_PASSWORD=… REDIS_GATEWAY_PASSWORD=… REDIS_ADMIN_PASSWORD=… \
#     deploy/redis/redis-with-acl.sh /tmp/users.acl [redis-server options…]
#
# Each password must be set, 16+ characters of [A-Za-z0-9._~-] (so it goes into a redis:// URL
# as it is). Only SHA-256 hashes are written to the ACL file, which is readable by its owner only;
# no password is ever printed. POSIX sh: runs in the redis:7-alpine image and on Debian alike.
set -eu

if [ "$#" -lt 1 ]; then
    echo "usage: $0 ACL_FILE [redis-server options...]" >&2
    exit 2
fi
acl_file="$1"
shift
template="$(dirname "$0")/users.acl.template"

hash_of() {
    # $1: the variable's name. Fails, naming the variable (never its value), if it is unusable.
    eval "value=\${$1:-}"
    if [ -z "$value" ]; then
        echo "redis-with-acl: $1 is not set" >&2
        exit 2
    fi
    if [ "${#value}" -lt 16 ]; then
        echo "redis-with-acl: $1 must be at least 16 characters" >&2
        exit 2
    fi
    case "$value" in
        *[!A-Za-z0-9._~-]*)
            echo "redis-with-acl: $1 may contain only A-Z a-z 0-9 . _ ~ -" >&2
            exit 2
            ;;
    esac
    printf '%s' "$value" | sha256sum | cut -d' ' -f1
}

capture_hash="$(hash_of REDIS_CAPTURE_PASSWORD)"
viewer_hash="$(hash_of REDIS_VIEWER_PASSWORD)"
gateway_hash="$(hash_of REDIS_GATEWAY_PASSWORD)"
admin_hash="$(hash_of REDIS_ADMIN_PASSWORD)"

umask 077
# An ACL file has no comments: the template's are dropped here.
sed -e '/^#/d' -e '/^[[:space:]]*$/d' \
    -e "s/@CAPTURE_HASH@/$capture_hash/" \
    -e "s/@VIEWER_HASH@/$viewer_hash/" \
    -e "s/@GATEWAY_HASH@/$gateway_hash/" \
    -e "s/@ADMIN_HASH@/$admin_hash/" \
    "$template" >"$acl_file"

exec redis-server "$@" --aclfile "$acl_file"
