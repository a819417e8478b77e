// Helpers for the tests of deploy/: the files under test, external tools (used when installed),
// and the command-line flags that deployment files pass to the daemons.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace breakeven::testing {

// A path in the source tree, e.g. SourcePath("deploy/systemd/breakeven-node.service").
std::string SourcePath(const std::string& relative);

// The text of a file in the source tree; fails the test (and returns "") when it cannot be read.
std::string ReadSource(const std::string& relative);

// The full path of `program` on $PATH, or nullopt.
std::optional<std::string> Which(const std::string& program);

// Every "--flag" named in `text` (a command line, a YAML args list, a shell line), without any
// "=value"; "--" alone and flags inside words (a--b) are not counted.
std::set<std::string> FlagsIn(const std::string& text);

// The flags `binary --help` lists.
std::set<std::string> FlagsAccepted(const std::string& binary);

// The lines of `text`, with "\\\n" continuations joined (as systemd and the shell read them).
std::vector<std::string> LogicalLines(const std::string& text);

// Lines of `output` that contain `needle`, joined with newlines ("" when none).
std::string LinesContaining(const std::string& output, const std::string& needle);

// Replaces every occurrence of `from` in `text`.
std::string ReplaceAll(std::string text, const std::string& from, const std::string& to);

}  // namespace breakeven::testing
