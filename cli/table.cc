#include "cli/table.h"

#include <algorithm>

namespace breakeven::cli {

size_t DisplayWidth(const std::string& s) {
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xc0) != 0x80; }));
}

void Table::AlignRight(size_t index) {
  if (right_.size() <= index) right_.resize(index + 1, false);
  right_[index] = true;
}

std::string Table::Render() const {
  std::vector<size_t> widths(header_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], DisplayWidth(row[i]));
    }
  };
  measure(header_);
  for (const auto& r : rows_) measure(r);

  std::string out;
  auto emit = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      size_t pad = widths[i] - DisplayWidth(cell);
      if (i < right_.size() && right_[i]) {
        line.append(pad, ' ');
        line += cell;
        if (i + 1 < widths.size()) line.append(2, ' ');
      } else {
        line += cell;
        if (i + 1 < widths.size()) line.append(pad + 2, ' ');
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  };
  emit(header_);
  for (const auto& r : rows_) emit(r);
  return out;
}

}  // namespace breakeven::cli
