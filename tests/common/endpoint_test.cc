#include "common/endpoint.h"

#include <gtest/gtest.h>

namespace breakeven {
namespace {

TEST(ParseHostPort, AcceptsNamesAddressesAndBracketedIpv6) {
  auto a = ParseHostPort("scheduler.internal:7070", "--scheduler");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "scheduler.internal");
  EXPECT_EQ(a->port, 7070);

  auto b = ParseHostPort("[::1]:9", "--listen");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->ToString(), "[::1]:9");

  auto c = ParseHostPort(":7080", "--http");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "0.0.0.0");

  auto zero = ParseHostPort("127.0.0.1:0", "--listen", /*allow_port_zero=*/true);
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(zero->port, 0);
}

TEST(ParseHostPort, ErrorsNameTheFlagAndTheText) {
  struct Case {
    const char* text;
    const char* expect;
  } cases[] = {
      {"localhost", "has no port"},
      {"localhost:", "not a number"},
      {"localhost:http", "not a number"},
      {"localhost:65536", "not a number"},
      {"::1:80", "brackets"},
      {"[::1", "[IPV6]:PORT"},
      {"host:0", "port 0"},
  };
  for (const Case& tc : cases) {
    auto r = ParseHostPort(tc.text, "--scheduler");
    ASSERT_FALSE(r.ok()) << tc.text;
    EXPECT_NE(r.status().message().find("--scheduler"), std::string::npos) << tc.text;
    EXPECT_NE(r.status().message().find(tc.expect), std::string::npos)
        << tc.text << ": " << r.status().message();
  }
}

}  // namespace
}  // namespace breakeven
