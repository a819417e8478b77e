#include "engine/tensor_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace breakeven::engine {

std::string ShapeString(const std::vector<int64_t>& shape) {
  if (shape.empty()) return "scalar";
  return fmt::format("{}", fmt::join(shape, "x"));
}

Status WriteFileAtomically(const std::string& path, const std::vector<std::string_view>& parts) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    int err = errno;
    if (err == EACCES || err == EPERM) {
      return PermissionDenied("{}: cannot create: {}", tmp, std::strerror(err));
    }
    if (err == ENOENT || err == ENOTDIR)
      return NotFound("{}: cannot create: {}", tmp, std::strerror(err));
    return Unavailable("{}: cannot create: {}", tmp, std::strerror(err));
  }
  auto fail = [&](std::string_view what, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    if (err == ENOSPC || err == EDQUOT)
      return ResourceExhausted("{}: {}: {}", tmp, what, std::strerror(err));
    return Unavailable("{}: {}: {}", tmp, what, std::strerror(err));
  };
  for (std::string_view part : parts) {
    const char* p = part.data();
    size_t left = part.size();
    while (left > 0) {
      ssize_t n = ::write(fd, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail("cannot write", errno);
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  if (::fsync(fd) != 0) return fail("cannot sync", errno);
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Unavailable("{}: cannot close: {}", tmp, std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Unavailable("cannot rename {} to {}: {}", tmp, path, std::strerror(err));
  }
  return Status::Ok();
}

std::optional<uint64_t> TensorByteSize(const std::vector<int64_t>& shape, DType dtype) {
  uint64_t n = DTypeSize(dtype);
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return std::nullopt;
  }
  return n;
}

Status CheckTensorToWrite(const std::string& path, const TensorToWrite& t,
                          std::set<std::string_view>* names, std::string_view type_name) {
  if (!names->insert(t.name).second) {
    return InvalidArgument("{}: tensor '{}' is given more than once", path, t.name);
  }
  std::optional<uint64_t> bytes = TensorByteSize(t.shape, t.dtype);
  if (!bytes) {
    return InvalidArgument("{}: tensor '{}': shape {} must be non-negative and fit in 64 bits",
                           path, t.name, ShapeString(t.shape));
  }
  if (t.data.size() != *bytes) {
    return InvalidArgument("{}: tensor '{}': data has {} bytes, but shape {} of {} needs {}", path,
                           t.name, t.data.size(), ShapeString(t.shape), type_name, *bytes);
  }
  return Status::Ok();
}

}  // namespace breakeven::engine
