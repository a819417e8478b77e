// `breakeven bench`: one benchmark on this machine without a cluster (bench/local_run.h), printed
// as tables or JSON.
//
// `breakeven models`: the model catalog.
#pragma once

#include <string>
#include <vector>

#include "bench/local_run.h"
#include "cli/commands.h"

namespace breakeven::cli {

int CmdBench(const bench::LocalRunOptions& options, Output output);
int CmdModels(Output output);

}  // namespace breakeven::cli
