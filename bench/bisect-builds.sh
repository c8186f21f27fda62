#!/usr/bin/env bash
# Builds earlier commits into bisect/<commit>/dist (JavaScript only, no maps or declarations) for a device call that
# times them beside today's build (bench/device-session11.sh bisect). Usage, project root: bash bench/bisect-builds.sh <commit>...
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
grep -qxF '/bisect/' .git/info/exclude 2>/dev/null || echo '/bisect/' >> .git/info/exclude
for c in "$@"; do
  wt=$(mktemp -d)/wt
  git worktree add -q --detach "$wt" "$c"
  ln -s "$root/node_modules" "$wt/node_modules"
  (cd "$wt" && node scripts/build.mjs >/dev/null)
  rm -rf "bisect/$c" && mkdir -p "bisect/$c"
  (cd "$wt" && tar cf - --exclude='*.map' --exclude='*.d.ts' dist/src dist/bench package.json) | tar xf - -C "bisect/$c"
  git worktree remove --force "$wt"
done
du -sh bisect/*
