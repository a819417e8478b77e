// The rendezvous store of a cluster run: the scheduler keeps the keys (StoreSet / StoreGet on a
// worker connection), so ranks on different hosts find each other without a shared file system.
// The scheduler accepts only keys under a live run attempt's group and forgets them when the
// attempt ends.
#pragma once

#include <memory>

#include "common/client.h"
#include "engine/store.h"

namespace breakeven::node {

class SchedulerStore final : public engine::Store {
 public:
  // `timeout` bounds the connection and each call; a Get may wait up to its own timeout on top.
  static Result<std::unique_ptr<SchedulerStore>> Connect(const HostPort& scheduler,
                                                         const std::string& token, Millis timeout);

  Status Set(const std::string& key, const std::string& value) override;
  Result<std::string> Get(const std::string& key, Millis timeout) override;

 private:
  SchedulerStore(ClientOptions options, std::unique_ptr<SchedulerClient> client)
      : options_(std::move(options)), client_(std::move(client)) {}

  ClientOptions options_;
  std::unique_ptr<SchedulerClient> client_;
};

}  // namespace breakeven::node
