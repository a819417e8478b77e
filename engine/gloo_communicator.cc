// GlooCommunicator: the collectives over a Gloo context on the TCP transport, rendezvoused
// through an engine::Store. Gloo reports failure by throwing; every call catches and turns the
// exception into a Status, and a failed communicator answers every later call with that Status.
#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <exception>
#include <map>
#include <utility>
#include <vector>

#include "engine/communicator.h"

namespace breakeven::engine {
namespace {

// Gloo's messages start with "[gloo/path/file.cc:123] "; the reader wants what comes after.
std::string GlooMessage(const char* what) {
  std::string_view msg(what);
  if (!msg.empty() && msg.front() == '[') {
    size_t end = msg.find("] ");
    if (end != std::string_view::npos) msg.remove_prefix(end + 2);
  }
  return std::string(msg);
}

bool SaysTimedOut(std::string_view message) {
  std::string lower(message);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("timed out") != std::string::npos || lower.find("timeout") != std::string::npos;
}

// What Gloo threw, as a Status. `context` names the rank and the operation.
Status FromGloo(const std::string& context, const std::string& gloo_message, Millis timeout) {
  if (SaysTimedOut(gloo_message)) {
    return DeadlineExceeded("{}: timed out after {} ms ({})", context, timeout.count(),
                            gloo_message);
  }
  return Unavailable("{}: {}", context, gloo_message);
}

// Gloo writes to its sockets with writev(), which raises SIGPIPE when the peer has gone away,
// and SIGPIPE's default action ends the process: a dead rank would take the survivors with it.
// SIGPIPE is sent to the thread that wrote, so it is blocked on the calling thread while Gloo
// runs, and any SIGPIPE raised meanwhile is taken off before the old mask comes back (the write
// itself fails with EPIPE, which Gloo reports). Gloo's event-loop thread starts inside
// CreateDevice under this block and keeps it for its whole life. Nothing process-wide changes.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &old_);
  }
  ~ScopedSigpipeBlock() {
    if (sigismember(&old_, SIGPIPE) == 0) {
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      const timespec now{0, 0};
      int got;
      do {
        got = sigtimedwait(&pipe, nullptr, &now);
      } while (got == SIGPIPE || (got < 0 && errno == EINTR));
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

 private:
  sigset_t old_;
};

// Gloo's view of our Store. Every key is prefixed with "<prefix>/". Keys are written once, so a
// value read by wait() is kept for the get() that follows. A failure is remembered as a Status
// (so the caller can report the store's own code and message) and thrown as a Gloo exception.
class StoreAdapter final : public gloo::rendezvous::Store {
 public:
  StoreAdapter(engine::Store& store, std::string prefix, Millis default_timeout)
      : store_(store), prefix_(std::move(prefix)), default_timeout_(default_timeout) {}

  void set(const std::string& key, const std::vector<char>& data) override {
    Status status = store_.Set(FullKey(key), std::string(data.begin(), data.end()));
    if (!status.ok()) Fail(std::move(status));
  }

  std::vector<char> get(const std::string& key) override {
    auto it = values_.find(key);
    if (it == values_.end()) {
      Fetch(key, default_timeout_);
      it = values_.find(key);
    }
    return std::vector<char>(it->second.begin(), it->second.end());
  }

  void wait(const std::vector<std::string>& keys) override { wait(keys, default_timeout_); }

  void wait(const std::vector<std::string>& keys,
            const std::chrono::milliseconds& timeout) override {
    // Gloo passes zero (kNoTimeout) for "no timeout"; we never wait without one.
    Millis limit = timeout.count() > 0 ? timeout : default_timeout_;
    SteadyTime deadline = std::chrono::steady_clock::now() + limit;
    for (const std::string& key : keys) {
      if (values_.count(key) > 0) continue;
      auto left = std::chrono::ceil<Millis>(deadline - std::chrono::steady_clock::now());
      Fetch(key, std::max(left, Millis{0}));
    }
  }

  // The first failure, or OK.
  const Status& error() const { return error_; }

 private:
  std::string FullKey(const std::string& key) const { return prefix_ + "/" + key; }

  void Fetch(const std::string& key, Millis timeout) {
    Result<std::string> value = store_.Get(FullKey(key), timeout);
    if (!value.ok()) Fail(value.status());
    values_[key] = std::move(value).value();
  }

  [[noreturn]] void Fail(Status status) {
    if (error_.ok()) error_ = status;
    throw gloo::IoException(status.ToString());
  }

  engine::Store& store_;
  const std::string prefix_;
  const Millis default_timeout_;
  std::map<std::string, std::string> values_;
  Status error_;
};

class GlooCommunicator final : public Communicator {
 public:
  GlooCommunicator(std::shared_ptr<gloo::rendezvous::Context> context, Millis timeout)
      : context_(std::move(context)), timeout_(timeout) {}

  int rank() const override { return context_->rank; }
  int world_size() const override { return context_->size; }

  Status AllReduceSum(float* data, size_t count) override {
    if (!failure_.ok()) return failure_;
    if (count == 0) return Status::Ok();
    return Run<gloo::AllreduceOptions>(
        fmt::format("all-reduce of {} floats", count), [&](auto& opts) {
          opts.setOutput(data, count);
          opts.setReduceFunction(
              static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::sum<float>));
          opts.setTag(NextTag());
          opts.setTimeout(timeout_);
          gloo::allreduce(opts);
        });
  }

  Status AllGather(const float* in, size_t count, float* out) override {
    if (!failure_.ok()) return failure_;
    if (count == 0) return Status::Ok();
    return Run<gloo::AllgatherOptions>(
        fmt::format("all-gather of {} floats per rank", count), [&](auto& opts) {
          // Gloo's input is non-const only because its buffers are; it does not write to it.
          opts.setInput(const_cast<float*>(in), count);
          opts.setOutput(out, count * static_cast<size_t>(context_->size));
          opts.setTag(NextTag());
          opts.setTimeout(timeout_);
          gloo::allgather(opts);
        });
  }

  Status Broadcast(void* data, size_t bytes, int root) override {
    if (!failure_.ok()) return failure_;
    if (root < 0 || root >= context_->size) {
      return InvalidArgument("rank {}: broadcast from rank {} in a group of {}", context_->rank,
                             root, context_->size);
    }
    if (bytes == 0) return Status::Ok();
    return Run<gloo::BroadcastOptions>(
        fmt::format("broadcast of {} bytes from rank {}", bytes, root), [&](auto& opts) {
          opts.setOutput(static_cast<uint8_t*>(data), bytes);
          opts.setRoot(root);
          opts.setTag(NextTag());
          opts.setTimeout(timeout_);
          gloo::broadcast(opts);
        });
  }

  Status Barrier() override {
    if (!failure_.ok()) return failure_;
    return Run<gloo::BarrierOptions>("barrier", [&](auto& opts) {
      opts.setTag(NextTag());
      opts.setTimeout(timeout_);
      gloo::barrier(opts);
    });
  }

 private:
  // Every rank makes the same calls in the same order, so they agree on the tags; a rank that
  // strays waits on a different tag and times out instead of mixing up data.
  uint32_t NextTag() { return next_tag_++; }

  // Makes the Gloo options object for one collective, lets `op` fill it in and run it, and turns
  // an exception into the communicator's failure.
  template <typename Options, typename F>
  Status Run(const std::string& what, F&& op) {
    std::string context = fmt::format("rank {}: {}", context_->rank, what);
    ScopedSigpipeBlock no_sigpipe;
    std::shared_ptr<Options> opts;
    try {
      opts = std::make_shared<Options>(context_);
      op(*opts);
      return Status::Ok();
    } catch (const std::exception& e) {
      failure_ = FromGloo(context, GlooMessage(e.what()), timeout_);
    } catch (...) {
      failure_ = Unavailable("{}: unknown exception from Gloo", context);
    }
    // Close every connection: the peers learn at once that this group is finished, and closing
    // takes each connection's lock, so it waits for Gloo's event thread to finish signalling the
    // failed operation's buffers. Those buffers live in `opts`, freed on return; when an
    // operation timed out just as its connection broke, the event thread could otherwise still
    // be using them (seen under ThreadSanitizer).
    try {
      context_->closeConnections();
    } catch (...) {
    }
    return failure_;
  }

  std::shared_ptr<gloo::rendezvous::Context> context_;
  const Millis timeout_;
  uint32_t next_tag_ = 0;
  Status failure_;
};

}  // namespace

Result<std::unique_ptr<Communicator>> CreateGlooCommunicator(Store& store,
                                                             const GroupOptions& options) {
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size) {
    return InvalidArgument("gloo: rank {} is not in a group of {}", options.rank,
                           options.world_size);
  }
  if (options.timeout.count() <= 0) {
    return InvalidArgument("gloo: timeout must be positive, got {} ms", options.timeout.count());
  }
  if (options.prefix.empty()) {
    // Keys are written once: without a prefix the second group on a store would collide.
    return InvalidArgument("gloo: rank {}: empty store prefix", options.rank);
  }
  if (options.world_size == 1) return MakeSingleRankCommunicator();

  const std::string who = fmt::format("rank {} of {}", options.rank, options.world_size);
  ScopedSigpipeBlock no_sigpipe;
  std::shared_ptr<gloo::transport::Device> device;
  try {
    gloo::transport::tcp::attr attr;
    attr.hostname = options.host;
    device = gloo::transport::tcp::CreateDevice(attr);
  } catch (const std::exception& e) {
    return Unavailable("{}: cannot listen on host '{}': {}", who, options.host,
                       GlooMessage(e.what()));
  } catch (...) {
    return Unavailable("{}: cannot listen on host '{}'", who, options.host);
  }

  auto context = std::make_shared<gloo::rendezvous::Context>(options.rank, options.world_size);
  context->setTimeout(options.timeout);
  StoreAdapter adapter(store, options.prefix, options.timeout);
  const std::string failed =
      fmt::format("{}: rendezvous under prefix '{}' failed", who, options.prefix);
  try {
    context->connectFullMesh(adapter, device);
  } catch (const std::exception& e) {
    // The store's own error says which key it waited for and how long.
    if (!adapter.error().ok()) return adapter.error().WithContext(failed);
    return FromGloo(failed, GlooMessage(e.what()), options.timeout);
  } catch (...) {
    if (!adapter.error().ok()) return adapter.error().WithContext(failed);
    return Unavailable("{}: unknown exception from Gloo", failed);
  }
  return std::unique_ptr<Communicator>(new GlooCommunicator(std::move(context), options.timeout));
}

}  // namespace breakeven::engine
