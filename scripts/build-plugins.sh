#!/usr/bin/env bash
# Builds every plugin (first-party under plugins/, the examples under examples/plugins/) as a
# WebAssembly component for wasm32-wasip2, and copies the .wasm files to
# ${CARGO_TARGET_DIR:-target}/plugins/ — the directory the plugin runtime's tests load them from.
# `make plugins` runs this.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac
out="$target_dir/plugins"
wasm_target=wasm32-wasip2
cargo="${CARGO:-cargo}"

if ! rustup target list --installed 2>/dev/null | grep -qx "$wasm_target"; then
    echo "build-plugins: installing the $wasm_target target" >&2
    rustup target add "$wasm_target"
fi

build() {
    local manifest="$1"
    echo "build-plugins: $manifest" >&2
    CARGO_TARGET_DIR="$target_dir" "$cargo" build --release --target "$wasm_target" \
        --manifest-path "$manifest"
}

build plugins/Cargo.toml
for example in examples/plugins/*/Cargo.toml; do
    [ -e "$example" ] && build "$example"
done

mkdir -p "$out"
count=0
for wasm in "$target_dir/$wasm_target/release/"*.wasm; do
    [ -e "$wasm" ] || continue
    cp -f "$wasm" "$out/"
    count=$((count + 1))
done
echo "build-plugins: $count components in $out" >&2
