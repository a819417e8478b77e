// Bad clients and bad command lines: each is refused with a reason that names the problem, and
// the scheduler goes on serving everyone else without losing state.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <random>

#include "common/framing.h"
#include "common/version.h"
#include "proto/breakeven.pb.h"
#include "tests/support/cluster.h"

namespace breakeven::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// A misbehaving client: raw bytes in, frames out.
class RawClient {
 public:
  explicit RawClient(int port) : fd_(ConnectLoopback(port)) {}
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return fd_ >= 0; }

  void SendBytes(const std::string& bytes) {
    ASSERT_EQ(::write(fd_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  void Send(const v1::Envelope& e) { SendBytes(EncodeFrame(e)); }

  // Reads until the scheduler closes the connection or `timeout` passes. Returns the frames
  // received; *closed says whether the connection was closed.
  std::vector<v1::Envelope> ReadUntilClosed(milliseconds timeout, bool* closed) {
    std::vector<v1::Envelope> frames;
    FrameDecoder decoder;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    *closed = false;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      int left = static_cast<int>(
          std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now())
              .count());
      if (::poll(&p, 1, std::max(left, 1)) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(fd_, buf, sizeof(buf));
      if (n <= 0) {
        *closed = true;
        break;
      }
      decoder.Append(std::string_view(buf, static_cast<size_t>(n)));
      for (;;) {
        v1::Envelope e;
        Result<bool> got = decoder.Next(&e);
        if (!got.ok() || !*got) break;
        frames.push_back(std::move(e));
      }
    }
    return frames;
  }

 private:
  int fd_;
};

v1::Envelope Hello(const std::string& token, v1::Role role = v1::ROLE_NODE) {
  v1::Envelope e;
  e.set_request_id(1);
  e.mutable_hello()->set_role(role);
  e.mutable_hello()->set_token(token);
  e.mutable_hello()->set_protocol_version(kProtocolVersion);
  e.mutable_hello()->set_version("test");
  e.mutable_hello()->set_boot_id("raw-client-boot-id");
  return e;
}

// Expects the scheduler to answer with an Error carrying `code` and then close.
void ExpectRefused(RawClient& client, v1::ErrorCode code, const std::string& what) {
  bool closed = false;
  std::vector<v1::Envelope> frames = client.ReadUntilClosed(seconds(5), &closed);
  EXPECT_TRUE(closed) << what << ": connection left open";
  ASSERT_FALSE(frames.empty()) << what << ": no Error frame before closing";
  const v1::Envelope& last = frames.back();
  ASSERT_TRUE(last.has_error()) << what << ": " << last.DebugString();
  EXPECT_EQ(last.error().code(), code) << what << ": " << last.error().message();
}

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::string> flags = LocalCluster::FastLiveness();
    flags.insert(flags.end(), {"--hello-timeout-ms", "500", "--max-frame-bytes", "65536"});
    c_.StartScheduler(flags);
    c_.StartNode("steady-1");
    c_.StartNode("steady-2");
    ASSERT_TRUE(c_.WaitForStates({{"steady-1", "UP"}, {"steady-2", "UP"}}, seconds(10)));
    before_ = c_.Nodes();
  }

  // After each bad client: the scheduler still runs, both nodes stayed UP the whole time (no
  // restart, same ids), and the log names the refusal.
  void ExpectStillServing(const std::string& logged_reason) {
    ASSERT_TRUE(c_.scheduler().running()) << c_.SchedulerLog();
    json now = c_.Nodes();
    ASSERT_GE(now["nodes"].size(), before_["nodes"].size());  // raw clients may have registered
    for (const auto& old : before_["nodes"]) {
      json n = LocalCluster::FindNode(now, old["name"]);
      EXPECT_EQ(n["state"], "UP") << n.dump();
      EXPECT_EQ(n["id"], old["id"]);
      EXPECT_EQ(n["boot_id"], old["boot_id"]);
      EXPECT_TRUE(n["connected"].get<bool>());
    }
    EXPECT_NE(c_.SchedulerLog().find("reason=" + logged_reason), std::string::npos)
        << "scheduler log does not name reason=" << logged_reason << ":\n"
        << c_.SchedulerLog();
  }

  LocalCluster c_;
  json before_;
};

TEST_F(BadInput, GarbageBytesAreRefused) {
  RawClient client(c_.port());
  ASSERT_TRUE(client.connected());
  // A valid length prefix (40) followed by bytes that cannot be a protobuf message: field 0 and
  // truncated varints.
  std::string garbage(1, '\x28');
  std::mt19937 rng(7);
  for (int i = 0; i < 40; ++i) garbage += static_cast<char>(0x80 | (rng() & 0x7f));
  client.SendBytes(garbage);
  ExpectRefused(client, v1::ERROR_CODE_PROTOCOL, "garbage");
  ExpectStillServing("malformed_frame");
}

TEST_F(BadInput, MalformedLengthPrefixIsRefused) {
  RawClient client(c_.port());
  client.SendBytes(std::string(6, '\xff'));  // a varint that never ends
  ExpectRefused(client, v1::ERROR_CODE_PROTOCOL, "malformed length");
  ExpectStillServing("malformed_frame");
}

TEST_F(BadInput, OversizedFrameIsRefusedBeforeItsBodyArrives) {
  RawClient client(c_.port());
  // Announce 100 MB, send only the prefix: the refusal must not wait for (or buffer) the body.
  std::string prefix;
  uint32_t size = 100u << 20;
  while (size >= 0x80) {
    prefix += static_cast<char>((size & 0x7f) | 0x80);
    size >>= 7;
  }
  prefix += static_cast<char>(size);
  client.SendBytes(prefix);
  ExpectRefused(client, v1::ERROR_CODE_RESOURCE_EXHAUSTED, "oversized");
  ExpectStillServing("oversized_frame");
}

TEST_F(BadInput, FrameBeforeHelloIsRefused) {
  RawClient client(c_.port());
  v1::Envelope beat;
  beat.mutable_heartbeat()->set_node_id(1);
  client.Send(beat);
  ExpectRefused(client, v1::ERROR_CODE_PROTOCOL, "heartbeat before hello");
  ExpectStillServing("before_hello");
}

TEST_F(BadInput, WrongTokenIsRefused) {
  RawClient client(c_.port());
  client.Send(Hello("not-the-token-but-long-enough"));
  ExpectRefused(client, v1::ERROR_CODE_UNAUTHENTICATED, "wrong token");
  ExpectStillServing("bad_token");
}

TEST_F(BadInput, SilentClientIsDroppedAfterTheHelloTimeout) {
  RawClient client(c_.port());
  auto start = std::chrono::steady_clock::now();
  ExpectRefused(client, v1::ERROR_CODE_PROTOCOL, "silent client");
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, milliseconds(400));
  ExpectStillServing("hello_timeout");
}

TEST_F(BadInput, UnknownNodeIdIsRefused) {
  RawClient client(c_.port());
  client.Send(Hello(c_.cluster_token()));
  v1::Envelope reg;
  reg.set_request_id(2);
  reg.mutable_register_node()->set_name("raw-node");
  reg.mutable_register_node()->set_hostname("raw");
  client.Send(reg);
  v1::Envelope beat;
  beat.mutable_heartbeat()->set_node_id(987654);
  client.Send(beat);
  ExpectRefused(client, v1::ERROR_CODE_NOT_FOUND, "unknown node id");
  // Another node's id is not this connection's either.
  RawClient thief(c_.port());
  thief.Send(Hello(c_.cluster_token()));
  reg.mutable_register_node()->set_name("raw-node-2");
  thief.Send(reg);
  beat.mutable_heartbeat()->set_node_id(before_["nodes"][0]["id"].get<uint64_t>());
  thief.Send(beat);
  ExpectRefused(thief, v1::ERROR_CODE_PERMISSION_DENIED, "another node's id");
  ExpectStillServing("unknown_node");
}

TEST_F(BadInput, AdminRequestOnANodeConnectionIsRefused) {
  RawClient client(c_.port());
  client.Send(Hello(c_.cluster_token(), v1::ROLE_NODE));
  v1::Envelope drain;
  drain.mutable_drain_node()->set_name("steady-1");
  drain.mutable_drain_node()->set_reason("sneaky");
  client.Send(drain);
  ExpectRefused(client, v1::ERROR_CODE_PROTOCOL, "admin request from a node");
  ExpectStillServing("protocol");
}

TEST_F(BadInput, ManyBadClientsAtOnceDoNotDisturbNodes) {
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 50; ++i) {
    clients.push_back(std::make_unique<RawClient>(c_.port()));
    if (i % 2 == 0)
      clients.back()->Send(Hello("wrong-token-wrong-token"));
    else
      clients.back()->SendBytes("\x05\xff\xff\xff\xff\xff");
  }
  for (auto& client : clients) {
    bool closed = false;
    client->ReadUntilClosed(seconds(5), &closed);
    EXPECT_TRUE(closed);
  }
  ExpectStillServing("bad_token");
}

// Command lines: each error names the flag or file.
TEST(BadCommandLine, SchedulerNamesTheBadFlag) {
  std::string dir = MakeTempDir("flags");
  std::string token = dir + "/token";
  WriteFile(token, "0123456789abcdef0123\n");
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  } cases[] = {
      {{"--listen", "nonsense"}, "--listen"},
      {{"--listen", "127.0.0.1:99999"}, "--listen"},
      {{"--http", "[::1"}, "--http"},
      {{"--suspect-after-ms", "6000"}, "--down-after-ms"},
      {{"--heartbeat-interval-ms", "0"}, "--heartbeat-interval-ms"},
      {{"--max-frame-bytes", "10"}, "--max-frame-bytes"},
      {{"--log-level", "loud"}, "--log-level"},
  };
  for (const Case& tc : cases) {
    std::vector<std::string> argv = {
        BREAKEVEN_SCHEDULER_BIN, "--token-file", token,        "--db", dir + "/x.db", "--listen",
        "127.0.0.1:0",           "--http",       "127.0.0.1:0"};
    argv.insert(argv.end(), tc.args.begin(), tc.args.end());
    CommandResult r = RunCommand(argv, seconds(10));
    EXPECT_NE(r.exit_code, 0) << tc.args[0];
    EXPECT_NE(r.err.find(tc.expect), std::string::npos) << tc.args[0] << " -> " << r.err;
  }

  // Token files: missing, empty, too short, each named.
  WriteFile(dir + "/empty", "\n");
  WriteFile(dir + "/short", "abc\n");
  for (const std::string& file : {dir + "/missing", dir + "/empty", dir + "/short"}) {
    CommandResult r =
        RunCommand({BREAKEVEN_SCHEDULER_BIN, "--token-file", file, "--db", dir + "/x.db",
                    "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"},
                   seconds(10));
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find(file), std::string::npos) << r.err;
  }

  // A database file that is not a database.
  WriteFile(dir + "/junk.db", std::string(4096, 'x'));
  CommandResult junk =
      RunCommand({BREAKEVEN_SCHEDULER_BIN, "--token-file", token, "--db", dir + "/junk.db",
                  "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"},
                 seconds(10));
  EXPECT_NE(junk.exit_code, 0);
  EXPECT_NE(junk.err.find("junk.db"), std::string::npos) << junk.err;
  RemoveTree(dir);
}

TEST(BadCommandLine, NodeAndCliNameTheBadFlag) {
  std::string dir = MakeTempDir("flags");
  std::string token = dir + "/token";
  WriteFile(token, "0123456789abcdef0123\n");

  CommandResult node = RunCommand(
      {BREAKEVEN_NODE_BIN, "--scheduler", "no-port-here", "--token-file", token}, seconds(10));
  EXPECT_NE(node.exit_code, 0);
  EXPECT_NE(node.err.find("--scheduler"), std::string::npos) << node.err;

  CommandResult no_reason =
      RunCommand({BREAKEVEN_CLI_BIN, "--token-file", token, "drain", "n1"}, seconds(10));
  EXPECT_NE(no_reason.exit_code, 0);
  EXPECT_NE(no_reason.err.find("--reason"), std::string::npos) << no_reason.err;

  CommandResult bad_output =
      RunCommand({BREAKEVEN_CLI_BIN, "--token-file", token, "nodes", "-o", "xml"}, seconds(10));
  EXPECT_NE(bad_output.exit_code, 0);
  EXPECT_NE(bad_output.err.find("xml"), std::string::npos) << bad_output.err;
  RemoveTree(dir);
}

TEST(BadCommandLine, CliSaysWhichSchedulerAddressFailed) {
  std::string dir = MakeTempDir("flags");
  std::string token = dir + "/token";
  WriteFile(token, "0123456789abcdef0123\n");
  std::string address = "127.0.0.1:" + std::to_string(FreePort());
  CommandResult r = RunCommand(
      {BREAKEVEN_CLI_BIN, "--scheduler", address, "--token-file", token, "nodes"}, seconds(10));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("cannot reach the scheduler at " + address), std::string::npos) << r.err;

  // The same through the environment variables.
  setenv("BREAKEVEN_SCHEDULER", address.c_str(), 1);
  setenv("BREAKEVEN_TOKEN_FILE", token.c_str(), 1);
  CommandResult env = RunCommand({BREAKEVEN_CLI_BIN, "status"}, seconds(10));
  unsetenv("BREAKEVEN_SCHEDULER");
  unsetenv("BREAKEVEN_TOKEN_FILE");
  EXPECT_NE(env.exit_code, 0);
  EXPECT_NE(env.err.find(address), std::string::npos) << env.err;
  RemoveTree(dir);
}

}  // namespace
}  // namespace breakeven::testing
