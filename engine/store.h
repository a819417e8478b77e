// Store: the key/value rendezvous through which the ranks of a tensor-parallel group find each
// other (Gloo's pair addresses; later NCCL's unique id). Keys are written once and never
// reused: callers prefix them with the run id and attempt, so a restarted attempt never reads a
// previous attempt's values.
//
// FileStore keeps keys as files in one directory, for the ranks of a standalone run on one
// host; the cluster path puts the scheduler behind the same interface.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace breakeven::engine {

class Store {
 public:
  virtual ~Store() = default;
  // Publishes `value` under `key`. Writing a key twice is an error (kAlreadyExists).
  virtual Status Set(const std::string& key, const std::string& value) = 0;
  // Waits until `key` exists, then returns its value. kDeadlineExceeded after `timeout`, with a
  // message naming the key.
  virtual Result<std::string> Get(const std::string& key, Millis timeout) = 0;
};

class FileStore final : public Store {
 public:
  // `dir` is created if missing. Keys may contain any characters (up to about 200 bytes once
  // encoded into safe file names). A value appears atomically and at most once: it is written
  // to a temporary file, then hard-linked into place, which fails if the key exists.
  static Result<std::unique_ptr<FileStore>> Open(const std::string& dir);

  Status Set(const std::string& key, const std::string& value) override;
  Result<std::string> Get(const std::string& key, Millis timeout) override;

 private:
  explicit FileStore(std::string dir) : dir_(std::move(dir)) {}
  std::string PathFor(const std::string& key) const;

  std::string dir_;
};

}  // namespace breakeven::engine
