#include "cli/number_format.h"

#include <fmt/format.h>

#include <cmath>

namespace breakeven::cli {

namespace {

// `value` with `decimals` digits after the point; "-0" written as "0".
std::string Fixed(double value, int decimals) {
  std::string s = fmt::format("{:.{}f}", value, decimals);
  if (s.find_first_not_of("-0.") == std::string::npos && s.front() == '-') s.erase(0, 1);
  return s;
}

// Three significant digits without an exponent for 0.001 <= |value| < 100.
std::string ThreeSignificant(double value) {
  double magnitude = std::fabs(value);
  int exponent = static_cast<int>(std::floor(std::log10(magnitude)));  // -3 .. 1
  int decimals = 2 - exponent;
  // Rounding can carry into the next power of ten (9.996 -> 10.00): one digit fewer then.
  double rounded = std::round(magnitude * std::pow(10.0, decimals)) / std::pow(10.0, decimals);
  if (rounded >= std::pow(10.0, exponent + 1)) --decimals;
  return Fixed(value, std::max(decimals, 0));
}

}  // namespace

bool IsMoneyColumn(std::string_view column) { return column.find("usd") != std::string_view::npos; }

std::string FormatNumber(double value, std::string_view column) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  double magnitude = std::fabs(value);
  if (IsMoneyColumn(column)) {
    if (magnitude == 0 || magnitude >= 1) return Fixed(value, 2);
    if (magnitude >= 0.0001) return Fixed(value, 4);
    return fmt::format("{:.3g}", value);
  }
  if (magnitude < 1e15 && value == std::trunc(value)) return Fixed(value, 0);
  if (magnitude >= 100) return Fixed(value, 0);
  if (magnitude >= 0.001) return ThreeSignificant(value);
  return fmt::format("{:.3g}", value);
}

std::string FormatCell(const v1::Cell& cell, std::string_view column) {
  switch (cell.value_case()) {
    case v1::Cell::kNumber:
      return FormatNumber(cell.number(), column);
    case v1::Cell::kInteger:
      return std::to_string(cell.integer());
    case v1::Cell::kText:
      return cell.text();
    case v1::Cell::VALUE_NOT_SET:
      break;
  }
  return "-";
}

}  // namespace breakeven::cli
