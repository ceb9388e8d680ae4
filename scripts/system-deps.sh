#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real (Dovecot with Lua, nginx, SOGo,
# Chromium, podman for the container image) and starts MariaDB and Redis if they are not
# running. Idempotent; needs root.
set -euo pipefail

packages=(
  dovecot-core dovecot-imapd dovecot-submissiond dovecot-auth-lua
  lua5.4 lua-socket lua-cjson
  # LuaSec: mailcow's passwd-verify.lua (ssl.https) in test/e2e/mailcow-lua-tls.test.ts.
  lua-sec
  whois
  nginx-light
  sogo memcached
  chromium
  mariadb-server redis-server
  podman runc debootstrap
  # test/compose-stack.test.ts: netavark and aardvark-dns resolve service names on an internal
  # network (the default CNI backend's dnsname plugin refuses internal networks). netavark sets
  # up container networks with iptables, which is only a recommendation of podman's packages.
  netavark aardvark-dns iptables
)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  # Package scripts must not start system-wide dovecot/nginx on the standard ports.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# podman on this machine kind: runc (crun fails on the host's hybrid cgroups), and no rlimits
# raised for containers (the host forbids it). The suite also passes --runtime /usr/sbin/runc.
containers_conf='[containers]
default_ulimits = []

[engine]
runtime = "runc"'
if [[ "$(cat /etc/containers/containers.conf 2>/dev/null)" != "$containers_conf" ]]; then
  mkdir -p /etc/containers
  printf '%s\n' "$containers_conf" > /etc/containers/containers.conf
fi

if ! mariadb-admin --protocol=tcp -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
  echo "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 60); do
    mariadb-admin --protocol=tcp -h 127.0.0.1 -u root ping >/dev/null 2>&1 && break
    sleep 0.5
  done
  mariadb-admin --protocol=tcp -h 127.0.0.1 -u root ping >/dev/null
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 40); do
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break
    sleep 0.25
  done
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null
fi
