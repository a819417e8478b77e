#include "tests/deploy/deploy_support.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "tests/support/process.h"

namespace breakeven::testing {

std::string SourcePath(const std::string& relative) {
  return std::string(BREAKEVEN_SOURCE_DIR) + "/" + relative;
}

std::string ReadSource(const std::string& relative) {
  std::ifstream in(SourcePath(relative));
  if (!in) {
    ADD_FAILURE() << "cannot read " << SourcePath(relative);
    return "";
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::optional<std::string> Which(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

std::set<std::string> FlagsIn(const std::string& text) {
  static const std::regex kFlag(R"((?:^|[\s"'\[,])(--[a-z][a-z0-9-]*))");
  std::set<std::string> flags;
  for (std::sregex_iterator it(text.begin(), text.end(), kFlag), end; it != end; ++it) {
    flags.insert((*it)[1].str());
  }
  return flags;
}

std::set<std::string> FlagsAccepted(const std::string& binary) {
  CommandResult help = RunCommand({binary, "--help"});
  EXPECT_EQ(help.exit_code, 0) << binary << " --help: " << help.err;
  return FlagsIn(help.out);
}

std::vector<std::string> LogicalLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line, joined;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\\') {
      joined += line.substr(0, line.size() - 1) + " ";
      continue;
    }
    lines.push_back(joined + line);
    joined.clear();
  }
  if (!joined.empty()) lines.push_back(joined);
  return lines;
}

std::string LinesContaining(const std::string& output, const std::string& needle) {
  std::istringstream in(output);
  std::string line, found;
  while (std::getline(in, line)) {
    if (line.find(needle) != std::string::npos) found += line + "\n";
  }
  return found;
}

std::string ReplaceAll(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

}  // namespace breakeven::testing
