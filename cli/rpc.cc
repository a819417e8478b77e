#include "cli/rpc.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "common/auth.h"
#include "common/endpoint.h"

namespace breakeven::cli {

Result<std::unique_ptr<SchedulerClient>> Connect(const Context& ctx) {
  BE_ASSIGN_OR_RETURN(HostPort address, ParseHostPort(ctx.scheduler, "--scheduler"));
  if (ctx.token_file.empty()) {
    return InvalidArgument("--token-file: no token file given (or set BREAKEVEN_TOKEN_FILE)");
  }
  BE_ASSIGN_OR_RETURN(std::string token, LoadTokenFile(ctx.token_file, "--token-file"));
  ClientOptions options;
  options.scheduler = address;
  options.token = std::move(token);
  options.role = v1::ROLE_ADMIN;
  options.timeout = ctx.timeout;
  return SchedulerClient::Connect(options);
}

Result<v1::Envelope> CallFor(SchedulerClient& client, v1::Envelope request,
                             v1::Envelope::BodyCase expected, std::string_view what) {
  BE_ASSIGN_OR_RETURN(v1::Envelope reply, client.Call(std::move(request)));
  if (reply.body_case() != expected) {
    return Internal(
        "the scheduler answered {} with something else (body {}); is it an older "
        "version?",
        what, static_cast<int>(reply.body_case()));
  }
  return reply;
}

Result<std::string> ReadTextFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return InvalidArgument("cannot read {}: it is a directory", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read {}: {}", path, std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return DataLoss("cannot read {}: {}", path, std::strerror(errno));
  return text.str();
}

int Fail(const Status& status) {
  fmt::print(stderr, "breakeven: {}\n", status.message());
  return 1;
}

void PrintJson(const nlohmann::ordered_json& j) { std::cout << j.dump(2) << "\n"; }

}  // namespace breakeven::cli
