// What the command files share: connecting with the global flags, one typed request, files,
// and printing. Internal to cli/.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "cli/commands.h"
#include "common/client.h"
#include "common/status.h"

namespace breakeven::cli {

// Connects and says Hello with the token from --token-file.
Result<std::unique_ptr<SchedulerClient>> Connect(const Context& ctx);

// Sends `request`; a reply whose body is not `expected` is an error naming `what`.
Result<v1::Envelope> CallFor(SchedulerClient& client, v1::Envelope request,
                             v1::Envelope::BodyCase expected, std::string_view what);

// The whole file; errors name it ("cannot read demo.yaml: No such file or directory").
Result<std::string> ReadTextFile(const std::string& path);

// Prints "breakeven: <message>" to stderr; returns exit status 1.
int Fail(const Status& status);

void PrintJson(const nlohmann::ordered_json& j);

}  // namespace breakeven::cli
