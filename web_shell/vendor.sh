#!/usr/bin/env bash
# Refreshes the web shell's vendored browser bundles from npm, unmodified.
#
# The versions are pinned (exactly, with integrity hashes) by package.json and package-lock.json
# next to this script. To upgrade: edit the version in package.json, run
# `npm install --package-lock-only --ignore-scripts` here, then this script, and commit
# static/vendor/. Users never run a front-end build: the copies are served as they are.
set -euo pipefail
cd "$(dirname "$0")"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp package.json package-lock.json "$work/"
npm ci --prefix "$work" --ignore-scripts --no-audit --no-fund --loglevel=error

vendor_socketio() {
    local src="$work/node_modules/socket.io-client" dest="static/vendor/socket.io"
    rm -rf "$dest" && mkdir -p "$dest"
    cp "$src/dist/socket.io.esm.min.js" "$src/dist/socket.io.esm.min.js.map" "$dest/"
    cp "$src/LICENSE" "$dest/LICENSE"
    node -e 'const p = require(process.argv[1]); console.log(`${p.name} ${p.version}`)' \
        "$src/package.json" > "$dest/VERSION"
    (cd "$dest" && sha256sum socket.io.esm.min.js >> VERSION)
}

vendor_socketio
echo "vendored: $(head -1 static/vendor/socket.io/VERSION)"
