#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh runs into one relocatable archive, for a GPU host that has the
# NVIDIA driver, CUDA libraries and a C++ runtime but none of the build's other libraries.
#
#   scripts/gpu-bundle.sh BUILD_DIR OUT_FILE.tar.xz
#
# The archive holds bin/ (the executables, debug info stripped), lib/ (every shared library they
# load per ldd, except the C runtime and what must come from the GPU host: driver, cuBLAS, NCCL,
# CUDA runtime) and MANIFEST (the build's commit, type and each file's size and sha256). Member
# names are relative. Fails when an executable is missing (BUNDLE_ALLOW_MISSING=1: leave it out
# and go on), a library is not found here, or the archive is over the size limit (BUNDLE_MAX_MIB,
# default 48; an archive over it is removed).
set -euo pipefail

readonly kExecutables=(
  tests/kernels_test
  tests/engine_test
  node/breakeven-worker
  bench/breakeven-engine-bench
  bench/breakeven-ops-bench
  cli/breakeven
)
# Sonames the GPU host provides or that must be its own (the driver's libraries match its kernel
# module; cuBLAS and NCCL are installed with its CUDA or PyTorch). Matched against the soname.
readonly kHostLibraries='^(linux-vdso|linux-gate|ld-linux|libc\.|libm\.|libpthread\.|libdl\.|librt\.|libstdc\+\+\.|libgcc_s\.|libcuda\.|libcublas|libcublasLt|libnccl|libcudart|libnvidia)'
readonly max_mib="${BUNDLE_MAX_MIB:-48}"

die() {
  echo "gpu-bundle: $*" >&2
  exit 1
}

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BUILD_DIR OUT_FILE.tar.xz" >&2
  exit 2
fi
build_dir=$1
out_file=$2
[[ -d "$build_dir" ]] || die "build directory '$build_dir' does not exist"
[[ "$out_file" == *.tar.xz ]] || die "output '$out_file' must end in .tar.xz"
for tool in ldd strip objdump tar xz sha256sum git awk; do
  command -v "$tool" >/dev/null || die "'$tool' not found on PATH"
done

# The source tree is the one the build was configured from, not necessarily this script's.
source_dir=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build_dir/CMakeCache.txt" 2>/dev/null ||
  true)
[[ -n "$source_dir" ]] || source_dir=$(cd "$(dirname "$0")/.." && pwd)
cache_value() {
  sed -n "s/^$1:[A-Z]*=//p" "$build_dir/CMakeCache.txt" 2>/dev/null | head -n 1
}
commit=$(git -C "$source_dir" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ "$commit" != unknown && -n "$(git -C "$source_dir" status --porcelain 2>/dev/null)" ]]; then
  commit="$commit-dirty"
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/gpu-bundle.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"

# Executables, and the libraries each loads (ldd lists the whole closure).
declare -A libraries=()  # soname -> path on this machine
missing=()
for exe in "${kExecutables[@]}"; do
  src="$build_dir/$exe"
  if [[ ! -x "$src" ]]; then
    missing+=("$exe")
    continue
  fi
  cp "$src" "$stage/bin/"
  strip --strip-debug "$stage/bin/$(basename "$exe")"
  while read -r soname path; do
    [[ "$soname" =~ $kHostLibraries ]] && continue
    [[ "$path" == "not" ]] && die "$exe needs $soname, which ldd does not find on this machine"
    libraries[$soname]=$path
  done < <(ldd "$src" | tee -a "$stage/ldd.txt" | awk '$2 == "=>" && $3 != "" {print $1, $3}')
done
if ((${#missing[@]} > 0)); then
  why="not built in $build_dir: ${missing[*]} (build them: ninja -C $build_dir ${missing[*]##*/})"
  [[ "${BUNDLE_ALLOW_MISSING:-0}" == 1 ]] || die "$why"
  echo "gpu-bundle: warning: $why; leaving them out" >&2
fi

for soname in "${!libraries[@]}"; do
  cp -L "${libraries[$soname]}" "$stage/lib/$soname"
  chmod u+w "$stage/lib/$soname"
  strip --strip-unneeded "$stage/lib/$soname" 2>/dev/null || true
done

{
  echo "breakeven GPU bundle"
  echo "commit: $commit"
  echo "build_type: $(cache_value CMAKE_BUILD_TYPE)"
  echo "built_on: $(uname -m) $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release 2>/dev/null | tr -d '"')," \
    "glibc $(ldd --version | awk 'NR == 1 {print $NF}')"
  echo "created: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host_libraries_expected: libc libm libstdc++ libgcc_s libcuda libcublas libcublasLt" \
    "libnccl (if linked)"
  # The newest symbol versions used: a host whose C and C++ runtimes are older cannot run these.
  for family in GLIBC GLIBCXX CXXABI; do
    echo "needs_$family: $(find "$stage" -type f \( -path '*/bin/*' -o -name '*.so*' \) \
      -exec objdump -T {} + 2>/dev/null | grep -o "(${family}_[0-9.]*)" | tr -d '()' |
      sort -uV | tail -n 1)"
  done
  echo "links_cublas: $(if grep -q libcublas "$stage/ldd.txt"; then echo yes; else echo no; fi)"
  echo "left_out: ${missing[*]}"
  echo
  echo "# sha256  bytes  path"
  (cd "$stage" && find bin lib -type f | LC_ALL=C sort | while read -r f; do
    printf '%s  %s  %s\n' "$(sha256sum "$f" | cut -d' ' -f1)" "$(stat -c %s "$f")" "$f"
  done)
} >"$stage/MANIFEST"

mkdir -p "$(dirname "$out_file")"
tar -C "$stage" --owner=0 --group=0 --numeric-owner --sort=name -cf - MANIFEST bin lib |
  xz -9 -T1 >"$out_file.partial"
mv "$out_file.partial" "$out_file"

bytes=$(stat -c %s "$out_file")
mib=$(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1048576}')
echo "gpu-bundle: $out_file: $mib MiB ($bytes bytes), commit $commit," \
  "$(find "$stage/bin" -type f | wc -l) executables, ${#libraries[@]} libraries"
if ((bytes > max_mib * 1048576)); then
  rm -f "$out_file"
  die "$out_file was $mib MiB, over the $max_mib MiB limit: removed"
fi
