#!/bin/bash
# install-test.sh BUILD_DIR - install libdrpo into a staging directory and use
# it the way an outside program does:
#  - the installed header and libdrpo.pc show nothing of BLIS or xxHash;
#  - libdrpo.so has soname libdrpo.so.0 and exports only drpo_* symbols;
#  - a consumer builds with `cc app.c $(pkg-config --cflags --libs libdrpo)`
#    and runs, and links statically against libdrpo.a with `pkg-config --static`.
set -euo pipefail

build=${1:?usage: install-test.sh BUILD_DIR}
cc=${CC:-cc}
stage=$(mktemp -d "${TMPDIR:-/tmp}/drpo-install.XXXXXX")
trap 'rm -rf "$stage"' EXIT

fail() { echo "install-test: FAIL: $*" >&2; exit 1; }

meson install -C "$build" --no-rebuild --quiet --destdir "$stage/root" >/dev/null

pc=$(find "$stage/root" -name libdrpo.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || fail "no libdrpo.pc installed"
# The .pc file names paths under the prefix; the sysroot maps them into the stage.
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
export PKG_CONFIG_SYSROOT_DIR=$stage/root

# A path variable of libdrpo.pc inside the stage (pkgconf already prefixes the
# sysroot to it, freedesktop pkg-config does not).
pc_dir() {
    local v
    v=$(pkg-config --variable="$1" libdrpo)
    case $v in "$stage/root"/*) echo "$v" ;; *) echo "$stage/root$v" ;; esac
}
libdir=$(pc_dir libdir)
includedir=$(pc_dir includedir)
header=$includedir/drpo.h
[ -f "$header" ] || fail "no drpo.h installed in $includedir"
[ -f "$libdir/libdrpo.a" ] || fail "no libdrpo.a installed in $libdir"

# ---- nothing of the private dependencies in the public interface ----------
# Code, not comments: the header may say that keys are XXH3-64 hashes, but it
# must not include, name a type of, or call anything from BLIS or xxHash.
if sed -e 's://.*$::' "$header" | perl -0pe 's:/\*.*?\*/::gs' | grep -nE 'blis|xxhash|XXH|bli_|BLIS_'; then
    fail "the installed drpo.h uses BLIS or xxHash in its code"
fi
cflags=$(pkg-config --cflags libdrpo)
libs=$(pkg-config --libs libdrpo)
if grep -qEi 'blis|xxh' <<<"$cflags $libs"; then
    fail "pkg-config --cflags/--libs libdrpo mention BLIS or xxHash: $cflags $libs"
fi
if grep -Ei 'blis|xxh' "$pc" | grep -vE '^(Libs|Requires)\.private:'; then
    fail "libdrpo.pc mentions BLIS or xxHash outside its private fields"
fi

# ---- the shared library: soname and exported symbols ----------------------
so=$libdir/libdrpo.so
[ -e "$so" ] || fail "no libdrpo.so installed in $libdir"
soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
[ "$soname" = libdrpo.so.0 ] || fail "soname is '$soname', want libdrpo.so.0"
[ -e "$libdir/libdrpo.so.0" ] || fail "no libdrpo.so.0 link installed"
# Version nodes of the linker script (DRPO_0.1) show as absolute symbols.
bad=$(nm -D --defined-only "$so" | awk '!($2 == "A" && $3 ~ /^DRPO_[0-9.]+$/) && $3 !~ /^drpo_/ { print $3 }')
[ -z "$bad" ] || fail "libdrpo.so exports symbols outside drpo_*: $(tr '\n' ' ' <<<"$bad")"
nexport=$(nm -D --defined-only "$so" | awk '$3 ~ /^drpo_/' | wc -l)
[ "$nexport" -gt 0 ] || fail "libdrpo.so exports no drpo_* symbol"
# every function the header declares is exported (lib/libdrpo.map lists them)
declared=$(tr '\n' ' ' <"$header" | grep -oE 'DRPO_API [^;(]*\(' | grep -oE 'drpo_[a-z0-9_]+\($' | tr -d '(' | sort -u)
exported=$(nm -D --defined-only "$so" | awk '{ print $3 }' | sed 's/@.*//' | sort -u)
missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
[ -z "$missing" ] || fail "declared in drpo.h but not exported (add to lib/libdrpo.map): $(tr '\n' ' ' <<<"$missing")"
[ "$(wc -l <<<"$declared")" -gt 40 ] || fail "could not read the header's declarations"

# ---- a consumer program ---------------------------------------------------
cat >"$stage/app.c" <<'EOF'
#include <drpo.h>
#include <stdio.h>

int main(void)
{
    const double loss[3] = {0.5, 1.0, 3.0};
    double q[3], value;
    drpo_objective *obj = NULL;
    if (drpo_version_number() != DRPO_VERSION_NUMBER) {
        fprintf(stderr, "header %d, library %u\n", DRPO_VERSION_NUMBER,
                (unsigned)drpo_version_number());
        return 1;
    }
    drpo_status st = drpo_objective_create(&obj, DRPO_SET_CVAR);
    if (st == DRPO_OK)
        st = drpo_objective_set(obj, DRPO_PARAM_LEVEL, 0.5);
    if (st == DRPO_OK)
        st = drpo_objective_solve(obj, 3, loss, NULL, q, &value);
    if (st != DRPO_OK) {
        fprintf(stderr, "%s: %s\n", drpo_status_string(st), drpo_objective_last_error(obj));
        drpo_objective_free(obj);
        return 1;
    }
    drpo_objective_free(obj);
    /* the worst half of three equally likely losses: (3 + 0.5 * 1) / 1.5 */
    double want = 3.5 / 1.5;
    if (value < want - 1e-12 || value > want + 1e-12) {
        fprintf(stderr, "CVaR value %.17g, want %.17g\n", value, want);
        return 1;
    }
    printf("libdrpo %s: CVaR_0.5 = %.6f\n", drpo_version_string(), value);
    return 0;
}
EOF
warn=(-std=c99 -Wall -Wextra -Werror -pedantic)

# Shared: exactly the command line a user types.
# shellcheck disable=SC2046
"$cc" "${warn[@]}" "$stage/app.c" -o "$stage/app" $(pkg-config --cflags --libs libdrpo)
grep -q 'NEEDED.*libdrpo\.so\.0' <<<"$(readelf -d "$stage/app")" || fail "app does not need libdrpo.so.0"
LD_LIBRARY_PATH=$libdir "$stage/app" >/dev/null || fail "the shared-linked consumer failed"

# Static: libdrpo.a in place of -ldrpo, the private dependencies from --static.
static_libs=$(pkg-config --static --libs libdrpo | sed "s|-ldrpo\b|$libdir/libdrpo.a|")
# shellcheck disable=SC2046,SC2086
"$cc" "${warn[@]}" "$stage/app.c" -o "$stage/app-static" $(pkg-config --cflags libdrpo) $static_libs
if grep -q 'NEEDED.*libdrpo' <<<"$(readelf -d "$stage/app-static")"; then
    fail "the static consumer still needs libdrpo.so"
fi
env -u LD_LIBRARY_PATH "$stage/app-static" >/dev/null || fail "the static-linked consumer failed"

echo "install-test: ok ($nexport drpo_* symbols exported, soname $soname)"
