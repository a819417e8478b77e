// Small facts about the running process and host.
#pragma once

#include <string>

namespace breakeven {

// A random 128-bit id in UUID text form, new for each call; a process takes one at start as its
// boot id, so a peer can tell a restart from a reconnect.
std::string NewBootId();

// The host name, or "localhost" if it cannot be read.
std::string HostName();

// Raises the soft open-files limit to the hard limit (a scheduler holds one socket per node).
// Returns the new soft limit.
long RaiseOpenFileLimit();

}  // namespace breakeven
