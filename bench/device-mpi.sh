#!/usr/bin/env bash
# MPI all-reduce, ours against MPI's own (bench/mpi-allreduce.ts: MpiCommunicator, MPI_Iallreduce+MPI_Wait through koffi,
# MPI_Allreduce in C), under MPICH and Open MPI at 2 and 4 processes, 1 MB to 256 MB, 3 rounds, on a machine without
# MPI or a compiler: both MPIs and the C program built against each travel in .mpi-carry (bench/prepare-mpi-carry.sh).
# From the project root there (dist built here; carry dist, .device-carry and .mpi-carry):
#   source .device-carry/env.sh && source bench/mpi-env.sh && bash bench/device-mpi.sh
# (mpi-env.sh is sourced here when it was not.) Settings through the environment: MPI_BENCH_MPIS ("mpich openmpi"),
# MPI_BENCH_NP ("2 4"), MPI_BENCH_MAX_MB (256), MPI_BENCH_ROUNDS (3), MPI_BENCH_REPS (11), MPI_BENCH_BUDGET_S (440):
# each job (one MPI, one process count) runs under a timeout of an equal share of what is left of the budget, so the
# whole script ends within it. Tables on stdout, and in $OUT/mpi-<mpi>-np<n>.md where OUT is set.
set -u
cd "$(dirname "$0")/.." || exit 1
[ -n "${MPI_CARRY_LIB_OPENMPI:-}" ] || source bench/mpi-env.sh || exit 1
mpis=${MPI_BENCH_MPIS:-mpich openmpi}
nps=${MPI_BENCH_NP:-2 4}
max_mb=${MPI_BENCH_MAX_MB:-256}
rounds=${MPI_BENCH_ROUNDS:-3}
reps=${MPI_BENCH_REPS:-11}
budget=${MPI_BENCH_BUDGET_S:-440}
out=${OUT:-}
[ -f dist/bench/mpi-allreduce.js ] || { echo "dist/bench/mpi-allreduce.js is missing: build first (node scripts/build.mjs)" >&2; exit 1; }
launcher() { if [ "$1" = openmpi ]; then echo "mpirun.openmpi --oversubscribe"; else echo mpiexec.mpich; fi; }

# Where each MPI comes from: the C program's libraries (ldd) and, in one process under each launcher, the library
# synkhronos loads (its path, version, and the file mapped into the process).
for mpi in $mpis; do
  echo "== $mpi: $(ldd ".mpi-carry/mpi-bin/mpi_allreduce.$mpi" | grep -E 'libmpi|libmpich' | tr -s ' \t' ' ')"
  # shellcheck disable=SC2046
  timeout -k 5 30 $(launcher "$mpi") -np 1 node --input-type=module -e "
    import { readFileSync } from 'node:fs';
    const { MpiCommunicator } = await import('./dist/src/comm/mpi/mpi-communicator.js');
    const comm = MpiCommunicator.init();
    const maps = [...new Set(readFileSync('/proc/self/maps', 'utf8').split('\n').map((l) => l.split(/\s+/)[5])
      .filter((p) => /lib(mpi|mpich)\.so/.test(p ?? '')))];
    console.log('   synkhronos loads', comm.mpi.path, '(' + comm.mpi.libraryVersion().split('\n')[0].trim() + '); mapped:', maps.join(' '));
    await comm.finalize();" 2>&1 | head -5
done

# One job: the driver of bench/mpi-allreduce.ts with the carried C program, under a timeout of $3 seconds.
job() {
  timeout -k 5 "$3" node dist/bench/mpi-allreduce.js --mpi "$1" --np "$2" --max-mb "$max_mb" --rounds "$rounds" --reps "$reps" \
    --c-binary ".mpi-carry/mpi-bin/mpi_allreduce.$1" 2>&1
}
jobs_left=0
for mpi in $mpis; do for np in $nps; do jobs_left=$((jobs_left + 1)); done; done
for mpi in $mpis; do
  for np in $nps; do
    left=$((budget - SECONDS))
    t=$((left / jobs_left))
    jobs_left=$((jobs_left - 1))
    if [ "$t" -lt 10 ]; then echo "== $mpi, $np processes: skipped (${left} s of the budget left)"; continue; fi
    echo "== $mpi, $np processes (timeout ${t} s)"
    if [ -n "$out" ]; then
      job "$mpi" "$np" "$t" > "$out/mpi-$mpi-np$np.md"; rc=$?; cat "$out/mpi-$mpi-np$np.md"
    else
      job "$mpi" "$np" "$t"; rc=$?
    fi
    [ "$rc" -eq 0 ] || echo "   exit status $rc$( [ "$rc" -eq 124 ] && echo " (timed out after ${t} s)")"
  done
done
echo "device-mpi.sh: ${SECONDS} s"
