// NcclCommunicator: AllReduceSum and AllGather on the GPU through NCCL, Broadcast and Barrier (step
// plans: a few host bytes per step) through a host group (Gloo or shared memory).
//
// Design. The NCCL communicator is non-blocking (ncclConfig_t::blocking = 0), so no NCCL call
// can hold the caller past its deadline: init and every enqueue may return ncclInProgress, and we
// poll ncclCommGetAsyncError until the call is done, giving up at options.timeout. A collective
// is enqueued on the compute stream and not waited for: its kernel runs after the ops that made
// its input and before the ops that read its output, with no host synchronisation, so a decode
// step's collectives can be captured into a CUDA graph with the rest of the step.
//
// The deadline covers what the host waits for (rendezvous, init, enqueueing). Once enqueued, a
// collective whose peer died waits on the GPU; NCCL reports what its transports notice as an
// asynchronous error, which the next call sees, and the host group's deadline catches a peer
// that is gone at the next step plan. After any failure the NCCL communicator is aborted (which
// also releases kernels stuck in it) and every later call returns the first failure.
#include <chrono>
#include <thread>

#include "engine/communicator.h"
#include "engine/store.h"

#ifdef BREAKEVEN_WITH_CUDA
#include <cuda_runtime_api.h>
#include <nccl.h>
#endif

namespace breakeven::engine {

#ifdef BREAKEVEN_WITH_CUDA
namespace {

// The store carries text (the scheduler's store keeps values in protobuf strings, which must be
// UTF-8), so the 128-byte id travels as hex.
std::string ToHex(const ncclUniqueId& id) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(sizeof(id.internal) * 2);
  for (char c : id.internal) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

bool FromHex(const std::string& hex, ncclUniqueId* id) {
  if (hex.size() != sizeof(id->internal) * 2) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < sizeof(id->internal); ++i) {
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    id->internal[i] = static_cast<char>(hi << 4 | lo);
  }
  return true;
}

// An NCCL failure as a Status: "<context>: NCCL <code text> (<NCCL's last message>)". Peers and
// transports that fail are kUnavailable; misuse is kInvalidArgument; the rest kInternal.
Status FromNccl(const std::string& context, ncclResult_t result, ncclComm_t comm) {
  std::string text = ncclGetErrorString(result);
  const char* last = ncclGetLastError(comm);
  if (last != nullptr && last[0] != '\0') text += fmt::format(" ({})", last);
  switch (result) {
    case ncclSystemError:
    case ncclRemoteError:
      return Unavailable("{}: NCCL {}", context, text);
    case ncclInvalidArgument:
    case ncclInvalidUsage:
      return InvalidArgument("{}: NCCL {}", context, text);
    default:
      return Internal("{}: NCCL {}", context, text);
  }
}

// Polls the communicator's state until the last call finished (ncclSuccess), failed, or
// `timeout` passed (ncclInProgress). Enqueueing takes microseconds, so the first polls spin;
// init takes up to seconds, so the waits grow to a millisecond.
ncclResult_t WaitWhileInProgress(ncclComm_t comm, Millis timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (int polls = 0;; ++polls) {
    ncclResult_t state = ncclSuccess;
    const ncclResult_t got = ncclCommGetAsyncError(comm, &state);
    if (got != ncclSuccess) return got;
    if (state != ncclInProgress) return state;
    if (std::chrono::steady_clock::now() >= deadline) return ncclInProgress;
    if (polls < 1000) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(polls < 2000 ? 50 : 1000));
    }
  }
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(ncclComm_t comm, cudaStream_t stream, int rank, int world, Millis timeout,
                   std::unique_ptr<Communicator> host_group)
      : comm_(comm),
        stream_(stream),
        rank_(rank),
        world_(world),
        timeout_(timeout),
        host_group_(std::move(host_group)) {}

  ~NcclCommunicator() override {
    if (comm_ == nullptr) return;
    // Finalize flushes what is still enqueued; it waits on the GPU, so it gets the deadline too,
    // and a communicator that cannot finish in time (a peer gone mid-collective) is aborted.
    ncclResult_t r = ncclCommFinalize(comm_);
    if (r == ncclInProgress || r == ncclSuccess) r = WaitWhileInProgress(comm_, timeout_);
    if (r == ncclSuccess) {
      ncclCommDestroy(comm_);
    } else {
      ncclCommAbort(comm_);
    }
  }

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  bool device_memory() const override { return true; }

  Status AllReduceSum(float* data, size_t count) override {
    if (!failure_.ok()) return failure_;
    if (count == 0) return Status::Ok();
    const ncclResult_t r = ncclAllReduce(data, data, count, ncclFloat, ncclSum, comm_, stream_);
    return Enqueued(r, [&] { return fmt::format("all-reduce of {} floats", count); });
  }

  Status AllGather(const float* in, size_t count, float* out) override {
    if (!failure_.ok()) return failure_;
    if (count == 0) return Status::Ok();
    const ncclResult_t r = ncclAllGather(in, out, count, ncclFloat, comm_, stream_);
    return Enqueued(r, [&] { return fmt::format("all-gather of {} floats per rank", count); });
  }

  Status Broadcast(void* data, size_t bytes, int root) override {
    if (!failure_.ok()) return failure_;
    BE_RETURN_IF_ERROR(CheckAsync("broadcast"));
    return HostResult(host_group_->Broadcast(data, bytes, root));
  }

  Status Barrier() override {
    if (!failure_.ok()) return failure_;
    BE_RETURN_IF_ERROR(CheckAsync("barrier"));
    return HostResult(host_group_->Barrier());
  }

 private:
  // After an enqueue: ncclInProgress is NCCL's normal answer in non-blocking mode, and its
  // documentation asks that the state be polled until the call is done before the next call.
  // Errors abort the communicator. `what` names the operation, made only on failure.
  template <typename What>
  Status Enqueued(ncclResult_t r, What what) {
    if (r == ncclInProgress || r == ncclSuccess) r = WaitWhileInProgress(comm_, timeout_);
    if (r == ncclSuccess) return Status::Ok();
    const std::string context = fmt::format("rank {}: {}", rank_, what());
    if (r == ncclInProgress) {
      return Fail(
          DeadlineExceeded("{}: NCCL did not enqueue it within {} ms", context, timeout_.count()));
    }
    return Fail(FromNccl(context, r, comm_));
  }

  // An error NCCL found in the background (a transport, a peer) since the last call.
  Status CheckAsync(const char* what) {
    ncclResult_t state = ncclSuccess;
    ncclResult_t r = ncclCommGetAsyncError(comm_, &state);
    if (r == ncclSuccess) r = state;
    if (r == ncclSuccess || r == ncclInProgress) return Status::Ok();
    return Fail(FromNccl(fmt::format("rank {}: {}", rank_, what), r, comm_));
  }

  // The host group's failures end the group too; a bad root does not (it never left this rank).
  Status HostResult(Status s) {
    if (s.ok() || s.code() == StatusCode::kInvalidArgument) return s;
    return Fail(std::move(s));
  }

  Status Fail(Status s) {
    failure_ = std::move(s);
    if (comm_ != nullptr) {
      // Abort, not destroy: it does not wait for peers, and it releases kernels stuck waiting.
      ncclCommAbort(comm_);
      comm_ = nullptr;
    }
    return failure_;
  }

  ncclComm_t comm_;
  const cudaStream_t stream_;
  const int rank_, world_;
  const Millis timeout_;
  std::unique_ptr<Communicator> host_group_;
  Status failure_;
};

}  // namespace

Result<std::unique_ptr<Communicator>> CreateNcclCommunicator(
    Store& store, const GroupOptions& options, void* cuda_stream, int device,
    std::unique_ptr<Communicator> host_group) {
  const int rank = options.rank, world = options.world_size;
  if (world < 1 || rank < 0 || rank >= world) {
    return InvalidArgument("NCCL: rank {} is not in a group of {}", rank, world);
  }
  if (options.timeout.count() <= 0) {
    return InvalidArgument("NCCL: timeout must be positive, got {} ms", options.timeout.count());
  }
  if (options.prefix.empty()) return InvalidArgument("NCCL: rank {}: empty store prefix", rank);
  if (host_group == nullptr) return InvalidArgument("NCCL: rank {}: no host group", rank);
  if (host_group->rank() != rank || host_group->world_size() != world) {
    return InvalidArgument("NCCL: rank {} of {}: the host group is rank {} of {}", rank, world,
                           host_group->rank(), host_group->world_size());
  }

  // NCCL binds the communicator to the current device; the caller's thread keeps it.
  if (cudaError_t e = cudaSetDevice(device); e != cudaSuccess) {
    return FailedPrecondition("NCCL: rank {}: cannot use CUDA device {}: {}", rank, device,
                              cudaGetErrorString(e));
  }

  const std::string key = options.prefix + "/nccl-id";
  ncclUniqueId id{};
  if (rank == 0) {
    if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess) {
      return FromNccl("NCCL: rank 0: making the unique id", r, nullptr);
    }
    BE_RETURN_IF_ERROR(store.Set(key, ToHex(id)).WithContext("NCCL: rank 0: publishing the id"));
  } else {
    Result<std::string> hex = store.Get(key, options.timeout);
    if (!hex.ok()) return hex.status().WithContext(fmt::format("NCCL: rank {}: the id", rank));
    if (!FromHex(*hex, &id)) {
      return DataLoss("NCCL: rank {}: store key '{}' holds {} characters, not a 256-digit hex id",
                      rank, key, hex->size());
    }
  }

  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  const std::string what = fmt::format("rank {}: NCCL init of {} ranks", rank, world);
  ncclResult_t r = ncclCommInitRankConfig(&comm, world, id, rank, &config);
  if (r == ncclInProgress || r == ncclSuccess) {
    if (comm == nullptr) return Internal("{}: NCCL returned no communicator", what);
    r = WaitWhileInProgress(comm, options.timeout);
  }
  if (r != ncclSuccess) {
    Status failed = r == ncclInProgress ? DeadlineExceeded("{}: not complete after {} ms", what,
                                                           options.timeout.count())
                                        : FromNccl(what, r, comm);
    if (comm != nullptr) ncclCommAbort(comm);
    return failed;
  }
  return std::unique_ptr<Communicator>(
      new NcclCommunicator(comm, static_cast<cudaStream_t>(cuda_stream), rank, world,
                           options.timeout, std::move(host_group)));
}

#else  // !BREAKEVEN_WITH_CUDA

Result<std::unique_ptr<Communicator>> CreateNcclCommunicator(
    Store& /*store*/, const GroupOptions& /*options*/, void* /*cuda_stream*/, int /*device*/,
    std::unique_ptr<Communicator> /*host_group*/) {
  return FailedPrecondition("NCCL: built without CUDA");
}

#endif  // BREAKEVEN_WITH_CUDA

}  // namespace breakeven::engine
