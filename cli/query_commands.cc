// `breakeven results`, `prices`, `compare` and `plan`: a QueryRequest answered with a table.
#include <fmt/format.h>

#include <iostream>

#include "cli/commands.h"
#include "cli/query_views.h"
#include "cli/rpc.h"

namespace breakeven::cli {

int CmdQuery(const Context& ctx, const QueryOptions& options) {
  auto client = Connect(ctx);
  if (!client.ok()) return Fail(client.status());
  v1::Envelope req;
  req.mutable_query()->set_kind(options.kind);
  for (const auto& [key, value] : options.args) (*req.mutable_query()->mutable_args())[key] = value;
  auto reply = CallFor(**client, std::move(req), v1::Envelope::kQueryReply,
                       fmt::format("the {} query", options.kind));
  if (!reply.ok()) return Fail(reply.status());
  const v1::Table& table = reply->query_reply().table();

  // Scripts get every column unless --columns names some; people get the compact default.
  const bool text = ctx.output == Output::kTable;
  auto columns =
      SelectColumns(table, options.columns,
                    text && !options.wide ? options.default_columns : std::vector<std::string>{});
  if (!columns.ok()) return Fail(columns.status());
  switch (ctx.output) {
    case Output::kTable:
      std::cout << QueryTableText(table, *columns);
      if (!table.notes().empty()) std::cout << "\n" << NotesText(table);
      return 0;
    case Output::kJson:
      PrintJson(QueryTableJson(table, *columns));
      break;
    case Output::kCsv:
      std::cout << QueryTableCsv(table, *columns);
      break;
  }
  // Notes go to stderr so stdout stays machine-readable.
  std::cerr << NotesText(table);
  return 0;
}

int CmdPricesImport(const Context& ctx, const std::string& csv_file) {
  auto csv = ReadTextFile(csv_file);
  if (!csv.ok()) return Fail(csv.status());
  auto client = Connect(ctx);
  if (!client.ok()) return Fail(client.status());
  v1::Envelope req;
  req.mutable_import_prices()->set_csv(std::move(*csv));
  req.mutable_import_prices()->set_source(csv_file);
  auto reply = CallFor(**client, std::move(req), v1::Envelope::kAck, "ImportPrices");
  if (!reply.ok()) return Fail(reply.status());
  const std::string& message = reply->ack().message();
  fmt::print("{}\n", message.empty() ? "done" : message);
  return 0;
}

int CmdSetSetting(const Context& ctx, const std::string& key, const std::string& value) {
  auto client = Connect(ctx);
  if (!client.ok()) return Fail(client.status());
  v1::Envelope req;
  req.mutable_set_setting()->set_key(key);
  req.mutable_set_setting()->set_value(value);
  auto reply = CallFor(**client, std::move(req), v1::Envelope::kAck, "SetSetting");
  if (!reply.ok()) return Fail(reply.status());
  const std::string& message = reply->ack().message();
  fmt::print("{}\n", message.empty() ? "done" : message);
  return 0;
}

}  // namespace breakeven::cli
