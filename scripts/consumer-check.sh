#!/usr/bin/env bash
# The package as a user gets it: pack the repo, install the tarball into a
# scratch project outside the repo (no step in that project's package.json
# beyond the dependency), then, importing 'pmemu' by name:
#   (a) openDevice -> mkfs -> toNodeFs read/write -> mmap view -> one DMA
#       transfer -> a small forEachCrash           (test/consumer/consumer.mjs)
#   (b) `npx pmemu info` on the device (a) made
#   (c) `tsc --noEmit --strict` of a TypeScript consumer (test/consumer/consumer.ts)
#   (d) `import 'pmemu'` loads no benchmark- or CLI-only package
# Prints one "consumer check: ..." line per step and exits non-zero when any fails.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/pmemu-consumer-XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
fail=0
step() { echo "consumer check: $1"; }

(cd "$repo" && npm pack --silent --pack-destination "$scratch" >"$scratch/pack.log" 2>&1) || { cat "$scratch/pack.log"; step "npm pack FAILED"; exit 1; }
tgz="$(ls "$scratch"/pmemu-*.tgz)"
step "packed $(basename "$tgz") ($(du -k "$tgz" | cut -f1) KiB)"
listing="$(tar tzf "$tgz")"
for need in package/build/wasm/pages.wasm package/dist/src/index.js package/dist/src/index.d.ts package/dist/src/cli/main.js package/native-shims/binding.gyp package/LICENSE; do
  grep -qx "$need" <<<"$listing" || { step "the tarball lacks ${need#package/} FAILED"; fail=1; }
done
if grep -qE '^package/(native-shims/build|node_modules|test|\.ci)/' <<<"$listing"; then
  step "the tarball carries build leftovers or test files FAILED: $(grep -E '^package/(native-shims/build|node_modules|test|\.ci)/' <<<"$listing" | head -3 | tr '\n' ' ')"; fail=1
fi

app="$scratch/app"
mkdir -p "$app"
cp "$repo"/test/consumer/* "$app/"
printf '{ "name": "pmemu-consumer", "version": "1.0.0", "private": true, "type": "module" }\n' >"$app/package.json"
if (cd "$app" && npm install "$tgz" --no-audit --no-fund --prefer-offline >"$scratch/install.log" 2>&1); then
  step "npm install <tarball> ok"
else
  tail -n 40 "$scratch/install.log"; step "npm install <tarball> FAILED"; exit 1
fi

if (cd "$app" && node consumer.mjs "$scratch/dev.pmem"); then step "(a) library ok"; else step "(a) library FAILED"; fail=1; fi
if [ -f "$scratch/dev.pmem" ] && (cd "$app" && npx --no-install pmemu info "$scratch/dev.pmem" >"$scratch/info.txt" 2>&1) && grep -q '^fs ' "$scratch/info.txt"; then
  step "(b) npx pmemu info ok"
else
  cat "$scratch/info.txt" 2>/dev/null || true; step "(b) npx pmemu info FAILED"; fail=1
fi
if (cd "$app" && node "$repo/node_modules/typescript/bin/tsc" -p tsconfig.json --typeRoots "$repo/node_modules/@types"); then
  step "(c) tsc --noEmit --strict ok"
else
  step "(c) tsc --noEmit --strict FAILED"; fail=1
fi
if (cd "$app" && PMEMU_TRACE_OUT="$scratch/trace.txt" node --import ./trace-register.mjs lean.mjs); then step "(d) lean import ok"; else step "(d) lean import FAILED"; fail=1; fi
exit $fail
