// Cluster and admin tokens.
//
// The cluster token lets nodes join and admin clients read; the admin token (the cluster token
// when none is configured) is needed to change cluster state. Tokens live in files (mode 0600,
// one line); comparisons take the same time whatever the input.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace breakeven {

inline constexpr size_t kMinTokenLength = 16;

// True when a and b are equal. The time taken depends only on the lengths, not on where the
// first difference is.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Reads a token file: the first line, surrounding whitespace removed. Errors name the file: it
// cannot be read, is empty, or holds a token shorter than kMinTokenLength. `what` names the flag
// the path came from (e.g. "--token-file").
Result<std::string> LoadTokenFile(const std::string& path, std::string_view what);

enum class Access { kNone, kRead, kAdmin };

class TokenChecker {
 public:
  // An empty admin_token means "the cluster token is also the admin token".
  TokenChecker(std::string cluster_token, std::string admin_token);

  // Compares against both tokens every time, so timing does not tell which (if any) matched.
  Access Check(std::string_view presented) const;

 private:
  std::string cluster_token_;
  std::string admin_token_;
};

}  // namespace breakeven
