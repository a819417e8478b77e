// Varint-delimited protobuf frames: protobuf's own "delimited" format (a base-128 varint byte
// count, then the serialized message), so any protobuf library can speak to breakeven.
//
// FrameDecoder is an incremental, allocation-bounded parser for a byte stream: it refuses a frame
// whose declared size is above the limit as soon as the length prefix is complete, before any of
// its body is buffered.
#pragma once

#include <google/protobuf/message_lite.h>

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace breakeven {

inline constexpr size_t kDefaultMaxFrameBytes = 32 << 20;  // 32 MiB
// A uint32 varint never needs more than 5 bytes.
inline constexpr size_t kMaxLengthPrefixBytes = 5;

// Appends one frame holding `msg` to *out.
void AppendFrame(const google::protobuf::MessageLite& msg, std::string* out);
std::string EncodeFrame(const google::protobuf::MessageLite& msg);

class FrameDecoder {
 public:
  explicit FrameDecoder(size_t max_frame_bytes = kDefaultMaxFrameBytes);

  // Room for at least `min_bytes` more received bytes; write into it, then call Commit.
  std::span<char> Prepare(size_t min_bytes);
  void Commit(size_t n);
  // Convenience for callers holding bytes elsewhere (tests, fuzzers).
  void Append(std::string_view bytes);

  // Parses the next complete frame into *msg. Returns true when one was parsed, false when more
  // bytes are needed. An error means the stream cannot continue: a length prefix that is not a
  // valid varint, a frame above the limit, or a body that does not parse as `msg`'s type.
  Result<bool> Next(google::protobuf::MessageLite* msg);

  size_t buffered_bytes() const { return end_ - begin_; }
  size_t max_frame_bytes() const { return max_frame_bytes_; }

 private:
  size_t max_frame_bytes_;
  std::vector<char> buf_;
  size_t begin_ = 0;  // first unconsumed byte
  size_t end_ = 0;    // one past the last received byte
};

}  // namespace breakeven
