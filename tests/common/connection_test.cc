// FramedConnection and SchedulerClient over real loopback sockets, in one process.
#include "common/connection.h"

#include <gtest/gtest.h>

#include "common/client.h"
#include "tests/support/process.h"

namespace breakeven {
namespace {

using std::chrono::milliseconds;

// A connected pair of FramedConnections on one io_context.
struct Pair {
  asio::io_context io;
  std::shared_ptr<FramedConnection> a, b;

  explicit Pair(ConnectionLimits limits = {}) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::socket client(io), server(io);
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server);
    a = std::make_shared<FramedConnection>(std::move(client), limits);
    b = std::make_shared<FramedConnection>(std::move(server), limits);
    a->Start();
    b->Start();
  }
  ~Pair() {
    a->Close();
    b->Close();
    io.run();
  }

  // Runs `op` on the io_context to completion and returns its result.
  template <typename T>
  T Run(awaitable<T> op) {
    std::optional<T> out;
    asio::co_spawn(
        io, [&]() -> awaitable<void> { out.emplace(co_await std::move(op)); }, asio::detached);
    while (!out) io.run_one();
    return std::move(*out);
  }
};

v1::Envelope Numbered(uint64_t id) {
  v1::Envelope e;
  e.set_request_id(id);
  e.mutable_heartbeat()->set_seq(id);
  return e;
}

TEST(FramedConnection, FramesArriveInOrder) {
  Pair p;
  for (uint64_t i = 1; i <= 500; ++i) ASSERT_TRUE(p.a->Send(Numbered(i)));
  for (uint64_t i = 1; i <= 500; ++i) {
    Result<v1::Envelope> got = p.Run(p.b->Read(milliseconds(2000)));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->request_id(), i);
  }
}

TEST(FramedConnection, ReadTimesOutAndLeavesTheConnectionOpenToExplain) {
  Pair p;
  auto start = std::chrono::steady_clock::now();
  Result<v1::Envelope> got = p.Run(p.b->Read(milliseconds(100)));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(100));
  EXPECT_TRUE(p.b->is_open());

  p.b->SendErrorAndClose(v1::ERROR_CODE_UNAVAILABLE, "you were quiet");
  Result<v1::Envelope> error = p.Run(p.a->Read(milliseconds(2000)));
  ASSERT_TRUE(error.ok()) << error.status().ToString();
  ASSERT_TRUE(error->has_error());
  EXPECT_EQ(error->error().message(), "you were quiet");
  Result<v1::Envelope> eof = p.Run(p.a->Read(milliseconds(2000)));
  ASSERT_FALSE(eof.ok());
  EXPECT_EQ(eof.status().code(), StatusCode::kUnavailable);
}

TEST(FramedConnection, PeerThatDoesNotReadIsCutOffAtTheQueueLimit) {
  ConnectionLimits limits;
  limits.max_queued_bytes = 64 << 10;
  Pair p(limits);
  v1::Envelope big;
  big.mutable_error()->set_message(std::string(16 << 10, 'x'));
  // Nobody runs the io_context, so nothing drains: the fourth 16 KiB frame passes 64 KiB.
  int accepted = 0;
  while (p.a->Send(big)) ++accepted;
  EXPECT_EQ(accepted, 3);
  EXPECT_FALSE(p.a->is_open());
}

TEST(FramedConnection, OversizedIncomingFrameFailsEveryLaterRead) {
  ConnectionLimits small;
  small.max_frame_bytes = 1024;
  Pair p(small);
  v1::Envelope big;
  big.mutable_error()->set_message(std::string(4096, 'x'));
  ASSERT_TRUE(p.a->Send(big));
  ASSERT_TRUE(p.a->Send(Numbered(1)));
  Result<v1::Envelope> first = p.Run(p.b->Read(milliseconds(2000)));
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.status().code(), StatusCode::kResourceExhausted);
  Result<v1::Envelope> second = p.Run(p.b->Read(milliseconds(2000)));
  ASSERT_FALSE(second.ok()) << "a broken stream must not resynchronise";
}

TEST(SchedulerClient, NamesTheAddressThatCannotBeReached) {
  ClientOptions options;
  options.scheduler = {"127.0.0.1", static_cast<uint16_t>(testing::FreePort())};
  options.token = "0123456789abcdef";
  Result<std::unique_ptr<SchedulerClient>> c = SchedulerClient::Connect(options);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(c.status().message().find(options.scheduler.ToString()), std::string::npos)
      << c.status().message();
}

TEST(SchedulerClient, GivesUpOnASchedulerThatNeverAnswers) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  ClientOptions options;
  options.scheduler = {"127.0.0.1", acceptor.local_endpoint().port()};
  options.token = "0123456789abcdef";
  options.timeout = milliseconds(200);
  auto start = std::chrono::steady_clock::now();
  // The kernel completes the TCP handshake; nobody ever answers Hello.
  Result<std::unique_ptr<SchedulerClient>> c = SchedulerClient::Connect(options);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

}  // namespace
}  // namespace breakeven
