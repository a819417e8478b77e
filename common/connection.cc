#include "common/connection.h"

namespace breakeven {

namespace {
// Small on purpose: a scheduler holds one buffer per node and heartbeats are a few bytes. A
// frame whose length is known gets room for all of it at once (FrameDecoder::Next).
constexpr size_t kReadChunkBytes = 2 << 10;
}  // namespace

FramedConnection::FramedConnection(tcp::socket socket, ConnectionLimits limits)
    : socket_(std::move(socket)),
      limits_(limits),
      decoder_(limits.max_frame_bytes),
      wake_writer_(socket_.get_executor()),
      watchdog_(socket_.get_executor()),
      linger_(socket_.get_executor()) {
  boost::system::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  peer_ = ec ? "unknown" : fmt::format("{}:{}", ep.address().to_string(), ep.port());
  socket_.set_option(tcp::no_delay(true), ec);
  wake_writer_.expires_at(std::chrono::steady_clock::time_point::max());
  read_deadline_ = std::chrono::steady_clock::time_point::max();
}

FramedConnection::~FramedConnection() = default;

void FramedConnection::Start() {
  asio::co_spawn(socket_.get_executor(), Writer(shared_from_this()), asio::detached);
  asio::co_spawn(socket_.get_executor(), Watchdog(shared_from_this()), asio::detached);
}

awaitable<Result<v1::Envelope>> FramedConnection::Read(std::chrono::milliseconds timeout) {
  v1::Envelope envelope;
  for (;;) {
    if (!open_) co_return Unavailable("connection closed");
    if (!broken_.ok()) co_return broken_;
    Result<bool> got = decoder_.Next(&envelope);
    if (!got.ok()) {
      // The byte stream is out of step and cannot be resynchronised; the caller decides whether
      // to explain (SendErrorAndClose) or just Close.
      broken_ = got.status();
      co_return broken_;
    }
    if (*got) break;

    read_deadline_ = std::chrono::steady_clock::now() + timeout;
    // The watchdog sleeps until the earliest deadline it knows; wake it only when this one is
    // earlier, so a busy connection costs one timer wake-up per timeout, not one per frame.
    if (watchdog_.expiry() > read_deadline_) watchdog_.cancel();
    auto room = decoder_.Prepare(kReadChunkBytes);
    boost::system::error_code ec;
    size_t n = co_await socket_.async_read_some(asio::buffer(room.data(), room.size()),
                                                asio::redirect_error(use_awaitable, ec));
    read_deadline_ = std::chrono::steady_clock::time_point::max();
    if (ec && read_timed_out_ && open_) {
      // Still open for writing: the caller may explain before closing.
      read_timed_out_ = false;
      co_return DeadlineExceeded("no frame within {} ms", timeout.count());
    }
    if (ec) {
      Close();
      if (ec == asio::error::eof) co_return Unavailable("peer closed the connection");
      co_return Unavailable("read failed: {}", ec.message());
    }
    decoder_.Commit(n);
  }
  co_return envelope;
}

bool FramedConnection::Send(const v1::Envelope& envelope) {
  if (!open_ || closing_) return false;
  std::string frame = EncodeFrame(envelope);
  if (queued_bytes_ + frame.size() > limits_.max_queued_bytes) {
    Close();
    return false;
  }
  queued_bytes_ += frame.size();
  queue_.push_back(std::move(frame));
  wake_writer_.cancel();
  return true;
}

void FramedConnection::SendErrorAndClose(v1::ErrorCode code, const std::string& message,
                                         uint64_t request_id, std::chrono::milliseconds linger) {
  if (!open_) return;
  Send(MakeError(code, message, request_id));
  closing_ = true;
  // The writer closes the socket once the queue is empty; the linger timer bounds the wait for
  // a peer that does not read.
  linger_.expires_after(linger);
  linger_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->Close();
  });
  wake_writer_.cancel();
}

void FramedConnection::Close() {
  if (!open_) return;
  open_ = false;
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  wake_writer_.cancel();
  watchdog_.cancel();
  linger_.cancel();
  queue_.clear();
  queued_bytes_ = 0;
}

awaitable<void> FramedConnection::Writer(std::shared_ptr<FramedConnection> self) {
  std::vector<asio::const_buffer> buffers;
  while (open_) {
    if (queue_.empty()) {
      if (closing_) {
        Close();
        break;
      }
      boost::system::error_code ec;
      co_await wake_writer_.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    // Write everything queued so far in one gathered write.
    size_t count = queue_.size();
    buffers.clear();
    for (size_t i = 0; i < count; ++i) buffers.push_back(asio::buffer(queue_[i]));
    boost::system::error_code ec;
    co_await asio::async_write(socket_, buffers, asio::redirect_error(use_awaitable, ec));
    if (ec || !open_) {
      Close();
      break;
    }
    for (size_t i = 0; i < count; ++i) {
      queued_bytes_ -= queue_.front().size();
      queue_.pop_front();
    }
  }
}

awaitable<void> FramedConnection::Watchdog(std::shared_ptr<FramedConnection> self) {
  while (open_) {
    watchdog_.expires_at(read_deadline_);
    boost::system::error_code ec;
    co_await watchdog_.async_wait(asio::redirect_error(use_awaitable, ec));
    if (open_ && read_deadline_ <= std::chrono::steady_clock::now()) {
      read_timed_out_ = true;
      boost::system::error_code ignored;
      socket_.cancel(ignored);
    }
  }
}

v1::Envelope MakeError(v1::ErrorCode code, const std::string& message, uint64_t request_id) {
  v1::Envelope env;
  env.set_request_id(request_id);
  env.mutable_error()->set_code(code);
  env.mutable_error()->set_message(message);
  return env;
}

v1::ErrorCode ToWireCode(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return v1::ERROR_CODE_UNSPECIFIED;
    case StatusCode::kInvalidArgument:
      return v1::ERROR_CODE_INVALID_ARGUMENT;
    case StatusCode::kNotFound:
      return v1::ERROR_CODE_NOT_FOUND;
    case StatusCode::kAlreadyExists:
      return v1::ERROR_CODE_ALREADY_EXISTS;
    case StatusCode::kPermissionDenied:
      return v1::ERROR_CODE_PERMISSION_DENIED;
    case StatusCode::kUnauthenticated:
      return v1::ERROR_CODE_UNAUTHENTICATED;
    case StatusCode::kFailedPrecondition:
      return v1::ERROR_CODE_FAILED_PRECONDITION;
    case StatusCode::kResourceExhausted:
      return v1::ERROR_CODE_RESOURCE_EXHAUSTED;
    case StatusCode::kUnavailable:
      return v1::ERROR_CODE_UNAVAILABLE;
    case StatusCode::kDeadlineExceeded:
      return v1::ERROR_CODE_UNAVAILABLE;
    case StatusCode::kDataLoss:
      return v1::ERROR_CODE_INTERNAL;
    case StatusCode::kInternal:
      return v1::ERROR_CODE_INTERNAL;
  }
  return v1::ERROR_CODE_INTERNAL;
}

StatusCode FromWireCode(v1::ErrorCode code) {
  switch (code) {
    case v1::ERROR_CODE_INVALID_ARGUMENT:
      return StatusCode::kInvalidArgument;
    case v1::ERROR_CODE_NOT_FOUND:
      return StatusCode::kNotFound;
    case v1::ERROR_CODE_ALREADY_EXISTS:
      return StatusCode::kAlreadyExists;
    case v1::ERROR_CODE_PERMISSION_DENIED:
      return StatusCode::kPermissionDenied;
    case v1::ERROR_CODE_UNAUTHENTICATED:
      return StatusCode::kUnauthenticated;
    case v1::ERROR_CODE_FAILED_PRECONDITION:
      return StatusCode::kFailedPrecondition;
    case v1::ERROR_CODE_RESOURCE_EXHAUSTED:
      return StatusCode::kResourceExhausted;
    case v1::ERROR_CODE_UNAVAILABLE:
      return StatusCode::kUnavailable;
    case v1::ERROR_CODE_PROTOCOL:
      return StatusCode::kInvalidArgument;
    default:
      return StatusCode::kInternal;
  }
}

}  // namespace breakeven
