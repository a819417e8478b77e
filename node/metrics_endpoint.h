// An HTTP endpoint for a process's /metrics (and /healthz), on a thread of its own.
//
// The node agent and the rank-0 worker both need one, and neither may let a scrape delay its
// real work (heartbeats, engine steps): the server gets its own io_context and thread, and the
// scrape (OnScrape callbacks included) runs there.
#pragma once

#include <memory>
#include <string_view>
#include <thread>

#include "common/asio.h"
#include "common/endpoint.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "common/status.h"

namespace breakeven::node {

class MetricsEndpoint {
 public:
  // Listens on `address` (port 0: the kernel picks) and serves `registry`, which must outlive
  // the endpoint. `flag` names the option in errors ("--http", "--metrics-listen").
  static Result<std::unique_ptr<MetricsEndpoint>> Start(const HostPort& address,
                                                        metrics::Registry& registry,
                                                        std::string_view flag);
  ~MetricsEndpoint();  // stops the server and joins its thread

  // The address bound (the real port when 0 was asked for).
  const HostPort& bound() const { return bound_; }

 private:
  MetricsEndpoint() : http_(io_) {}

  asio::io_context io_{1};
  HttpServer http_;
  HostPort bound_;
  std::thread thread_;
};

}  // namespace breakeven::node
