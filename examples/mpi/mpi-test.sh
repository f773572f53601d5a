#!/bin/sh
# mpi-test.sh PROGRAM COMPARER - data-parallel training gives the same
# weights, duals and parameters on 1 and on 4 ranks (1e-12 relative): each
# configuration runs under `mpirun -np 1` and `mpirun --oversubscribe -np 4`
# on the same global batches and the comparer checks the two outputs.
# Exit 77 (skipped) only if mpirun is missing.
set -eu
prog=${1-}
cmp=${2-}
if ! command -v mpirun >/dev/null 2>&1; then
    echo "mpirun not found (Debian: apt-get install openmpi-bin libopenmpi-dev): skipped"
    exit 77
fi
if [ -z "$prog" ] || [ ! -x "$prog" ]; then
    echo "mpirun is here but the MPI example was not built: install libopenmpi-dev and reconfigure" >&2
    exit 1
fi
# Open MPI refuses root without these; CI runs as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# No network in a container: shared memory and self only, no CMA (ptrace).
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_rmaps_base_oversubscribe=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

fails=0
run() { # NAME FORM PARAM MODE STEPS
    for np in 1 4; do
        if ! mpirun --oversubscribe -np $np "$prog" "$2" "$3" "$4" "$5" "$tmp/$1.$np" \
            >"$tmp/$1.$np.log" 2>&1; then
            echo "FAIL $1: mpirun -np $np exited non-zero:"; cat "$tmp/$1.$np.log"
            fails=$((fails + 1))
            return
        fi
    done
    if out=$("$cmp" "$tmp/$1.1" "$tmp/$1.4" 2>&1); then
        echo "ok   $1 ($2 $3 $4, $5 steps): $out"
    else
        echo "FAIL $1 ($2 $3 $4): 1 rank vs 4 ranks:"; echo "$out"
        fails=$((fails + 1))
    fi
}

run kl-radius-exact      kl-radius    0.3 exact      30
run cvar-exact           cvar         0.2 exact      30
run chi2-penalty-exact   chi2-penalty 0.5 exact      30
run kl-radius-stochastic kl-radius    0.3 stochastic 30
run cvar-stochastic      cvar         0.2 stochastic 30
run tv-radius-group      tv-radius    0.3 group      30
cat "$tmp/kl-radius-exact.4.log"
[ "$fails" = 0 ]
