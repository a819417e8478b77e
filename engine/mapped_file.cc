#include "engine/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace breakeven::engine {

namespace {

Status OpenError(const std::string& path, int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return NotFound("{}: no such file", path);
    case EACCES:
    case EPERM:
      return PermissionDenied("{}: cannot open for reading: {}", path, std::strerror(err));
    default:
      return Unavailable("{}: cannot open: {}", path, std::strerror(err));
  }
}

}  // namespace

Result<std::shared_ptr<MappedFile>> MappedFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return OpenError(path, errno);

  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Unavailable("{}: cannot stat: {}", path, std::strerror(err));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return InvalidArgument("{}: is a directory, not a model file", path);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument("{}: is not a regular file", path);
  }
  if (st.st_size == 0) {
    ::close(fd);
    return InvalidArgument("{}: file is empty (0 bytes)", path);
  }

  auto size = static_cast<size_t>(st.st_size);
  void* addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);  // the mapping keeps the file open
  if (addr == MAP_FAILED) {
    return ResourceExhausted("{}: cannot map {} bytes: {}", path, size, std::strerror(err));
  }
  return std::shared_ptr<MappedFile>(new MappedFile(path, static_cast<const uint8_t*>(addr), size));
}

MappedFile::~MappedFile() { ::munmap(const_cast<uint8_t*>(data_), size_); }

}  // namespace breakeven::engine
