// A thin, explicit wrapper over the SQLite C API: one Database per connection, prepared
// statements only, errors as Status values that quote SQLite's message.
//
// Not thread-safe: the scheduler owns one Database on its event-loop thread (the one writer).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace breakeven::db {

class Statement {
 public:
  Statement() = default;
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;

  // Parameters are 1-based, as in SQLite. A bind error is reported by the next Step().
  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, double value);
  Statement& Bind(int index, std::string_view value);
  Statement& Bind(int index, const char* value) { return Bind(index, std::string_view(value)); }
  Statement& Bind(int index, std::nullptr_t);
  template <typename T>
  Statement& Bind(int index, const std::optional<T>& value) {
    return value ? Bind(index, *value) : Bind(index, nullptr);
  }

  // Advances: true when a row is ready, false when done.
  Result<bool> Step();
  // Steps to completion and resets, for statements that return no rows.
  Status Run();
  // Clears the bindings and rewinds, so the statement can be used again.
  void Reset();

  int64_t Int64(int column) const { return sqlite3_column_int64(stmt_, column); }
  double Double(int column) const { return sqlite3_column_double(stmt_, column); }
  std::string Text(int column) const;
  bool IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  std::optional<std::string> OptionalText(int column) const;
  std::optional<int64_t> OptionalInt64(int column) const;

  const char* sql() const { return stmt_ ? sqlite3_sql(stmt_) : ""; }

 private:
  void NoteBind(int rc, int index);

  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  int bind_error_ = SQLITE_OK;
  int bind_error_index_ = 0;
};

struct OpenOptions {
  bool read_only = false;
  int busy_timeout_ms = 5000;
};

class Database {
 public:
  // Opens (creating when allowed) the file and sets the connection up: WAL journal, foreign
  // keys on, synchronous=NORMAL (durable across process crashes; a power loss can lose the last
  // transactions, never corrupt the file). ":memory:" is allowed for tests.
  static Result<std::unique_ptr<Database>> Open(const std::string& path, OpenOptions options = {});
  ~Database();

  Result<Statement> Prepare(std::string_view sql);
  // Runs every statement of a script in order (each one prepared); stops at the first error,
  // which names the statement's position.
  Status ExecScript(std::string_view sql);

  Status Begin();
  Status Commit();
  Status Rollback();

  int64_t LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }
  int Changes() const { return sqlite3_changes(db_); }

  Result<int> UserVersion();
  Status SetUserVersion(int version);

  const std::string& path() const { return path_; }
  sqlite3* raw() { return db_; }

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  sqlite3* db_;
  std::string path_;
};

// Commits on Commit(); rolls back when destroyed without it (an early error return).
class Transaction {
 public:
  explicit Transaction(Database& db) : db_(db) {}
  ~Transaction();
  Status Begin();
  Status Commit();

 private:
  Database& db_;
  bool open_ = false;
};

}  // namespace breakeven::db
