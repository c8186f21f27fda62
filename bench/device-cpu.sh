#!/usr/bin/env bash
# The CPU benchmarks on the 16-core GPU machine (see BENCHMARKS.md): run from the project root there
# after `source .device-carry/env.sh` (with OpenBLAS carried). Writes logs under ${OUT:-out}.
set -u
out=${OUT:-out}; mkdir -p "$out"
export OPENBLAS_NUM_THREADS=1
flags=$(grep -o -w -E 'avx2|avx512f|avx512_bf16|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ')
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) flags: $flags cores: $(nproc)"
# Debian's OpenBLAS picks its kernel from the CPU model; a virtualised 'Intel Xeon Processor' can get a
# generic one. Measure each candidate core type and keep the fastest for the runs below.
best=""; bestg=0
for ct in "" Haswell SkylakeX Cooperlake; do
  g=$(OPENBLAS_CORETYPE=$ct node dist/bench/gemm.js --sizes 1024 --seconds 0.5 2>/dev/null | awk -F'|' '/through koffi/ {gsub(/ /,"",$3); print $3}')
  echo "OPENBLAS_CORETYPE=${ct:-default}: ${g:-failed} GFLOP/s at n=1024"
  if [ -n "$g" ] && awk "BEGIN{exit !($g > $bestg)}"; then best=$ct; bestg=$g; fi
done
[ -n "$best" ] && export OPENBLAS_CORETYPE=$best
# The n=1024 square GEMM above barely separates them, but large-M products (W1) run 5x slower with the
# generic kernel a virtual "Intel Xeon Processor" gets: with AVX-512 present, name the core type.
case " $flags " in *" avx512_bf16 "*) export OPENBLAS_CORETYPE=Cooperlake ;; *" avx512f "*) export OPENBLAS_CORETYPE=SkylakeX ;; esac
echo "using OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-default}"
