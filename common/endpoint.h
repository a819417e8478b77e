// HOST:PORT addresses as given on command lines.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace breakeven {

struct HostPort {
  std::string host;  // a name or an IPv4/IPv6 literal (without brackets)
  uint16_t port = 0;

  // "host:port", with brackets around IPv6 literals.
  std::string ToString() const;
};

// Parses "host:port", "[v6addr]:port" or ":port" (host defaults to 0.0.0.0). `what` names the
// source in errors, e.g. "--listen". Port 0 is accepted only when allow_port_zero is true (a
// listener that lets the kernel pick).
Result<HostPort> ParseHostPort(std::string_view text, std::string_view what,
                               bool allow_port_zero = false);

}  // namespace breakeven
