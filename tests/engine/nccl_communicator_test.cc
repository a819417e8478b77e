// The NCCL communicator: device buffers summed and gathered on the compute stream, a rank that
// never joins fails init within the deadline (naming the rank) instead of hanging, and a build
// or machine without CUDA gets an error, never a crash. Tests that need a GPU skip without one.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "engine/communicator.h"
#include "kernels/device.h"
#include "tests/support/process.h"

#ifdef BREAKEVEN_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace breakeven::engine {
namespace {

using std::chrono::steady_clock;

int CudaDeviceCount() {
  int n = 0;
  for (const kernels::DeviceInfo& d : kernels::DiscoverDevices().devices) {
    if (d.kind == kernels::DeviceKind::kCuda) ++n;
  }
  return n;
}

GroupOptions Options(const std::string& prefix, int rank, int world, Millis timeout) {
  GroupOptions o;
  o.prefix = prefix;
  o.rank = rank;
  o.world_size = world;
  o.timeout = timeout;
  return o;
}

// A host group whose collectives all fail as if a peer were gone: for tests whose host
// collectives never run, or fail on purpose.
class FailingHostGroup final : public Communicator {
 public:
  FailingHostGroup(int rank, int world) : rank_(rank), world_(world) {}
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  Status AllReduceSum(float*, size_t) override { return Gone("all-reduce"); }
  Status AllGather(const float*, size_t, float*) override { return Gone("all-gather"); }
  Status Broadcast(void*, size_t, int) override { return Gone("broadcast"); }
  Status Barrier() override { return Gone("barrier"); }

 private:
  Status Gone(const char* what) const {
    return Unavailable("rank {}: {}: peer closed the connection", rank_, what);
  }
  int rank_, world_;
};

class NcclCommunicatorTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = std::move(FileStore::Open(dir_.path() + "/store")).value(); }

  breakeven::testing::ScopedTempDir dir_{"nccl"};
  std::unique_ptr<FileStore> store_;
};

TEST_F(NcclCommunicatorTest, BuildWithoutCudaSaysSo) {
  if (kernels::BuiltWithCuda()) GTEST_SKIP() << "built with CUDA";
  auto comm = CreateNcclCommunicator(*store_, Options("p", 0, 1, Millis(1000)), nullptr, 0,
                                     MakeSingleRankCommunicator());
  ASSERT_FALSE(comm.ok());
  EXPECT_EQ(comm.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(comm.status().message().find("built without CUDA"), std::string::npos)
      << comm.status().message();
}

TEST_F(NcclCommunicatorTest, BadOptionsAreRefusedBeforeTouchingTheDevice) {
  if (!kernels::BuiltWithCuda()) GTEST_SKIP() << "built without CUDA";
  auto code = [&](const GroupOptions& o, std::unique_ptr<Communicator> host) {
    return CreateNcclCommunicator(*store_, o, nullptr, 0, std::move(host)).status().code();
  };
  EXPECT_EQ(code(Options("p", 2, 2, Millis(1000)), std::make_unique<FailingHostGroup>(0, 2)),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Options("p", 0, 1, Millis(0)), MakeSingleRankCommunicator()),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Options("", 0, 1, Millis(1000)), MakeSingleRankCommunicator()),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Options("p", 0, 1, Millis(1000)), nullptr), StatusCode::kInvalidArgument);
  // The host group must be the same group.
  EXPECT_EQ(code(Options("p", 1, 2, Millis(1000)), std::make_unique<FailingHostGroup>(0, 2)),
            StatusCode::kInvalidArgument);
}

// On a machine without a usable GPU this is device 0 (the driver's error); with GPUs, one past
// the last.
TEST_F(NcclCommunicatorTest, DeviceThatCannotBeUsedIsAnErrorNamingRankAndDevice) {
  if (!kernels::BuiltWithCuda()) GTEST_SKIP() << "built without CUDA";
  const int device = CudaDeviceCount();
  auto comm = CreateNcclCommunicator(*store_, Options("p", 0, 1, Millis(1000)), nullptr, device,
                                     MakeSingleRankCommunicator());
  ASSERT_FALSE(comm.ok());
  EXPECT_EQ(comm.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(comm.status().message().find(fmt::format("rank 0: cannot use CUDA device {}", device)),
            std::string::npos)
      << comm.status().message();
  // Nothing was published: the id is made only once the device is known to work.
  EXPECT_FALSE(store_->Get("p/nccl-id", Millis(0)).ok());
}

#ifdef BREAKEVEN_WITH_CUDA

// Device memory holding `values`, freed on scope exit.
class DeviceFloats {
 public:
  explicit DeviceFloats(const std::vector<float>& values) : count_(values.size()) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&data_), count_ * sizeof(float)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(data_, values.data(), count_ * sizeof(float), cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  explicit DeviceFloats(size_t count) : DeviceFloats(std::vector<float>(count, -1.f)) {}
  ~DeviceFloats() { cudaFree(data_); }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;

  float* get() const { return data_; }
  std::vector<float> Read() const {
    std::vector<float> out(count_);
    EXPECT_EQ(cudaMemcpy(out.data(), data_, count_ * sizeof(float), cudaMemcpyDeviceToHost),
              cudaSuccess);
    return out;
  }

 private:
  float* data_ = nullptr;
  size_t count_;
};

class NcclGpuTest : public NcclCommunicatorTest {
 protected:
  void SetUp() override {
    NcclCommunicatorTest::SetUp();
    devices_ = CudaDeviceCount();
    if (devices_ == 0) {
      GTEST_SKIP() << "no CUDA device: " << kernels::DiscoverDevices().cuda_note;
    }
  }
  int devices_ = 0;
};

TEST_F(NcclGpuTest, WorldOfOneReducesAndGathersDeviceBuffersOnTheStream) {
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  {
    auto made = CreateNcclCommunicator(*store_, Options("run/0/tp", 0, 1, Millis(20000)), stream, 0,
                                       MakeSingleRankCommunicator());
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    Communicator& comm = **made;
    EXPECT_TRUE(comm.device_memory());
    EXPECT_EQ(comm.rank(), 0);
    EXPECT_EQ(comm.world_size(), 1);

    // The id went through the store as 128 bytes of hex.
    Result<std::string> id = store_->Get("run/0/tp/nccl-id", Millis(0));
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    EXPECT_EQ(id->size(), 256u);

    const size_t n = 100000;
    std::vector<float> values(n);
    for (size_t i = 0; i < n; ++i) values[i] = static_cast<float>(i % 97) * 0.5f;
    DeviceFloats data(values);
    DeviceFloats gathered(n);
    ASSERT_TRUE(comm.AllReduceSum(data.get(), n).ok());
    ASSERT_TRUE(comm.AllGather(data.get(), n, gathered.get()).ok());
    ASSERT_TRUE(comm.AllReduceSum(data.get(), 0).ok());  // size zero: nothing enqueued
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    EXPECT_EQ(data.Read(), values);
    EXPECT_EQ(gathered.Read(), values);

    // Host data goes through the host group.
    std::string text = "plan";
    EXPECT_TRUE(comm.BroadcastString(&text, 0).ok());
    EXPECT_EQ(text, "plan");
    EXPECT_TRUE(comm.Barrier().ok());
    EXPECT_EQ(comm.Broadcast(&text, 1, 1).code(), StatusCode::kInvalidArgument);  // bad root
    EXPECT_TRUE(comm.AllReduceSum(data.get(), n).ok()) << "a bad root does not end the group";
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  }
  cudaStreamDestroy(stream);
}

// A decode step is captured into a CUDA graph with its collectives: nothing in them may wait on
// the host. The graph zeroes the output and gathers into it; each replay must fill it again.
TEST_F(NcclGpuTest, CollectivesCanBeCapturedIntoACudaGraph) {
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  {
    auto made = CreateNcclCommunicator(*store_, Options("graph", 0, 1, Millis(20000)), stream, 0,
                                       MakeSingleRankCommunicator());
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    Communicator& comm = **made;
    const size_t n = 4096;
    std::vector<float> values(n);
    for (size_t i = 0; i < n; ++i) values[i] = static_cast<float>(i) + 0.25f;
    DeviceFloats in(values);
    DeviceFloats out(n);

    ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    ASSERT_EQ(cudaMemsetAsync(out.get(), 0, n * sizeof(float), stream), cudaSuccess);
    Status reduced = comm.AllReduceSum(in.get(), n);
    Status gathered = comm.AllGather(in.get(), n, out.get());
    cudaGraph_t graph = nullptr;
    ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
    ASSERT_TRUE(reduced.ok()) << reduced.ToString();
    ASSERT_TRUE(gathered.ok()) << gathered.ToString();
    cudaGraphExec_t exec = nullptr;
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    for (int replay = 0; replay < 2; ++replay) {
      ASSERT_EQ(cudaMemsetAsync(out.get(), 0xff, n * sizeof(float), stream), cudaSuccess);
      ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
      ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
      EXPECT_EQ(out.Read(), values) << "replay " << replay;
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
  }
  cudaStreamDestroy(stream);
}

// A failure (here the host group's, as when a peer dies between steps) aborts the NCCL
// communicator; every later call, on the GPU side too, returns that first failure at once.
TEST_F(NcclGpuTest, FailureEndsTheGroupAndEveryLaterCallRepeatsIt) {
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  {
    auto made = CreateNcclCommunicator(*store_, Options("bad", 0, 1, Millis(20000)), stream, 0,
                                       std::make_unique<FailingHostGroup>(0, 1));
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    Communicator& comm = **made;
    DeviceFloats data(std::vector<float>(16, 1.f));
    ASSERT_TRUE(comm.AllReduceSum(data.get(), 16).ok());
    Status first = comm.Barrier();
    EXPECT_EQ(first.code(), StatusCode::kUnavailable);
    EXPECT_EQ(first.message(), "rank 0: barrier: peer closed the connection");
    for (const Status& later : {comm.AllReduceSum(data.get(), 16),
                                comm.AllGather(data.get(), 16, data.get()), comm.Barrier()}) {
      EXPECT_EQ(later.code(), first.code());
      EXPECT_EQ(later.message(), first.message());
    }
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    EXPECT_EQ(data.Read(), std::vector<float>(16, 1.f));
  }  // destroying an aborted communicator is fine
  cudaStreamDestroy(stream);
}

// Rank 1 never comes: rank 0 publishes the id, starts a non-blocking init, and gives up at the
// deadline with an error that names it, instead of waiting forever inside NCCL.
TEST_F(NcclGpuTest, RankThatNeverJoinsFailsInitWithinTheTimeout) {
  const Millis timeout(2000);
  struct Outcome {
    std::promise<Status> status;
    Millis took{0};
  };
  auto outcome = std::make_shared<Outcome>();
  std::future<Status> done = outcome->status.get_future();
  FileStore* store = store_.get();
  // On its own thread so that a hang fails this test instead of stopping the suite.
  std::thread([outcome, store, timeout] {
    cudaSetDevice(0);
    auto start = steady_clock::now();
    auto made = CreateNcclCommunicator(*store, Options("lonely", 0, 2, timeout), nullptr, 0,
                                       std::make_unique<FailingHostGroup>(0, 2));
    outcome->took = std::chrono::duration_cast<Millis>(steady_clock::now() - start);
    outcome->status.set_value(made.status());
  }).detach();
  ASSERT_EQ(done.wait_for(std::chrono::seconds(30)), std::future_status::ready)
      << "init with a missing rank did not return within 30 s";
  Status status = done.get();
  EXPECT_EQ(status.code(), StatusCode::kDeadlineExceeded) << status.ToString();
  EXPECT_NE(status.message().find("rank 0: NCCL init of 2 ranks: not complete after 2000 ms"),
            std::string::npos)
      << status.message();
  EXPECT_GE(outcome->took.count(), timeout.count() - 50);
  EXPECT_LT(outcome->took.count(), 3 * timeout.count());
}

// NCCL refuses two ranks on one device during init: both ranks get NCCL's reason, not a hang.
TEST_F(NcclGpuTest, TwoRanksOnOneDeviceGetNcclsReason) {
  constexpr int kWorld = 2;
  std::vector<Status> results(kWorld);
  std::vector<std::thread> threads;
  for (int r = 0; r < kWorld; ++r) {
    threads.emplace_back([&, r] {
      ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
      results[r] = CreateNcclCommunicator(*store_, Options("same", r, kWorld, Millis(20000)),
                                          nullptr, 0, std::make_unique<FailingHostGroup>(r, kWorld))
                       .status();
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < kWorld; ++r) {
    EXPECT_FALSE(results[r].ok()) << "rank " << r;
    EXPECT_NE(results[r].code(), StatusCode::kDeadlineExceeded) << results[r].ToString();
    EXPECT_NE(results[r].message().find(fmt::format("rank {}: NCCL init of 2 ranks: NCCL ", r)),
              std::string::npos)
        << results[r].message();
  }
}

TEST_F(NcclGpuTest, TwoRanksOnTwoDevicesSumAndGather) {
  if (devices_ < 2) GTEST_SKIP() << "needs 2 CUDA devices, found " << devices_;
  constexpr int kWorld = 2;
  const size_t n = size_t{1} << 20;
  std::vector<std::vector<float>> reduced(kWorld), gathered(kWorld);
  std::vector<std::thread> threads;
  for (int r = 0; r < kWorld; ++r) {
    threads.emplace_back([&, r] {
      ASSERT_EQ(cudaSetDevice(r), cudaSuccess);
      cudaStream_t stream = nullptr;
      ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
      {
        auto host =
            CreateSharedMemoryCommunicator(*store_, Options("two/host", r, kWorld, Millis(20000)));
        ASSERT_TRUE(host.ok()) << host.status().ToString();
        auto made = CreateNcclCommunicator(*store_, Options("two", r, kWorld, Millis(60000)),
                                           stream, r, std::move(host).value());
        ASSERT_TRUE(made.ok()) << made.status().ToString();
        Communicator& comm = **made;
        std::vector<float> mine(n);
        for (size_t i = 0; i < n; ++i) mine[i] = static_cast<float>(i % 97) * (r + 1);
        DeviceFloats data(mine);
        DeviceFloats all(kWorld * n);
        ASSERT_TRUE(comm.AllGather(data.get(), n, all.get()).ok());
        ASSERT_TRUE(comm.AllReduceSum(data.get(), n).ok());
        ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
        reduced[r] = data.Read();
        gathered[r] = all.Read();
        std::string text = r == 1 ? "from rank 1" : "";
        EXPECT_TRUE(comm.BroadcastString(&text, 1).ok());
        EXPECT_EQ(text, "from rank 1");
        EXPECT_TRUE(comm.Barrier().ok());
      }
      cudaStreamDestroy(stream);
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < kWorld; ++r) {
    ASSERT_EQ(reduced[r].size(), n) << "rank " << r;
    ASSERT_EQ(gathered[r].size(), kWorld * n) << "rank " << r;
    for (size_t i = 0; i < n; i += 997) {
      ASSERT_EQ(reduced[r][i], static_cast<float>(i % 97) * 3) << "rank " << r << " element " << i;
      ASSERT_EQ(gathered[r][i], static_cast<float>(i % 97)) << "rank " << r;
      ASSERT_EQ(gathered[r][n + i], static_cast<float>(i % 97) * 2) << "rank " << r;
    }
  }
}

#endif  // BREAKEVEN_WITH_CUDA

}  // namespace
}  // namespace breakeven::engine
