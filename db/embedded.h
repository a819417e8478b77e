// SQL and CSV files compiled into the binaries (generated from db/ at build time), so a deployed
// scheduler needs nothing but its executable.
#pragma once

#include <string>
#include <vector>

namespace breakeven::db {

struct EmbeddedFile {
  std::string name;  // base name, e.g. "0001_nodes.sql"
  std::string text;
};

// db/migrations/*.sql, sorted by name.
const std::vector<EmbeddedFile>& MigrationFiles();

// db/seed/*.csv: the price catalog a new database starts with.
const std::vector<EmbeddedFile>& SeedFiles();

// db/queries/*.sql: the queries behind `breakeven results`, `compare` and `plan`, the same text
// an analyst runs in the sqlite3 shell.
const std::vector<EmbeddedFile>& QueryFiles();

// The embedded file with this base name; nullptr if there is none.
const EmbeddedFile* FindEmbedded(const std::vector<EmbeddedFile>& files, const std::string& name);

}  // namespace breakeven::db
