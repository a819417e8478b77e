// Migrations: numbered, transactional, tracked by PRAGMA user_version.
#include "db/migrate.h"

#include <gtest/gtest.h>

#include "tests/support/process.h"

namespace breakeven::db {
namespace {

class MigrateTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("migrate"); }
  void TearDown() override { testing::RemoveTree(dir_); }

  std::unique_ptr<Database> Open(const std::string& name = "t.db") {
    auto db = Database::Open(dir_ + "/" + name);
    EXPECT_TRUE(db.ok()) << db.status().ToString();
    return std::move(db).value();
  }

  Result<bool> TableExists(Database& db, const std::string& name) {
    BE_ASSIGN_OR_RETURN(Statement q, db.Prepare("SELECT 1 FROM sqlite_master WHERE name = ?1"));
    q.Bind(1, name);
    return q.Step();
  }

  std::string dir_;
};

TEST_F(MigrateTest, FreshDatabaseGetsEverySchemaVersion) {
  auto db = Open();
  Result<MigrationReport> r = Migrate(*db);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->from_version, 0);
  EXPECT_EQ(r->to_version, BuiltinMigrations().back().version);
  for (const char* table : {"nodes", "devices", "events", "node_status"}) {
    EXPECT_TRUE(*TableExists(*db, table)) << table;
  }
}

TEST_F(MigrateTest, SecondRunChangesNothing) {
  auto db = Open();
  ASSERT_TRUE(Migrate(*db).ok());
  Result<MigrationReport> again = Migrate(*db);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->from_version, again->to_version);
}

TEST_F(MigrateTest, ConnectionUsesWalAndForeignKeys) {
  auto db = Open();
  {
    auto mode = db->Prepare("PRAGMA journal_mode");
    ASSERT_TRUE(mode.ok());
    ASSERT_TRUE(*mode->Step());
    EXPECT_EQ(mode->Text(0), "wal");
    auto fk = db->Prepare("PRAGMA foreign_keys");
    ASSERT_TRUE(*fk->Step());
    EXPECT_EQ(fk->Int64(0), 1);
  }
  // Foreign keys are enforced: a device of a node that does not exist is refused.
  ASSERT_TRUE(Migrate(*db).ok());
  Status s = db->ExecScript(
      "INSERT INTO devices (node_id, kind, idx, name, memory_bytes, compute_units) "
      "VALUES (42, 'cpu', 0, 'x', 1, 1)");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("FOREIGN KEY"), std::string::npos) << s.message();
}

TEST_F(MigrateTest, FailedMigrationLeavesNoTrace) {
  auto db = Open();
  std::vector<Migration> steps = {
      {1, "0001_ok.sql", "CREATE TABLE a (x INTEGER);"},
      {2, "0002_broken.sql", "CREATE TABLE b (y INTEGER); INSERT INTO nowhere VALUES (1);"},
  };
  Result<MigrationReport> r = Migrate(*db, steps);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("0002_broken.sql"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("nowhere"), std::string::npos);
  EXPECT_EQ(*db->UserVersion(), 1);  // the first one stands
  EXPECT_TRUE(*TableExists(*db, "a"));
  EXPECT_FALSE(*TableExists(*db, "b")) << "half of migration 2 was kept";
}

TEST_F(MigrateTest, DatabaseFromANewerBuildIsRefused) {
  auto db = Open();
  ASSERT_TRUE(db->SetUserVersion(999).ok());
  Result<MigrationReport> r = Migrate(*db);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("999"), std::string::npos);
  EXPECT_NE(r.status().message().find("newer"), std::string::npos);
}

TEST_F(MigrateTest, FileThatIsNotADatabaseIsRefusedAtOpen) {
  testing::WriteFile(dir_ + "/junk.db", std::string(8192, 'j'));
  auto db = Database::Open(dir_ + "/junk.db");
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find("junk.db"), std::string::npos) << db.status().message();
}

TEST(ParseMigrations, NamesMustBeNumberedWithoutGaps) {
  auto ok = ParseMigrations({{"0002_b.sql", ""}, {"0001_a.sql", ""}});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)[0].name, "0001_a.sql");

  auto gap = ParseMigrations({{"0001_a.sql", ""}, {"0003_c.sql", ""}});
  ASSERT_FALSE(gap.ok());
  EXPECT_NE(gap.status().message().find("0003_c.sql"), std::string::npos);

  auto dup = ParseMigrations({{"0001_a.sql", ""}, {"0001_b.sql", ""}});
  EXPECT_FALSE(dup.ok());

  auto bad = ParseMigrations({{"first.sql", ""}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("NNNN_description.sql"), std::string::npos);
}

TEST(ParseMigrations, BuiltinMigrationsAreWellFormed) {
  auto parsed = ParseMigrations(MigrationFiles());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_FALSE(parsed->empty());
}

}  // namespace
}  // namespace breakeven::db
