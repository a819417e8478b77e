// The Kubernetes scrape configuration (deploy/kubernetes/prometheus-config.yaml): promtool accepts
// it where installed, and it scrapes what the dashboards read.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <iostream>
#include <map>
#include <set>

#include "tests/deploy/deploy_support.h"
#include "tests/support/process.h"

namespace breakeven::testing {
namespace {

std::string Str(const YAML::Node& n) { return n && n.IsScalar() ? n.as<std::string>() : ""; }

std::map<std::string, YAML::Node> Jobs(const YAML::Node& config) {
  std::map<std::string, YAML::Node> jobs;
  for (const YAML::Node& j : config["scrape_configs"]) jobs[Str(j["job_name"])] = j;
  return jobs;
}

std::string KubernetesConfigText() {
  for (const YAML::Node& doc :
       YAML::LoadAllFromFile(SourcePath("deploy/kubernetes/prometheus-config.yaml"))) {
    if (Str(doc["kind"]) == "ConfigMap") return Str(doc["data"]["prometheus.yml"]);
  }
  ADD_FAILURE() << "no ConfigMap in deploy/kubernetes/prometheus-config.yaml";
  return "";
}

// Runs `promtool check config` on `text`; fails the test on an error or a warning.
void ExpectPromtoolAccepts(const std::string& promtool, const std::string& text,
                           const std::string& what) {
  ScopedTempDir dir("prom");
  const std::string path = dir.path() + "/prometheus.yml";
  WriteFile(path, text, 0644);
  CommandResult r = RunCommand({promtool, "check", "config", path}, std::chrono::seconds(60));
  EXPECT_EQ(r.exit_code, 0) << what << ":\n" << r.out << r.err;
  EXPECT_EQ(LinesContaining(r.out + r.err, "WARNING"), "") << what;
}

// Debian's promtool is built without Kubernetes discovery. Then the pod discovery is replaced by a
// static target, so promtool still checks everything else, relabelling rules included.
bool PromtoolKnowsKubernetes(const std::string& promtool) {
  ScopedTempDir dir("prom");
  const std::string path = dir.path() + "/probe.yml";
  WriteFile(path,
            "scrape_configs:\n"
            "  - job_name: probe\n"
            "    kubernetes_sd_configs: [{role: pod}]\n",
            0644);
  return RunCommand({promtool, "check", "config", path}, std::chrono::seconds(60)).exit_code == 0;
}

TEST(PrometheusConfig, KubernetesConfigPassesPromtool) {
  auto promtool = Which("promtool");
  if (!promtool) GTEST_SKIP() << "promtool is not installed (Debian: prometheus)";
  std::string text = KubernetesConfigText();
  if (!PromtoolKnowsKubernetes(*promtool)) {
    YAML::Node config = YAML::Load(text);
    for (YAML::Node job : config["scrape_configs"]) {
      if (!job["kubernetes_sd_configs"]) continue;
      job.remove("kubernetes_sd_configs");
      YAML::Node target;
      target["targets"].push_back("node.example:7090");
      job["static_configs"].push_back(target);
    }
    YAML::Emitter out;
    out << config;
    text = out.c_str();
    std::cout << "promtool has no Kubernetes discovery: checked with a static target instead\n";
  }
  ExpectPromtoolAccepts(*promtool, text, "the prometheus.yml of deploy/kubernetes");
}

// Kubernetes scrapes what the dashboards read, as dashboards/prometheus.yml does outside it: the
// same jobs at the same interval (the dashboards' rate windows assume it), the workers found
// through the scheduler's /sd/workers with their own labels kept.
TEST(PrometheusConfig, KubernetesScrapesWhatTheDashboardsRead) {
  YAML::Node dashboards = YAML::LoadFile(SourcePath("dashboards/prometheus.yml"));
  YAML::Node kubernetes = YAML::Load(KubernetesConfigText());
  EXPECT_EQ(Str(kubernetes["global"]["scrape_interval"]),
            Str(dashboards["global"]["scrape_interval"]));
  std::map<std::string, YAML::Node> want = Jobs(dashboards), got = Jobs(kubernetes);
  std::set<std::string> want_names, got_names;
  for (const auto& [name, job] : want) want_names.insert(name);
  for (const auto& [name, job] : got) got_names.insert(name);
  EXPECT_EQ(got_names, want_names);
  EXPECT_EQ(got_names,
            (std::set<std::string>{"breakeven-scheduler", "breakeven-node", "breakeven-worker"}));
  for (const auto& [name, job] : got) {
    EXPECT_EQ(Str(job["scrape_interval"]), Str(want[name]["scrape_interval"])) << name;
    EXPECT_EQ(Str(job["honor_labels"]), Str(want[name]["honor_labels"])) << name;
  }
  const YAML::Node worker = got["breakeven-worker"];
  const std::string url = Str(worker["http_sd_configs"][0]["url"]);
  const std::string scheduler = Str(got["breakeven-scheduler"]["static_configs"][0]["targets"][0]);
  EXPECT_EQ(url, "http://" + scheduler + "/sd/workers")
      << "workers are discovered at the scheduler that is scraped";
  EXPECT_EQ(Str(worker["http_sd_configs"][0]["refresh_interval"]),
            Str(want["breakeven-worker"]["http_sd_configs"][0]["refresh_interval"]));
}

}  // namespace
}  // namespace breakeven::testing
