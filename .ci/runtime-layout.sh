#!/usr/bin/env bash
# Assembles the production runtime into DEST from a built checkout (after `pnpm build`):
# the root manifests, then for every workspace package that lists `files` in its
# package.json (what it needs at run time: dist/, lua/...) its package.json and those
# files, then production dependencies only, installed from the lockfile. Packages without
# `files` (the demo, test helpers, fakes) are development-only and stay out.
# The Dockerfile's runtime stage is this directory; .ci/run builds it the same way and
# starts the worker from it, so the image's path is exercised without a Docker engine.
# Usage: .ci/runtime-layout.sh DEST [extra pnpm install flags, e.g. --offline]
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:?usage: .ci/runtime-layout.sh DEST [pnpm install flags]}"
shift

rm -rf "$dest"
mkdir -p "$dest"
cp package.json pnpm-lock.yaml pnpm-workspace.yaml "$dest/"
shipped=()
for manifest in apps/*/package.json packages/*/package.json; do
  pkg="$(dirname "$manifest")"
  mkdir -p "$dest/$pkg"
  # Every manifest, so the lockfile's workspace matches; only shipped packages get files.
  cp "$manifest" "$dest/$pkg/"
  files="$(node -e 'const j = require(process.argv[1]); if (j.files) console.log(j.files.join("\n"))' "./$manifest")"
  [[ -n "$files" ]] || continue
  shipped+=(--filter "./$pkg")
  while IFS= read -r entry; do
    [[ -e "$pkg/$entry" ]] || { echo "runtime-layout: $pkg lists '$entry' in files, but it does not exist (run pnpm build first)" >&2; exit 1; }
    cp -R "$pkg/$entry" "$dest/$pkg/"
  done <<<"$files"
done

cd "$dest"
CI=true pnpm install --prod --frozen-lockfile --config.confirmModulesPurge=false "${shipped[@]}" "$@"
