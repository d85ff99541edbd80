#!/bin/bash
# Container healthcheck of the load balancer (the image has no curl): healthy while HAProxy
# answers its monitor URI, which says 503 when no gateway replica is up (monitor fail).
set -eu
exec 3<>/dev/tcp/127.0.0.1/8404
printf 'GET /lbz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
read -r -t 2 _ status _ <&3
[ "$status" = 200 ]
