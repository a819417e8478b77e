// Logging for the daemons: spdlog to stderr, one line per event, key=value details.
#pragma once

#include <string>

#include "common/status.h"

namespace breakeven {

// Sets up the default logger for a program ("scheduler", "node", ...). `level` is one of trace,
// debug, info, warn, error; `what` names the flag in the error.
Status InitLogging(const std::string& program, const std::string& level,
                   std::string_view what = "--log-level");

}  // namespace breakeven
