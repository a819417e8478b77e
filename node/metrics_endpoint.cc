#include "node/metrics_endpoint.h"

namespace breakeven::node {

Result<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(const HostPort& address,
                                                                metrics::Registry& registry,
                                                                std::string_view flag) {
  std::unique_ptr<MetricsEndpoint> e(new MetricsEndpoint());
  e->http_.Handle("/healthz", [](const std::string&, const std::string&) {
    return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"};
  });
  e->http_.Handle("/metrics", [&registry](const std::string&, const std::string&) {
    return HttpResponse{200, std::string(metrics::kContentType), registry.Serialize()};
  });
  Result<HostPort> bound = e->http_.Listen(address);
  if (!bound.ok()) {
    // The server names its flag "--http"; say which one this is.
    return Status(bound.status().code(), fmt::format("{}: cannot serve /metrics on {}: {}", flag,
                                                     address.ToString(), bound.status().message()));
  }
  e->bound_ = *bound;
  e->thread_ = std::thread([p = e.get()] { p->io_.run(); });
  return e;
}

MetricsEndpoint::~MetricsEndpoint() {
  asio::post(io_, [this] { http_.Stop(); });
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace breakeven::node
