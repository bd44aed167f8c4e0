#!/usr/bin/env bash
# Re-fetch the vendored map assets in coverage/static/vendor/ from the npm registry.
#
# folium loads Leaflet, jQuery, Bootstrap and Leaflet.awesome-markers from public CDNs, so an
# offline map is a blank box. coverage/assets.py rewrites or inlines those URLs to the files
# fetched here. Versions are pinned; `npm pack` verifies each tarball's integrity against the
# registry. Run from anywhere: `bash scripts/vendor_assets.sh`, then review `git diff --stat`.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/coverage/static/vendor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

fetch() { # fetch <package@version> -> unpacks into $WORK/<dir>/package
  local spec="$1" dir="$2"
  mkdir -p "$WORK/$dir"
  (cd "$WORK/$dir" && npm pack --silent "$spec" >/dev/null && tar -xzf ./*.tgz)
}

rm -rf "$DEST"
mkdir -p "$DEST"

# Leaflet: the map library itself (BSD-2-Clause). folium 0.20 asks for 1.9.3; 1.9.4 is the
# patch release with the same API.
fetch leaflet@1.9.4 leaflet
mkdir -p "$DEST/leaflet/images"
cp "$WORK/leaflet/package/dist/leaflet.js" "$WORK/leaflet/package/dist/leaflet.css" "$DEST/leaflet/"
cp "$WORK/leaflet/package/dist/images/"*.png "$DEST/leaflet/images/"
cp "$WORK/leaflet/package/LICENSE" "$DEST/leaflet/LICENSE"

# jQuery: folium's Popup template builds popup content with `$(...)` (MIT).
fetch jquery@3.7.1 jquery
mkdir -p "$DEST/jquery"
cp "$WORK/jquery/package/dist/jquery.min.js" "$DEST/jquery/jquery-3.7.1.min.js"
cp "$WORK/jquery/package/LICENSE.txt" "$DEST/jquery/LICENSE.txt"

# Bootstrap: in folium's default set; only needed by folium maps that use Bootstrap markup (MIT).
fetch bootstrap@5.2.2 bootstrap
mkdir -p "$DEST/bootstrap"
cp "$WORK/bootstrap/package/dist/js/bootstrap.bundle.min.js" \
   "$WORK/bootstrap/package/dist/css/bootstrap.min.css" "$DEST/bootstrap/"
cp "$WORK/bootstrap/package/LICENSE" "$DEST/bootstrap/LICENSE"

# Leaflet.awesome-markers: folium.Icon markers (MIT per its LICENSE file).
fetch leaflet.awesome-markers@2.0.5 awesome
mkdir -p "$DEST/awesome-markers/images"
cp "$WORK/awesome/package/dist/leaflet.awesome-markers.js" \
   "$WORK/awesome/package/dist/leaflet.awesome-markers.css" "$DEST/awesome-markers/"
# Only the "soft" sprite and the shadow are referenced by the CSS.
for img in markers-soft.png markers-soft@2x.png markers-shadow.png markers-shadow@2x.png; do
  cp "$WORK/awesome/package/dist/images/$img" "$DEST/awesome-markers/images/"
done
cp "$WORK/awesome/package/LICENSE" "$DEST/awesome-markers/LICENSE"

# Font Awesome Free: icon font for folium.Icon(prefix="fa"). woff2 only: every browser that
# runs Leaflet 1.9 reads woff2, and the CSS lists woff2 first (CC-BY-4.0 / OFL-1.1 / MIT).
fetch @fortawesome/fontawesome-free@6.2.0 fontawesome
mkdir -p "$DEST/fontawesome/css" "$DEST/fontawesome/webfonts"
cp "$WORK/fontawesome/package/css/all.min.css" "$DEST/fontawesome/css/"
cp "$WORK/fontawesome/package/webfonts/"*.woff2 "$DEST/fontawesome/webfonts/"
cp "$WORK/fontawesome/package/LICENSE.txt" "$DEST/fontawesome/LICENSE.txt"

du -sh "$DEST"
