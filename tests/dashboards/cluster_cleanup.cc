#include "tests/dashboards/cluster_cleanup.h"

#include <dirent.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "db/sqlite.h"

namespace breakeven::testing {

namespace {

// PIDs of breakeven-worker processes whose command line names `dir` (their work directory is
// under it, so they belong to this cluster and no other test's).
std::vector<pid_t> WorkersUnder(const std::string& dir) {
  std::vector<pid_t> pids;
  DIR* proc = ::opendir("/proc");
  if (!proc) return pids;
  while (dirent* e = ::readdir(proc)) {
    const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find("breakeven-worker") != std::string::npos &&
        cmd.find(dir + "/") != std::string::npos) {
      // A zombie keeps its command line until reaped; it no longer runs.
      std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
      std::string s((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
      const size_t paren = s.rfind(')');
      if (paren != std::string::npos && paren + 2 < s.size() && s[paren + 2] == 'Z') continue;
      pids.push_back(pid);
    }
  }
  ::closedir(proc);
  return pids;
}

}  // namespace

void CancelRunsAndStopWorkers(LocalCluster& cluster, std::chrono::milliseconds timeout) {
  std::vector<int64_t> unfinished;
  if (auto db = db::Database::Open(cluster.db_path(), {.read_only = true}); db.ok()) {
    if (auto q = (*db)->Prepare(
            "SELECT id FROM runs WHERE state NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED')");
        q.ok()) {
      for (auto row = q->Step(); row.ok() && *row; row = q->Step()) {
        unfinished.push_back(q->Int64(0));
      }
    }
  }
  for (int64_t id : unfinished) cluster.Cli({"cancel", std::to_string(id)});
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!WorkersUnder(cluster.dir()).empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (pid_t pid : WorkersUnder(cluster.dir())) ::kill(pid, SIGKILL);
}

}  // namespace breakeven::testing
