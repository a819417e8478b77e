// The run and query commands against an in-process fake scheduler: what they ask for, what they
// print where, and their exit status. Rendering itself is tested in the *_views tests.
#include "cli/commands.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <iostream>
#include <mutex>
#include <thread>

#include "common/connection.h"
#include "common/version.h"
#include "tests/support/process.h"

namespace breakeven::cli {
namespace {

using std::chrono::milliseconds;

// Answers Hello, then every request with `handler` (on its own thread); records the requests.
class FakeScheduler {
 public:
  using Handler = std::function<v1::Envelope(const v1::Envelope&)>;

  explicit FakeScheduler(Handler handler) : handler_(std::move(handler)) {
    acceptor_.open(tcp::v4());
    acceptor_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    asio::co_spawn(io_, Accept(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~FakeScheduler() {
    asio::post(io_, [this] {
      acceptor_.close();
      for (auto& c : conns_) c->Close();
    });
    io_.stop();
    thread_.join();
  }

  std::string address() const {
    return "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  std::vector<v1::Envelope> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

  static v1::Envelope Error(v1::ErrorCode code, const std::string& message) {
    v1::Envelope e;
    e.mutable_error()->set_code(code);
    e.mutable_error()->set_message(message);
    return e;
  }

 private:
  awaitable<void> Accept() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket s = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;
      auto conn = std::make_shared<FramedConnection>(std::move(s), ConnectionLimits{});
      conn->Start();
      conns_.push_back(conn);
      asio::co_spawn(io_, Serve(conn), asio::detached);
    }
  }

  awaitable<void> Serve(std::shared_ptr<FramedConnection> conn) {
    for (;;) {
      Result<v1::Envelope> f = co_await conn->Read(milliseconds(10000));
      if (!f.ok()) co_return;
      v1::Envelope reply;
      if (f->has_hello()) {
        reply.mutable_hello_ack()->set_scheduler_version(kVersion);
        reply.mutable_hello_ack()->set_admin(true);
      } else {
        {
          std::lock_guard lock(mu_);
          requests_.push_back(*f);
        }
        reply = handler_(*f);
      }
      reply.set_request_id(f->request_id());
      conn->Send(reply);
    }
  }

  Handler handler_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::vector<std::shared_ptr<FramedConnection>> conns_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<v1::Envelope> requests_;
};

struct Captured {
  int exit_code;
  std::string out;
  std::string err;
};

// Runs a command with stdout and stderr captured.
Captured Capture(const std::function<int()>& command) {
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  int rc = command();
  std::cout.flush();
  std::fflush(stdout);
  std::fflush(stderr);
  Captured c{rc, ::testing::internal::GetCapturedStdout(),
             ::testing::internal::GetCapturedStderr()};
  return c;
}

class CommandsTest : public ::testing::Test {
 protected:
  Context ContextFor(const FakeScheduler& s, Output output = Output::kTable) {
    Context ctx;
    ctx.scheduler = s.address();
    ctx.token_file = dir_.path() + "/admin.token";
    ctx.timeout = Millis(5000);
    ctx.output = output;
    return ctx;
  }
  void SetUp() override {
    testing::WriteFile(dir_.path() + "/admin.token", "0123456789abcdef0123456789abcdef\n");
  }
  testing::ScopedTempDir dir_{"cli-commands"};
};

v1::RunInfo MakeRun(uint64_t id, v1::RunState state, uint32_t points = 0) {
  v1::RunInfo r;
  r.set_id(id);
  r.set_matrix_id(3);
  r.set_matrix("demo");
  r.set_model("tiny-15m");
  r.set_weights("dummy");
  r.set_workload("128/1024");
  r.set_tp(1);
  r.set_device_type("cpu");
  r.set_state(state);
  r.set_attempt(1);
  r.set_max_attempts(2);
  r.set_points_done(points);
  r.set_load("sweep 2 points x 1s");
  return r;
}

TEST_F(CommandsTest, SubmitSendsTheFileAndPrintsWhatWasQueued) {
  FakeScheduler s([](const v1::Envelope& req) {
    v1::Envelope reply;
    auto* r = reply.mutable_submit_matrix_reply();
    r->set_matrix_id(3);
    *r->add_runs() = MakeRun(21, v1::RUN_STATE_PLACED);
    r->mutable_runs(0)->add_nodes("node-a");
    return reply;
  });
  std::string file = dir_.path() + "/demo.yaml";
  testing::WriteFile(file, "name: demo\nmodels: [tiny-15m]\n");
  Captured c = Capture([&] { return CmdSubmit(ContextFor(s), file, /*dry_run=*/false); });
  EXPECT_EQ(c.exit_code, 0) << c.err;
  auto requests = s.requests();
  ASSERT_EQ(requests.size(), 1u);
  const v1::SubmitMatrixRequest& sent = requests[0].submit_matrix();
  EXPECT_EQ(sent.yaml(), "name: demo\nmodels: [tiny-15m]\n");
  EXPECT_EQ(sent.source(), file);
  EXPECT_FALSE(sent.dry_run());
  EXPECT_NE(c.out.find("node-a"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("queued matrix 3 with 1 run\n"), std::string::npos) << c.out;
}

TEST_F(CommandsTest, SubmitErrorsGoToStderrWithExitStatusOne) {
  FakeScheduler s([](const v1::Envelope&) {
    return FakeScheduler::Error(v1::ERROR_CODE_INVALID_ARGUMENT,
                                "demo.yaml:7: load.pattern: 'swep' is not one of sync, sweep");
  });
  std::string file = dir_.path() + "/demo.yaml";
  testing::WriteFile(file, "name: demo\n");
  Captured c = Capture([&] { return CmdSubmit(ContextFor(s), file, true); });
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_EQ(c.out, "");
  EXPECT_NE(c.err.find("demo.yaml:7: load.pattern: 'swep'"), std::string::npos) << c.err;
  auto requests = s.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_TRUE(requests[0].submit_matrix().dry_run());
}

TEST_F(CommandsTest, SubmitNamesAMissingFileWithoutAsking) {
  FakeScheduler s([](const v1::Envelope&) { return v1::Envelope(); });
  Captured c = Capture([&] { return CmdSubmit(ContextFor(s), dir_.path() + "/nope.yaml", false); });
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_NE(c.err.find("nope.yaml"), std::string::npos) << c.err;
  EXPECT_TRUE(s.requests().empty());
}

v1::Envelope ResultsReply() {
  v1::Envelope reply;
  v1::Table* t = reply.mutable_query_reply()->mutable_table();
  for (const char* c : {"run", "model", "ttft_p95_ms", "usd_per_mtok", "extra"}) t->add_columns(c);
  auto* row = t->add_rows();
  row->add_cells()->set_integer(12);
  row->add_cells()->set_text("tiny, 15m");
  row->add_cells()->set_number(81.26);
  row->add_cells();  // null
  row->add_cells()->set_text("x");
  t->add_notes("no price for device cpu");
  return reply;
}

TEST_F(CommandsTest, ResultsSendOnlyTheGivenArgumentsAndCsvKeepsNotesOffStdout) {
  FakeScheduler s([](const v1::Envelope&) { return ResultsReply(); });
  QueryOptions q;
  q.kind = "results";
  q.args = {{"matrix", "3"}, {"model", "tiny-15m"}};
  q.default_columns = {"run", "ttft_p95_ms"};
  Captured c = Capture([&] { return CmdQuery(ContextFor(s, Output::kCsv), q); });
  EXPECT_EQ(c.exit_code, 0) << c.err;
  auto requests = s.requests();
  ASSERT_EQ(requests.size(), 1u);
  const v1::QueryRequest& sent = requests[0].query();
  EXPECT_EQ(sent.kind(), "results");
  EXPECT_EQ(sent.args().size(), 2u);
  EXPECT_EQ(sent.args().at("matrix"), "3");
  EXPECT_EQ(c.out, "run,model,ttft_p95_ms,usd_per_mtok,extra\r\n12,\"tiny, 15m\",81.26,,x\r\n")
      << "every column, not the text table's default";
  EXPECT_EQ(c.err, "note: no price for device cpu\n");
}

TEST_F(CommandsTest, ResultsTableShowsTheDefaultColumnsThenNotes) {
  FakeScheduler s([](const v1::Envelope&) { return ResultsReply(); });
  QueryOptions q;
  q.kind = "results";
  q.default_columns = {"run", "ttft_p95_ms"};
  Captured c = Capture([&] { return CmdQuery(ContextFor(s), q); });
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(c.out, "RUN  TTFT_P95_MS\n 12         81.3\n\nnote: no price for device cpu\n");
}

TEST_F(CommandsTest, AnUnknownColumnIsAnError) {
  FakeScheduler s([](const v1::Envelope&) { return ResultsReply(); });
  QueryOptions q;
  q.kind = "results";
  q.columns = {"run", "ttft_p99_ms"};
  Captured c = Capture([&] { return CmdQuery(ContextFor(s, Output::kJson), q); });
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_EQ(c.out, "");
  EXPECT_NE(c.err.find("--columns: no column 'ttft_p99_ms'"), std::string::npos) << c.err;
}

TEST_F(CommandsTest, CancelPrintsTheNewState) {
  FakeScheduler s([](const v1::Envelope& req) {
    v1::Envelope reply;
    *reply.mutable_run_change_reply()->mutable_run() =
        MakeRun(req.cancel_run().run_id(), v1::RUN_STATE_CANCELLED);
    return reply;
  });
  Captured c = Capture([&] { return CmdCancel(ContextFor(s), 12); });
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(c.out, "run 12: CANCELLED\n");
}

TEST_F(CommandsTest, PricesImportSendsTheCsvAndPrintsTheAck) {
  FakeScheduler s([](const v1::Envelope&) {
    v1::Envelope reply;
    reply.mutable_ack()->set_message("imported 3 GPU prices");
    return reply;
  });
  std::string file = dir_.path() + "/gpu.csv";
  testing::WriteFile(file, "provider,gpu,usd_per_gpu_hour\nX,H100,2.5\n");
  Captured c = Capture([&] { return CmdPricesImport(ContextFor(s), file); });
  EXPECT_EQ(c.exit_code, 0) << c.err;
  auto requests = s.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].import_prices().csv(), "provider,gpu,usd_per_gpu_hour\nX,H100,2.5\n");
  EXPECT_EQ(requests[0].import_prices().source(), file);
  EXPECT_EQ(c.out, "imported 3 GPU prices\n");
}

// Replies to ListRuns with the next of `polls` (the last one repeats); GetRun with `finished`.
FakeScheduler::Handler Script(std::vector<std::vector<v1::RunInfo>> polls,
                              std::vector<v1::RunInfo> finished = {}) {
  auto next = std::make_shared<size_t>(0);
  return [polls, finished, next](const v1::Envelope& req) {
    v1::Envelope reply;
    if (req.has_get_run()) {
      for (const auto& r : finished) {
        if (r.id() == req.get_run().run_id()) *reply.mutable_get_run_reply()->mutable_run() = r;
      }
      return reply;
    }
    const auto& runs = polls[std::min(*next, polls.size() - 1)];
    ++*next;
    for (const auto& r : runs) *reply.mutable_list_runs_reply()->add_runs() = r;
    reply.mutable_list_runs_reply()->set_now_unix_ms(1'800'000'000'000);
    return reply;
  };
}

size_t CountLines(const std::string& text) { return std::count(text.begin(), text.end(), '\n'); }

TEST_F(CommandsTest, WatchPrintsOneLinePerChangeAndExitsWhenAllSucceeded) {
  FakeScheduler s(Script({{MakeRun(1, v1::RUN_STATE_RUNNING, 0)},
                          {MakeRun(1, v1::RUN_STATE_RUNNING, 0)},  // no change: no line
                          {MakeRun(1, v1::RUN_STATE_RUNNING, 1)},
                          {MakeRun(1, v1::RUN_STATE_SUCCEEDED, 2)}}));
  WatchOptions o;
  o.matrix_id = 3;
  o.interval = Millis(1);
  Captured c = Capture([&] { return CmdWatch(ContextFor(s), o); });
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(CountLines(c.out), 4u) << c.out;  // three changes and the summary
  EXPECT_NE(c.out.find("RUNNING 0/2 points"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("RUNNING 1/2 points"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("done: 1 succeeded, 0 failed, 0 cancelled\n"), std::string::npos) << c.out;
  auto requests = s.requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[0].list_runs().matrix_id(), 3u);
  EXPECT_FALSE(requests[0].list_runs().active_only());
}

TEST_F(CommandsTest, WatchOfAllActiveRunsAsksHowVanishedRunsEndedAndFailsIfOneFailed) {
  v1::RunInfo failed = MakeRun(2, v1::RUN_STATE_FAILED, 1);
  failed.set_reason("rank 0 exited with status 1");
  FakeScheduler s(Script({{MakeRun(1, v1::RUN_STATE_RUNNING), MakeRun(2, v1::RUN_STATE_RUNNING)},
                          {MakeRun(1, v1::RUN_STATE_RUNNING)},
                          {}},
                         {failed, MakeRun(1, v1::RUN_STATE_SUCCEEDED, 2)}));
  WatchOptions o;
  o.interval = Millis(1);
  Captured c = Capture([&] { return CmdWatch(ContextFor(s), o); });
  EXPECT_EQ(c.exit_code, 1) << c.out << c.err;
  EXPECT_NE(c.out.find("FAILED: rank 0 exited with status 1"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("done: 1 succeeded, 1 failed, 0 cancelled\n"), std::string::npos) << c.out;
  auto requests = s.requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_TRUE(requests[0].list_runs().active_only());
  int get_runs = 0;
  for (const auto& r : requests) get_runs += r.has_get_run() ? 1 : 0;
  EXPECT_EQ(get_runs, 2) << "once per run that left the active list";
}

TEST_F(CommandsTest, WatchOnceStopsAfterOnePoll) {
  FakeScheduler s(Script({{MakeRun(1, v1::RUN_STATE_PENDING)}}));
  WatchOptions o;
  o.once = true;
  Captured c = Capture([&] { return CmdWatch(ContextFor(s), o); });
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(s.requests().size(), 1u);
  EXPECT_EQ(CountLines(c.out), 1u) << c.out;
}

TEST_F(CommandsTest, WatchWithNothingActiveSaysSo) {
  FakeScheduler s(Script({{}}));
  Captured c = Capture([&] { return CmdWatch(ContextFor(s), WatchOptions{}); });
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(c.out, "no active runs\n");
}

}  // namespace
}  // namespace breakeven::cli
