#!/bin/sh
# cargo-test.sh CRATE_DIR BUILD_DIR - `cargo test --offline` of the Rust
# bindings against this build's libdrpo (DRPO_LIB_DIR), with cargo's output
# under BUILD_DIR/cargo-target, then the train_linear example.  Exit 77
# (skipped) only if cargo is missing: it is looked for on PATH, then in
# $HOME/.cargo/bin (rustup's default).
set -eu
crate=${1:?usage: cargo-test.sh CRATE_DIR BUILD_DIR}
build=${2:?usage: cargo-test.sh CRATE_DIR BUILD_DIR}
cargo=$(command -v cargo 2>/dev/null || true)
if [ -z "$cargo" ] && [ -x "${HOME:-/nonexistent}/.cargo/bin/cargo" ]; then
    cargo=$HOME/.cargo/bin/cargo
fi
if [ -z "$cargo" ]; then
    echo "cargo not found (PATH, \$HOME/.cargo/bin): skipped"
    exit 77
fi
export CARGO_TARGET_DIR="$build/cargo-target" DRPO_LIB_DIR="$build"
cd "$crate"
"$cargo" --version
"$cargo" test --offline --quiet
"$cargo" run --offline --quiet --example train_linear
