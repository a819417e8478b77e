#include "db/migrate.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

namespace breakeven::db {

const EmbeddedFile* FindEmbedded(const std::vector<EmbeddedFile>& files, const std::string& name) {
  for (const EmbeddedFile& f : files) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

Result<std::vector<Migration>> ParseMigrations(const std::vector<EmbeddedFile>& files) {
  std::vector<Migration> out;
  for (const EmbeddedFile& f : files) {
    int version = 0;
    size_t underscore = f.name.find('_');
    auto [end, ec] = std::from_chars(f.name.data(), f.name.data() + underscore, version);
    if (underscore == std::string::npos || ec != std::errc() || end != f.name.data() + underscore ||
        !f.name.ends_with(".sql")) {
      return InvalidArgument("migration '{}': name must be NNNN_description.sql", f.name);
    }
    out.push_back({version, f.name, f.text});
  }
  std::sort(out.begin(), out.end(),
            [](const Migration& a, const Migration& b) { return a.version < b.version; });
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].version != static_cast<int>(i) + 1) {
      return InvalidArgument(
          "migration '{}': expected version {} (versions run from 1 without "
          "gaps or repeats)",
          out[i].name, i + 1);
    }
  }
  return out;
}

const std::vector<Migration>& BuiltinMigrations() {
  static const std::vector<Migration> migrations = [] {
    Result<std::vector<Migration>> parsed = ParseMigrations(MigrationFiles());
    if (!parsed.ok()) {
      // A build with broken migration files must not run at all; a test guards this too.
      fmt::print(stderr, "breakeven: built-in migrations are broken: {}\n",
                 parsed.status().ToString());
      std::abort();
    }
    return std::move(parsed).value();
  }();
  return migrations;
}

Result<MigrationReport> Migrate(Database& db, const std::vector<Migration>& migrations) {
  MigrationReport report;
  BE_ASSIGN_OR_RETURN(report.from_version, db.UserVersion());
  int latest = migrations.empty() ? 0 : migrations.back().version;
  if (report.from_version > latest) {
    return FailedPrecondition(
        "database '{}' has schema version {}, newer than this build knows ({}); use a newer "
        "breakeven or restore a backup",
        db.path(), report.from_version, latest);
  }
  for (const Migration& m : migrations) {
    if (m.version <= report.from_version) continue;
    Transaction tx(db);
    BE_RETURN_IF_ERROR(tx.Begin());
    Status applied = db.ExecScript(m.sql);
    if (!applied.ok()) return applied.WithContext(fmt::format("migration {}", m.name));
    BE_RETURN_IF_ERROR(db.SetUserVersion(m.version));
    BE_RETURN_IF_ERROR(tx.Commit().WithContext(fmt::format("migration {}", m.name)));
  }
  BE_ASSIGN_OR_RETURN(report.to_version, db.UserVersion());
  return report;
}

Result<MigrationReport> Migrate(Database& db) { return Migrate(db, BuiltinMigrations()); }

}  // namespace breakeven::db
