// Cron schedules for benchmark matrices: the five fields of crontab(5) (minute, hour, day of
// month, month, day of week), evaluated in UTC.
//
// Each field takes '*', a number, a range "a-b", a list "a,b,c", and a step "*/n" or "a-b/n";
// months and days of the week also take names (jan..dec, sun..sat; 7 is Sunday too). As in cron,
// when both day of month and day of week are restricted, a day matches if either does. The
// shorthands @hourly, @daily (@midnight), @weekly, @monthly, @yearly (@annually) are accepted.
#pragma once

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace breakeven::scheduler {

class CronSchedule {
 public:
  // Errors name the field and the text: "cron 'x 1 * * *': minute: 'x' is not a number from 0 to
  // 59".
  static Result<CronSchedule> Parse(std::string_view expression);

  // The first minute strictly after `after_unix_ms` that matches, in Unix milliseconds (a whole
  // minute). Searches at most five years ahead; returns -1 for a schedule that never fires (for
  // example the 31st of February).
  int64_t Next(int64_t after_unix_ms) const;

  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_of_month_;  // 1..31
  std::bitset<13> months_;         // 1..12
  std::bitset<7> days_of_week_;    // 0 = Sunday
  bool dom_restricted_ = false;
  bool dow_restricted_ = false;
};

}  // namespace breakeven::scheduler
