#!/bin/sh
# Vendors Swagger UI's browser assets into the package, so /docs works with no CDN (and
# offline). Run from anywhere: ./scripts/vendor-swagger-ui.sh
#
# It fetches one pinned release of swagger-ui-dist from the npm registry, checks the
# tarball against the registry's recorded sha512, and copies only what /docs loads plus
# the licence files. The copies are byte for byte the release's, so re-running it
# reproduces the committed files exactly (git status stays clean). To upgrade: change
# VERSION and INTEGRITY (`npm view swagger-ui-dist@X dist.integrity`), run, commit.
set -eu

VERSION=5.35.0
INTEGRITY=sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ==
# What bytespike/api/docs.py serves, then the licences: Apache-2.0 (LICENSE, and NOTICE,
# which the licence requires to travel with the work) and the notices of the libraries
# bundled into swagger-ui-bundle.js, which its first line points to.
FILES="swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST="$ROOT/src/bytespike/api/static/swagger-ui"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cd "$WORK"
npm pack --silent "swagger-ui-dist@$VERSION" >/dev/null
TARBALL="swagger-ui-dist-$VERSION.tgz"
ACTUAL="sha512-$(openssl dgst -sha512 -binary "$TARBALL" | base64 | tr -d '\n')"
if [ "$ACTUAL" != "$INTEGRITY" ]; then
    echo "error: $TARBALL is not the pinned release (got $ACTUAL)" >&2
    exit 1
fi
tar -xzf "$TARBALL"

rm -rf "$DEST"
mkdir -p "$DEST"
for name in $FILES; do
    cp "package/$name" "$DEST/$name"
    chmod 644 "$DEST/$name"
done
echo "vendored swagger-ui-dist $VERSION into ${DEST#"$ROOT"/}"
