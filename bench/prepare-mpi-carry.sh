#!/usr/bin/env bash
# Fills .mpi-carry/ (ignored) with what bench/mpi-allreduce.ts needs on a machine without MPI, a compiler or a network:
#   debs/*.deb           the runtime packages of Open MPI (mpirun.openmpi, libmpi.so.40) and MPICH (mpiexec.mpich,
#                        libmpich.so.12) and the libraries they load, no -dev, Fortran or documentation packages
#   debs/fallback/*.deb  zlib, libudev, libnuma: base libraries most systems have; bench/mpi-env.sh uses them only where
#                        the system lacks them
#   mpi-bin/mpi_allreduce.{openmpi,mpich}  bench/c/mpi_allreduce.c built against each MPI (stripped)
# Run here, from the project root: `bash bench/prepare-mpi-carry.sh` (installs both MPIs with apt-get when missing: they
# provide mpicc and the versions the binaries are built against). Then carry .mpi-carry with the tree and, there:
#   source .device-carry/env.sh && source bench/mpi-env.sh && bash bench/device-mpi.sh
# Fails when .mpi-carry is over 14 MB (decimal) or when a launcher, library or binary unpacked into a private root
# needs a library that is neither in that root nor a base library of the system (checked with ldd).
set -euo pipefail
cd "$(dirname "$0")/.."
carry=.mpi-carry
limit=14000000
# Runtime packages. Dependencies left out on purpose: openssh-client (mpirun needs ssh only for other hosts),
# hwloc-nox (lstopo), libhwloc-plugins, and the network stacks Open MPI's plugins and libucx0's modules may load
# (libfabric1, libibverbs1, librdmacm1, libpsm2-2, libpsm-infinipath1, libnl-*): without them those plugins are
# skipped and the jobs run on shared memory (and TCP on loopback), which is what one machine needs.
main_pkgs=(openmpi-bin libopenmpi3 openmpi-common libevent-core-2.1-7 libevent-pthreads-2.1-7 libhwloc15 libpmix2 libmunge2
  mpich libmpich12 libslurm38 libucx0)
fallback_pkgs=(zlib1g libudev1 libnuma1)
dev_pkgs=(openmpi-bin libopenmpi3 mpich libmpich12 libmpich-dev libopenmpi-dev)

sudo_=()
[ "$(id -u)" -eq 0 ] || sudo_=(sudo)
if ! command -v mpicc.openmpi >/dev/null || ! command -v mpicc.mpich >/dev/null; then
  echo "installing ${dev_pkgs[*]}"
  "${sudo_[@]}" apt-get update -q
  "${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${dev_pkgs[@]}"
fi
grep -qxF "/$carry/" .git/info/exclude 2>/dev/null || echo "/$carry/" >> .git/info/exclude

rm -rf "$carry"
mkdir -p "$carry/debs/fallback" "$carry/mpi-bin"
# The installed version of each package where the archive still has it (the binaries are built against it), else apt's.
download() {
  local p v
  for p in "$@"; do
    v=$(dpkg-query -W -f '${Version}' "$p" 2>/dev/null || true)
    if [ -z "$v" ] || ! apt-get download -qq "$p=$v" 2>/dev/null; then apt-get download -qq "$p"; fi
  done
}
(cd "$carry/debs" && download "${main_pkgs[@]}")
(cd "$carry/debs/fallback" && download "${fallback_pkgs[@]}")

mpicc.openmpi -O2 -s bench/c/mpi_allreduce.c -o "$carry/mpi-bin/mpi_allreduce.openmpi"
mpicc.mpich -O2 -s bench/c/mpi_allreduce.c -o "$carry/mpi-bin/mpi_allreduce.mpich"
strip "$carry"/mpi-bin/* 2>/dev/null || true

# Unpack into a scratch root and check with ldd that every launcher, library and binary the benchmark runs finds
# each library it needs in that root, or among the base libraries of any glibc system.
check=$(mktemp -d -t mpi-carry-check.XXXXXX)
trap 'rm -rf "$check"' EXIT
for d in "$carry"/debs/*.deb "$carry"/debs/fallback/*.deb; do dpkg-deb -x "$d" "$check"; done
ml=$check/usr/lib/x86_64-linux-gnu
paths=$ml:$check/lib/x86_64-linux-gnu:$ml/pmix2/lib
plugins=$ml/openmpi/lib/openmpi3
base='^(linux-vdso|ld-linux-x86-64|libc|libm|libdl|libpthread|librt|libresolv|libstdc\+\+|libgcc_s)\.so'
bad=0
for f in "$check"/usr/bin/orterun "$check"/usr/bin/mpiexec.hydra "$check"/usr/bin/hydra_pmi_proxy "$ml"/libmpi.so.40 \
  "$ml"/libmpich.so.12 "$plugins"/mca_pmix_ext3x.so "$plugins"/mca_pml_ob1.so "$plugins"/mca_btl_vader.so \
  "$plugins"/mca_btl_tcp.so "$plugins"/mca_btl_self.so "$plugins"/mca_coll_libnbc.so "$plugins"/mca_coll_tuned.so \
  "$plugins"/mca_oob_tcp.so "$plugins"/mca_plm_isolated.so "$ml"/ucx/libuct_cma.so.0 "$carry"/mpi-bin/*; do
  [ -e "$f" ] || { echo "missing after unpacking: ${f#"$check"/}" >&2; bad=1; continue; }
  while read -r so _ path _; do
    [ "$so" = statically ] && continue
    if [ "$path" = not ] || { [[ $path != "$check"/* ]] && ! [[ $so =~ $base ]]; }; then
      echo "${f#"$check"/}: $so -> $path (neither in the carried root nor a base library)" >&2
      bad=1
    fi
  done < <(LD_LIBRARY_PATH=$paths ldd "$f" | sed -n 's/^\s*\(\S*\) => \(.*\) (0x.*$/\1 x \2 x/p; s/^\s*\(\S*\) => not found/\1 x not x/p')
done
[ "$bad" -eq 0 ] || { echo "prepare-mpi-carry: the carried set is incomplete" >&2; exit 1; }

size=$(du -sb "$carry" | cut -f1)
ls -l "$carry"/debs "$carry"/debs/fallback "$carry"/mpi-bin | grep -v '^total'
awk -v c="$carry" -v s="$size" -v l="$limit" 'BEGIN { printf "%s: %d bytes (%.2f MB; limit %.0f MB)\n", c, s, s / 1e6, l / 1e6 }'
[ "$size" -le "$limit" ] || { echo "prepare-mpi-carry: $carry is over the limit" >&2; exit 1; }
