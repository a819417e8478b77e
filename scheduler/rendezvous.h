// The scheduler's rendezvous store: the key/value space through which the ranks of a run
// attempt find each other (Gloo pair addresses, shared-memory segment names, NCCL unique ids).
//
// Keys live under a group, "run-<id>/<attempt>/", that exists only while that attempt is live:
// a worker may write or wait for keys of a live group only, each key is written once, and the
// whole group is forgotten when the attempt ends, so a retry never reads a previous attempt's
// values. A Get waits (on a timer, never blocking the event loop) until its key appears.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/asio.h"
#include "common/clock.h"
#include "common/status.h"

namespace breakeven::scheduler {

class RendezvousStore {
 public:
  // Called once with the value, or with an error (timeout, group ended).
  using Reply = std::function<void(Result<std::string>)>;

  explicit RendezvousStore(asio::any_io_executor executor) : executor_(std::move(executor)) {}

  static std::string GroupOf(uint64_t run_id, uint32_t attempt);

  void OpenGroup(const std::string& group);
  // Forgets the group's keys; waiting Gets fail with a message naming the group.
  void CloseGroup(const std::string& group);
  bool IsOpen(const std::string& group) const { return open_.count(group) > 0; }

  // kPermissionDenied outside a live group; kAlreadyExists for a key written before.
  Status Set(const std::string& key, std::string value);
  // Replies at once when the key exists, else when it is set or `timeout` passes.
  void Get(const std::string& key, Millis timeout, Reply reply);

  size_t keys() const { return values_.size(); }
  size_t waiting() const;

 private:
  struct Waiter {
    uint64_t id;
    Reply reply;
    std::shared_ptr<asio::steady_timer> timer;
  };
  // The live group `key` belongs to, or "" when none.
  std::string GroupFor(const std::string& key) const;

  asio::any_io_executor executor_;
  std::set<std::string> open_;
  std::map<std::string, std::string> values_;
  std::map<std::string, std::vector<Waiter>> waiters_;
  uint64_t next_waiter_ = 1;
};

}  // namespace breakeven::scheduler
