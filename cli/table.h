// Fixed-width text tables for the CLI: a header row in capitals, columns padded to their widest
// cell, two spaces between columns, no trailing spaces. Columns are left-aligned unless marked
// right-aligned (numbers line up on their last digit).
#pragma once

#include <string>
#include <vector>

namespace breakeven::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  // Right-aligns column `index` (header included).
  void AlignRight(size_t index);
  std::string Render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<bool> right_;
};

// Display width of UTF-8 text: code points, not bytes.
size_t DisplayWidth(const std::string& s);

}  // namespace breakeven::cli
