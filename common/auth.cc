#include "common/auth.h"

#include <fstream>
#include <sstream>

namespace breakeven {

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // Walk the longer input fully; fold the length difference into the result.
  size_t n = a.size() > b.size() ? a.size() : b.size();
  volatile unsigned char diff = static_cast<unsigned char>(a.size() != b.size());
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = diff | static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

Result<std::string> LoadTokenFile(const std::string& path, std::string_view what) {
  std::ifstream in(path);
  if (!in) return InvalidArgument("{}: cannot read token file '{}'", what, path);
  std::string line;
  std::getline(in, line);
  const char* ws = " \t\r\n";
  size_t begin = line.find_first_not_of(ws);
  if (begin == std::string::npos) {
    return InvalidArgument("{}: token file '{}' is empty", what, path);
  }
  size_t end = line.find_last_not_of(ws);
  std::string token = line.substr(begin, end - begin + 1);
  if (token.size() < kMinTokenLength) {
    return InvalidArgument("{}: token in '{}' has {} characters; at least {} are required", what,
                           path, token.size(), kMinTokenLength);
  }
  return token;
}

TokenChecker::TokenChecker(std::string cluster_token, std::string admin_token)
    : cluster_token_(std::move(cluster_token)),
      admin_token_(admin_token.empty() ? cluster_token_ : std::move(admin_token)) {}

Access TokenChecker::Check(std::string_view presented) const {
  bool admin = ConstantTimeEquals(presented, admin_token_);
  bool cluster = ConstantTimeEquals(presented, cluster_token_);
  if (admin) return Access::kAdmin;
  if (cluster) return Access::kRead;
  return Access::kNone;
}

}  // namespace breakeven
