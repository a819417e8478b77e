// SQL files compiled into the binaries (generated from db/migrations/ at build time), so a
// deployed scheduler needs nothing but its executable.
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

}  // namespace breakeven::db
