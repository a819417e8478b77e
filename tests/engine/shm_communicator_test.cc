// The shared-memory communicator: exact, rank-identical results; messages larger than a slot;
// processes as well as threads; and a missing or dead rank becomes an error within the deadline.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <thread>
#include <vector>

#include "engine/communicator.h"
#include "tests/support/process.h"

namespace breakeven::engine {
namespace {

class ShmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = breakeven::testing::MakeTempDir("shm");
    store_ = std::move(FileStore::Open(dir_ + "/store")).value();
  }
  void TearDown() override { breakeven::testing::RemoveTree(dir_); }

  GroupOptions Options(const std::string& prefix, int rank, int world, Millis timeout) {
    GroupOptions o;
    o.prefix = prefix;
    o.rank = rank;
    o.world_size = world;
    o.timeout = timeout;
    return o;
  }

  // Runs fn(rank, comm) on `world` threads, each joining the same group.
  void OnRanks(const std::string& prefix, int world,
               const std::function<void(int, Communicator&)>& fn, Millis timeout = Millis(5000)) {
    std::vector<std::thread> threads;
    for (int r = 0; r < world; ++r) {
      threads.emplace_back([&, r] {
        auto comm = CreateSharedMemoryCommunicator(*store_, Options(prefix, r, world, timeout));
        ASSERT_TRUE(comm.ok()) << comm.status().ToString();
        fn(r, **comm);
      });
    }
    for (auto& t : threads) t.join();
  }

  std::string dir_;
  std::unique_ptr<FileStore> store_;
};

TEST_F(ShmTest, AllReduceIsExactAndIdenticalOnEveryRank) {
  for (int world : {2, 4}) {
    // 300k floats: more than one 1 MiB slot, so the chunking is exercised.
    const size_t n = 300000;
    std::vector<std::vector<float>> out(world);
    OnRanks("ar" + std::to_string(world), world, [&](int r, Communicator& c) {
      std::vector<float> v(n);
      for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>((i % 97) * (r + 1)) * 0.25f;
      ASSERT_TRUE(c.AllReduceSum(v.data(), n).ok());
      out[r] = v;
    });
    float factor = world * (world + 1) / 2.0f;
    for (size_t i = 0; i < n; i += 1013) {
      EXPECT_EQ(out[0][i], static_cast<float>(i % 97) * 0.25f * factor) << i;
    }
    for (int r = 1; r < world; ++r) EXPECT_EQ(out[r], out[0]) << "rank " << r << " differs";
  }
}

TEST_F(ShmTest, AllGatherBroadcastAndBarrier) {
  OnRanks("mix", 3, [&](int r, Communicator& c) {
    std::vector<float> mine = {float(r), float(10 * r)};
    std::vector<float> all(6);
    ASSERT_TRUE(c.AllGather(mine.data(), 2, all.data()).ok());
    EXPECT_EQ(all, (std::vector<float>{0, 0, 1, 10, 2, 20}));
    std::string text = r == 2 ? std::string(3 << 20, 'z') : "";  // 3 MiB from rank 2
    ASSERT_TRUE(c.BroadcastString(&text, 2).ok());
    EXPECT_EQ(text.size(), size_t{3} << 20);
    EXPECT_EQ(text.back(), 'z');
    EXPECT_TRUE(c.Barrier().ok());
    EXPECT_EQ(c.Broadcast(mine.data(), 4, 7).code(), StatusCode::kInvalidArgument);
  });
}

TEST_F(ShmTest, MissingRankIsAnErrorWithinTheDeadline) {
  auto start = std::chrono::steady_clock::now();
  auto comm = CreateSharedMemoryCommunicator(*store_, Options("lonely", 0, 2, Millis(500)));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(comm.ok());
  EXPECT_EQ(comm.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(comm.status().message().find("rank 1"), std::string::npos) << comm.status().message();
  EXPECT_LT(took, std::chrono::seconds(3));
}

TEST_F(ShmTest, DeadPeerProcessIsAnErrorNotAHang) {
  const std::string dir = dir_ + "/store";
  pid_t child = fork();
  if (child == 0) {
    // Rank 1 joins, takes part in one all-reduce, then dies without a word.
    auto store = FileStore::Open(dir);
    auto c = CreateSharedMemoryCommunicator(**store, Options("dies", 1, 2, Millis(5000)));
    if (!c.ok()) _exit(2);
    float v = 1;
    if (!(*c)->AllReduceSum(&v, 1).ok() || v != 3) _exit(3);
    _exit(0);
  }
  auto c = CreateSharedMemoryCommunicator(*store_, Options("dies", 0, 2, Millis(1000)));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  float v = 2;
  ASSERT_TRUE((*c)->AllReduceSum(&v, 1).ok());
  EXPECT_EQ(v, 3);
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  auto start = std::chrono::steady_clock::now();
  Status s = (*c)->AllReduceSum(&v, 1);
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ((*c)->Barrier().code(), StatusCode::kDeadlineExceeded) << "failures are sticky";
}

}  // namespace
}  // namespace breakeven::engine
