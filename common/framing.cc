#include "common/framing.h"

#include <google/protobuf/io/coded_stream.h>

#include <cstring>

namespace breakeven {

using google::protobuf::io::CodedOutputStream;

void AppendFrame(const google::protobuf::MessageLite& msg, std::string* out) {
  size_t body = msg.ByteSizeLong();
  size_t prefix = CodedOutputStream::VarintSize32(static_cast<uint32_t>(body));
  size_t old = out->size();
  out->resize(old + prefix + body);
  auto* p = reinterpret_cast<uint8_t*>(out->data() + old);
  p = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(body), p);
  msg.SerializeWithCachedSizesToArray(p);
}

std::string EncodeFrame(const google::protobuf::MessageLite& msg) {
  std::string out;
  AppendFrame(msg, &out);
  return out;
}

FrameDecoder::FrameDecoder(size_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {}

std::span<char> FrameDecoder::Prepare(size_t min_bytes) {
  if (begin_ == end_) begin_ = end_ = 0;
  if (buf_.size() - end_ < min_bytes) {
    // Move the unconsumed bytes to the front before growing.
    if (begin_ > 0) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (buf_.size() - end_ < min_bytes) buf_.resize(end_ + min_bytes);
  }
  return {buf_.data() + end_, buf_.size() - end_};
}

void FrameDecoder::Commit(size_t n) { end_ += n; }

void FrameDecoder::Append(std::string_view bytes) {
  auto room = Prepare(bytes.size());
  std::memcpy(room.data(), bytes.data(), bytes.size());
  Commit(bytes.size());
}

Result<bool> FrameDecoder::Next(google::protobuf::MessageLite* msg) {
  const auto* p = reinterpret_cast<const uint8_t*>(buf_.data() + begin_);
  size_t avail = end_ - begin_;

  uint64_t length = 0;
  size_t prefix = 0;
  for (;;) {
    if (prefix == avail) return false;  // the length prefix is not complete yet
    uint8_t byte = p[prefix];
    length |= static_cast<uint64_t>(byte & 0x7f) << (7 * prefix);
    ++prefix;
    if ((byte & 0x80) == 0) break;
    if (prefix == kMaxLengthPrefixBytes) {
      return InvalidArgument("malformed frame: length prefix runs past {} bytes",
                             kMaxLengthPrefixBytes);
    }
  }
  if (length > max_frame_bytes_) {
    return ResourceExhausted("frame of {} bytes exceeds the limit of {} bytes", length,
                             max_frame_bytes_);
  }
  if (avail - prefix < length) {
    // Make sure the whole frame will fit without another reallocation.
    if (buf_.size() - begin_ < prefix + length) Prepare(prefix + length - avail);
    return false;
  }
  const auto* body = reinterpret_cast<const uint8_t*>(buf_.data() + begin_ + prefix);
  if (!msg->ParseFromArray(body, static_cast<int>(length))) {
    return InvalidArgument("malformed frame: {} bytes that do not parse as {}", length,
                           msg->GetTypeName());
  }
  begin_ += prefix + length;
  return true;
}

}  // namespace breakeven
