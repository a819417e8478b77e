// Communicator over Gloo: ranks as threads (each with its own context) and as processes,
// rendezvoused through a FileStore; healthy collectives give exact results, and a missing or
// dead rank turns into an error on the others within about the timeout, never a hang.
#include "engine/communicator.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>
#include <vector>

#include "engine/store.h"
#include "tests/support/process.h"

namespace breakeven::engine {
namespace {

using std::chrono::steady_clock;

constexpr Millis kHealthyTimeout{5000};  // generous: only reached when something is broken
constexpr Millis kShortTimeout{1000};    // for the tests that expect a timeout

Millis Since(SteadyTime start) {
  return std::chrono::duration_cast<Millis>(steady_clock::now() - start);
}

// Runs fn(rank) on `n` threads at once and waits for all of them.
void OnThreads(int n, const std::function<void(int)>& fn) {
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) threads.emplace_back(fn, r);
  for (auto& t : threads) t.join();
}

GroupOptions Options(const std::string& prefix, int rank, int world, Millis timeout) {
  GroupOptions o;
  o.prefix = prefix;
  o.rank = rank;
  o.world_size = world;
  o.timeout = timeout;
  return o;
}

class CommunicatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = breakeven::testing::MakeTempDir("comm");
    Result<std::unique_ptr<FileStore>> store = FileStore::Open(dir_ + "/store");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }
  void TearDown() override { breakeven::testing::RemoveTree(dir_); }

  // Creates the `world` ranks of one group concurrently (rendezvous needs them all at once).
  std::vector<std::unique_ptr<Communicator>> Connect(const std::string& prefix, int world,
                                                     Millis timeout = kHealthyTimeout) {
    std::vector<std::unique_ptr<Communicator>> comms(world);
    OnThreads(world, [&](int r) {
      Result<std::unique_ptr<Communicator>> c =
          CreateGlooCommunicator(*store_, Options(prefix, r, world, timeout));
      ASSERT_TRUE(c.ok()) << c.status().ToString();
      comms[r] = std::move(c).value();
    });
    for (int r = 0; r < world; ++r) {
      if (comms[r] == nullptr) ADD_FAILURE() << "rank " << r << " did not connect";
    }
    return comms;
  }

  std::string dir_;
  std::unique_ptr<FileStore> store_;
};

bool AllConnected(const std::vector<std::unique_ptr<Communicator>>& comms) {
  for (const auto& c : comms) {
    if (c == nullptr) return false;
  }
  return true;
}

// Rank r contributes r * 1000 + i at index i (all exact in float).
std::vector<float> RankData(int rank, size_t count) {
  std::vector<float> v(count);
  for (size_t i = 0; i < count; ++i) v[i] = static_cast<float>(rank * 1000 + (i % 997));
  return v;
}

float ExpectedSum(int world, size_t i) {
  return static_cast<float>(1000 * world * (world - 1) / 2 + world * static_cast<int>(i % 997));
}

TEST(SingleRankCommunicator, CollectivesLeaveDataAsItIs) {
  std::unique_ptr<Communicator> c = MakeSingleRankCommunicator();
  EXPECT_EQ(c->rank(), 0);
  EXPECT_EQ(c->world_size(), 1);
  std::vector<float> data = {1.5f, -2.f, 3.f};
  ASSERT_TRUE(c->AllReduceSum(data.data(), data.size()).ok());
  EXPECT_EQ(data, (std::vector<float>{1.5f, -2.f, 3.f}));
  std::vector<float> out(3, 0.f);
  ASSERT_TRUE(c->AllGather(data.data(), data.size(), out.data()).ok());
  EXPECT_EQ(out, data);
  ASSERT_TRUE(c->Broadcast(data.data(), sizeof(float) * data.size(), 0).ok());
  EXPECT_EQ(data, (std::vector<float>{1.5f, -2.f, 3.f}));
  std::string s = "unchanged";
  ASSERT_TRUE(c->BroadcastString(&s, 0).ok());
  EXPECT_EQ(s, "unchanged");
  EXPECT_TRUE(c->Barrier().ok());
  EXPECT_EQ(c->Broadcast(data.data(), 4, 1).code(), StatusCode::kInvalidArgument);
}

TEST_F(CommunicatorTest, WorldOfOneNeedsNoPeers) {
  Result<std::unique_ptr<Communicator>> c =
      CreateGlooCommunicator(*store_, Options("solo/0/tp", 0, 1, kShortTimeout));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::vector<float> data = {4.f, 5.f};
  ASSERT_TRUE((*c)->AllReduceSum(data.data(), 2).ok());
  EXPECT_EQ(data, (std::vector<float>{4.f, 5.f}));
}

TEST_F(CommunicatorTest, BadOptionsAreRefused) {
  EXPECT_EQ(CreateGlooCommunicator(*store_, Options("p", 2, 2, kShortTimeout)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateGlooCommunicator(*store_, Options("p", -1, 2, kShortTimeout)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateGlooCommunicator(*store_, Options("", 0, 2, kShortTimeout)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateGlooCommunicator(*store_, Options("p", 0, 2, Millis(0))).status().code(),
            StatusCode::kInvalidArgument);
}

class AllReduceTest : public CommunicatorTest, public ::testing::WithParamInterface<int> {};

TEST_P(AllReduceTest, SumsDistinctDataFromEveryRank) {
  const int world = GetParam();
  auto comms = Connect("run-1/0/tp", world);
  ASSERT_TRUE(AllConnected(comms));
  // Small, odd-sized, and large enough for several 1 MiB segments per rank.
  for (size_t count : {size_t{1}, size_t{1001}, size_t{1} << 20}) {
    std::vector<std::vector<float>> data(world);
    OnThreads(world, [&](int r) {
      data[r] = RankData(r, count);
      Status s = comms[r]->AllReduceSum(data[r].data(), count);
      EXPECT_TRUE(s.ok()) << s.ToString();
    });
    for (int r = 0; r < world; ++r) {
      for (size_t i = 0; i < count; ++i) {
        ASSERT_EQ(data[r][i], ExpectedSum(world, i))
            << "rank " << r << " index " << i << " count " << count;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Worlds, AllReduceTest, ::testing::Values(2, 4));

TEST_F(CommunicatorTest, AllGatherPutsEachRanksDataInRankOrder) {
  constexpr int kWorld = 4;
  constexpr size_t kCount = 3;
  auto comms = Connect("run-1/0/tp", kWorld);
  ASSERT_TRUE(AllConnected(comms));
  std::vector<std::vector<float>> out(kWorld, std::vector<float>(kWorld * kCount, -1.f));
  OnThreads(kWorld, [&](int r) {
    std::vector<float> in = {r * 10.f, r * 10.f + 1, r * 10.f + 2};
    Status s = comms[r]->AllGather(in.data(), kCount, out[r].data());
    EXPECT_TRUE(s.ok()) << s.ToString();
  });
  const std::vector<float> expected = {0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32};
  for (int r = 0; r < kWorld; ++r) EXPECT_EQ(out[r], expected) << "rank " << r;
}

TEST_F(CommunicatorTest, BroadcastCopiesTheRootsBytesFromANonZeroRoot) {
  constexpr int kWorld = 3;
  constexpr int kRoot = 2;
  auto comms = Connect("run-1/0/tp", kWorld);
  ASSERT_TRUE(AllConnected(comms));
  std::vector<std::vector<uint8_t>> buf(kWorld, std::vector<uint8_t>(777));
  for (int r = 0; r < kWorld; ++r) {
    for (size_t i = 0; i < buf[r].size(); ++i) buf[r][i] = static_cast<uint8_t>(r * 50 + i);
  }
  const std::vector<uint8_t> root_bytes = buf[kRoot];
  OnThreads(kWorld, [&](int r) {
    Status s = comms[r]->Broadcast(buf[r].data(), buf[r].size(), kRoot);
    EXPECT_TRUE(s.ok()) << s.ToString();
  });
  for (int r = 0; r < kWorld; ++r) EXPECT_EQ(buf[r], root_bytes) << "rank " << r;
}

TEST_F(CommunicatorTest, BroadcastStringOfLengthZeroAndOneMebibyte) {
  constexpr int kWorld = 3;
  constexpr int kRoot = 1;
  auto comms = Connect("run-1/0/tp", kWorld);
  ASSERT_TRUE(AllConnected(comms));

  std::vector<std::string> got(kWorld, "stale contents");
  got[kRoot] = "";
  OnThreads(kWorld, [&](int r) {
    Status s = comms[r]->BroadcastString(&got[r], kRoot);
    EXPECT_TRUE(s.ok()) << s.ToString();
  });
  for (int r = 0; r < kWorld; ++r) EXPECT_EQ(got[r], "") << "rank " << r;

  std::string big(1 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7 + i / 4096) % 256);
  for (int r = 0; r < kWorld; ++r) got[r] = r == kRoot ? big : "x";
  OnThreads(kWorld, [&](int r) {
    Status s = comms[r]->BroadcastString(&got[r], kRoot);
    EXPECT_TRUE(s.ok()) << s.ToString();
  });
  for (int r = 0; r < kWorld; ++r) EXPECT_TRUE(got[r] == big) << "rank " << r;
}

TEST_F(CommunicatorTest, BarrierWaitsForTheLastRank) {
  constexpr int kWorld = 3;
  auto comms = Connect("run-1/0/tp", kWorld);
  ASSERT_TRUE(AllConnected(comms));
  std::atomic<bool> late_rank_arrived{false};
  std::vector<int> saw_late_rank(kWorld, 0);  // not vector<bool>: written by several threads
  OnThreads(kWorld, [&](int r) {
    if (r == 2) {
      std::this_thread::sleep_for(Millis(300));
      late_rank_arrived = true;
    }
    Status s = comms[r]->Barrier();
    EXPECT_TRUE(s.ok()) << s.ToString();
    saw_late_rank[r] = late_rank_arrived.load();
  });
  for (int r = 0; r < kWorld; ++r) EXPECT_TRUE(saw_late_rank[r]) << "rank " << r;
}

TEST_F(CommunicatorTest, CollectivesOfSizeZeroSucceed) {
  auto comms = Connect("run-1/0/tp", 2);
  ASSERT_TRUE(AllConnected(comms));
  OnThreads(2, [&](int r) {
    float x = 1.f;
    EXPECT_TRUE(comms[r]->AllReduceSum(&x, 0).ok());
    EXPECT_TRUE(comms[r]->AllGather(&x, 0, &x).ok());
    EXPECT_TRUE(comms[r]->Broadcast(&x, 0, 1).ok());
    EXPECT_EQ(x, 1.f);
    EXPECT_EQ(comms[r]->Broadcast(&x, 4, 2).code(), StatusCode::kInvalidArgument);
    // Still usable: a bad argument is not a communication failure.
    EXPECT_TRUE(comms[r]->AllReduceSum(&x, 1).ok());
    EXPECT_EQ(x, 2.f);
  });
}

TEST_F(CommunicatorTest, RankThatNeverJoinsFailsTheRendezvousWithinTheTimeout) {
  constexpr int kWorld = 3;
  const std::string prefix = "run-7/1/tp";
  std::vector<Status> results(kWorld - 1);
  std::vector<Millis> took(kWorld - 1);
  OnThreads(kWorld - 1, [&](int r) {  // rank 2 never comes
    SteadyTime start = steady_clock::now();
    results[r] =
        CreateGlooCommunicator(*store_, Options(prefix, r, kWorld, kShortTimeout)).status();
    took[r] = Since(start);
  });
  for (int r = 0; r < kWorld - 1; ++r) {
    EXPECT_EQ(results[r].code(), StatusCode::kDeadlineExceeded) << results[r].ToString();
    EXPECT_NE(results[r].message().find(
                  fmt::format("rank {} of 3: rendezvous under prefix '{}'", r, prefix)),
              std::string::npos)
        << results[r].message();
    EXPECT_NE(results[r].message().find(prefix + "/2"), std::string::npos)  // the missing key
        << results[r].message();
    EXPECT_GE(took[r].count(), kShortTimeout.count() - 50);
    EXPECT_LT(took[r].count(), 3 * kShortTimeout.count()) << "rank " << r;
  }
}

// Ranks 0 and 1 go on after rank 2 stops calling (its context stays open, so only the timeout
// can tell): their next collective fails, and every later call repeats the error at once.
TEST_F(CommunicatorTest, RankThatStopsParticipatingFailsTheNextCollectiveOnTheOthers) {
  constexpr int kWorld = 3;
  auto comms = Connect("run-1/0/tp", kWorld, kShortTimeout);
  ASSERT_TRUE(AllConnected(comms));
  OnThreads(kWorld, [&](int r) {
    std::vector<float> v = RankData(r, 4096);
    Status s = comms[r]->AllReduceSum(v.data(), v.size());
    EXPECT_TRUE(s.ok()) << s.ToString();
  });

  std::vector<Status> first(2), second(2);
  std::vector<Millis> took(2), took_again(2);
  OnThreads(2, [&](int r) {
    std::vector<float> v = RankData(r, 4096);
    SteadyTime start = steady_clock::now();
    first[r] = comms[r]->AllReduceSum(v.data(), v.size());
    took[r] = Since(start);
    start = steady_clock::now();
    second[r] = comms[r]->Barrier();
    took_again[r] = Since(start);
  });
  for (int r = 0; r < 2; ++r) {
    ASSERT_FALSE(first[r].ok()) << "rank " << r;
    EXPECT_TRUE(first[r].code() == StatusCode::kDeadlineExceeded ||
                first[r].code() == StatusCode::kUnavailable)
        << first[r].ToString();
    EXPECT_EQ(first[r].message().rfind(fmt::format("rank {}: all-reduce of 4096 floats: ", r), 0),
              0u)
        << first[r].message();
    EXPECT_LT(took[r].count(), 3 * kShortTimeout.count()) << "rank " << r;
    EXPECT_EQ(second[r].code(), first[r].code());
    EXPECT_EQ(second[r].message(), first[r].message());
    EXPECT_LT(took_again[r].count(), 100) << "rank " << r;
  }
  // At least one survivor waited on the silent rank and says it timed out.
  EXPECT_TRUE(first[0].code() == StatusCode::kDeadlineExceeded ||
              first[1].code() == StatusCode::kDeadlineExceeded)
      << first[0].ToString() << " / " << first[1].ToString();
}

// Rank 2 goes away (its context is destroyed, closing its connections) between collectives.
TEST_F(CommunicatorTest, RankThatGoesAwayFailsTheNextCollectiveOnTheOthers) {
  constexpr int kWorld = 3;
  auto comms = Connect("run-1/0/tp", kWorld, kShortTimeout);
  ASSERT_TRUE(AllConnected(comms));
  OnThreads(kWorld, [&](int r) { EXPECT_TRUE(comms[r]->Barrier().ok()); });
  comms[2].reset();

  std::vector<Status> results(2);
  std::vector<Millis> took(2);
  OnThreads(2, [&](int r) {
    std::vector<float> v = RankData(r, 100000);
    SteadyTime start = steady_clock::now();
    results[r] = comms[r]->AllReduceSum(v.data(), v.size());
    took[r] = Since(start);
  });
  for (int r = 0; r < 2; ++r) {
    EXPECT_FALSE(results[r].ok()) << "rank " << r;
    EXPECT_TRUE(results[r].code() == StatusCode::kDeadlineExceeded ||
                results[r].code() == StatusCode::kUnavailable)
        << results[r].ToString();
    EXPECT_LT(took[r].count(), 3 * kShortTimeout.count()) << "rank " << r;
  }
}

TEST_F(CommunicatorTest, GroupsWithDifferentPrefixesOnOneStoreDoNotInterfere) {
  constexpr int kWorld = 2;
  std::vector<std::vector<std::unique_ptr<Communicator>>> groups(2);
  // Both groups rendezvous at the same time on the same store.
  OnThreads(2, [&](int g) { groups[g] = Connect(fmt::format("run-{}/0/tp", g), kWorld); });
  ASSERT_TRUE(AllConnected(groups[0]) && AllConnected(groups[1]));

  std::vector<std::vector<float>> data(4);
  OnThreads(4, [&](int t) {
    int g = t / kWorld, r = t % kWorld;
    data[t] = {static_cast<float>(100 * (g + 1) + r)};
    Status s = groups[g][r]->AllReduceSum(data[t].data(), 1);
    EXPECT_TRUE(s.ok()) << s.ToString();
  });
  EXPECT_EQ(data[0][0], 201.f);  // 100 + 101
  EXPECT_EQ(data[1][0], 201.f);
  EXPECT_EQ(data[2][0], 401.f);  // 200 + 201
  EXPECT_EQ(data[3][0], 401.f);

  // Each group's keys live under its prefix.
  for (const std::string key : {"run-0/0/tp/0", "run-0/0/tp/1", "run-1/0/tp/0", "run-1/0/tp/1"}) {
    EXPECT_TRUE(store_->Get(key, Millis(0)).ok()) << key;
  }
}

TEST_F(CommunicatorTest, ReusingAPrefixOnTheSameStoreIsRefused) {
  {
    auto comms = Connect("run-3/0/tp", 2);
    ASSERT_TRUE(AllConnected(comms));
  }
  // A second attempt that forgot to change the prefix cannot overwrite the first one's keys.
  Status s = CreateGlooCommunicator(*store_, Options("run-3/0/tp", 0, 2, kShortTimeout)).status();
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s.ToString();
  EXPECT_NE(s.message().find("rank 0 of 2: rendezvous under prefix 'run-3/0/tp' failed"),
            std::string::npos)
      << s.message();
}

// --- ranks as processes ---------------------------------------------------------------------

// Waits for `pid` for at most `timeout`; kills it if it is still running. Returns the exit code,
// 128 + the signal that ended it (141: SIGPIPE), or -1 when it had to be killed.
int WaitChild(pid_t pid, Millis timeout) {
  SteadyTime deadline = steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(Millis(10));
  }
}

// Starts a child process that runs `body` and exits with what it returns (no test teardown, no
// destructors: `_exit`).
pid_t Fork(const std::function<int()>& body) {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  return pid;
}

// The checks one rank makes in a process; returns 0 or the number of the step that failed.
int RankProcessBody(Store& store, int rank, int world) {
  auto c = CreateGlooCommunicator(store, Options("proc/0/tp", rank, world, kHealthyTimeout));
  if (!c.ok()) return 10;
  std::vector<float> v = RankData(rank, 50000);
  if (!(*c)->AllReduceSum(v.data(), v.size()).ok()) return 11;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] != ExpectedSum(world, i)) return 12;
  }
  std::vector<float> in = {static_cast<float>(rank)}, out(world, -1.f);
  if (!(*c)->AllGather(in.data(), 1, out.data()).ok()) return 13;
  for (int r = 0; r < world; ++r) {
    if (out[r] != static_cast<float>(r)) return 14;
  }
  std::string s = rank == world - 1 ? std::string(100000, 'p') : "";
  if (!(*c)->BroadcastString(&s, world - 1).ok()) return 15;
  if (s != std::string(100000, 'p')) return 16;
  if (!(*c)->Barrier().ok()) return 17;
  return 0;
}

TEST_F(CommunicatorTest, RanksInSeparateProcesses) {
  constexpr int kWorld = 3;
  std::vector<pid_t> children;
  for (int r = 1; r < kWorld; ++r) {
    children.push_back(Fork([&, r] { return RankProcessBody(*store_, r, kWorld); }));
    ASSERT_GT(children.back(), 0);
  }
  EXPECT_EQ(RankProcessBody(*store_, 0, kWorld), 0);
  for (int r = 1; r < kWorld; ++r) {
    EXPECT_EQ(WaitChild(children[r - 1], Millis(10000)), 0) << "rank " << r;
  }
}

TEST_F(CommunicatorTest, ProcessThatExitsMidwayFailsTheSurvivorsNextCollective) {
  constexpr int kWorld = 2;
  const std::string prefix = "proc-death/0/tp";
  pid_t child = Fork([&] {
    auto c = CreateGlooCommunicator(*store_, Options(prefix, 1, kWorld, kShortTimeout));
    if (!c.ok()) return 10;
    std::vector<float> v = RankData(1, 1000);
    if (!(*c)->AllReduceSum(v.data(), v.size()).ok()) return 11;
    if (v[5] != ExpectedSum(kWorld, 5)) return 12;
    return 0;  // and _exit without closing anything, as a crash would
  });
  ASSERT_GT(child, 0);

  auto c = CreateGlooCommunicator(*store_, Options(prefix, 0, kWorld, kShortTimeout));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::vector<float> v = RankData(0, 1000);
  Status s = (*c)->AllReduceSum(v.data(), v.size());
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(v[5], ExpectedSum(kWorld, 5));
  EXPECT_EQ(WaitChild(child, Millis(10000)), 0);

  SteadyTime start = steady_clock::now();
  s = (*c)->AllReduceSum(v.data(), v.size());
  Millis took = Since(start);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded)
      << s.ToString();
  EXPECT_EQ(s.message().rfind("rank 0: all-reduce of 1000 floats: ", 0), 0u) << s.message();
  EXPECT_LT(took.count(), 3 * kShortTimeout.count());
}

// A peer that dies while a large all-reduce is streaming makes the survivor's next write fail
// with EPIPE, which by default also raises SIGPIPE and ends the process. The survivor must live
// to report the error. It runs in its own process so that a SIGPIPE shows as its exit status
// (141) instead of ending the test program; the death lands at a different moment each trial.
TEST_F(CommunicatorTest, SurvivorIsNotKilledBySigpipeWhenAPeerDiesMidTransfer) {
  constexpr int kTrials = 6;
  constexpr size_t kCount = size_t{4} << 20;  // 16 MiB per all-reduce
  for (int trial = 0; trial < kTrials; ++trial) {
    const std::string prefix = fmt::format("sigpipe/{}/tp", trial);
    auto rank_body = [&](int rank) {
      auto c = CreateGlooCommunicator(*store_, Options(prefix, rank, 2, kShortTimeout));
      if (!c.ok()) return 10;
      if (rank == 1) {
        std::thread([trial] {
          std::this_thread::sleep_for(Millis(5 + 7 * trial));
          ::_exit(0);
        }).detach();
      }
      std::vector<float> v(kCount, 1.f);
      for (int i = 0; i < 200; ++i) {
        Status s = (*c)->AllReduceSum(v.data(), v.size());
        if (!s.ok()) {
          return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded
                     ? 0
                     : 11;
        }
      }
      return rank == 1 ? 0 : 12;  // the survivor never noticed
    };
    pid_t survivor = Fork([&] { return rank_body(0); });
    ASSERT_GT(survivor, 0);
    pid_t victim = Fork([&] { return rank_body(1); });
    ASSERT_GT(victim, 0);
    EXPECT_EQ(WaitChild(victim, Millis(10000)), 0) << "trial " << trial;
    ASSERT_EQ(WaitChild(survivor, Millis(10000)), 0) << "trial " << trial;
  }
}

}  // namespace
}  // namespace breakeven::engine
