// FileStore: one file per key in a directory. A value is written to a temporary file and then
// linked into place, so a reader sees either no file or the whole value, and two writers of one
// key cannot both succeed.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "engine/store.h"

namespace breakeven::engine {
namespace {

// Longest encoded key; file names are limited to 255 bytes and a temporary name adds a suffix.
constexpr size_t kMaxEncodedKey = 200;
constexpr Millis kFirstPoll{1};
constexpr Millis kMaxPoll{20};

// Key file names start with "k-" and temporary files with ".tmp-", so neither can be "." or ".."
// or collide with the other.
std::string EncodeKey(const std::string& key) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "k-";
  for (unsigned char c : key) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
        c == '_' || c == '-') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

Status ErrnoStatus(int err, const std::string& what) {
  std::string message = fmt::format("{}: {}", what, std::strerror(err));
  switch (err) {
    case EACCES:
    case EPERM:
    case EROFS:
      return Status(StatusCode::kPermissionDenied, std::move(message));
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
      return Status(StatusCode::kResourceExhausted, std::move(message));
    default:
      return Status(StatusCode::kUnavailable, std::move(message));
  }
}

Status WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status(StatusCode::kUnavailable, std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// Reads the whole file at `path`. NotFound when it does not exist (yet).
Result<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return NotFound("no file");
    return ErrnoStatus(err, "open");
  }
  std::string out;
  char buf[64 * 1024];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return ErrnoStatus(err, "read");
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace

Result<std::unique_ptr<FileStore>> FileStore::Open(const std::string& dir) {
  if (dir.empty()) return InvalidArgument("file store: empty directory name");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return ErrnoStatus(ec.value(), fmt::format("file store {}: cannot create directory", dir));
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    return FailedPrecondition("file store {}: not a directory", dir);
  }
  return std::unique_ptr<FileStore>(new FileStore(dir));
}

std::string FileStore::PathFor(const std::string& key) const { return dir_ + "/" + EncodeKey(key); }

Status FileStore::Set(const std::string& key, const std::string& value) {
  std::string path = PathFor(key);
  if (path.size() - dir_.size() - 1 > kMaxEncodedKey) {
    return InvalidArgument("file store {}: key '{}' is too long ({} bytes)", dir_, key, key.size());
  }
  // A cheap early answer; the link() below is what makes the refusal race-free.
  if (::access(path.c_str(), F_OK) == 0) {
    return AlreadyExists("file store {}: key '{}' is already set", dir_, key);
  }

  static std::atomic<uint64_t> counter{0};
  std::string tmp = fmt::format("{}/.tmp-{}-{}-{}", dir_, ::getpid(), counter.fetch_add(1),
                                path.substr(dir_.size() + 1));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    return ErrnoStatus(errno,
                       fmt::format("file store {}: cannot create a file for key '{}'", dir_, key));
  }
  Status written = WriteAll(fd, value);
  if (::close(fd) != 0 && written.ok()) {
    written = Status(StatusCode::kUnavailable, std::strerror(errno));
  }
  if (!written.ok()) {
    ::unlink(tmp.c_str());
    return Status(written.code(), fmt::format("file store {}: cannot write key '{}': {}", dir_, key,
                                              written.message()));
  }

  // link() fails with EEXIST if the key appeared meanwhile, where rename() would replace it.
  if (::link(tmp.c_str(), path.c_str()) == 0) {
    ::unlink(tmp.c_str());
    return Status::Ok();
  }
  int err = errno;
  if (err == EEXIST) {
    ::unlink(tmp.c_str());
    return AlreadyExists("file store {}: key '{}' is already set", dir_, key);
  }
  if (err != EPERM && err != EOPNOTSUPP && err != EXDEV && err != EMLINK) {
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, fmt::format("file store {}: cannot publish key '{}'", dir_, key));
  }
  // A file system without hard links: check, then rename (atomic appearance, but two racing
  // writers of one key are no longer told apart).
  if (::access(path.c_str(), F_OK) == 0) {
    ::unlink(tmp.c_str());
    return AlreadyExists("file store {}: key '{}' is already set", dir_, key);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, fmt::format("file store {}: cannot publish key '{}'", dir_, key));
  }
  return Status::Ok();
}

Result<std::string> FileStore::Get(const std::string& key, Millis timeout) {
  std::string path = PathFor(key);
  if (path.size() - dir_.size() - 1 > kMaxEncodedKey) {
    return InvalidArgument("file store {}: key '{}' is too long ({} bytes)", dir_, key, key.size());
  }
  const SteadyTime deadline = std::chrono::steady_clock::now() + timeout;
  Millis poll = kFirstPoll;
  while (true) {
    Result<std::string> got = ReadFile(path);
    if (got.ok()) return got;
    if (got.status().code() != StatusCode::kNotFound) {
      return Status(got.status().code(), fmt::format("file store {}: cannot read key '{}': {}",
                                                     dir_, key, got.status().message()));
    }
    SteadyTime now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      return DeadlineExceeded("file store {}: key '{}' was not set within {} ms", dir_, key,
                              timeout.count());
    }
    std::this_thread::sleep_for(std::min<SteadyTime::duration>(poll, deadline - now));
    poll = std::min(poll * 2, kMaxPoll);
  }
}

}  // namespace breakeven::engine
