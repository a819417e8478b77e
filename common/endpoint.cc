#include "common/endpoint.h"

#include <charconv>

namespace breakeven {

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

Result<HostPort> ParseHostPort(std::string_view text, std::string_view what, bool allow_port_zero) {
  HostPort out;
  std::string_view port_text;
  if (text.starts_with('[')) {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return InvalidArgument("{}: '{}' is not [IPV6]:PORT", what, text);
    }
    out.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return InvalidArgument("{}: '{}' has no port; expected HOST:PORT", what, text);
    }
    if (text.find(':') != colon) {
      return InvalidArgument("{}: '{}': put IPv6 addresses in brackets, as [::1]:7070", what, text);
    }
    out.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  if (out.host.empty()) out.host = "0.0.0.0";
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return InvalidArgument("{}: port '{}' in '{}' is not a number from 1 to 65535", what, port_text,
                           text);
  }
  if (port == 0 && !allow_port_zero) {
    return InvalidArgument("{}: port 0 in '{}' is not allowed here", what, text);
  }
  out.port = static_cast<uint16_t>(port);
  return out;
}

}  // namespace breakeven
