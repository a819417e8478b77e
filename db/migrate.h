// Schema migrations: numbered SQL files (db/migrations/NNNN_name.sql) applied in order, each in
// its own transaction together with the PRAGMA user_version bump that records it. A database
// written by a newer build (user_version above the newest migration known) is refused rather
// than guessed at.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "db/embedded.h"
#include "db/sqlite.h"

namespace breakeven::db {

struct Migration {
  int version = 0;   // the NNNN prefix; versions run 1, 2, 3 ... without gaps
  std::string name;  // the file name
  std::string sql;
};

// Parses and checks a list of migration files: names must be NNNN_something.sql and numbered
// from 1 without gaps or repeats.
Result<std::vector<Migration>> ParseMigrations(const std::vector<EmbeddedFile>& files);

// The migrations built into this binary.
const std::vector<Migration>& BuiltinMigrations();

struct MigrationReport {
  int from_version = 0;
  int to_version = 0;
};

// Brings the database up to the last migration. On failure the failed migration leaves no trace
// and the error names its file.
Result<MigrationReport> Migrate(Database& db, const std::vector<Migration>& migrations);
Result<MigrationReport> Migrate(Database& db);

}  // namespace breakeven::db
