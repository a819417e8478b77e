// Fixed-width text tables for the CLI: a header row in capitals, columns padded to their widest
// cell, two spaces between columns, no trailing spaces.
#pragma once

#include <string>
#include <vector>

namespace breakeven::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace breakeven::cli
