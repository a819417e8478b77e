// Framing: protobuf's varint-delimited format, parsed incrementally with a size limit.
#include "common/framing.h"

#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/delimited_message_util.h>
#include <gtest/gtest.h>

#include "proto/breakeven.pb.h"

namespace breakeven {
namespace {

v1::Envelope Heartbeat(uint64_t node, uint64_t seq) {
  v1::Envelope e;
  e.set_request_id(seq);
  e.mutable_heartbeat()->set_node_id(node);
  e.mutable_heartbeat()->set_seq(seq);
  return e;
}

std::string VarintPrefix(uint64_t n) {
  std::string out;
  while (n >= 0x80) {
    out += static_cast<char>((n & 0x7f) | 0x80);
    n >>= 7;
  }
  out += static_cast<char>(n);
  return out;
}

TEST(Framing, ManyFramesInOneBufferComeOutInOrder) {
  std::string stream;
  for (uint64_t i = 1; i <= 100; ++i) AppendFrame(Heartbeat(7, i), &stream);
  FrameDecoder decoder;
  decoder.Append(stream);
  for (uint64_t i = 1; i <= 100; ++i) {
    v1::Envelope e;
    Result<bool> got = decoder.Next(&e);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_TRUE(*got);
    EXPECT_EQ(e.heartbeat().seq(), i);
  }
  v1::Envelope e;
  EXPECT_FALSE(*decoder.Next(&e));
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
}

TEST(Framing, BytesArrivingOneAtATimeMakeTheSameFrames) {
  v1::Envelope big;
  big.mutable_register_node()->set_name(std::string(300, 'n'));  // a two-byte length prefix
  std::string stream = EncodeFrame(big) + EncodeFrame(Heartbeat(1, 2));
  FrameDecoder decoder;
  std::vector<v1::Envelope> out;
  for (char c : stream) {
    decoder.Append(std::string_view(&c, 1));
    v1::Envelope e;
    Result<bool> got = decoder.Next(&e);
    ASSERT_TRUE(got.ok());
    if (*got) out.push_back(e);
  }
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].register_node().name(), std::string(300, 'n'));
  EXPECT_EQ(out[1].heartbeat().seq(), 2u);
}

TEST(Framing, InteroperatesWithProtobufsOwnDelimitedFormat) {
  // Written by protobuf's util, read by us.
  std::string theirs;
  {
    google::protobuf::io::StringOutputStream out(&theirs);
    for (uint64_t i = 1; i <= 3; ++i) {
      ASSERT_TRUE(
          google::protobuf::util::SerializeDelimitedToZeroCopyStream(Heartbeat(9, i), &out));
    }
  }
  FrameDecoder decoder;
  decoder.Append(theirs);
  for (uint64_t i = 1; i <= 3; ++i) {
    v1::Envelope e;
    ASSERT_TRUE(*decoder.Next(&e));
    EXPECT_EQ(e.heartbeat().seq(), i);
  }

  // Written by us, read by protobuf's util.
  std::string ours;
  for (uint64_t i = 1; i <= 3; ++i) AppendFrame(Heartbeat(4, i), &ours);
  google::protobuf::io::ArrayInputStream in(ours.data(), static_cast<int>(ours.size()));
  for (uint64_t i = 1; i <= 3; ++i) {
    v1::Envelope e;
    bool clean_eof = false;
    ASSERT_TRUE(google::protobuf::util::ParseDelimitedFromZeroCopyStream(&e, &in, &clean_eof));
    EXPECT_EQ(e.heartbeat().seq(), i);
  }
}

TEST(Framing, OversizedFrameIsRefusedAsSoonAsItsLengthIsKnown) {
  FrameDecoder decoder(1024);
  decoder.Append(VarintPrefix(1025));  // no body at all
  v1::Envelope e;
  Result<bool> got = decoder.Next(&e);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(got.status().message().find("1025"), std::string::npos);
  EXPECT_NE(got.status().message().find("1024"), std::string::npos);
}

TEST(Framing, FrameExactlyAtTheLimitIsAccepted) {
  v1::Envelope e;
  e.mutable_error()->set_message(std::string(1000, 'x'));
  std::string frame = EncodeFrame(e);
  size_t body = e.ByteSizeLong();
  FrameDecoder decoder(body);
  decoder.Append(frame);
  v1::Envelope out;
  Result<bool> got = decoder.Next(&out);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got);
}

TEST(Framing, LengthPrefixLongerThanFiveBytesIsMalformed) {
  FrameDecoder decoder;
  decoder.Append(std::string(5, '\x80'));
  v1::Envelope e;
  Result<bool> got = decoder.Next(&e);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(got.status().message().find("length prefix"), std::string::npos);
}

TEST(Framing, IncompletePrefixWaitsForMoreBytes) {
  FrameDecoder decoder;
  decoder.Append(std::string(4, '\x80'));  // four continuation bytes: could still be valid
  v1::Envelope e;
  Result<bool> got = decoder.Next(&e);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(*got);
}

TEST(Framing, BodyThatIsNotAnEnvelopeIsMalformed) {
  // Field number 0 is invalid in protobuf's encoding.
  std::string body = "\x00\x01\x02\x03";
  body.resize(4);
  body[0] = 0;
  FrameDecoder decoder;
  decoder.Append(VarintPrefix(body.size()) + body);
  v1::Envelope e;
  Result<bool> got = decoder.Next(&e);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("breakeven.v1.Envelope"), std::string::npos)
      << got.status().message();
}

TEST(Framing, ZeroLengthFrameIsAnEmptyEnvelope) {
  FrameDecoder decoder;
  decoder.Append(std::string(1, '\0'));
  v1::Envelope e;
  ASSERT_TRUE(*decoder.Next(&e));
  EXPECT_EQ(e.body_case(), v1::Envelope::BODY_NOT_SET);
}

TEST(Framing, LargeFrameSplitAcrossReadsIsReassembled) {
  v1::Envelope e;
  e.mutable_error()->set_message(std::string(200000, 'q'));
  std::string frame = EncodeFrame(e);
  FrameDecoder decoder;
  size_t pos = 0;
  v1::Envelope out;
  bool done = false;
  while (pos < frame.size()) {
    size_t n = std::min<size_t>(4096, frame.size() - pos);
    auto room = decoder.Prepare(n);
    std::copy_n(frame.data() + pos, n, room.data());
    decoder.Commit(n);
    pos += n;
    Result<bool> got = decoder.Next(&out);
    ASSERT_TRUE(got.ok());
    done = *got;
    if (pos < frame.size()) {
      EXPECT_FALSE(done);
    }
  }
  ASSERT_TRUE(done);
  EXPECT_EQ(out.error().message().size(), 200000u);
}

}  // namespace
}  // namespace breakeven
