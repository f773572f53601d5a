#!/bin/sh
# header-check.sh INCLUDE_DIR [CC] - the public header compiles on its own as
# C99 and (when a C++ compiler is found) C++11, with -Wall -Wextra -Werror
# -pedantic, included twice (include guard) and using its types and constants.
set -eu
inc=${1:?usage: header-check.sh INCLUDE_DIR [CC]}
cc=${2:-${CC:-cc}}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
cat > "$tmp/use.c" <<'SRC'
#include "drpo.h"
#include "drpo.h"
int main(void)
{
    drpo_objective *obj = 0;
    drpo_allocator a;
    double w[2], v = 0.0;
    const double loss[2] = {1.0, 2.0};
    drpo_status st = drpo_objective_create(&obj, DRPO_SET_KL);
    a.struct_size = (uint32_t)sizeof a;
    (void)a;
    if (st == DRPO_OK && drpo_objective_set(obj, DRPO_PARAM_RADIUS, 0.1) == DRPO_OK)
        st = drpo_objective_solve(obj, 2, loss, 0, w, &v);
    drpo_objective_free(obj);
    return st == DRPO_OK && drpo_version_number() == DRPO_VERSION_NUMBER ? 0 : 1;
}
SRC
flags="-Wall -Wextra -Werror -pedantic -fsyntax-only -I$inc"
echo "C99: $cc"
$cc -std=c99 $flags "$tmp/use.c"
cxx=
for c in c++ g++ clang++; do
    if command -v "$c" >/dev/null 2>&1; then cxx=$c; break; fi
done
if [ -n "$cxx" ]; then
    cp "$tmp/use.c" "$tmp/use.cpp"
    echo "C++11: $cxx"
    $cxx -std=c++11 $flags "$tmp/use.cpp"
else
    echo "C++11: no C++ compiler found, skipped"
fi
echo "drpo.h: ok"
