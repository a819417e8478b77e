#include "scheduler/cron.h"

#include <array>
#include <charconv>
#include <chrono>
#include <vector>

namespace breakeven::scheduler {
namespace {

namespace chr = std::chrono;

struct FieldSpec {
  std::string_view name;  // as it appears in error messages
  int min;
  int max;
  // Three-letter names for the values first_name, first_name + 1, ...; empty for numeric fields.
  std::array<std::string_view, 12> names;
  int first_name;
  std::string_view expected;  // "a number from 1 to 12 or a month name (jan..dec)"
};

constexpr FieldSpec kMinute{"minute", 0, 59, {}, 0, "a number from 0 to 59"};
constexpr FieldSpec kHour{"hour", 0, 23, {}, 0, "a number from 0 to 23"};
constexpr FieldSpec kDayOfMonth{"day of month", 1, 31, {}, 0, "a number from 1 to 31"};
constexpr FieldSpec kMonth{
    "month", 1,
    12,      {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"},
    1,       "a number from 1 to 12 or a month name (jan..dec)"};
constexpr FieldSpec kDayOfWeek{"day of week",
                               0,
                               7,
                               {"sun", "mon", "tue", "wed", "thu", "fri", "sat"},
                               0,
                               "a number from 0 to 7 or a day name (sun..sat)"};

constexpr std::array<const FieldSpec*, 5> kFields = {&kMinute, &kHour, &kDayOfMonth, &kMonth,
                                                     &kDayOfWeek};

struct Shorthand {
  std::string_view name;
  std::string_view expansion;
};
constexpr std::array<Shorthand, 7> kShorthands = {{
    {"@hourly", "0 * * * *"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},
    {"@monthly", "0 0 1 * *"},
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
}};

constexpr int64_t kMsPerMinute = 60'000;
constexpr int64_t kMinutesPerDay = 24 * 60;
// chrono's calendar covers years -32767..32767; stay well inside it (about +-27,000 years from
// 1970) so that adding the five-year horizon cannot leave it.
constexpr int64_t kMaxAbsDay = 10'000'000;

std::vector<std::string_view> SplitFields(std::string_view s) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (i > start) fields.push_back(s.substr(start, i - start));
  }
  return fields;
}

char ToLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ToLower(a[i]) != ToLower(b[i])) return false;
  }
  return true;
}

// Parses a decimal number without sign; nullopt when `text` is anything else.
std::optional<int> ParseNumber(std::string_view text) {
  if (text.empty() || text.size() > 9) return std::nullopt;
  int value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

// Parses and checks one field, recording its values as bits (bit v set = value v allowed).
class FieldParser {
 public:
  FieldParser(std::string_view expression, const FieldSpec& spec)
      : expression_(expression), spec_(spec) {}

  Status Parse(std::string_view field, uint64_t* bits) const {
    size_t pos = 0;
    while (true) {
      size_t comma = field.find(',', pos);
      std::string_view item =
          field.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
      if (item.empty()) return Error("empty item in list '{}'", field);
      BE_RETURN_IF_ERROR(ParseItem(item, bits));
      if (comma == std::string_view::npos) break;
      pos = comma + 1;
    }
    return Status::Ok();
  }

 private:
  template <typename... Args>
  Status Error(fmt::format_string<Args...> f, Args&&... args) const {
    return InvalidArgument("cron '{}': {}: {}", expression_, spec_.name,
                           fmt::format(f, std::forward<Args>(args)...));
  }

  Status Malformed(std::string_view item) const {
    return Error("'{}' is not a value, a range a-b, or a step */n or a-b/n", item);
  }

  // One value: a number or, for months and days of the week, a name.
  Result<int> ParseValue(std::string_view text, std::string_view item) const {
    if (text.empty()) return Malformed(item);
    if (std::optional<int> n = ParseNumber(text); n && *n >= spec_.min && *n <= spec_.max) {
      return *n;
    }
    for (size_t i = 0; i < spec_.names.size(); ++i) {
      if (!spec_.names[i].empty() && EqualsIgnoreCase(text, spec_.names[i])) {
        return spec_.first_name + static_cast<int>(i);
      }
    }
    return Error("'{}' is not {}", text, spec_.expected);
  }

  // "*", "n", "a-b", each optionally followed by "/step"; "n/step" means n-max/step.
  Status ParseItem(std::string_view item, uint64_t* bits) const {
    std::string_view range = item;
    std::optional<std::string_view> step_text;
    if (size_t slash = item.find('/'); slash != std::string_view::npos) {
      range = item.substr(0, slash);
      step_text = item.substr(slash + 1);
    }
    int lo = 0;
    int hi = 0;
    if (range == "*") {
      lo = spec_.min;
      hi = spec_.max;
    } else if (size_t dash = range.find('-'); dash != std::string_view::npos) {
      BE_ASSIGN_OR_RETURN(lo, ParseValue(range.substr(0, dash), item));
      BE_ASSIGN_OR_RETURN(hi, ParseValue(range.substr(dash + 1), item));
      if (lo > hi) return Error("range '{}' runs backwards", range);
    } else {
      BE_ASSIGN_OR_RETURN(lo, ParseValue(range, item));
      hi = step_text ? spec_.max : lo;
    }
    int step = 1;
    if (step_text) {
      if (step_text->empty()) return Malformed(item);
      std::optional<int> n = ParseNumber(*step_text);
      if (!n || *n < 1 || *n > spec_.max) {
        return Error("step '{}' in '{}' is not a number from 1 to {}", *step_text, item, spec_.max);
      }
      step = *n;
    }
    for (int v = lo; v <= hi; v += step) *bits |= uint64_t{1} << v;
    return Status::Ok();
  }

  std::string_view expression_;
  const FieldSpec& spec_;
};

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

}  // namespace

Result<CronSchedule> CronSchedule::Parse(std::string_view expression) {
  std::vector<std::string_view> fields = SplitFields(expression);
  if (fields.size() == 1 && fields[0].starts_with('@')) {
    for (const Shorthand& s : kShorthands) {
      if (fields[0] == s.name) {
        BE_ASSIGN_OR_RETURN(CronSchedule schedule, Parse(s.expansion));
        schedule.text_ = std::string(expression);
        return schedule;
      }
    }
    return InvalidArgument(
        "cron '{}': unknown shorthand '{}' (expected @hourly, @daily, @midnight, @weekly, "
        "@monthly, @yearly or @annually)",
        expression, fields[0]);
  }
  if (fields.size() != kFields.size()) {
    return InvalidArgument(
        "cron '{}': expected 5 fields (minute hour day-of-month month day-of-week) or a "
        "shorthand such as @daily, found {} field{}",
        expression, fields.size(), fields.size() == 1 ? "" : "s");
  }
  std::array<uint64_t, 5> bits{};
  for (size_t i = 0; i < kFields.size(); ++i) {
    BE_RETURN_IF_ERROR(FieldParser(expression, *kFields[i]).Parse(fields[i], &bits[i]));
  }
  // 7 is Sunday as well as 0.
  if (bits[4] & (uint64_t{1} << 7)) bits[4] = (bits[4] & ~(uint64_t{1} << 7)) | 1;

  CronSchedule schedule;
  schedule.text_ = std::string(expression);
  schedule.minutes_ = std::bitset<60>(bits[0]);
  schedule.hours_ = std::bitset<24>(bits[1]);
  schedule.days_of_month_ = std::bitset<32>(bits[2]);
  schedule.months_ = std::bitset<13>(bits[3]);
  schedule.days_of_week_ = std::bitset<7>(bits[4]);
  // As in Vixie cron, a field is unrestricted when it starts with '*' ("*/2" included).
  schedule.dom_restricted_ = !fields[2].starts_with('*');
  schedule.dow_restricted_ = !fields[4].starts_with('*');
  return schedule;
}

int64_t CronSchedule::Next(int64_t after_unix_ms) const {
  // The first candidate is the whole minute after the one holding `after_unix_ms`.
  const int64_t first_minute = FloorDiv(after_unix_ms, kMsPerMinute) + 1;
  const int64_t first_day = FloorDiv(first_minute, kMinutesPerDay);
  if (first_day > kMaxAbsDay || first_day < -kMaxAbsDay) return -1;
  const int first_minute_of_day = static_cast<int>(first_minute - first_day * kMinutesPerDay);

  const chr::sys_days start{chr::days(first_day)};
  const chr::year_month_day start_ymd{start};
  // Five calendar years on (29 February moves to 1 March); the search stops before that day.
  const chr::sys_days end{start_ymd + chr::years(5)};

  chr::sys_days day = start;
  while (day < end) {
    const chr::year_month_day ymd{day};
    if (!months_[static_cast<unsigned>(ymd.month())]) {
      day = chr::sys_days{ymd.year() / ymd.month() / 1 + chr::months(1)};
      continue;
    }
    const bool dom = days_of_month_[static_cast<unsigned>(ymd.day())];
    const bool dow = days_of_week_[chr::weekday{day}.c_encoding()];
    // Vixie cron: either day field may match when both are restricted, otherwise both must (an
    // unrestricted field is usually '*', which matches every day).
    const bool day_matches = (dom_restricted_ && dow_restricted_) ? (dom || dow) : (dom && dow);
    if (day_matches) {
      const int from = day == start ? first_minute_of_day : 0;
      for (int h = from / 60; h < 24; ++h) {
        if (!hours_[h]) continue;
        for (int m = h == from / 60 ? from % 60 : 0; m < 60; ++m) {
          if (!minutes_[m]) continue;
          const int64_t minute = day.time_since_epoch().count() * kMinutesPerDay + h * 60 + m;
          return minute * kMsPerMinute;
        }
      }
    }
    day += chr::days(1);
  }
  return -1;
}

}  // namespace breakeven::scheduler
