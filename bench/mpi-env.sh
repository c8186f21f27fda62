# Sourced on a machine without MPI, after .device-carry/env.sh, from the project root:
#   source .device-carry/env.sh && source bench/mpi-env.sh && bash bench/device-mpi.sh
# Unpacks the Debian packages of .mpi-carry/debs (made by bench/prepare-mpi-carry.sh) once into a private root
# (/tmp/mpi-root, or $MPI_CARRY_ROOT) and points this shell at it: the launchers (mpirun.openmpi, mpiexec.mpich and
# hydra_pmi_proxy) on PATH, the libraries on LD_LIBRARY_PATH (synkhronos finds libmpi.so.40 and libmpich.so.12 by
# soname through the loader, the launcher's MPI first), Open MPI's prefix moved to the root (its plugins, help
# files and Debian's openmpi-mca-params.conf), both MPIs on shared memory and TCP on loopback only, no ssh. A base
# library of .mpi-carry/debs/fallback (zlib, libudev, libnuma) is used only where the system has none.
# MPI_CARRY_LIB_OPENMPI and MPI_CARRY_LIB_MPICH name the two libraries (for SYNK_MPI_LIB).
_mpi_carry=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.mpi-carry
_mpi_root=${MPI_CARRY_ROOT:-/tmp/mpi-root}

# One package into a root: dpkg-deb, else ar and tar, else Python (ar format by hand, tarfile reads xz and gz).
_mpi_unpack() {
  if command -v dpkg-deb >/dev/null 2>&1; then dpkg-deb -x "$1" "$2" && return 0; fi
  if command -v ar >/dev/null 2>&1 && command -v tar >/dev/null 2>&1; then
    (_t=$(mktemp -d) && cd "$_t" && ar x "$1" && tar -xf data.tar.* -C "$2"; _rc=$?; rm -rf "$_t"; exit $_rc) && return 0
  fi
  python3 - "$1" "$2" <<'PY'
import io, sys, tarfile
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'!<arch>\n', f'{sys.argv[1]}: not a Debian package'
off = 8
while off + 60 <= len(data):
    name, size = data[off:off + 16].decode().strip().rstrip('/'), int(data[off + 48:off + 58])
    off += 60
    if name.startswith('data.tar'):
        trusted = {'filter': 'fully_trusted'} if hasattr(tarfile, 'fully_trusted_filter') else {}
        tarfile.open(fileobj=io.BytesIO(data[off:off + size])).extractall(sys.argv[2], **trusted)
        sys.exit(0)
    off += size + (size & 1)
sys.exit(f'{sys.argv[1]}: no data.tar member')
PY
}

if [ ! -d "$_mpi_carry/debs" ]; then
  echo "mpi-env.sh: $_mpi_carry/debs is missing (run bench/prepare-mpi-carry.sh here and carry .mpi-carry)" >&2
  return 1 2>/dev/null || exit 1
fi
_mpi_stamp=$(cd "$_mpi_carry/debs" && ls -l ./*.deb fallback/*.deb 2>/dev/null | awk '{print $5, $NF}')
if [ "$(cat "$_mpi_root/.carry-stamp" 2>/dev/null)" != "$_mpi_stamp" ]; then
  rm -rf "$_mpi_root" && mkdir -p "$_mpi_root/fallback" "$_mpi_root/fallback-lib"
  _ok=1
  for _d in "$_mpi_carry"/debs/*.deb "$_mpi_carry"/debs/fallback/*.deb; do
    _to=$_mpi_root; [[ $_d == */fallback/* ]] && _to=$_mpi_root/fallback
    _mpi_unpack "$_d" "$_to" || { echo "mpi-env.sh: could not unpack $_d" >&2; _ok=; }
  done
  [ -n "$_ok" ] && printf '%s\n' "$_mpi_stamp" > "$_mpi_root/.carry-stamp"
fi

# Base libraries: the system's where it has one, the carried one otherwise (linked into fallback-lib).
for _so in libz.so.1 libudev.so.1 libnuma.so.1; do
  _have=
  for _dir in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64 /usr/lib64 /lib /usr/lib; do
    [ -e "$_dir/$_so" ] && _have=$_dir/$_so && break
  done
  if [ -z "$_have" ]; then
    _f=$(find "$_mpi_root/fallback" -name "$_so" | head -1)
    [ -n "$_f" ] && ln -sf "$_f" "$_mpi_root/fallback-lib/$_so" && echo "mpi-env.sh: no $_so on this system, using the carried one" >&2
  else
    rm -f "$_mpi_root/fallback-lib/$_so"
  fi
done

_mpi_lib=$_mpi_root/usr/lib/x86_64-linux-gnu
export PATH=$_mpi_root/usr/bin:$PATH
export LD_LIBRARY_PATH=$_mpi_lib:$_mpi_root/lib/x86_64-linux-gnu:$_mpi_root/fallback-lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export MPI_CARRY_LIB_OPENMPI=$_mpi_lib/libmpi.so.40 MPI_CARRY_LIB_MPICH=$_mpi_lib/libmpich.so.12
# Open MPI (Debian's build: libdir and plugins under <prefix>/lib/x86_64-linux-gnu/openmpi, help files under
# <prefix>/share/openmpi) relocates to OPAL_PREFIX; its system configuration directory is absolute (/etc/openmpi).
export OPAL_PREFIX=$_mpi_root/usr OPAL_SYSCONFDIR=$_mpi_root/etc/openmpi
# PMIx (mpirun's server, Open MPI's processes): its plugins and help files (PMIX_PREFIX alone does not move them).
export PMIX_PREFIX=$_mpi_lib/pmix2 PMIX_PKGLIBDIR=$_mpi_lib/pmix2/lib/pmix PMIX_PKGDATADIR=$_mpi_lib/pmix2/share/pmix
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# hwloc's plugins (libhwloc-plugins, not carried) only from the root: never a system hwloc's of another version.
export HWLOC_PLUGINS_PATH=$_mpi_lib/hwloc
# Shared memory (vader) and TCP on loopback, the ob1 PML (no UCX, libfabric or InfiniBand probing), the reachability
# plugin that needs no libnl; mpirun starts the local processes itself (plm isolated: no ssh needed on one machine).
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader,tcp OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
export OMPI_MCA_reachable=weighted OMPI_MCA_plm=isolated
# MPICH's Hydra: start the proxies on this machine by fork (hydra_pmi_proxy is on PATH), no ssh. MPICH's UCX (ch4:ucx):
# shared memory and TCP on loopback too, no InfiniBand probing (each unless set already).
export HYDRA_LAUNCHER=fork UCX_TLS=${UCX_TLS:-self,sm,tcp} UCX_NET_DEVICES=${UCX_NET_DEVICES:-lo}
# Cross-memory attach (process_vm_readv, the single copy of Open MPI's vader and UCX's cma): where a container
# forbids it, both fall back to copies through shared memory.
if command -v python3 >/dev/null 2>&1 && ! python3 - <<'PY' 2>/dev/null
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(0x59616d61, ctypes.c_ulong(-1), 0, 0, 0)  # PR_SET_PTRACER, PR_SET_PTRACER_ANY, as vader does
src = ctypes.create_string_buffer(b'cma-probe', 16)
pid = os.fork()
if pid == 0:
    class IoVec(ctypes.Structure):
        _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
    dst = ctypes.create_string_buffer(16)
    local, remote = IoVec(ctypes.addressof(dst), 16), IoVec(ctypes.addressof(src), 16)
    n = libc.process_vm_readv(os.getppid(), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    os._exit(0 if n == 16 and dst.value == b'cma-probe' else 1)
sys.exit(os.waitpid(pid, 0)[1] != 0)
PY
then
  echo "mpi-env.sh: process_vm_readv is not permitted here: Open MPI's vader and UCX without single-copy (cma)" >&2
  export OMPI_MCA_btl_vader_single_copy_mechanism=none
  [ "$UCX_TLS" = self,sm,tcp ] && export UCX_TLS=self,posix,sysv,tcp
fi
echo "MPI carry: $(mpirun.openmpi --version 2>&1 | head -1); MPICH $(mpiexec.mpich --version 2>&1 | awk '/Version:/{print $2; exit}')" \
  "in $_mpi_root"
unset _mpi_carry _mpi_root _mpi_stamp _mpi_lib _d _to _ok _so _have _dir _f
unset -f _mpi_unpack
