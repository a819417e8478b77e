// Sampling on the device: kernels/sampling.h's rule (SampleRow), one thread block per sample.
//
// Design. The host rule sorts; a block instead finds its two logit thresholds by selection, a
// few bits of an order-preserving 32-bit key per pass:
//   - top-k: the k-th largest logit, by counting the candidates under each of 16 digits;
//   - top-p: the largest kept logit t such that the kept tokens with logit >= t hold top_p of the
//     kept mass, by summing their probabilities under each of 8 digits, in double.
// A pass over the row reads the candidates of the key range chosen so far, keyed by distance
// below the maximum so that digits cut the values linearly (see Order); once a range's
// candidates fit in shared memory they are copied there and the remaining passes stay on chip,
// keyed by value, exactly. For top_k <= kThreads a bound comes free from the argmax pass: the
// k-th largest of the threads' own maxima is <= the k-th largest logit, and the logits above it
// usually fit in shared memory at once, so such a row costs three reads of its logits.
// The draw walks the kept tokens in id order as the host does, in three levels: tiles of 128 ids
// (a warp's 16-byte loads) get their kept mass, a block scan finds the tile where
// uniform * mass lands, and one warp scans that tile. Every sum is in double, so the token can
// differ from SampleRow's only when the target lands within rounding (~1e-15 relative) of the
// boundary between two tokens. Scratch is shared memory only and nothing synchronises with the
// host: the launch can be captured in a graph.
//
// Rows without a finite maximum (all -inf or NaN) return their argmax; NaN logits are never
// drawn (SampleRow leaves those cases unspecified).
#include <cooperative_groups.h>

#include <climits>
#include <cmath>
#include <type_traits>

#include "kernels/cuda/sample.h"

namespace breakeven::kernels::cuda {
namespace {

namespace cg = cooperative_groups;

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kCountBits = 4;  // digit bits of a counting pass: 16 int bins per thread
constexpr int kMassBits = 3;   // of a mass pass: 8 double bins per thread
constexpr int kMaxDigits = 1 << kCountBits;
constexpr int kCandidateCap = 8192;           // logits that shared memory holds for a select
constexpr int kTileIds = 128;                 // ids per draw tile: a warp of float4 loads
constexpr int kMaxTiles = kCandidateCap / 2;  // tile masses (double) reuse the candidates' space
constexpr unsigned kFullMask = 0xffffffffu;

struct Shared {
  union {
    float candidates[kCandidateCap];
    double tile_mass[kMaxTiles];
  };
  float thread_max[kThreads];
  int count_partial[kWarps][kMaxDigits];
  int count_total[kMaxDigits];
  double mass_partial[kWarps][kMaxDigits];
  double mass_total[kMaxDigits];
  double warp_sum[kWarps];
  float warp_best[kWarps];
  int warp_best_id[kWarps];
  float warp_low[kWarps];
  double scan_total;
  float best;
  int best_id;
  float low;                  // the smallest finite logit
  int count;                  // candidates appended by the current pass
  uint32_t key_min, key_max;  // the span of its candidates' keys
  int pick;                   // the draw's tile
  int last;                   // the last kept id
  int kept;                   // how many candidates hold every kept logit, or -1
  SampleSpec spec;
};

// The float's order as an unsigned integer: key(a) < key(b) iff a < b (NaN aside). -0 maps to +0
// because the rule's comparisons do not tell them apart.
__device__ __forceinline__ uint32_t Key(float v) {
  uint32_t u = __float_as_uint(v);
  if (u == 0x80000000u) u = 0;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ float FromKey(uint32_t key) {
  return __uint_as_float((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
}

__device__ __forceinline__ float Absent() { return __int_as_float(0x7fc00000); }

// Logits [i, i + 4) of a row; ids past the end read as NaN, which every test here treats as
// absent. `aligned`: the row starts on 16 bytes.
__device__ __forceinline__ float4 Load4(const float* row, int i, int vocab, bool aligned) {
  if (aligned && i + 4 <= vocab) return __ldg(reinterpret_cast<const float4*>(row + i));
  float4 v;
  v.x = i < vocab ? __ldg(row + i) : Absent();
  v.y = i + 1 < vocab ? __ldg(row + i + 1) : Absent();
  v.z = i + 2 < vocab ? __ldg(row + i + 2) : Absent();
  v.w = i + 3 < vocab ? __ldg(row + i + 3) : Absent();
  return v;
}

// Where a select reads its candidates: the logits row in global memory (each thread takes
// groups of four, the block strides through the row) or a copy in shared memory.
struct RowSource {
  const float* row;
  int vocab;
  bool aligned;

  template <typename F>
  __device__ __forceinline__ void ForEach(F&& f) const {
    for (int i = 4 * static_cast<int>(threadIdx.x); i < vocab; i += 4 * kThreads) {
      const float4 v = Load4(row, i, vocab, aligned);
      f(v.x, i);
      f(v.y, i + 1);
      f(v.z, i + 2);
      f(v.w, i + 3);
    }
  }
};

struct SharedSource {
  const float* values;
  int count;

  template <typename F>
  __device__ __forceinline__ void ForEach(F&& f) const {
    for (int i = static_cast<int>(threadIdx.x); i < count; i += kThreads) f(values[i], i);
  }
};

// Appends v to the shared candidates (one atomic per warp); past the capacity only counts.
__device__ __forceinline__ void Append(float v, Shared& sh) {
  const cg::coalesced_group group = cg::coalesced_threads();
  int base = 0;
  if (group.thread_rank() == 0) base = atomicAdd(&sh.count, static_cast<int>(group.size()));
  const int at = group.shfl(base, 0) + static_cast<int>(group.thread_rank());
  if (at < kCandidateCap) sh.candidates[at] = v;
}

__device__ __forceinline__ void ResetCount(Shared& sh) {
  __syncthreads();  // the previous count has been read
  if (threadIdx.x == 0) {
    sh.count = 0;
    sh.key_min = ~0u;
    sh.key_max = 0;
  }
  __syncthreads();
}

template <typename T>
__device__ __forceinline__ T WarpSum(T v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

// total[d] = the block's sum of bins[d]; every thread may read total on return.
template <typename T, int kBins>
__device__ __forceinline__ void BlockSumDigits(const T (&bins)[kBins], T (*partial)[kMaxDigits],
                                               T* total) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
#pragma unroll
  for (int d = 0; d < kBins; ++d) {
    T v;
    if constexpr (std::is_same_v<T, int>) {
      v = __reduce_add_sync(kFullMask, bins[d]);
    } else {
      v = WarpSum(bins[d]);
    }
    if (lane == 0) partial[warp][d] = v;
  }
  __syncthreads();
  if (warp < kBins) {  // warp d sums digit d over the warps
    T v = partial[lane][warp];
    if constexpr (std::is_same_v<T, int>) {
      v = __reduce_add_sync(kFullMask, v);
    } else {
      v = WarpSum(v);
    }
    if (lane == 0) total[warp] = v;
  }
  __syncthreads();
}

// The key range chosen so far, [lo, hi]. Its keys share their bits above `shift`; the next
// digit splits the bits below.
struct KeyRange {
  uint32_t lo = 0;
  uint32_t hi = ~0u;
  int shift = 32;

  __device__ bool Holds(uint32_t key) const { return key >= lo && key <= hi; }
  __device__ bool Done() const { return shift == 0; }
  // The next digit: bits [Next(bits), shift), the last one narrower when bits does not divide 32.
  __device__ int Next(int bits) const { return shift > bits ? shift - bits : 0; }
  __device__ uint32_t Digit(uint32_t key, int next) const { return (key & LowBits(shift)) >> next; }
  __device__ void Narrow(int digit, int next) {
    const uint32_t first = (lo & ~LowBits(shift)) | (static_cast<uint32_t>(digit) << next);
    Clip(first, first | LowBits(next));
  }
  // Intersects with [a, b] (which must overlap) and fixes the bits its keys share.
  __device__ void Clip(uint32_t a, uint32_t b) {
    lo = max(lo, a);
    hi = min(hi, b);
    shift = lo == hi ? 0 : 32 - __clz(lo ^ hi);
  }
  __device__ static uint32_t LowBits(int n) { return n >= 32 ? ~0u : (1u << n) - 1; }
};

// How a pass orders the logits. Shared memory is always selected by value, exactly (Key). A row
// is split by distance below its maximum, ~bits(max - v): non-decreasing in v, and its digits cut
// the values linearly, across zero too, where the value key's top bits would hold one or two
// values and its octaves grow ever finer. Distinct values may share a distance key (max - v
// rounds); a range that cannot be split further that way and still holds too many to copy is
// turned into a value range (ValueRangeOf). The row's first pass splits by octave of the
// distance, counted from the octave of the row's span D = max - min (finite logits): digit 0
// holds D's octave and anything further (-inf), each digit up one octave nearer, and the last
// digit everything nearer still (the maximum with it).
enum Order { kByValue, kByDistance, kByOctave };

struct Split {
  float origin;   // the row's maximum
  uint32_t base;  // the span's octave: ~bits(D) >> 23
};

template <Order kOrder>
__device__ __forceinline__ uint32_t OrderKey(float v, const Split& split) {
  if constexpr (kOrder == kByValue) {
    return Key(v);
  } else {
    return ~__float_as_uint(split.origin - v);
  }
}

template <Order kOrder, int kBins>
__device__ __forceinline__ uint32_t DigitOf(uint32_t key, const KeyRange& range, int next,
                                            const Split& split) {
  if constexpr (kOrder == kByOctave) {
    const uint32_t octave = key >> 23;
    return octave <= split.base ? 0 : min(octave - split.base, static_cast<uint32_t>(kBins - 1));
  } else {
    return range.Digit(key, next);
  }
}

template <Order kOrder, int kBins>
__device__ __forceinline__ void NarrowTo(int digit, KeyRange& range, int next, const Split& split) {
  if constexpr (kOrder == kByOctave) {
    // A chosen digit holds a candidate, so its octaves exist (base + digit <= 511); the shifts
    // past bit 31 that remain wrap to the ends of the key space, as they should.
    if (digit == 0) {
      range.Clip(0, ((split.base + 1) << 23) - 1);
    } else if (digit < kBins - 1) {
      range.Clip((split.base + digit) << 23, ((split.base + digit + 1) << 23) - 1);
    } else {
      range.Clip((split.base + digit) << 23, ~0u);
    }
  } else {
    range.Narrow(digit, next);
  }
}

// The value range of the logits whose distance key lies in `d`: the distance key is monotone
// in the value key, so two bisections find its ends.
__device__ KeyRange ValueRangeOf(const KeyRange& d, const Split& split) {
  const uint32_t d_lo = d.lo, d_hi = d.hi;
  auto distance = [&](uint32_t key) { return OrderKey<kByDistance>(FromKey(key), split); };
  uint32_t a = Key(-INFINITY), b = Key(split.origin);
  while (a < b) {  // the smallest key at distance key >= d_lo
    const uint32_t m = a + (b - a) / 2;
    if (distance(m) >= d_lo) {
      b = m;
    } else {
      a = m + 1;
    }
  }
  const uint32_t v_lo = a;
  a = Key(-INFINITY), b = Key(split.origin);
  while (a < b) {  // the largest key at distance key <= d_hi
    const uint32_t m = a + (b - a + 1) / 2;
    if (distance(m) <= d_hi) {
      a = m;
    } else {
      b = m - 1;
    }
  }
  KeyRange v;
  v.Clip(v_lo, a);
  return v;
}

// Appends the candidates (logits >= floor in the range) to the shared ones and returns how many
// there are, or some number over kCandidateCap once they do not fit. Without kTighten the pass
// stops there; with it the pass goes on to clip the range to its candidates' keys (long ties
// then end a select at once).
template <Order kOrder, bool kTighten = false>
__device__ int CopyPass(const RowSource& row, float floor, KeyRange& range, const Split& split,
                        Shared& sh) {
  ResetCount(sh);
  const volatile int& count = sh.count;
  uint32_t key_min = ~0u, key_max = 0;
  for (int i = 4 * static_cast<int>(threadIdx.x); i < row.vocab; i += 4 * kThreads) {
    const bool full = count > kCandidateCap;
    if (!kTighten && full) break;
    const float4 v = Load4(row.row, i, row.vocab, row.aligned);
    const float group[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if (!(group[j] >= floor)) continue;
      const uint32_t key = OrderKey<kOrder>(group[j], split);
      if (!range.Holds(key)) continue;
      if (kTighten) {
        key_min = min(key_min, key);
        key_max = max(key_max, key);
      }
      if (!full) Append(group[j], sh);
    }
  }
  if (kTighten) {
    key_min = __reduce_min_sync(kFullMask, key_min);
    key_max = __reduce_max_sync(kFullMask, key_max);
    if ((threadIdx.x & 31) == 0) {
      atomicMin(&sh.key_min, key_min);
      atomicMax(&sh.key_max, key_max);
    }
  }
  __syncthreads();
  if (kTighten && sh.key_min <= sh.key_max) range.Clip(sh.key_min, sh.key_max);
  return sh.count;
}

// ---- top-k

// One counting pass: narrows `range` to the digit that holds the rank-th largest candidate
// (logits >= floor in the range) and makes rank relative to it. Returns how many candidates the
// narrowed range holds.
template <Order kOrder, typename Source>
__device__ __forceinline__ int CountPass(const Source& src, float floor, KeyRange& range, int& rank,
                                         const Split& split, Shared& sh) {
  constexpr int kBins = 1 << kCountBits;
  const int next = range.Next(kCountBits);
  // Two 16-bit counters per register (a thread meets fewer than 2^16 candidates a pass while
  // vocab < 2^26): half the registers and half the instructions of one counter each.
  uint32_t pairs[kBins / 2] = {};
  src.ForEach([&](float v, int) {
    if (!(v >= floor)) return;
    const uint32_t key = OrderKey<kOrder>(v, split);
    if (!range.Holds(key)) return;
    const uint32_t digit = DigitOf<kOrder, kBins>(key, range, next, split);
    const uint32_t one = 1u << ((digit & 1) * 16);
#pragma unroll
    for (int d = 0; d < kBins / 2; ++d)
      pairs[d] += (digit >> 1) == static_cast<uint32_t>(d) ? one : 0;
  });
  int bins[kBins];
#pragma unroll
  for (int d = 0; d < kBins; ++d)
    bins[d] = static_cast<int>((pairs[d / 2] >> ((d & 1) * 16)) & 0xffff);
  BlockSumDigits(bins, sh.count_partial, sh.count_total);
  int digit = kOrder == kByOctave ? kBins - 1 : (1 << (range.shift - next)) - 1;
  for (; digit > 0 && rank > sh.count_total[digit]; --digit) rank -= sh.count_total[digit];
  NarrowTo<kOrder, kBins>(digit, range, next, split);
  return sh.count_total[digit];
}

// The rank-th largest (1-based, with multiplicity) of the values >= floor in shared memory.
__device__ float KthLargestShared(const SharedSource& src, float floor, int rank, Shared& sh) {
  KeyRange range;
  while (!range.Done()) CountPass<kByValue>(src, floor, range, rank, Split{}, sh);
  return FromKey(range.lo);
}

// The rank-th largest of the row's logits >= floor; moves to shared memory once the candidates
// fit.
__device__ float KthLargestInRow(const RowSource& row, float floor, int rank, const Split& split,
                                 Shared& sh) {
  KeyRange range;
  if (row.vocab <= kCandidateCap) {
    const int copied = CopyPass<kByValue>(row, floor, range, split, sh);
    return KthLargestShared({sh.candidates, copied}, floor, rank, sh);
  }
  int candidates = CountPass<kByOctave>(row, floor, range, rank, split, sh);
  bool by_value = false;
  for (;;) {
    if (by_value && range.Done()) return FromKey(range.lo);
    if (candidates <= kCandidateCap) {
      const int copied = by_value ? CopyPass<kByValue>(row, floor, range, split, sh)
                                  : CopyPass<kByDistance>(row, floor, range, split, sh);
      return KthLargestShared({sh.candidates, copied}, floor, rank, sh);
    }
    if (range.Done()) {
      range = ValueRangeOf(range, split);
      by_value = true;
      continue;
    }
    candidates = by_value ? CountPass<kByValue>(row, floor, range, rank, split, sh)
                          : CountPass<kByDistance>(row, floor, range, rank, split, sh);
  }
}

// ---- top-p

struct Probability {
  double max;
  double inv_temperature;
  __device__ double operator()(float v) const {
    return exp((static_cast<double>(v) - max) * inv_temperature);
  }
};

// The state of a top-p select: the range, the mass of the kept tokens above it, and the mass to
// reach (top_p times the kept mass, set by the first pass).
struct Nucleus {
  KeyRange range;
  double above = 0;
  double target = 0;
  bool first = true;
};

// One mass pass over the candidates (logits >= floor in the range): narrows the range to the
// largest digit whose candidates, with the mass above the range, reach the target. Digits
// without mass are never chosen: a token of probability 0 cannot be where the mass is first
// reached. When rounding leaves no digit reaching the target, the smallest digit with mass (the
// closest).
template <Order kOrder, typename Source>
__device__ __forceinline__ void MassPass(const Source& src, float floor, const Probability& prob,
                                         float top_p, Nucleus& n, const Split& split, Shared& sh) {
  constexpr int kBins = 1 << kMassBits;
  KeyRange& range = n.range;
  const int next = range.Next(kMassBits);
  double bins[kBins] = {};
  src.ForEach([&](float v, int) {
    if (!(v >= floor)) return;
    const uint32_t key = OrderKey<kOrder>(v, split);
    if (!range.Holds(key)) return;
    const double p = prob(v);
    const uint32_t digit = DigitOf<kOrder, kBins>(key, range, next, split);
#pragma unroll
    for (int d = 0; d < kBins; ++d) {
      if (digit == static_cast<uint32_t>(d)) bins[d] += p;
    }
  });
  BlockSumDigits(bins, sh.mass_partial, sh.mass_total);
  const int top = kOrder == kByOctave ? kBins - 1 : (1 << (range.shift - next)) - 1;
  if (n.first) {
    double mass = 0;
    for (int d = top; d >= 0; --d) mass += sh.mass_total[d];
    n.target = static_cast<double>(top_p) * mass;
    n.first = false;
  }
  double cumulative = n.above;
  int pick = 0;
  double pick_above = n.above;
  for (int d = top; d >= 0; --d) {
    const double m = sh.mass_total[d];
    if (m > 0) {
      pick = d;
      pick_above = cumulative;
      if (cumulative + m >= n.target) break;
    }
    cumulative += m;
  }
  n.above = pick_above;
  NarrowTo<kOrder, kBins>(pick, range, next, split);
}

// The top-p threshold among the shared values >= floor (the kept ones), continuing `n` (the
// shared values being its range's candidates).
__device__ float NucleusInShared(const SharedSource& src, float floor, const Probability& prob,
                                 float top_p, Nucleus n, Shared& sh) {
  n.range = KeyRange{};
  while (!n.range.Done()) MassPass<kByValue>(src, floor, prob, top_p, n, Split{}, sh);
  return FromKey(n.range.lo);
}

// The same over the row's logits >= floor. After each pass over the row the range's candidates
// are copied to shared memory if they fit (no probabilities: those come on chip), and the rest
// stays there.
__device__ float NucleusInRow(const RowSource& row, float floor, const Probability& prob,
                              float top_p, const Split& split, Shared& sh) {
  Nucleus n;
  if (row.vocab <= kCandidateCap) {
    const int copied = CopyPass<kByValue>(row, floor, n.range, split, sh);
    return NucleusInShared({sh.candidates, copied}, floor, prob, top_p, n, sh);
  }
  MassPass<kByOctave>(row, floor, prob, top_p, n, split, sh);
  bool by_value = false;
  for (;;) {
    const int copied = by_value ? CopyPass<kByValue, true>(row, floor, n.range, split, sh)
                                : CopyPass<kByDistance, true>(row, floor, n.range, split, sh);
    if (copied <= kCandidateCap) {
      return NucleusInShared({sh.candidates, copied}, floor, prob, top_p, n, sh);
    }
    if (n.range.Done()) {
      if (by_value) return FromKey(n.range.lo);
      // Equal distances, maybe several values: select among those by value.
      n.range = ValueRangeOf(n.range, split);
      by_value = true;
      continue;
    }
    if (by_value) {
      MassPass<kByValue>(row, floor, prob, top_p, n, split, sh);
    } else {
      MassPass<kByDistance>(row, floor, prob, top_p, n, split, sh);
    }
  }
}

// ---- draw

// Exclusive prefix sum of v over the block's threads; *total gets the sum of all.
__device__ __forceinline__ double BlockExclusiveScan(double v, Shared& sh, double* total) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  double inclusive = v;
#pragma unroll
  for (int offset = 1; offset < 32; offset <<= 1) {
    const double t = __shfl_up_sync(kFullMask, inclusive, offset);
    if (lane >= offset) inclusive += t;
  }
  double exclusive = __shfl_up_sync(kFullMask, inclusive, 1);
  if (lane == 0) exclusive = 0;
  if (lane == 31) sh.warp_sum[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    double w = sh.warp_sum[lane];
#pragma unroll
    for (int offset = 1; offset < 32; offset <<= 1) {
      const double t = __shfl_up_sync(kFullMask, w, offset);
      if (lane >= offset) w += t;
    }
    double before = __shfl_up_sync(kFullMask, w, 1);
    if (lane == 0) before = 0;
    sh.warp_sum[lane] = before;
    if (lane == 31) sh.scan_total = w;
  }
  __syncthreads();
  *total = sh.scan_total;
  return sh.warp_sum[warp] + exclusive;
}

// The kept tokens' (logit >= threshold) walk in id order: target = uniform * kept mass, the first
// token whose probability takes the target below zero. When rounding lets none do, the last kept
// token, as SampleRow does.
__device__ int Draw(const RowSource& row, float threshold, const Probability& prob, double uniform,
                    Shared& sh) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int vocab = row.vocab;
  // Tiles of tile_ids ids, at most kMaxTiles of them: one group of four ids per lane, per step.
  const int steps = ((vocab + kTileIds - 1) / kTileIds + kMaxTiles - 1) / kMaxTiles;
  const int tile_ids = steps * kTileIds;
  const int tiles = (vocab + tile_ids - 1) / tile_ids;

  if (threadIdx.x == 0) {
    sh.pick = INT_MAX;
    sh.last = -1;
  }
  __syncthreads();  // the candidates are no longer read: tile_mass may overwrite them
  int last = -1;
  for (int tile = warp; tile < tiles; tile += kWarps) {
    double mass = 0;
    for (int step = 0; step < steps; ++step) {
      const int i = tile * tile_ids + step * kTileIds + 4 * lane;
      const float4 v = Load4(row.row, i, vocab, row.aligned);
      const float group[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        if (group[j] >= threshold) {
          mass += prob(group[j]);
          last = i + j;
        }
      }
    }
    mass = WarpSum(mass);
    if (lane == 0) sh.tile_mass[tile] = mass;
  }
  last = __reduce_max_sync(kFullMask, last);
  if (lane == 0) atomicMax(&sh.last, last);
  __syncthreads();

  // Each thread takes a run of consecutive tiles; the scan gives each run the mass before it.
  const int per_thread = (tiles + kThreads - 1) / kThreads;
  const int first = static_cast<int>(threadIdx.x) * per_thread;
  const int end = min(first + per_thread, tiles);
  double local = 0;
  for (int t = first; t < end; ++t) local += sh.tile_mass[t];
  double total = 0;
  double before = BlockExclusiveScan(local, sh, &total);
  const double target = uniform * total;
  for (int t = first; t < end; ++t) {
    const double m = sh.tile_mass[t];
    if (before <= target && target < before + m) atomicMin(&sh.pick, t);
    sh.tile_mass[t] = before;  // now the mass before tile t
    before += m;
  }
  __syncthreads();
  const int tile = sh.pick;
  int token = sh.last;
  if (tile == INT_MAX) return token;  // the target is at or past the end: rounding
  if (warp != 0) return -1;           // warp 0 walks the tile

  double left = target - sh.tile_mass[tile];
  token = -1;
  int tile_last = -1;
  for (int step = 0; step < steps && token < 0; ++step) {
    const int i = tile * tile_ids + step * kTileIds + 4 * lane;
    const float4 v = Load4(row.row, i, vocab, row.aligned);
    const float group[4] = {v.x, v.y, v.z, v.w};
    double p[4];
    double mass = 0;
    int lane_last = -1;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const bool kept = group[j] >= threshold;
      p[j] = kept ? prob(group[j]) : 0.0;
      mass += p[j];
      if (kept) lane_last = i + j;
    }
    double inclusive = mass;
#pragma unroll
    for (int offset = 1; offset < 32; offset <<= 1) {
      const double t = __shfl_up_sync(kFullMask, inclusive, offset);
      if (lane >= offset) inclusive += t;
    }
    double exclusive = __shfl_up_sync(kFullMask, inclusive, 1);
    if (lane == 0) exclusive = 0;
    const unsigned crossing = __ballot_sync(kFullMask, exclusive <= left && left < inclusive);
    tile_last = max(tile_last, __reduce_max_sync(kFullMask, lane_last));
    if (crossing != 0) {
      // The first crossing lane walks its four ids as SampleRow walks the row.
      int found = lane_last;  // rounding inside the lane: its last kept token
      double rest = left - exclusive;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        if (group[j] >= threshold) {
          rest -= p[j];
          if (rest < 0) {
            found = i + j;
            break;
          }
        }
      }
      token = __shfl_sync(kFullMask, found, __ffs(crossing) - 1);
    } else {
      left -= __shfl_sync(kFullMask, inclusive, 31);
    }
  }
  if (token < 0) token = tile_last >= 0 ? tile_last : sh.last;
  return token;
}

// ---- the kernel

// The row's maximum (the lowest id of a tie) into sh.best / sh.best_id, its smallest finite
// logit into sh.low; each thread's own maximum into *thread_best.
__device__ void ArgMax(const RowSource& row, Shared& sh, float* thread_best) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  float best = -INFINITY;
  int best_id = INT_MAX;
  float low = INFINITY;
  row.ForEach([&](float v, int i) {
    if (v > best || (v == best && i < best_id)) {
      best = v;
      best_id = i;
    }
    if (v < low && v > -INFINITY) low = v;
  });
  *thread_best = best;
  auto reduce = [&] {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
      const float other = __shfl_xor_sync(kFullMask, best, offset);
      const int other_id = __shfl_xor_sync(kFullMask, best_id, offset);
      if (other > best || (other == best && other_id < best_id)) {
        best = other;
        best_id = other_id;
      }
      low = fminf(low, __shfl_xor_sync(kFullMask, low, offset));
    }
  };
  reduce();
  if (lane == 0) {
    sh.warp_best[warp] = best;
    sh.warp_best_id[warp] = best_id;
    sh.warp_low[warp] = low;
  }
  __syncthreads();
  if (warp == 0) {
    best = sh.warp_best[lane];
    best_id = sh.warp_best_id[lane];
    low = sh.warp_low[lane];
    reduce();
    if (lane == 0) {
      sh.best = best;
      sh.best_id = best_id;
      sh.low = low;
    }
  }
  __syncthreads();
}

__global__ void __launch_bounds__(kThreads, 1)
    sample_kernel(const float* logits, int64_t row_stride, int vocab, const SampleSpec* specs,
                  int32_t* tokens) {
  __shared__ Shared sh;
  // The spec's fields are read from shared memory where they are used: registers are scarce at
  // 1024 threads.
  if (threadIdx.x == 0) sh.spec = specs[blockIdx.x];
  __syncthreads();
  const SampleSpec& spec = sh.spec;
  if (vocab <= 0) {
    if (threadIdx.x == 0) tokens[blockIdx.x] = 0;
    return;
  }
  const float* row_ptr = logits + static_cast<int64_t>(spec.row) * row_stride;
  const RowSource row{row_ptr, vocab, (reinterpret_cast<uintptr_t>(row_ptr) & 15) == 0};

  float thread_best;
  ArgMax(row, sh, &thread_best);
  const float max = sh.best;
  const int argmax = sh.best_id == INT_MAX ? 0 : sh.best_id;
  if (spec.temperature <= 0 || !isfinite(max)) {
    if (threadIdx.x == 0) tokens[blockIdx.x] = argmax;
    return;
  }
  const Probability prob{static_cast<double>(max), 1.0 / static_cast<double>(spec.temperature)};
  const Split split{max, ~__float_as_uint(max - sh.low) >> 23};

  // Logits >= threshold stay.
  float threshold = -INFINITY;
  if (threadIdx.x == 0) sh.kept = -1;  // set when the shared candidates hold every kept logit
  if (spec.top_k > 0 && spec.top_k < vocab) {
    if (spec.top_k <= kThreads) {
      sh.thread_max[threadIdx.x] = thread_best;
      __syncthreads();
      const float bound = KthLargestShared({sh.thread_max, kThreads}, -INFINITY, spec.top_k, sh);
      KeyRange all;
      const int copied = CopyPass<kByValue>(row, bound, all, split, sh);
      if (copied <= kCandidateCap) {
        threshold = KthLargestShared({sh.candidates, copied}, -INFINITY, spec.top_k, sh);
        if (threadIdx.x == 0) sh.kept = copied;
      } else {
        threshold = KthLargestInRow(row, bound, spec.top_k, split, sh);
      }
    } else {
      threshold = KthLargestInRow(row, -INFINITY, spec.top_k, split, sh);
    }
  }
  __syncthreads();
  if (spec.top_p < 1) {
    const int kept = sh.kept;
    threshold = kept >= 0 ? NucleusInShared({sh.candidates, kept}, threshold, prob, spec.top_p,
                                            Nucleus{}, sh)
                          : NucleusInRow(row, threshold, prob, spec.top_p, split, sh);
  }
  const int token = Draw(row, threshold, prob, spec.uniform, sh);
  if (threadIdx.x == 0) tokens[blockIdx.x] = token;
}

}  // namespace

void LaunchSample(const float* logits, int64_t row_stride, int64_t vocab, const SampleSpec* specs,
                  int64_t n, int32_t* tokens, cudaStream_t stream) {
  if (n <= 0) return;
  sample_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(
      logits, row_stride, static_cast<int>(vocab), specs, tokens);
}

}  // namespace breakeven::kernels::cuda
