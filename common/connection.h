// FramedConnection: one TCP connection carrying breakeven.v1.Envelope frames, for Asio
// coroutines.
//
// Shape (as in the Asio/Beast examples): the owner runs one reader coroutine calling Read() and
// co_spawns Writer() once; Send() queues a frame and never blocks. A watchdog closes the socket
// when a Read() passes its deadline. All members are used from one thread (the io_context
// that owns the socket runs on a single thread); the object is shared_ptr-owned so that the
// writer and watchdog coroutines keep it alive.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <string>

#include "common/asio.h"
#include "common/framing.h"
#include "common/status.h"
#include "proto/breakeven.pb.h"

namespace breakeven {

struct ConnectionLimits {
  size_t max_frame_bytes = kDefaultMaxFrameBytes;
  // A peer that lets this much outgoing data pile up is not reading; it is disconnected.
  size_t max_queued_bytes = 64 << 20;
};

class FramedConnection : public std::enable_shared_from_this<FramedConnection> {
 public:
  FramedConnection(tcp::socket socket, ConnectionLimits limits);
  ~FramedConnection();

  FramedConnection(const FramedConnection&) = delete;
  FramedConnection& operator=(const FramedConnection&) = delete;

  // Starts the writer and the read watchdog. Call once, from the connection's executor.
  void Start();

  // Waits for the next frame. Errors: the peer closed or reset the connection (kUnavailable),
  // after which the connection is closed; no complete frame came within `timeout`
  // (kDeadlineExceeded); or a frame broke the framing rules (kInvalidArgument /
  // kResourceExhausted), after which every later Read fails. After the last two the connection
  // stays open so the caller can send an Error before closing; it must then close it.
  awaitable<Result<v1::Envelope>> Read(std::chrono::milliseconds timeout);

  // Queues a frame for sending. Returns false when the connection is closed or the peer has
  // stopped reading (the queue passed max_queued_bytes; the connection is then closed).
  bool Send(const v1::Envelope& envelope);

  // Sends an Error frame, lets the writer flush it (bounded by `linger`), then closes.
  void SendErrorAndClose(v1::ErrorCode code, const std::string& message, uint64_t request_id = 0,
                         std::chrono::milliseconds linger = std::chrono::milliseconds(200));

  // Idempotent. Pending Read()s complete with an error.
  void Close();

  bool is_open() const { return open_; }
  // True once SendErrorAndClose has been called: the connection closes by itself soon.
  bool closing() const { return closing_; }
  const std::string& peer() const { return peer_; }
  size_t queued_bytes() const { return queued_bytes_; }

 private:
  awaitable<void> Writer(std::shared_ptr<FramedConnection> self);
  awaitable<void> Watchdog(std::shared_ptr<FramedConnection> self);

  tcp::socket socket_;
  ConnectionLimits limits_;
  std::string peer_;
  FrameDecoder decoder_;
  Status broken_;  // set when the incoming stream broke the framing rules
  bool open_ = true;
  bool closing_ = false;  // no more sends; close once the queue drains

  std::deque<std::string> queue_;
  size_t queued_bytes_ = 0;
  asio::steady_timer wake_writer_;

  std::chrono::steady_clock::time_point read_deadline_;
  bool read_timed_out_ = false;
  asio::steady_timer watchdog_;
  asio::steady_timer linger_;
};

// The error frame sent before closing a connection that broke the protocol.
v1::Envelope MakeError(v1::ErrorCode code, const std::string& message, uint64_t request_id = 0);

// Maps a Status code to the wire error code and back.
v1::ErrorCode ToWireCode(StatusCode code);
StatusCode FromWireCode(v1::ErrorCode code);

}  // namespace breakeven
