// Communicator pieces shared by every backend, and the group of one.
#include "engine/communicator.h"

#include <cstdint>
#include <cstring>

namespace breakeven::engine {

Status Communicator::BroadcastString(std::string* value, int root) {
  uint64_t size = rank() == root ? value->size() : 0;
  BE_RETURN_IF_ERROR(Broadcast(&size, sizeof(size), root));
  if (rank() != root) value->resize(size);
  if (size == 0) return Status::Ok();
  return Broadcast(value->data(), size, root);
}

namespace {

class SingleRankCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }

  Status AllReduceSum(float* /*data*/, size_t /*count*/) override { return Status::Ok(); }

  Status AllGather(const float* in, size_t count, float* out) override {
    if (count > 0 && in != out) std::memmove(out, in, count * sizeof(float));
    return Status::Ok();
  }

  Status Broadcast(void* /*data*/, size_t /*bytes*/, int root) override {
    if (root != 0) return InvalidArgument("broadcast from rank {} in a group of 1", root);
    return Status::Ok();
  }

  Status Barrier() override { return Status::Ok(); }
};

}  // namespace

std::unique_ptr<Communicator> MakeSingleRankCommunicator() {
  return std::make_unique<SingleRankCommunicator>();
}

}  // namespace breakeven::engine
