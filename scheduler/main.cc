// breakeven-scheduler: the cluster's one scheduler.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "common/asio.h"
#include "common/auth.h"
#include "common/log.h"
#include "common/system.h"
#include "common/version.h"
#include "db/migrate.h"
#include "db/node_store.h"
#include "db/price_store.h"
#include "db/run_store.h"
#include "scheduler/registry.h"
#include "scheduler/rendezvous.h"
#include "scheduler/run_manager.h"
#include "scheduler/server.h"

using namespace breakeven;

namespace {

int Fail(const Status& s) {
  fmt::print(stderr, "breakeven-scheduler: {}\n", s.message());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  scheduler::SchedulerConfig cfg;
  std::string listen = cfg.listen.ToString(), http = cfg.http.ToString();
  std::string token_file, admin_token_file, log_level = "info";
  int64_t heartbeat_ms = cfg.liveness.heartbeat_interval.count();
  int64_t suspect_ms = cfg.liveness.suspect_after.count();
  int64_t down_ms = cfg.liveness.down_after.count();
  int64_t hello_ms = cfg.hello_timeout.count();
  scheduler::RunConfig run_config;
  int64_t start_timeout_ms = run_config.start_timeout.count();

  CLI::App app{
      "breakeven-scheduler: node registry, benchmark runs, results and admin API for a breakeven "
      "cluster"};
  app.set_version_flag("--version", kVersion);
  app.add_option("--listen", listen, "HOST:PORT for nodes and admin clients (protobuf frames)")
      ->capture_default_str();
  app.add_option("--http", http, "HOST:PORT for /healthz, /metrics and /sd/workers (Prometheus)")
      ->capture_default_str();
  app.add_option("--db", cfg.db_path, "SQLite database file (created if missing)")
      ->capture_default_str();
  app.add_option("--token-file", token_file, "file holding the cluster token")->required();
  app.add_option("--admin-token-file", admin_token_file,
                 "file holding the admin token (default: the cluster token)");
  app.add_option("--heartbeat-interval-ms", heartbeat_ms, "node heartbeat interval")
      ->capture_default_str();
  app.add_option("--suspect-after-ms", suspect_ms, "silence before a node is SUSPECT")
      ->capture_default_str();
  app.add_option("--down-after-ms", down_ms, "silence before a node is DOWN")
      ->capture_default_str();
  app.add_option("--hello-timeout-ms", hello_ms, "time a new connection has to send Hello")
      ->capture_default_str();
  app.add_option("--run-start-timeout-ms", start_timeout_ms,
                 "time a run's nodes have to start its workers")
      ->capture_default_str();
  app.add_option("--max-frame-bytes", cfg.max_frame_bytes, "largest frame accepted")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto listen_addr = ParseHostPort(listen, "--listen", /*allow_port_zero=*/true);
  if (!listen_addr.ok()) return Fail(listen_addr.status());
  auto http_addr = ParseHostPort(http, "--http", /*allow_port_zero=*/true);
  if (!http_addr.ok()) return Fail(http_addr.status());
  cfg.listen = *listen_addr;
  cfg.http = *http_addr;
  cfg.liveness.heartbeat_interval = Millis(heartbeat_ms);
  cfg.liveness.suspect_after = Millis(suspect_ms);
  cfg.liveness.down_after = Millis(down_ms);
  cfg.hello_timeout = Millis(hello_ms);
  run_config.start_timeout = Millis(start_timeout_ms);
  // After a restart, live attempts wait for their nodes to come back and list them.
  // Agents reconnect with backoff (up to a few seconds): give them at least 15 s.
  run_config.orphan_timeout = std::max<Millis>(cfg.liveness.down_after * 3, Millis(15000));
  if (Status s = cfg.Validate(); !s.ok()) return Fail(s);
  if (Status s = InitLogging("scheduler", log_level); !s.ok()) return Fail(s);

  auto cluster_token = LoadTokenFile(token_file, "--token-file");
  if (!cluster_token.ok()) return Fail(cluster_token.status());
  std::string admin_token;
  if (!admin_token_file.empty()) {
    auto t = LoadTokenFile(admin_token_file, "--admin-token-file");
    if (!t.ok()) return Fail(t.status());
    admin_token = *t;
  }

  long fds = RaiseOpenFileLimit();
  auto database = db::Database::Open(cfg.db_path);
  if (!database.ok()) return Fail(database.status().WithContext("--db"));
  auto migrated = db::Migrate(**database);
  if (!migrated.ok()) return Fail(migrated.status().WithContext("--db"));
  if (migrated->from_version != migrated->to_version) {
    spdlog::info("database {}: schema {} -> {}", cfg.db_path, migrated->from_version,
                 migrated->to_version);
  }
  auto store = db::NodeStore::Create(**database);
  if (!store.ok()) return Fail(store.status());
  auto run_store = db::RunStore::Create(**database);
  if (!run_store.ok()) return Fail(run_store.status());
  auto seeded = db::SeedPrices(**database);
  if (!seeded.ok()) return Fail(seeded.status().WithContext("seeding the price catalog"));
  if (*seeded > 0) spdlog::info("price catalog seeded with {} rows", *seeded);

  SystemClock clock;
  scheduler::NodeRegistry registry(**store, clock, cfg.liveness);
  if (Status s = registry.Load(); !s.ok()) return Fail(s.WithContext("loading nodes"));

  asio::io_context io(1);
  scheduler::RendezvousStore rendezvous(io.get_executor());
  scheduler::Server* server_ptr = nullptr;
  scheduler::RunManager runs(**database, **run_store, registry, rendezvous, clock, run_config,
                             [&](uint64_t node_id, const v1::Envelope& frame) {
                               return server_ptr && server_ptr->SendToNode(node_id, frame);
                             });
  if (Status s = runs.Load(); !s.ok()) return Fail(s.WithContext("loading runs"));
  scheduler::Server server(io, cfg, TokenChecker(*cluster_token, admin_token), registry,
                           {&runs, &rendezvous, run_store->get(), database->get()});
  server_ptr = &server;
  if (Status s = server.Start(); !s.ok()) return Fail(s);
  spdlog::info(
      "breakeven-scheduler {} up: db={} nodes={} active_runs={} heartbeat={}ms suspect={}ms "
      "down={}ms admin_token={} open_files={}",
      kVersion, cfg.db_path, registry.size(), runs.active(), heartbeat_ms, suspect_ms, down_ms,
      admin_token.empty() ? "cluster token" : "separate", fds);

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", signo);
    server.Stop();
    io.stop();
  });
  io.run();
  spdlog::info("stopped");
  return 0;
}
