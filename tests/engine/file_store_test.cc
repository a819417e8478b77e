// FileStore: write-once keys as files, waited for by polling.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <set>
#include <thread>
#include <vector>

#include "engine/store.h"
#include "tests/support/process.h"

namespace breakeven::engine {
namespace {

using std::chrono::steady_clock;

Millis Since(SteadyTime start) {
  return std::chrono::duration_cast<Millis>(steady_clock::now() - start);
}

class FileStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = breakeven::testing::MakeTempDir("file-store");
    Result<std::unique_ptr<FileStore>> store = FileStore::Open(dir_ + "/store");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }
  void TearDown() override { breakeven::testing::RemoveTree(dir_); }

  // Names in the store's directory.
  std::set<std::string> Files() const {
    std::set<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir_ + "/store")) {
      names.insert(entry.path().filename().string());
    }
    return names;
  }

  std::string dir_;
  std::unique_ptr<FileStore> store_;
};

TEST_F(FileStoreTest, SetThenGetReturnsTheValue) {
  std::string binary("a\0b\xff\n", 5);
  ASSERT_TRUE(store_->Set("run-1/0/tp/0", binary).ok());
  ASSERT_TRUE(store_->Set("empty", "").ok());
  Result<std::string> got = store_->Get("run-1/0/tp/0", Millis(100));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, binary);
  Result<std::string> empty = store_->Get("empty", Millis(100));
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(*empty, "");
}

TEST_F(FileStoreTest, LargeValueRoundTrips) {
  std::string big(3 * 1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 % 251);
  ASSERT_TRUE(store_->Set("big", big).ok());
  Result<std::string> got = store_->Get("big", Millis(100));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == big);
}

TEST_F(FileStoreTest, GetWaitsUntilAnotherThreadSetsTheKey) {
  SteadyTime start = steady_clock::now();
  std::thread setter([&] {
    std::this_thread::sleep_for(Millis(300));
    EXPECT_TRUE(store_->Set("late key", "here").ok());
  });
  Result<std::string> got = store_->Get("late key", Millis(5000));
  Millis waited = Since(start);
  setter.join();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, "here");
  EXPECT_GE(waited.count(), 250);
  EXPECT_LT(waited.count(), 2000);  // polled, not waited out the timeout
}

TEST_F(FileStoreTest, GetTimesOutNamingTheKeyAndTheTimeout) {
  SteadyTime start = steady_clock::now();
  Result<std::string> got = store_->Get("run-9/2/tp/3", Millis(200));
  Millis waited = Since(start);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(got.status().message().find("'run-9/2/tp/3'"), std::string::npos)
      << got.status().message();
  EXPECT_NE(got.status().message().find("200 ms"), std::string::npos) << got.status().message();
  EXPECT_NE(got.status().message().find(dir_), std::string::npos) << got.status().message();
  EXPECT_GE(waited.count(), 200);
  EXPECT_LT(waited.count(), 1000);
}

TEST_F(FileStoreTest, ZeroTimeoutLooksOnce) {
  ASSERT_TRUE(store_->Set("k", "v").ok());
  Result<std::string> got = store_->Get("k", Millis(0));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "v");
  EXPECT_EQ(store_->Get("absent", Millis(0)).status().code(), StatusCode::kDeadlineExceeded);
}

TEST_F(FileStoreTest, SecondSetOfAKeyFailsAndKeepsTheFirstValue) {
  ASSERT_TRUE(store_->Set("once", "first").ok());
  Status again = store_->Set("once", "second");
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists);
  EXPECT_NE(again.message().find("'once'"), std::string::npos) << again.message();
  Result<std::string> got = store_->Get("once", Millis(100));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "first");
}

TEST_F(FileStoreTest, ConcurrentSettersOfOneKeyExactlyOneWins) {
  constexpr int kThreads = 8;
  std::atomic<int> wins{0}, refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      Status s = store_->Set("contended", "writer " + std::to_string(i));
      if (s.ok()) ++wins;
      if (s.code() == StatusCode::kAlreadyExists) ++refused;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins.load(), 1);
  EXPECT_EQ(refused.load(), kThreads - 1);
  Result<std::string> got = store_->Get("contended", Millis(100));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->rfind("writer ", 0), 0u);
  EXPECT_EQ(Files().size(), 1u);  // no temporary files left behind
}

TEST_F(FileStoreTest, KeysWithSlashesSpacesAndDotsAreDistinctFilesInTheDirectory) {
  const std::vector<std::string> keys = {
      "run 7/1/tp/0", "run 7/1/tp/1", "run_7_1_tp_0", "../escape", ".", "..", "", "%2F", "/",
      "a\nb",         "ünï"};
  for (size_t i = 0; i < keys.size(); ++i) {
    Status s = store_->Set(keys[i], "value " + std::to_string(i));
    ASSERT_TRUE(s.ok()) << "key '" << keys[i] << "': " << s.ToString();
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    Result<std::string> got = store_->Get(keys[i], Millis(100));
    ASSERT_TRUE(got.ok()) << "key '" << keys[i] << "': " << got.status().ToString();
    EXPECT_EQ(*got, "value " + std::to_string(i)) << "key '" << keys[i] << "'";
  }
  // One plain file per key, all inside the store's directory.
  std::set<std::string> files = Files();
  EXPECT_EQ(files.size(), keys.size());
  for (const auto& entry : std::filesystem::directory_iterator(dir_ + "/store")) {
    EXPECT_TRUE(entry.is_regular_file()) << entry.path();
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/escape"));
}

TEST_F(FileStoreTest, AnotherStoreOnTheSameDirectorySeesTheKeys) {
  Result<std::unique_ptr<FileStore>> other = FileStore::Open(dir_ + "/store");
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  ASSERT_TRUE((*other)->Set("from other", "x").ok());
  Result<std::string> got = store_->Get("from other", Millis(100));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "x");
  EXPECT_EQ(store_->Set("from other", "y").code(), StatusCode::kAlreadyExists);
}

TEST_F(FileStoreTest, OpenCreatesMissingDirectoriesAndRefusesAFile) {
  Result<std::unique_ptr<FileStore>> nested = FileStore::Open(dir_ + "/a/b/c");
  ASSERT_TRUE(nested.ok()) << nested.status().ToString();
  EXPECT_TRUE(std::filesystem::is_directory(dir_ + "/a/b/c"));

  ASSERT_TRUE(store_->Set("k", "v").ok());
  std::string file = dir_ + "/store/" + *Files().begin();
  Result<std::unique_ptr<FileStore>> on_file = FileStore::Open(file);
  ASSERT_FALSE(on_file.ok());
  EXPECT_NE(on_file.status().message().find(file), std::string::npos) << on_file.status().message();
}

TEST_F(FileStoreTest, OverlongKeyIsRefused) {
  std::string key(300, 'x');
  EXPECT_EQ(store_->Set(key, "v").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Get(key, Millis(0)).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace breakeven::engine
