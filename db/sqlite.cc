#include "db/sqlite.h"

namespace breakeven::db {

namespace {

Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  const char* msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  StatusCode code = StatusCode::kInternal;
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      code = StatusCode::kUnavailable;
      break;
    case SQLITE_CONSTRAINT:
      code = StatusCode::kFailedPrecondition;
      break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      code = StatusCode::kDataLoss;
      break;
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      code = StatusCode::kFailedPrecondition;
      break;
    case SQLITE_FULL:
      code = StatusCode::kResourceExhausted;
      break;
    default:
      break;
  }
  return Status(code, fmt::format("{}: {}", what, msg));
}

}  // namespace

Statement::~Statement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_),
      stmt_(other.stmt_),
      bind_error_(other.bind_error_),
      bind_error_index_(other.bind_error_index_) {
  other.stmt_ = nullptr;
}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    if (stmt_) sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = other.stmt_;
    bind_error_ = other.bind_error_;
    bind_error_index_ = other.bind_error_index_;
    other.stmt_ = nullptr;
  }
  return *this;
}

void Statement::NoteBind(int rc, int index) {
  if (rc != SQLITE_OK && bind_error_ == SQLITE_OK) {
    bind_error_ = rc;
    bind_error_index_ = index;
  }
}

Statement& Statement::Bind(int index, int64_t value) {
  NoteBind(sqlite3_bind_int64(stmt_, index, value), index);
  return *this;
}

Statement& Statement::Bind(int index, double value) {
  NoteBind(sqlite3_bind_double(stmt_, index, value), index);
  return *this;
}

Statement& Statement::Bind(int index, std::string_view value) {
  NoteBind(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                             SQLITE_TRANSIENT),
           index);
  return *this;
}

Statement& Statement::Bind(int index, std::nullptr_t) {
  NoteBind(sqlite3_bind_null(stmt_, index), index);
  return *this;
}

Result<bool> Statement::Step() {
  if (bind_error_ != SQLITE_OK) {
    return Internal("binding parameter {} of '{}': {}", bind_error_index_, sql(),
                    sqlite3_errstr(bind_error_));
  }
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status s = SqliteError(db_, rc, fmt::format("executing '{}'", sql()));
  sqlite3_reset(stmt_);
  return s;
}

Status Statement::Run() {
  for (;;) {
    Result<bool> row = Step();
    if (!row.ok()) {
      Reset();
      return row.status();
    }
    if (!*row) break;
  }
  Reset();
  return Status::Ok();
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_error_ = SQLITE_OK;
}

std::string Statement::Text(int column) const {
  const auto* p = sqlite3_column_text(stmt_, column);
  if (!p) return {};
  return std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(stmt_, column));
}

std::optional<std::string> Statement::OptionalText(int column) const {
  if (IsNull(column)) return std::nullopt;
  return Text(column);
}

std::optional<int64_t> Statement::OptionalInt64(int column) const {
  if (IsNull(column)) return std::nullopt;
  return Int64(column);
}

Result<std::unique_ptr<Database>> Database::Open(const std::string& path, OpenOptions options) {
  sqlite3* raw = nullptr;
  int flags =
      options.read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  flags |= SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    Status s = SqliteError(raw, rc, fmt::format("database '{}': cannot open", path));
    sqlite3_close(raw);
    return s;
  }
  std::unique_ptr<Database> db(new Database(raw, path));
  sqlite3_busy_timeout(raw, options.busy_timeout_ms);
  sqlite3_extended_result_codes(raw, 1);

  // PRAGMAs are prepared and stepped like any statement.
  const char* setup[] = {"PRAGMA foreign_keys = ON", "PRAGMA synchronous = NORMAL"};
  for (const char* sql : setup) BE_RETURN_IF_ERROR(db->ExecScript(sql).WithContext(path));
  if (!options.read_only && path != ":memory:") {
    BE_ASSIGN_OR_RETURN(Statement wal, db->Prepare("PRAGMA journal_mode = WAL"));
    BE_ASSIGN_OR_RETURN(bool row, wal.Step());
    if (!row || wal.Text(0) != "wal") {
      return FailedPrecondition("database '{}': cannot switch to WAL journal mode (got '{}')", path,
                                row ? wal.Text(0) : "");
    }
  }
  // A file that is not a database fails here rather than at the first query.
  BE_ASSIGN_OR_RETURN(int version, db->UserVersion());
  (void)version;
  return db;
}

Database::~Database() { sqlite3_close_v2(db_); }

Result<Statement> Database::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, fmt::format("preparing '{}'", sql));
  return Statement(db_, stmt);
}

Status Database::ExecScript(std::string_view sql) {
  const char* p = sql.data();
  const char* end = sql.data() + sql.size();
  int index = 0;
  while (p < end) {
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v2(db_, p, static_cast<int>(end - p), &stmt, &tail);
    if (rc != SQLITE_OK) {
      return SqliteError(db_, rc, fmt::format("statement {} of script", index + 1));
    }
    if (stmt == nullptr) break;  // only whitespace or comments remain
    ++index;
    Statement s(db_, stmt);
    Status st = s.Run();
    if (!st.ok()) return st.WithContext(fmt::format("statement {} of script", index));
    p = tail;
  }
  return Status::Ok();
}

Status Database::Begin() { return ExecScript("BEGIN IMMEDIATE"); }
Status Database::Commit() { return ExecScript("COMMIT"); }
Status Database::Rollback() { return ExecScript("ROLLBACK"); }

Result<int> Database::UserVersion() {
  BE_ASSIGN_OR_RETURN(Statement s, Prepare("PRAGMA user_version"));
  BE_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return Internal("PRAGMA user_version returned no row");
  return static_cast<int>(s.Int64(0));
}

Status Database::SetUserVersion(int version) {
  // PRAGMA arguments cannot be bound; the value is an integer we format ourselves.
  return ExecScript(fmt::format("PRAGMA user_version = {}", version));
}

Transaction::~Transaction() {
  if (open_) (void)db_.Rollback();
}

Status Transaction::Begin() {
  BE_RETURN_IF_ERROR(db_.Begin());
  open_ = true;
  return Status::Ok();
}

Status Transaction::Commit() {
  open_ = false;
  Status s = db_.Commit();
  if (!s.ok()) (void)db_.Rollback();
  return s;
}

}  // namespace breakeven::db
