#!/bin/sh
# Vendors the console's third-party browser assets into the package, so /console works with
# no CDN (and offline). Run from anywhere: ./scripts/vendor-console-assets.sh
#
# Today that is uPlot (MIT), the console's chart library: one pinned release from the npm
# registry, checked against the registry's recorded sha512; only the files the pages load,
# plus its licence. The copies are byte for byte the release's, so re-running it
# reproduces the committed files exactly. To upgrade: change VERSION and INTEGRITY
# (`npm view uplot@X dist.integrity`), run, look at the dashboard, commit.
set -eu

VERSION=1.6.32
INTEGRITY=sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==
FILES="dist/uPlot.iife.min.js dist/uPlot.min.css LICENSE"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST="$ROOT/src/bytespike/console/static/vendor/uplot"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cd "$WORK"
npm pack --silent "uplot@$VERSION" >/dev/null
TARBALL="uplot-$VERSION.tgz"
ACTUAL="sha512-$(openssl dgst -sha512 -binary "$TARBALL" | base64 | tr -d '\n')"
if [ "$ACTUAL" != "$INTEGRITY" ]; then
    echo "error: $TARBALL is not the pinned release (got $ACTUAL)" >&2
    exit 1
fi
tar -xzf "$TARBALL"

rm -rf "$DEST"
mkdir -p "$DEST"
for name in $FILES; do
    cp "package/$name" "$DEST/$(basename "$name")"
    chmod 644 "$DEST/$(basename "$name")"
done
echo "$VERSION" > "$DEST/VERSION"
echo "vendored uplot $VERSION into ${DEST#"$ROOT"/}"
