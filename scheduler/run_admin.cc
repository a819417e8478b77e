#include "scheduler/run_admin.h"

#include <spdlog/spdlog.h>

#include <cmath>

#include "common/connection.h"
#include "db/price_store.h"
#include "scheduler/queries.h"

namespace breakeven::scheduler {

namespace {

constexpr int kDefaultRunLimit = 200;
constexpr int kRunEventLimit = 100;

v1::Envelope ErrorReply(const v1::Envelope& request, const Status& status) {
  return MakeError(ToWireCode(status.code()), status.message(), request.request_id());
}

bool IsChange(const v1::Envelope& request) {
  return request.has_submit_matrix() || request.has_cancel_run() || request.has_import_prices() ||
         request.has_set_setting();
}

// Settings an operator may change, with their checks.
Status CheckSetting(const std::string& key, const std::string& value) {
  if (key == "cpu_usd_per_hour") {
    char* end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !std::isfinite(v) || v < 0) {
      return InvalidArgument("cpu_usd_per_hour: '{}' is not a non-negative number of dollars",
                             value);
    }
    return Status::Ok();
  }
  return InvalidArgument("unknown setting '{}' (settings: cpu_usd_per_hour)", key);
}

}  // namespace

bool IsRunAdminRequest(const v1::Envelope& request) {
  switch (request.body_case()) {
    case v1::Envelope::kSubmitMatrix:
    case v1::Envelope::kListRuns:
    case v1::Envelope::kGetRun:
    case v1::Envelope::kCancelRun:
    case v1::Envelope::kQuery:
    case v1::Envelope::kImportPrices:
    case v1::Envelope::kSetSetting:
      return true;
    default:
      return false;
  }
}

v1::Envelope HandleRunAdminRequest(RunManager& runs, db::RunStore& store, db::Database& db,
                                   const v1::Envelope& request, Access access) {
  if (IsChange(request) && access != Access::kAdmin) {
    return ErrorReply(request, PermissionDenied("this request changes state and needs the admin "
                                                "token (this connection presented the cluster "
                                                "token)"));
  }
  v1::Envelope reply;
  reply.set_request_id(request.request_id());
  switch (request.body_case()) {
    case v1::Envelope::kSubmitMatrix: {
      Result<v1::SubmitMatrixReply> r = runs.Submit(request.submit_matrix());
      if (!r.ok()) return ErrorReply(request, r.status());
      *reply.mutable_submit_matrix_reply() = std::move(*r);
      return reply;
    }
    case v1::Envelope::kListRuns: {
      const v1::ListRunsRequest& q = request.list_runs();
      const int limit = q.limit() == 0 ? kDefaultRunLimit : static_cast<int>(q.limit());
      auto list = store.ListRuns(static_cast<int64_t>(q.matrix_id()), q.active_only(), limit);
      if (!list.ok()) return ErrorReply(request, list.status());
      auto* out = reply.mutable_list_runs_reply();
      for (v1::RunInfo& r : *list) *out->add_runs() = std::move(r);
      out->set_now_unix_ms(runs.clock().WallUnixMs());
      return reply;
    }
    case v1::Envelope::kGetRun: {
      const int64_t id = static_cast<int64_t>(request.get_run().run_id());
      auto info = store.RunInfo(id);
      if (!info.ok()) return ErrorReply(request, info.status());
      auto events = store.RunEvents(id, kRunEventLimit);
      if (!events.ok()) return ErrorReply(request, events.status());
      auto points = store.RunPoints(id);
      if (!points.ok()) return ErrorReply(request, points.status());
      auto* out = reply.mutable_get_run_reply();
      *out->mutable_run() = std::move(*info);
      for (v1::Event& e : *events) *out->add_events() = std::move(e);
      *out->mutable_points() = std::move(*points);
      return reply;
    }
    case v1::Envelope::kCancelRun: {
      auto info = runs.Cancel(request.cancel_run().run_id());
      if (!info.ok()) return ErrorReply(request, info.status());
      *reply.mutable_run_change_reply()->mutable_run() = std::move(*info);
      return reply;
    }
    case v1::Envelope::kQuery: {
      std::map<std::string, std::string> args(request.query().args().begin(),
                                              request.query().args().end());
      auto table = RunQuery(db, request.query().kind(), args);
      if (!table.ok()) return ErrorReply(request, table.status());
      *reply.mutable_query_reply()->mutable_table() = std::move(*table);
      return reply;
    }
    case v1::Envelope::kImportPrices: {
      const auto& q = request.import_prices();
      const std::string source = q.source().empty() ? "prices.csv" : q.source();
      auto imported = db::ImportPricesCsv(db, q.csv(), source);
      if (!imported.ok()) return ErrorReply(request, imported.status());
      const char* table = imported->table == db::PriceTable::kGpuPrices   ? "gpu_prices"
                          : imported->table == db::PriceTable::kApiPrices ? "api_prices"
                                                                          : "gpu_specs";
      std::string message =
          fmt::format("imported {} rows from {} into {}", imported->rows, source, table);
      spdlog::info("{}", message);
      reply.mutable_ack()->set_message(message);
      return reply;
    }
    case v1::Envelope::kSetSetting: {
      const auto& q = request.set_setting();
      if (Status s = CheckSetting(q.key(), q.value()); !s.ok()) return ErrorReply(request, s);
      if (Status s = db::SetSetting(db, q.key(), q.value()); !s.ok()) {
        return ErrorReply(request, s);
      }
      reply.mutable_ack()->set_message(fmt::format("{} = {}", q.key(), q.value()));
      return reply;
    }
    default:
      return ErrorReply(request, InvalidArgument("not a run admin request"));
  }
}

}  // namespace breakeven::scheduler
