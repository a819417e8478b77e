// A communicator for ranks on one host, through a shared-memory segment.
//
// Design: the segment holds one slot per rank (kSlotBytes each) and, per rank, two counters on
// their own cache lines: `posted` (the last operation whose data the rank put in its slot) and
// `consumed` (the last operation whose inputs the rank finished reading). An operation is
// numbered; large ones are cut into slot-sized chunks, each chunk its own number. For chunk s a
// rank waits until every rank has consumed s - 1 (so slots may be overwritten), writes its part,
// posts s, waits until every rank has posted s, reads what it needs, and marks s consumed.
// All-reduce sums the slots in rank order, so every rank computes bit-identical results (the
// same property vLLM's custom all-reduce keeps). Waiting spins with a pause instruction, yields
// after a while, and gives up at the deadline with an error naming the rank that did not
// arrive: a dead peer becomes kDeadlineExceeded, never a hang.
//
// Per-message latency is a few microseconds, against a loopback TCP round trip (and Gloo's
// event-thread hand-offs) of hundreds: with two all-reduces per layer, that is the difference
// between CPU tensor parallelism that pays and one that does not (bench/RESULTS.md).
#include <fcntl.h>
#include <immintrin.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>

#include "engine/communicator.h"
#include "engine/store.h"

namespace breakeven::engine {

namespace {

constexpr size_t kSlotBytes = 1 << 20;  // per rank; bigger messages go in chunks
constexpr size_t kLine = 64;

struct alignas(kLine) Counter {
  std::atomic<uint64_t> value;
  char pad[kLine - sizeof(std::atomic<uint64_t>)];
};

size_t SegmentBytes(int world) {
  return kLine + 2 * static_cast<size_t>(world) * sizeof(Counter) +
         static_cast<size_t>(world) * kSlotBytes;
}

class ShmCommunicator final : public Communicator {
 public:
  ShmCommunicator(int rank, int world, std::string name, void* base, Millis timeout)
      : rank_(rank), world_(world), name_(std::move(name)), base_(base), timeout_(timeout) {
    auto* p = static_cast<uint8_t*>(base);
    posted_ = reinterpret_cast<Counter*>(p + kLine);
    consumed_ = posted_ + world;
    slots_ = reinterpret_cast<uint8_t*>(consumed_ + world);
  }

  ~ShmCommunicator() override {
    munmap(base_, SegmentBytes(world_));
    // The segment's name was removed once every rank had it open; nothing to clean here.
  }

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }

  Status AllReduceSum(float* data, size_t count) override {
    const size_t per_chunk = kSlotBytes / sizeof(float);
    for (size_t off = 0; off < count; off += per_chunk) {
      const size_t n = std::min(per_chunk, count - off);
      BE_RETURN_IF_ERROR(Exchange(fmt::format("all-reduce of {} floats", count), data + off,
                                  n * sizeof(float), [&](int) { return true; }));
      // Sum in rank order: identical results on every rank.
      float* out = data + off;
      const float* first = Slot<float>(0);
      std::memcpy(out, first, n * sizeof(float));
      for (int r = 1; r < world_; ++r) {
        const float* in = Slot<float>(r);
        for (size_t i = 0; i < n; ++i) out[i] += in[i];
      }
      Consume();
    }
    return Status::Ok();
  }

  Status AllGather(const float* in, size_t count, float* out) override {
    const size_t per_chunk = kSlotBytes / sizeof(float);
    for (size_t off = 0; off < count; off += per_chunk) {
      const size_t n = std::min(per_chunk, count - off);
      BE_RETURN_IF_ERROR(Exchange(fmt::format("all-gather of {} floats per rank", count), in + off,
                                  n * sizeof(float), [&](int) { return true; }));
      for (int r = 0; r < world_; ++r) {
        std::memcpy(out + static_cast<size_t>(r) * count + off, Slot<float>(r), n * sizeof(float));
      }
      Consume();
    }
    return Status::Ok();
  }

  Status Broadcast(void* data, size_t bytes, int root) override {
    if (!failure_.ok()) return failure_;
    if (root < 0 || root >= world_) {
      return InvalidArgument("rank {}: broadcast from rank {} in a group of {}", rank_, root,
                             world_);
    }
    auto* p = static_cast<uint8_t*>(data);
    for (size_t off = 0; off < bytes; off += kSlotBytes) {
      const size_t n = std::min(kSlotBytes, bytes - off);
      BE_RETURN_IF_ERROR(Exchange(fmt::format("broadcast of {} bytes from rank {}", bytes, root),
                                  p + off, n, [&](int r) { return r == root; }));
      if (rank_ != root) std::memcpy(p + off, Slot<uint8_t>(root), n);
      Consume();
    }
    return Status::Ok();
  }

  Status Barrier() override {
    uint8_t none = 0;
    BE_RETURN_IF_ERROR(Exchange("barrier", &none, 0, [](int) { return false; }));
    Consume();
    return Status::Ok();
  }

 private:
  template <typename T>
  const T* Slot(int r) const {
    return reinterpret_cast<const T*>(slots_ + static_cast<size_t>(r) * kSlotBytes);
  }

  // One chunk: wait until the slots are free, write ours (if `writes(rank)`), post, wait for
  // every rank's post. The caller reads, then calls Consume().
  template <typename Writes>
  Status Exchange(const std::string& what, const void* mine, size_t bytes, Writes writes) {
    if (!failure_.ok()) return failure_;
    const uint64_t seq = ++seq_;
    auto deadline = std::chrono::steady_clock::now() + timeout_;
    BE_RETURN_IF_ERROR(WaitAll(consumed_, seq - 1, deadline, what, "free its slot"));
    if (writes(rank_) && bytes > 0) {
      std::memcpy(slots_ + static_cast<size_t>(rank_) * kSlotBytes, mine, bytes);
    }
    posted_[rank_].value.store(seq, std::memory_order_release);
    return WaitAll(posted_, seq, deadline, what, "post its data");
  }

  void Consume() { consumed_[rank_].value.store(seq_, std::memory_order_release); }

  Status WaitAll(Counter* counters, uint64_t seq, std::chrono::steady_clock::time_point deadline,
                 const std::string& what, const char* step) {
    for (int r = 0; r < world_; ++r) {
      int spins = 0;
      while (counters[r].value.load(std::memory_order_acquire) < seq) {
        if (++spins < 4096) {
          _mm_pause();
          continue;
        }
        spins = 0;
        if (std::chrono::steady_clock::now() > deadline) {
          failure_ = DeadlineExceeded("rank {}: {}: rank {} did not {} within {} ms", rank_, what,
                                      r, step, timeout_.count());
          return failure_;
        }
        sched_yield();
      }
    }
    return Status::Ok();
  }

  int rank_, world_;
  std::string name_;
  void* base_;
  Millis timeout_;
  Counter* posted_;
  Counter* consumed_;
  uint8_t* slots_;
  uint64_t seq_ = 0;
  Status failure_;
};

}  // namespace

Result<std::unique_ptr<Communicator>> CreateSharedMemoryCommunicator(Store& store,
                                                                     const GroupOptions& options) {
  const int rank = options.rank, world = options.world_size;
  if (options.prefix.empty()) return InvalidArgument("shared-memory group: empty prefix");
  if (rank < 0 || rank >= world) {
    return InvalidArgument("shared-memory group: rank {} outside a group of {}", rank, world);
  }
  if (world == 1) return MakeSingleRankCommunicator();
  const size_t bytes = SegmentBytes(world);
  std::string name;
  int fd = -1;
  if (rank == 0) {
    // A fresh name per group; published through the store for the other ranks.
    name = fmt::format("/breakeven-{}-{}", getpid(),
                       std::chrono::steady_clock::now().time_since_epoch().count());
    fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) return Unavailable("rank 0: shm_open {}: {}", name, std::strerror(errno));
    if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
      close(fd);
      shm_unlink(name.c_str());
      return Unavailable("rank 0: cannot size shared memory to {} bytes: {}", bytes,
                         std::strerror(errno));
    }
    BE_RETURN_IF_ERROR(store.Set(options.prefix + "/shm", name));
  } else {
    BE_ASSIGN_OR_RETURN(name, store.Get(options.prefix + "/shm", options.timeout));
    fd = shm_open(name.c_str(), O_RDWR, 0600);
    if (fd < 0) return Unavailable("rank {}: shm_open {}: {}", rank, name, std::strerror(errno));
  }
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (base == MAP_FAILED) {
    if (rank == 0) shm_unlink(name.c_str());
    return Unavailable("rank {}: mmap of {} bytes of shared memory failed: {}", rank, bytes,
                       std::strerror(errno));
  }
  auto comm = std::make_unique<ShmCommunicator>(rank, world, name, base, options.timeout);
  // Everyone has it mapped once the first barrier passes; then the name can go, so the segment
  // disappears with the last process even if one crashes.
  Status joined = comm->Barrier();
  if (rank == 0) shm_unlink(name.c_str());
  BE_RETURN_IF_ERROR(joined.WithContext("shared-memory rendezvous"));
  return std::unique_ptr<Communicator>(std::move(comm));
}

}  // namespace breakeven::engine
