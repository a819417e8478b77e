// Communicator: the collectives a tensor-parallel group needs, over CPU memory.
//
// Every call is collective: all ranks of the group make it, in the same order, with the same
// sizes. Every call has a deadline (the timeout given at creation): a rank that died or hangs
// turns into a kDeadlineExceeded or kUnavailable Status on the others, never a hang; a dead
// peer is noticed at the latest when the deadline passes. After a failure the communicator is
// unusable (a bad root is the exception: kInvalidArgument, and the group carries on). One
// thread at a time may use a communicator.
#pragma once

#include <memory>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "engine/store.h"

namespace breakeven::engine {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;

  // data[i] = sum over ranks of data[i], on every rank.
  virtual Status AllReduceSum(float* data, size_t count) = 0;
  // out (world_size * count elements) = concatenation of every rank's `in` in rank order.
  virtual Status AllGather(const float* in, size_t count, float* out) = 0;
  // Copies root's `bytes` bytes at `data` to every other rank's `data`.
  virtual Status Broadcast(void* data, size_t bytes, int root) = 0;
  virtual Status Barrier() = 0;

  // Whether AllReduceSum and AllGather take device memory (NCCL: pointers on the GPU, work
  // enqueued on the compute stream, not waited for). Broadcast and Barrier always take host
  // memory.
  virtual bool device_memory() const { return false; }

  // Broadcast of a byte string whose length only the root knows.
  Status BroadcastString(std::string* value, int root);
};

// A group of one: collectives return at once and leave the data as it is.
std::unique_ptr<Communicator> MakeSingleRankCommunicator();

// How a group is formed, whatever carries its data.
struct GroupOptions {
  std::string prefix;  // non-empty; namespaces the keys in the store: "<run id>/<attempt>/tp"
  int rank = 0;
  int world_size = 1;
  std::string host = "127.0.0.1";  // address this rank listens on for its peers
  Millis timeout{30000};           // for rendezvous and for every collective
};

// A Gloo context over TCP, rendezvoused through `store` (used only during this call). Errors name
// the rank and what failed
// ("rank 1: all-reduce of 4096 floats: timed out after 30000 ms").
Result<std::unique_ptr<Communicator>> CreateGlooCommunicator(Store& store,
                                                             const GroupOptions& options);

// Ranks on one host, through a shared-memory segment (engine/shm_communicator.cc): microseconds
// per collective where TCP costs hundreds. Rank 0 creates the segment and publishes its name in
// `store`; the name is removed once all ranks have mapped it. Every wait has options.timeout.
Result<std::unique_ptr<Communicator>> CreateSharedMemoryCommunicator(Store& store,
                                                                     const GroupOptions& options);

// NCCL for the tensors, with `host_group` (Gloo or shared memory) kept for Broadcast and Barrier
// (step plans). Rank 0 makes the ncclUniqueId and publishes it in `store` under
// "<prefix>/nccl-id"; every rank initialises non-blocking and polls until options.timeout, then
// aborts the communicator and fails with a message naming the rank. `cuda_stream` is the
// backend's stream (Backend::native_stream); `device` the CUDA ordinal. Errors (and a build
// without CUDA) are returned, never thrown.
Result<std::unique_ptr<Communicator>> CreateNcclCommunicator(
    Store& store, const GroupOptions& options, void* cuda_stream, int device,
    std::unique_ptr<Communicator> host_group);

}  // namespace breakeven::engine
