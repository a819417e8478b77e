#!/usr/bin/env bash
# The CUDA backend's check on a GPU host, in one bounded run (under 8 minutes):
#   a. what the GPU is (nvidia-smi, read only: no setting is changed)
#   b. the CUDA kernel and engine tests
#   c. the GEMM sweep (cuBLAS at N = 1 ... tokens)
#   d. the engine benchmark: decode at batch 1 and B, prefill, against the measured roofline
#   e. the PyTorch peer on the same card (bench/torch_peer.py)
#   f. one summary: each step's result and time, and the headline figures from the JSON files
#
#   scripts/gpu-check.sh [--bundle FILE.tar.xz] [--out DIR] [--quick]
#
# --bundle  executables and libraries made by scripts/gpu-bundle.sh on the build machine. Without
#           it the host's cmake builds build-gpu/, which needs the build's -dev libraries.
# --out     where each step's log and JSON go (default $OUT if set, else ./gpu-check-out)
# --quick   steps a, b and c only
# Every step runs under `timeout` and a failed step does not stop the ones after it.
# GPU_CHECK_BUDGET_S (default 450) bounds the whole run; GPU_CHECK_BUILD_DIR replaces build-gpu/.
set -u

# ---- What the summary reads. One line per figure: NAME|LABEL|UNIT|CANDIDATES, where a candidate
# is SOURCE:PATH or SOURCE:PATH*SCALE and the first one found wins. SOURCE: engine (the engine
# bench's --json-out), sweep (gemm-sweep -o json), torch (torch_peer.py --json-out). PATH: keys
# joined by dots; KEY[f=v,g=w] keeps the items of list KEY (or object KEY) whose fields match;
# [f=v] alone filters the current node; ** searches the whole document below. {batch} is the
# larger decode batch. Derived figures (batch gain, ratios) are computed from these names.
readonly kHeadlines='
copy_gb_per_s|copy bandwidth (read+write)|GB/s|engine:**.copy_gb_per_s engine:**.copy_bandwidth_gb_per_s engine:**.bandwidth_gb_per_s sweep:**.copy_gb_per_s
gemm_tflops|bf16 GEMM rate (cuBLAS)|TFLOP/s|engine:**.gemm_tflops engine:**.bf16_gemm_tflops engine:**.gemm_bf16_tflops engine:**.gemm_rate_tflops engine:**.gemm_gflops*0.001 engine:**.gemm_rate_gflops*0.001 sweep:**.peak_tflops sweep:**.bf16_tflops
sweep_n1_us|gemm-sweep time at N=1|us|sweep:**[n=1].time_us sweep:**[n=1].us sweep:**[n=1].median_us sweep:**[n=1].time_ms*1000 sweep:**[n=1].ms*1000 sweep:**[N=1].time_us sweep:**[N=1].us
sweep_n64_us|gemm-sweep time at N=64|us|sweep:**[n=64].time_us sweep:**[n=64].us sweep:**[n=64].median_us sweep:**[n=64].time_ms*1000 sweep:**[n=64].ms*1000 sweep:**[N=64].time_us sweep:**[N=64].us
our_tps_b1|ours: decode at batch 1|tok/s|engine:**[bench=decode,batch=1,graphs=true].tokens_per_s engine:**[bench=decode,batch=1].tokens_per_s engine:**[batch=1].tokens_per_s engine:**[batch=1].tok_per_s
our_tps_b1_nographs|ours: batch 1 without CUDA graphs|tok/s|engine:**[bench=decode,batch=1,graphs=false].tokens_per_s
our_tps_bb|ours: decode at batch {batch}|tok/s|engine:**[bench=decode,batch={batch},graphs=true].tokens_per_s engine:**[bench=decode,batch={batch}].tokens_per_s engine:**[batch={batch}].tokens_per_s engine:**[batch={batch}].tok_per_s
our_mbu_b1|ours: MBU at batch 1|%|engine:**[bench=decode,batch=1,graphs=true].mbu_of_copy_bandwidth*100 engine:**[bench=decode,batch=1].mbu_of_copy_bandwidth*100 engine:**[batch=1].mbu_of_copy_bandwidth*100 engine:**[batch=1].mbu*100
our_prefill_ms|ours: prefill time|ms|engine:**[bench=prefill].ttft_ms engine:**.prefill.ttft_ms engine:**.prefill.ms engine:**.prefill_ms
our_prefill_tflops|ours: prefill matmul rate|TFLOP/s|engine:**[bench=prefill].matmul_tflops engine:**.prefill.matmul_tflops engine:**[bench=prefill].matmul_gflops*0.001 engine:**.prefill.matmul_gflops*0.001 engine:**.prefill.tflops
our_prefill_of_gemm|ours: prefill / GEMM rate|%|engine:**[bench=prefill].fraction_of_gemm*100 engine:**.prefill.fraction_of_gemm*100 engine:**[bench=prefill].fraction_of_cublas*100 engine:**.prefill.fraction_of_cublas*100
torch_tps_b1|torch: decode at batch 1|tok/s|torch:decode[batch=1].tokens_per_s
torch_tps_bb|torch: decode at batch {batch}|tok/s|torch:decode[batch={batch}].tokens_per_s
torch_prefill_ms|torch: prefill time|ms|torch:prefill.ms
torch_prefill_tflops|torch: prefill rate|TFLOP/s|torch:prefill.tflops
'

# ---- The workload both engines run.
readonly kModel=llama-3.1-8b
readonly kBatch=64
readonly kInputTokens=128
readonly kOutputTokens=64
readonly kPrefillTokens=2048
readonly kRepeats=3

usage() {
  sed -n '2,18s/^# \{0,1\}//p' "$0"
}

bundle=""
out_dir="${OUT:-./gpu-check-out}"
quick=0
while (($# > 0)); do
  case "$1" in
    --bundle)
      [[ $# -ge 2 ]] || { echo "gpu-check: --bundle needs a file" >&2; exit 2; }
      bundle=$2
      shift 2
      ;;
    --out)
      [[ $# -ge 2 ]] || { echo "gpu-check: --out needs a directory" >&2; exit 2; }
      out_dir=$2
      shift 2
      ;;
    --quick)
      quick=1
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "gpu-check: unknown argument '$1' (see --help)" >&2
      exit 2
      ;;
  esac
done

for tool in tar timeout ldd awk sed date mktemp find sort head tail; do
  command -v "$tool" >/dev/null || { echo "gpu-check: '$tool' not found on PATH" >&2; exit 2; }
done
have_python=0
command -v python3 >/dev/null && have_python=1
# Unpacks the bundle (or with DEST "-", prints its MANIFEST): with xz, or with Python's lzma.
unpack() {  # BUNDLE DEST
  if command -v xz >/dev/null; then
    if [[ "$2" == - ]]; then tar -xOJf "$1" MANIFEST; else tar -xJf "$1" -C "$2"; fi
  elif ((have_python == 1)); then
    python3 - "$1" "$2" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1], "r:xz") as t:
    if sys.argv[2] == "-":
        sys.stdout.write(t.extractfile("MANIFEST").read().decode())
    else:
        t.extractall(sys.argv[2], **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
PY
  else
    echo "neither xz nor python3 is here to unpack $1" >&2
    return 1
  fi
}

repo_root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -n "$bundle" ]]; then
  [[ -f "$bundle" ]] || { echo "gpu-check: bundle '$bundle' not found" >&2; exit 2; }
  bundle=$(cd "$(dirname "$bundle")" && pwd)/$(basename "$bundle")
fi
mkdir -p "$out_dir" || { echo "gpu-check: cannot create '$out_dir'" >&2; exit 2; }
out_dir=$(cd "$out_dir" && pwd)
# A figure from an earlier run must not pass for one of this run.
rm -f "$out_dir"/{engine-bench,gemm-sweep,torch-peer,kernels_test,engine_test}.json \
  "$out_dir"/MANIFEST "$out_dir"/summary.txt
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/run"

start_s=$(date +%s)
deadline_s=$((start_s + ${GPU_CHECK_BUDGET_S:-450}))
readonly start_s deadline_s

say() { echo "[gpu-check] $*"; }

# ---- Steps: each appends its result to these arrays; the summary prints them.
step_names=()
step_results=()
step_secs=()
step_notes=()
record() {  # NAME RESULT SECONDS NOTE
  step_names+=("$1")
  step_results+=("$2")
  step_secs+=("$3")
  step_notes+=("$4")
  say "$1: $2${4:+ ($4)}, $3 s"
}
skip() {  # NAME REASON
  record "$1" SKIP 0 "$2"
}

# run_step NAME NOMINAL_S RESERVE_S STDOUT SHOW CMD...
# Runs CMD in $work/run under timeout: NOMINAL_S at most, and never into the RESERVE_S seconds kept
# for later steps. Output goes to $out_dir/NAME.log; with STDOUT a file, stdout goes there
# instead. SHOW=1 prints the log's tail whatever the result (else only on failure).
run_step() {
  local name=$1 nominal=$2 reserve=$3 stdout=$4 show=$5
  shift 5
  local log="$out_dir/$name.log"
  local left=$((deadline_s - $(date +%s) - reserve))
  local limit=$((nominal < left ? nominal : left))
  if ((limit < 5)); then
    skip "$name" "no time left in the ${GPU_CHECK_BUDGET_S:-450} s budget"
    return 1
  fi
  {
    echo "\$ $*"
    echo "# timeout ${limit} s, started $(date -u +%H:%M:%SZ)"
  } >"$log"
  local t0 t1 rc
  t0=$(date +%s%N)
  if [[ "$stdout" == - ]]; then
    (cd "$work/run" && timeout -k 10 "$limit" "$@") >>"$log" 2>&1
  else
    (cd "$work/run" && timeout -k 10 "$limit" "$@") >"$stdout" 2>>"$log"
  fi
  rc=$?
  t1=$(date +%s%N)
  local secs
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1e9}')
  echo "# exit status $rc after $secs s" >>"$log"
  local note=""
  if ((rc == 0)); then
    note=$(step_note "$name")
    if [[ "$note" == SKIP:* ]]; then
      record "$name" SKIP "$secs" "${note#SKIP:}"
    else
      record "$name" PASS "$secs" "$note"
    fi
  else
    if ((rc == 124 || rc == 137)); then note="timed out after $limit s"; else note="exit $rc"; fi
    record "$name" FAIL "$secs" "$note; see $name.log"
  fi
  if ((show == 1 || rc != 0)); then
    tail -n 25 "$log" | sed 's/^/    | /'
  fi
  return "$rc"
}

# A short note for a passed step: how many tests ran and were skipped (GoogleTest JSON). A test
# binary that ran no test, or skipped every one (no usable GPU), reports "SKIP:why": not a pass.
step_note() {
  local json="$out_dir/$1.json"
  [[ $have_python == 1 && -f "$json" && "$1" == *_test ]] || return 0
  python3 - "$json" <<'PY' 2>/dev/null
import json, sys
d = json.load(open(sys.argv[1]))
tests = [t for s in d.get("testsuites", []) for t in s.get("testsuite", [])]
skipped = sum(1 for t in tests if t.get("result") == "SKIPPED")
ran = len(tests) - skipped
if not tests:
    print("SKIP:no test matched the filter")
elif not ran:
    print(f"SKIP:all {skipped} skipped themselves (no usable GPU?)")
else:
    print(f"{ran} ran, {skipped} skipped")
PY
}

if [[ -n "$bundle" ]]; then
  commit=$(unpack "$bundle" - 2>/dev/null | sed -n 's/^commit: //p')
else
  commit=$(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null)
  [[ -n "$commit" && -n "$(git -C "$repo_root" status --porcelain 2>/dev/null)" ]] &&
    commit="$commit-dirty"
fi
commit=${commit:-unknown}

say "output: $out_dir"
say "bundle: ${bundle:-none, building build-gpu with the cmake of this host}"

# ---- Executables: from the bundle, or built here.
bin_dir=""
declare -A exe=()
if [[ -n "$bundle" ]]; then
  t0=$(date +%s)
  if unpack "$bundle" "$work" 2>"$out_dir/bundle.log"; then
    bin_dir="$work/bin"
    cp "$work/MANIFEST" "$out_dir/MANIFEST" 2>/dev/null
    note="commit $(sed -n 's/^commit: //p' "$work/MANIFEST" 2>/dev/null)"
    if grep -q '^links_cublas: no' "$work/MANIFEST" 2>/dev/null; then
      note="$note; built WITHOUT the CUDA backend"
    fi
    record bundle PASS $(($(date +%s) - t0)) "$note"
  else
    record bundle FAIL $(($(date +%s) - t0)) "cannot unpack; see bundle.log"
  fi
  for name in kernels_test engine_test breakeven-worker breakeven-engine-bench breakeven; do
    exe[$name]="$bin_dir/$name"
  done
else
  build="${GPU_CHECK_BUILD_DIR:-$repo_root/build-gpu}"
  if ! command -v cmake >/dev/null; then
    skip build "cmake not found on this host; make a bundle with scripts/gpu-bundle.sh"
  else
    generator=()
    command -v ninja >/dev/null && generator=(-G Ninja)
    if run_step build-configure 120 120 - 0 cmake -S "$repo_root" -B "$build" "${generator[@]}" \
      -DCMAKE_BUILD_TYPE=Release &&
      run_step build 300 120 - 0 cmake --build "$build" -j "$(nproc)" --target kernels_test \
        engine_test breakeven-worker breakeven-engine-bench breakeven; then
      :
    else
      [[ -f "$out_dir/build.log" ]] || skip build "configure failed"
      say "could not build on this host: it usually lacks the build's -dev libraries (protobuf," \
        "OpenBLAS, Gloo, yaml-cpp, spdlog/fmt, SQLite, GoogleTest, CLI11). Make a bundle on the" \
        "build machine (scripts/gpu-bundle.sh BUILD_DIR FILE.tar.xz) and pass --bundle FILE."
      grep -hiE 'could not find|not found|error' "$out_dir"/build*.log 2>/dev/null | head -n 8 |
        sed 's/^/    | /'
    fi
  fi
  exe[kernels_test]="$build/tests/kernels_test"
  exe[engine_test]="$build/tests/engine_test"
  exe[breakeven-worker]="$build/node/breakeven-worker"
  exe[breakeven-engine-bench]="$build/bench/breakeven-engine-bench"
  exe[breakeven]="$build/cli/breakeven"
fi

# ---- Libraries: the bundle's, then cuBLAS, NCCL and the driver from wherever this host has them.
python_lib_dirs() {
  ((have_python == 1)) || return 0
  python3 - <<'PY' 2>/dev/null
import site, sys
dirs = []
try:
    dirs += site.getsitepackages()
except Exception:
    pass
try:
    dirs.append(site.getusersitepackages())
except Exception:
    pass
dirs += [p for p in sys.path if p.endswith("-packages")]
try:
    import nvidia
    dirs += [p.rsplit("/nvidia", 1)[0] for p in nvidia.__path__]
except Exception:
    pass
print("\n".join(dict.fromkeys(dirs)))
PY
}
candidate_dirs=()
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/*/lib \
  /usr/local/cuda-*/lib64 /usr/local/cuda-*/lib \
  /usr/local/cuda-*/targets/*/lib; do
  [[ -d "$d" ]] && candidate_dirs+=("$d")
done
while read -r sp; do
  [[ -n "$sp" && -d "$sp" ]] || continue
  while read -r d; do candidate_dirs+=("$d"); done < <(
    find "$sp/nvidia" "$sp/torch/lib" -maxdepth 3 -name 'lib*.so*' -printf '%h\n' 2>/dev/null |
      sort -u
  )
done < <(python_lib_dirs)
for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
  [[ -d "$d" ]] && candidate_dirs+=("$d")
done

lib_path=()
[[ -n "$bundle" && -d "$work/lib" ]] && lib_path+=("$work/lib")
{
  echo "# where each library the CUDA build needs was found (first directory wins)"
  for lib in libcublas.so.13 libcublasLt.so.13 libnccl.so.2 libcuda.so.1; do
    found=""
    for d in "${candidate_dirs[@]}"; do
      if [[ -e "$d/$lib" ]]; then
        found=$d
        break
      fi
    done
    echo "$lib: ${found:-not found}"
    if [[ -n "$found" ]]; then
      [[ " ${lib_path[*]} " == *" $found "* ]] || lib_path+=("$found")
    fi
  done
} >"$out_dir/libraries.log"
# Only our executables get this path: exported, it would also put the toolkit's cuBLAS ahead of
# the one PyTorch was built with in the peer's process.
joined=$(IFS=:; echo "${lib_path[*]}")
exe_ld_path="$joined${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "LD_LIBRARY_PATH for our executables: $exe_ld_path" >>"$out_dir/libraries.log"
sed 's/^/    | /' "$out_dir/libraries.log"

declare -A unusable=()  # executable -> why it cannot run here
not_built=0
missing_total=0
for name in "${!exe[@]}"; do
  path=${exe[$name]}
  if [[ ! -x "$path" ]]; then
    unusable[$name]="not built"
    not_built=$((not_built + 1))
    continue
  fi
  {
    echo "== $name"
    LD_LIBRARY_PATH="$exe_ld_path" ldd "$path" 2>&1
  } >>"$out_dir/libraries.log"
  # "libx.so => not found", or a symbol version this host's C library lacks.
  missing=$(LD_LIBRARY_PATH="$exe_ld_path" ldd "$path" 2>&1 |
    awk '/=> not found/ {print $1; next} /not found/ {match($0, /version `[^'"'"']*'"'"'/);
      print (RSTART ? substr($0, RSTART + 9, RLENGTH - 10) : "?")}' | sort -u | tr '\n' ' ')
  if [[ -n "$missing" ]]; then
    unusable[$name]="missing libraries: ${missing% }"
    missing_total=$((missing_total + 1))
    say "$name cannot start: ${missing% } not found"
  fi
done
if ((${#unusable[@]} == 0)); then
  record libraries PASS 0 "every executable resolves its libraries"
else
  note="of ${#exe[@]} executables $not_built not built, $missing_total lack libraries"
  record libraries FAIL 0 "$note; see libraries.log"
fi

# run_exe STEP NOMINAL RESERVE STDOUT SHOW EXE ARGS...: run_step, or SKIP when EXE cannot run.
run_exe() {
  local name=$1 nominal=$2 reserve=$3 stdout=$4 show=$5 which=$6
  shift 6
  if [[ -n "${unusable[$which]:-}" ]]; then
    skip "$name" "$which: ${unusable[$which]}"
    return 1
  fi
  run_step "$name" "$nominal" "$reserve" "$stdout" "$show" env LD_LIBRARY_PATH="$exe_ld_path" \
    BREAKEVEN_WORKER="${exe[breakeven-worker]}" "${exe[$which]}" "$@"
}

# Seconds kept for the steps after each one, so a slow step cannot starve the rest.
if ((quick == 1)); then
  keep_after_tests=60 keep_after_sweep=0 keep_after_bench=0
else
  keep_after_tests=330 keep_after_sweep=150 keep_after_bench=120
fi

# ---- a. The GPU, read only.
if command -v nvidia-smi >/dev/null; then
  run_step nvidia-smi-list 20 0 - 1 nvidia-smi -L
  run_step nvidia-smi-query 20 0 - 1 nvidia-smi \
    --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,power.limit --format=csv
else
  skip nvidia-smi-list "nvidia-smi not found: no NVIDIA driver on this host"
  skip nvidia-smi-query "nvidia-smi not found"
fi

# ---- b. Tests.
run_exe kernels_test 150 "$keep_after_tests" - 0 kernels_test \
  --gtest_filter='*Cuda*:*cuda*:*Calibrat*:*Sample*' --gtest_brief=1 \
  --gtest_output="json:$out_dir/kernels_test.json"
run_exe engine_test 120 "$keep_after_tests" - 0 engine_test --gtest_filter='*Cuda*:*Nccl*' \
  --gtest_brief=1 --gtest_output="json:$out_dir/engine_test.json"

# ---- c. GEMM sweep: JSON for the summary, then the table for people.
run_exe gemm-sweep-json 90 "$keep_after_sweep" "$out_dir/gemm-sweep.json" 0 breakeven \
  gemm-sweep --backend cuda -o json
run_exe gemm-sweep-table 60 "$keep_after_sweep" - 1 breakeven gemm-sweep --backend cuda -o table

if ((quick == 0)); then
  # ---- d. Our engine: decode at batch 1 and kBatch, prefill; workers from the same bundle.
  run_exe engine-bench 300 "$keep_after_bench" - 1 breakeven-engine-bench --backend cuda \
    --model "$kModel" --dtype bf16 --tp 1 --batch "$kBatch" --input-tokens "$kInputTokens" \
    --output-tokens "$kOutputTokens" --prefill-tokens "$kPrefillTokens" --repeats "$kRepeats" \
    --json-out "$out_dir/engine-bench.json"

  # ---- e. The PyTorch peer, same workload, same card.
  if ((have_python == 0)); then
    skip torch-peer "python3 not found"
  else
    run_step torch-peer 240 0 - 1 python3 "$repo_root/bench/torch_peer.py" --model "$kModel" \
      --batch "$kBatch" --input-tokens "$kInputTokens" --output-tokens "$kOutputTokens" \
      --prefill-tokens "$kPrefillTokens" --json-out "$out_dir/torch-peer.json"
  fi
else
  skip engine-bench "--quick"
  skip torch-peer "--quick"
fi

# ---- f. Summary.
{
  echo
  echo "==================== gpu-check summary ===================="
  echo "commit $commit," \
    "host $(hostname 2>/dev/null || echo '?'), $(date -u +%Y-%m-%dT%H:%M:%SZ)," \
    "$(($(date +%s) - start_s)) s in all; logs in $out_dir"
  if [[ -f "$out_dir/nvidia-smi-query.log" ]]; then
    sed -n '4p' "$out_dir/nvidia-smi-query.log" | sed 's/^/GPU: /'
  fi
  echo
  printf '%-18s  %-6s  %7s  %s\n' STEP RESULT SECONDS NOTE
  for i in "${!step_names[@]}"; do
    printf '%-18s  %-6s  %7s  %s\n' "${step_names[$i]}" "${step_results[$i]}" "${step_secs[$i]}" \
      "${step_notes[$i]}"
  done
  echo
  if ((have_python == 0)); then
    echo "headline figures: python3 not found"
  else
    GPU_CHECK_HEADLINES="$kHeadlines" GPU_CHECK_BATCH="$kBatch" python3 - "$out_dir" <<'PY'
import json, math, os, re, sys

out = sys.argv[1]
batch = os.environ["GPU_CHECK_BATCH"]
sources = {"engine": "engine-bench.json", "sweep": "gemm-sweep.json", "torch": "torch-peer.json"}


def load(path):
    """A JSON document, or JSON lines read as a list of rows; None when absent or unreadable."""
    try:
        text = open(path).read()
    except OSError:
        return None
    try:
        return json.loads(text)
    except ValueError:
        rows = []
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("{") or line.startswith("["):
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    pass
        return rows or None


docs = {k: load(os.path.join(out, v)) for k, v in sources.items()}


def matches(node, filters):
    if not isinstance(node, dict):
        return False
    for k, v in filters:
        if k not in node:
            return False
        have = node[k]
        if isinstance(have, bool):
            if have != (v.lower() in ("true", "1", "yes")):
                return False
            continue
        try:
            if float(have) != float(v):
                return False
        except (TypeError, ValueError):
            if str(have) != v:
                return False
    return True


def walk(node):
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for c in children:
        yield from walk(c)


def resolve(node, segs):
    """Yields every value that the path segments reach from node."""
    if not segs:
        yield node
        return
    seg, rest = segs[0], segs[1:]
    if seg.startswith("**"):  # anywhere below; "**[f=v]" filters what it finds
        for n in walk(node):
            yield from resolve(n, ([seg[2:]] if seg[2:] else []) + rest)
        return
    m = re.fullmatch(r"([^\[\]]*)(?:\[(.*)\])?", seg)
    key, filt = m.group(1), m.group(2)
    if key:
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return
    if filt is None:
        yield from resolve(node, rest)
        return
    filters = [tuple(f.split("=", 1)) for f in filt.split(",") if "=" in f]
    items = node if isinstance(node, list) else [node]
    for item in items:
        if matches(item, filters):
            yield from resolve(item, rest)


def lookup(candidate):
    source, _, path = candidate.partition(":")
    scale = 1.0
    m = re.fullmatch(r"(.*)\*([0-9.eE+-]+)", path)
    if m:
        path, scale = m.group(1), float(m.group(2))
    doc = docs.get(source)
    if doc is None:
        return None
    segs = re.findall(r"[^.\[]*(?:\[[^\]]*\])?", path.replace("{batch}", batch))
    for v in resolve(doc, [s for s in segs if s]):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            return v * scale
    return None


figures, labels, units, where = {}, {}, {}, {}
order = []
for line in os.environ["GPU_CHECK_HEADLINES"].strip().splitlines():
    parts = line.split("|")
    if len(parts) != 4:
        continue
    name, label, unit, candidates = (p.strip() for p in parts)
    order.append(name)
    labels[name], units[name] = label.replace("{batch}", batch), unit
    for c in candidates.split():
        v = lookup(c)
        if v is not None:
            figures[name], where[name] = v, c.replace("{batch}", batch)
            break


def derive(name, label, unit, f, how, after):
    try:
        v = f()
    except (KeyError, ZeroDivisionError, TypeError):
        v = None
    if v is not None and name not in figures:
        figures[name], where[name] = v, how
    labels.setdefault(name, label)
    units.setdefault(name, unit)
    if name not in order:
        order.insert(order.index(after) + 1, name)


g = figures.get
derive("our_batch_gain", f"ours: batch {batch} / batch 1", "x",
       lambda: g("our_tps_bb") / g("our_tps_b1"), "derived", "our_tps_bb")
derive("our_prefill_of_gemm", "ours: prefill / GEMM rate", "%",
       lambda: 100 * g("our_prefill_tflops") / g("gemm_tflops"), "derived", "our_prefill_tflops")
derive("torch_batch_gain", f"torch: batch {batch} / batch 1", "x",
       lambda: g("torch_tps_bb") / g("torch_tps_b1"), "derived", "torch_tps_bb")
derive("ratio_b1", "ours / torch: decode batch 1", "x",
       lambda: g("our_tps_b1") / g("torch_tps_b1"), "derived (tok/s over tok/s)", order[-1])
derive("ratio_bb", f"ours / torch: decode batch {batch}", "x",
       lambda: g("our_tps_bb") / g("torch_tps_bb"), "derived (tok/s over tok/s)", "ratio_b1")
derive("ratio_prefill", "ours / torch: prefill speed", "x",
       lambda: g("torch_prefill_ms") / g("our_prefill_ms"), "derived (torch ms over our ms)",
       "ratio_b1" if "ratio_bb" not in order else "ratio_bb")

print(f"{'FIGURE':<34}  {'VALUE':>10}  {'UNIT':<7}  FROM")
for name in order:
    v = figures.get(name)
    text = "n/a" if v is None else (f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}")
    print(f"{labels[name]:<34}  {text:>10}  {units[name]:<7}  {where.get(name, '-')}")
missing = [s for s, d in docs.items() if d is None]
if missing:
    print("no JSON from: " + ", ".join(f"{s} ({sources[s]})" for s in missing))
PY
  fi
} | tee "$out_dir/summary.txt"

failed=0
for r in "${step_results[@]}"; do [[ "$r" == FAIL ]] && failed=$((failed + 1)); done
exit $((failed > 0 ? 1 : 0))
