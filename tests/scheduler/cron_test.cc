// Cron parsing and next-fire times, checked against dates worked out independently with
// std::chrono calendar literals.
#include "scheduler/cron.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace breakeven::scheduler {
namespace {

using namespace std::chrono_literals;
namespace chr = std::chrono;

// Unix milliseconds of a UTC date and time of day.
int64_t At(chr::year_month_day date, int hour, int minute, int second = 0, int ms = 0) {
  auto t = chr::sys_days{date} + chr::hours(hour) + chr::minutes(minute) + chr::seconds(second) +
           chr::milliseconds(ms);
  return chr::duration_cast<chr::milliseconds>(t.time_since_epoch()).count();
}

std::string Show(int64_t unix_ms) {
  if (unix_ms == -1) return "never (-1)";
  chr::sys_time<chr::milliseconds> t{chr::milliseconds(unix_ms)};
  auto day = chr::floor<chr::days>(t);
  chr::year_month_day ymd{day};
  chr::hh_mm_ss<chr::milliseconds> hms{t - day};
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03} {}", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                     hms.hours().count(), hms.minutes().count(), hms.seconds().count(),
                     hms.subseconds().count(), chr::weekday{day}.c_encoding());
}

CronSchedule MustParse(std::string_view expr) {
  Result<CronSchedule> s = CronSchedule::Parse(expr);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return CronSchedule::Parse("* * * * *").value();
  return std::move(s).value();
}

TEST(Cron, TestHelperMatchesKnownUnixTimes) {
  // From `date -u -d ... +%s`; guards the helper the other tests rely on.
  EXPECT_EQ(At(2026y / 1 / 1, 0, 0), 1767225600000);
  EXPECT_EQ(At(2028y / 2 / 29, 0, 0), 1835395200000);
  EXPECT_EQ(At(1970y / 1 / 1, 0, 1), 60000);
}

struct NextRow {
  const char* expr;
  int64_t after;
  int64_t want;
};

void CheckTable(const std::vector<NextRow>& table) {
  for (const NextRow& r : table) {
    CronSchedule s = MustParse(r.expr);
    int64_t got = s.Next(r.after);
    EXPECT_EQ(got, r.want) << "'" << r.expr << "' after " << Show(r.after) << ": got " << Show(got)
                           << ", want " << Show(r.want);
  }
}

// Weekdays used below (c_encoding, 0 = Sunday): 2026-03-06 Fri, 2026-03-10 Tue, 2026-03-13 Fri,
// 2026-04-13 Mon, 2026-07-05 Sun, 2026-01-13 Tue.
TEST(CronNext, MinutesAndHours) {
  CheckTable({
      {"*/15 * * * *", At(2026y / 3 / 10, 10, 7), At(2026y / 3 / 10, 10, 15)},
      {"*/15 * * * *", At(2026y / 3 / 10, 10, 15), At(2026y / 3 / 10, 10, 30)},
      {"*/15 * * * *", At(2026y / 3 / 10, 10, 45), At(2026y / 3 / 10, 11, 0)},
      {"*/15 * * * *", At(2026y / 3 / 10, 23, 59), At(2026y / 3 / 11, 0, 0)},
      {"* * * * *", At(2026y / 3 / 10, 10, 7, 30), At(2026y / 3 / 10, 10, 8)},
      {"* * * * *", At(2026y / 3 / 10, 10, 7, 0), At(2026y / 3 / 10, 10, 8)},
      {"* * * * *", At(2026y / 3 / 10, 10, 7, 59, 999), At(2026y / 3 / 10, 10, 8)},
      {"* * * * *", At(2026y / 3 / 10, 10, 6, 59, 999), At(2026y / 3 / 10, 10, 7)},
      {"0 3 * * *", At(2026y / 3 / 10, 3, 0), At(2026y / 3 / 11, 3, 0)},  // strictly after
      {"0 3 * * *", At(2026y / 3 / 10, 2, 59, 59), At(2026y / 3 / 10, 3, 0)},
      {"0 3 * * *", At(2026y / 3 / 10, 3, 0, 1), At(2026y / 3 / 11, 3, 0)},
      {"10/20 * * * *", At(2026y / 3 / 10, 10, 0), At(2026y / 3 / 10, 10, 10)},  // 10-59/20
      {"10/20 * * * *", At(2026y / 3 / 10, 10, 10), At(2026y / 3 / 10, 10, 30)},
      {"10/20 * * * *", At(2026y / 3 / 10, 10, 50), At(2026y / 3 / 10, 11, 10)},
      {"0-30/10 * * * *", At(2026y / 3 / 10, 10, 31), At(2026y / 3 / 10, 11, 0)},
      {"0-30/10 * * * *", At(2026y / 3 / 10, 10, 20), At(2026y / 3 / 10, 10, 30)},
      {"5,35 9-17/4 * * *", At(2026y / 3 / 10, 9, 35), At(2026y / 3 / 10, 13, 5)},
      {"5,35 9-17/4 * * *", At(2026y / 3 / 10, 17, 35), At(2026y / 3 / 11, 9, 5)},
      {"59 23 * * *", At(2026y / 12 / 31, 23, 58), At(2026y / 12 / 31, 23, 59)},
      {"0\t3  *\t*  *", At(2026y / 3 / 10, 3, 0), At(2026y / 3 / 11, 3, 0)},  // tabs, runs
      {"  0 3 * * *  ", At(2026y / 3 / 10, 3, 0), At(2026y / 3 / 11, 3, 0)},
  });
}

TEST(CronNext, DaysMonthsAndYears) {
  CheckTable({
      // Weekdays: Friday 03:00 -> Monday 02:30, Saturday -> Monday, Tuesday 02:30 -> Wednesday.
      {"30 2 * * 1-5", At(2026y / 3 / 6, 3, 0), At(2026y / 3 / 9, 2, 30)},
      {"30 2 * * 1-5", At(2026y / 3 / 7, 12, 0), At(2026y / 3 / 9, 2, 30)},
      {"30 2 * * 1-5", At(2026y / 3 / 6, 2, 29), At(2026y / 3 / 6, 2, 30)},
      {"30 2 * * mon-fri", At(2026y / 3 / 6, 3, 0), At(2026y / 3 / 9, 2, 30)},
      {"30 2 * * 1-5", At(2026y / 3 / 10, 2, 30), At(2026y / 3 / 11, 2, 30)},
      // First of the month across December -> January.
      {"0 0 1 * *", At(2026y / 12 / 15, 8, 0), At(2027y / 1 / 1, 0, 0)},
      {"0 0 1 * *", At(2026y / 12 / 31, 23, 59, 59), At(2027y / 1 / 1, 0, 0)},
      {"0 0 1 * *", At(2027y / 1 / 1, 0, 0), At(2027y / 2 / 1, 0, 0)},
      // Month ends: months without a 30th or 31st are skipped.
      {"0 0 31 * *", At(2026y / 4 / 1, 0, 0), At(2026y / 5 / 31, 0, 0)},
      {"0 0 31 * *", At(2026y / 5 / 31, 0, 0), At(2026y / 7 / 31, 0, 0)},
      {"0 0 31 * *", At(2026y / 7 / 31, 0, 0), At(2026y / 8 / 31, 0, 0)},
      {"0 0 30 * *", At(2026y / 1 / 30, 0, 0), At(2026y / 3 / 30, 0, 0)},
      {"0 0 30 * *", At(2026y / 4 / 30, 12, 0), At(2026y / 5 / 30, 0, 0)},
      {"59 23 31 12 *", At(2026y / 12 / 31, 23, 59), At(2027y / 12 / 31, 23, 59)},
      // Leap days: 2028 is a leap year, 2100 is not.
      {"0 0 29 2 *", At(2026y / 3 / 1, 0, 0), At(2028y / 2 / 29, 0, 0)},
      {"0 0 29 2 *", At(2026y / 1 / 1, 0, 0), At(2028y / 2 / 29, 0, 0)},
      {"0 0 29 2 *", At(2028y / 2 / 29, 0, 0), At(2032y / 2 / 29, 0, 0)},
      {"0 0 29 2 *", At(2028y / 2 / 28, 23, 59), At(2028y / 2 / 29, 0, 0)},
      {"0 0 29 2 *", At(2096y / 3 / 1, 0, 0), -1},  // next is 2104, beyond five years
      {"0 0 28 2 *", At(2099y / 3 / 1, 0, 0), At(2100y / 2 / 28, 0, 0)},
      {"0 0 1 3 *", At(2100y / 2 / 28, 0, 0), At(2100y / 3 / 1, 0, 0)},
      // Never.
      {"0 0 31 2 *", At(2026y / 1 / 1, 0, 0), -1},
      {"0 0 30 2 *", At(2026y / 1 / 1, 0, 0), -1},
      {"0 0 31 4,6,9,11 *", At(2026y / 1 / 1, 0, 0), -1},
      // Yearly, within the horizon.
      {"0 0 1 1 *", At(2026y / 1 / 1, 0, 0), At(2027y / 1 / 1, 0, 0)},
      {"0 0 1 jan *", At(2026y / 6 / 1, 0, 0), At(2027y / 1 / 1, 0, 0)},
      // Before and across the epoch.
      {"0 0 * * *", At(1969y / 12 / 31, 12, 0), 0},
      {"30 23 31 12 *", At(1969y / 1 / 1, 0, 0), At(1969y / 12 / 31, 23, 30)},
  });
}

TEST(CronNext, NamesAreCaseInsensitive) {
  // January and July Sundays at noon: from February, the first is Sunday 5 July 2026.
  CheckTable({
      {"0 12 * jan,jul sun", At(2026y / 2 / 1, 0, 0), At(2026y / 7 / 5, 12, 0)},
      {"0 12 * JAN,Jul SUN", At(2026y / 2 / 1, 0, 0), At(2026y / 7 / 5, 12, 0)},
      {"0 12 * 1,7 0", At(2026y / 2 / 1, 0, 0), At(2026y / 7 / 5, 12, 0)},
      {"0 12 * 1,7 7", At(2026y / 2 / 1, 0, 0), At(2026y / 7 / 5, 12, 0)},
      {"0 12 * jan,jul sun", At(2026y / 7 / 5, 12, 0), At(2026y / 7 / 12, 12, 0)},
      {"0 12 * jan,jul sun", At(2026y / 7 / 26, 12, 0), At(2027y / 1 / 3, 12, 0)},
      {"0 0 1 feb-apr *", At(2026y / 4 / 1, 0, 0), At(2027y / 2 / 1, 0, 0)},
      {"0 0 * * fri-sat", At(2026y / 3 / 7, 0, 0), At(2026y / 3 / 13, 0, 0)},
  });
}

TEST(CronNext, SundayIsZeroAndSeven) {
  // 2026-03-10 is a Tuesday; the next Sunday is the 15th.
  for (const char* expr : {"0 0 * * 0", "0 0 * * 7", "0 0 * * sun", "0 0 * * 5-7"}) {
    EXPECT_EQ(MustParse(expr).Next(At(2026y / 3 / 14, 0, 0)), At(2026y / 3 / 15, 0, 0)) << expr;
  }
  // 5-7 is Friday, Saturday and Sunday.
  EXPECT_EQ(MustParse("0 0 * * 5-7").Next(At(2026y / 3 / 10, 0, 0)), At(2026y / 3 / 13, 0, 0));
  EXPECT_EQ(MustParse("0 0 * * 5-7").Next(At(2026y / 3 / 15, 0, 0)), At(2026y / 3 / 20, 0, 0));
}

TEST(CronNext, DayOfMonthOrDayOfWeekWhenBothRestricted) {
  // "13th OR Friday". 2026-03-13 is a Friday, 2026-04-13 a Monday.
  CheckTable({
      {"0 0 13 * 5", At(2026y / 3 / 6, 0, 0), At(2026y / 3 / 13, 0, 0)},  // Friday the 13th
      {"0 0 13 * 5", At(2026y / 3 / 13, 0, 0), At(2026y / 3 / 20, 0, 0)},
      {"0 0 13 * 5", At(2026y / 4 / 10, 0, 0), At(2026y / 4 / 13, 0, 0)},  // a Monday 13th
      {"0 0 13 * 5", At(2026y / 4 / 13, 0, 0), At(2026y / 4 / 17, 0, 0)},  // then Friday
      {"0 0 13 * 5", At(2026y / 1 / 9, 0, 0), At(2026y / 1 / 13, 0, 0)},   // a Tuesday 13th
      // Only one restricted: the other ('*') does not widen the match.
      {"0 0 13 * *", At(2026y / 4 / 10, 0, 0), At(2026y / 4 / 13, 0, 0)},
      {"0 0 13 * *", At(2026y / 4 / 13, 0, 0), At(2026y / 5 / 13, 0, 0)},
      {"0 0 * * 5", At(2026y / 4 / 10, 0, 0), At(2026y / 4 / 17, 0, 0)},
      {"0 0 * 4 5", At(2026y / 4 / 24, 0, 0), At(2027y / 4 / 2, 0, 0)},
  });
}

TEST(CronNext, FieldStartingWithStarIsUnrestricted) {
  // As in Vixie cron: "*/2" for the day of month does not count as restricted, so the days must
  // be odd AND Mondays; "1-31/2" is restricted, so odd days OR Mondays match.
  // 2026-03-09 (odd) and 2026-03-16 (even) are Mondays; 2026-03-23 (odd) is a Monday.
  CheckTable({
      {"0 0 */2 * 1", At(2026y / 3 / 9, 0, 0), At(2026y / 3 / 23, 0, 0)},
      {"0 0 1-31/2 * 1", At(2026y / 3 / 9, 0, 0), At(2026y / 3 / 11, 0, 0)},
      {"0 0 1-31/2 * 1", At(2026y / 3 / 15, 0, 0), At(2026y / 3 / 16, 0, 0)},
      {"0 0 */2 * *", At(2026y / 3 / 9, 0, 0), At(2026y / 3 / 11, 0, 0)},
  });
}

TEST(CronNext, Shorthands) {
  const int64_t wed = At(2026y / 3 / 11, 10, 7);  // a Wednesday
  CheckTable({
      {"@hourly", wed, At(2026y / 3 / 11, 11, 0)},
      {"@daily", wed, At(2026y / 3 / 12, 0, 0)},
      {"@midnight", wed, At(2026y / 3 / 12, 0, 0)},
      {"@weekly", wed, At(2026y / 3 / 15, 0, 0)},
      {"@weekly", At(2026y / 3 / 15, 0, 0), At(2026y / 3 / 22, 0, 0)},
      {"@monthly", wed, At(2026y / 4 / 1, 0, 0)},
      {"@yearly", wed, At(2027y / 1 / 1, 0, 0)},
      {"@annually", wed, At(2027y / 1 / 1, 0, 0)},
      {"  @daily\t", wed, At(2026y / 3 / 12, 0, 0)},
  });
  EXPECT_EQ(MustParse("@weekly").text(), "@weekly");
  EXPECT_EQ(MustParse("0 3 * * *").text(), "0 3 * * *");
}

TEST(CronNext, ConsecutiveCallsWalkTheSchedule) {
  CronSchedule s = MustParse("0 0 1 */3 *");  // Jan, Apr, Jul, Oct
  int64_t t = At(2026y / 1 / 1, 0, 0) - 1;
  std::vector<int64_t> got;
  for (int i = 0; i < 6; ++i) got.push_back(t = s.Next(t));
  std::vector<int64_t> want = {At(2026y / 1 / 1, 0, 0), At(2026y / 4 / 1, 0, 0),
                               At(2026y / 7 / 1, 0, 0), At(2026y / 10 / 1, 0, 0),
                               At(2027y / 1 / 1, 0, 0), At(2027y / 4 / 1, 0, 0)};
  EXPECT_EQ(got, want);
}

TEST(CronNext, SkipsRatherThanScanningMinutes) {
  // Scanning minute by minute would take ~2.6 million steps per call here; a thousand calls of
  // each must still be quick.
  CronSchedule never = MustParse("0 0 31 2 *");
  CronSchedule leap = MustParse("0 0 29 2 *");
  auto start = chr::steady_clock::now();
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(never.Next(At(2026y / 1 / 1, 0, 0) + i * 60'000), -1);
    ASSERT_EQ(leap.Next(At(2026y / 3 / 1, 0, 0) + i * 60'000), At(2028y / 2 / 29, 0, 0));
  }
  EXPECT_LT(chr::steady_clock::now() - start, 2s);
}

TEST(CronNext, ExtremeTimesDoNotOverflow) {
  CronSchedule s = MustParse("* * * * *");
  EXPECT_EQ(s.Next(INT64_MAX), -1);
  EXPECT_EQ(s.Next(INT64_MIN), -1);
}

TEST(CronParse, ErrorsNameTheFieldAndQuoteTheText) {
  struct Row {
    const char* expr;
    const char* field;  // "minute: " etc.; empty for errors about the whole expression
    const char* text;   // quoted in the message
  } table[] = {
      {"x 1 * * *", "minute", "'x'"},
      {"60 * * * *", "minute", "'60'"},
      {"-1 * * * *", "minute", "'-1'"},
      {"1- * * * *", "minute", "'1-'"},
      {"5-1 * * * *", "minute", "'5-1'"},
      {"*/0 * * * *", "minute", "'0'"},
      {"*/60 * * * *", "minute", "'60'"},
      {"*/ * * * *", "minute", "'*/'"},
      {"*/x * * * *", "minute", "'x'"},
      {"1/2/3 * * * *", "minute", "'2/3'"},
      {"1,,2 * * * *", "minute", "'1,,2'"},
      {"1, * * * *", "minute", "'1,'"},
      {",1 * * * *", "minute", "',1'"},
      {"*-5 * * * *", "minute", "'*'"},
      {"99999999999 * * * *", "minute", "'99999999999'"},
      {"* 24 * * *", "hour", "'24'"},
      {"* 1-24 * * *", "hour", "'24'"},
      {"* 12-3 * * *", "hour", "'12-3'"},
      {"* * 0 * *", "day of month", "'0'"},
      {"* * 32 * *", "day of month", "'32'"},
      {"* * jan * *", "day of month", "'jan'"},
      {"* * * 0 *", "month", "'0'"},
      {"* * * 13 *", "month", "'13'"},
      {"* * * foo *", "month", "'foo'"},
      {"* * * january *", "month", "'january'"},
      {"* * * jan-foo *", "month", "'foo'"},
      {"* * * dec-jan *", "month", "'dec-jan'"},
      {"* * * mon *", "month", "'mon'"},
      {"* * * * 8", "day of week", "'8'"},
      {"* * * * funday", "day of week", "'funday'"},
      {"* * * * sat-sun", "day of week", "'sat-sun'"},
      {"* * * * jan", "day of week", "'jan'"},
      {"* * * * 1-5/0", "day of week", "'0'"},
      {"* * * *", "", "found 4 fields"},
      {"* * * * * *", "", "found 6 fields"},
      {"", "", "found 0 fields"},
      {"   ", "", "found 0 fields"},
      {"@fortnightly", "", "'@fortnightly'"},
      {"@Daily", "", "'@Daily'"},
      {"@daily 1", "", "found 2 fields"},
  };
  for (const Row& r : table) {
    Result<CronSchedule> s = CronSchedule::Parse(r.expr);
    ASSERT_FALSE(s.ok()) << "'" << r.expr << "' should not parse";
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << r.expr;
    const std::string msg = s.status().message();
    EXPECT_TRUE(msg.starts_with(fmt::format("cron '{}': ", r.expr))) << msg;
    if (*r.field != '\0') {
      EXPECT_NE(msg.find(fmt::format("': {}: ", r.field)), std::string::npos)
          << "'" << r.expr << "': " << msg;
    }
    EXPECT_NE(msg.find(r.text), std::string::npos) << "'" << r.expr << "': " << msg;
  }
}

TEST(CronParse, ExactMessages) {
  EXPECT_EQ(CronSchedule::Parse("x 1 * * *").status().message(),
            "cron 'x 1 * * *': minute: 'x' is not a number from 0 to 59");
  EXPECT_EQ(CronSchedule::Parse("0 0 * 13 *").status().message(),
            "cron '0 0 * 13 *': month: '13' is not a number from 1 to 12 or a month name "
            "(jan..dec)");
  EXPECT_EQ(CronSchedule::Parse("0 0 5-1 * *").status().message(),
            "cron '0 0 5-1 * *': day of month: range '5-1' runs backwards");
}

TEST(CronParse, AcceptsTheFullSyntax) {
  for (const char* expr :
       {"* * * * *", "0-59 0-23 1-31 1-12 0-7", "*/1 */1 */1 */1 */1", "59/1 23 31 12 7",
        "1,2,3-5,10-50/7 * * * *", "0 0 * Jan-DEC Sun-Sat", "*/59 */23 */31 */12 */7"}) {
    Result<CronSchedule> s = CronSchedule::Parse(expr);
    EXPECT_TRUE(s.ok()) << expr << ": " << s.status().ToString();
  }
}

}  // namespace
}  // namespace breakeven::scheduler
