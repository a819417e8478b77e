#include "common/auth.h"

#include <gtest/gtest.h>

#include "tests/support/process.h"

namespace breakeven {
namespace {

TEST(ConstantTimeEquals, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("secret-token", "secret-token"));
  EXPECT_FALSE(ConstantTimeEquals("secret-token", "secret-tokeN"));
  EXPECT_FALSE(ConstantTimeEquals("secret-token", "secret-token-longer"));
  EXPECT_FALSE(ConstantTimeEquals("secret-token", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
  // A shorter string padded with NULs is still different.
  EXPECT_FALSE(ConstantTimeEquals(std::string("abc\0", 4), "abc"));
}

TEST(TokenChecker, SeparateAdminToken) {
  TokenChecker checker("cluster-token-0123456789", "admin-token-0123456789");
  EXPECT_EQ(checker.Check("cluster-token-0123456789"), Access::kRead);
  EXPECT_EQ(checker.Check("admin-token-0123456789"), Access::kAdmin);
  EXPECT_EQ(checker.Check("nobody"), Access::kNone);
  EXPECT_EQ(checker.Check(""), Access::kNone);
}

TEST(TokenChecker, ClusterTokenIsAdminWhenNoAdminTokenIsSet) {
  TokenChecker checker("cluster-token-0123456789", "");
  EXPECT_EQ(checker.Check("cluster-token-0123456789"), Access::kAdmin);
  EXPECT_EQ(checker.Check("cluster-token-012345678"), Access::kNone);
}

TEST(LoadTokenFile, TrimsAndChecksTheToken) {
  std::string dir = testing::MakeTempDir("token");
  testing::WriteFile(dir + "/ok", "  0123456789abcdefXYZ \n second line ignored\n");
  Result<std::string> ok = LoadTokenFile(dir + "/ok", "--token-file");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*ok, "0123456789abcdefXYZ");

  testing::WriteFile(dir + "/empty", "   \n");
  Result<std::string> empty = LoadTokenFile(dir + "/empty", "--token-file");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find(dir + "/empty"), std::string::npos);
  EXPECT_NE(empty.status().message().find("--token-file"), std::string::npos);

  testing::WriteFile(dir + "/short", "abc\n");
  Result<std::string> short_token = LoadTokenFile(dir + "/short", "--admin-token-file");
  ASSERT_FALSE(short_token.ok());
  EXPECT_NE(short_token.status().message().find("at least 16"), std::string::npos);
  EXPECT_NE(short_token.status().message().find("--admin-token-file"), std::string::npos);

  Result<std::string> missing = LoadTokenFile(dir + "/missing", "--token-file");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(dir + "/missing"), std::string::npos);
  testing::RemoveTree(dir);
}

}  // namespace
}  // namespace breakeven
