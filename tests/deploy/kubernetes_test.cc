// deploy/kubernetes: every manifest is a well-formed Kubernetes object, the pieces agree with
// each other (ports, Secrets, the Service name the nodes dial, the scrape configuration) and with
// the daemons' flags, and kubectl accepts them where it is installed.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>

#include "tests/deploy/deploy_support.h"
#include "tests/support/process.h"

namespace breakeven::testing {
namespace {

namespace fs = std::filesystem;

const char kDir[] = "deploy/kubernetes";
const char kNamespace[] = "breakeven";

struct Manifest {
  std::string file;  // relative to kDir
  YAML::Node doc;
};

std::string Str(const YAML::Node& n) { return n && n.IsScalar() ? n.as<std::string>() : ""; }

// node[k0][k1]..., or an undefined node where a key is missing (yaml-cpp throws when indexing
// past a missing key).
YAML::Node At(const YAML::Node& node, std::initializer_list<const char*> path) {
  YAML::Node n = node;
  for (const char* key : path) {
    const YAML::Node& here = n;  // const: a lookup never adds the key
    if (!here || !here.IsMap() || !here[key]) return YAML::Node(YAML::NodeType::Undefined);
    n.reset(here[key]);  // rebinds; `n = ...` would overwrite the node n refers to
  }
  return n;
}

// Every YAML document of every *.yaml in kDir except kustomization.yaml.
std::vector<Manifest> LoadManifests() {
  std::vector<Manifest> out;
  for (const auto& entry : fs::directory_iterator(SourcePath(kDir))) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() != ".yaml" || name == "kustomization.yaml") continue;
    try {
      for (const YAML::Node& doc : YAML::LoadAllFromFile(entry.path().string())) {
        if (doc && !doc.IsNull()) out.push_back({name, doc});
      }
    } catch (const YAML::Exception& e) {
      ADD_FAILURE() << kDir << "/" << name << ": " << e.what();
    }
  }
  return out;
}

YAML::Node Find(const std::vector<Manifest>& all, const std::string& kind,
                const std::string& name) {
  for (const Manifest& m : all) {
    if (Str(m.doc["kind"]) == kind && Str(m.doc["metadata"]["name"]) == name) return m.doc;
  }
  ADD_FAILURE() << "no " << kind << " " << name << " in " << kDir;
  return YAML::Node();
}

// The value of "--flag=value" in a container's args ("" when absent).
std::string Arg(const YAML::Node& container, const std::string& flag) {
  for (const YAML::Node& a : container["args"]) {
    const std::string s = Str(a);
    if (s.rfind(flag + "=", 0) == 0) return s.substr(flag.size() + 1);
  }
  return "";
}

std::string PortOf(const std::string& host_port) {
  return host_port.substr(host_port.rfind(':') + 1);
}

// containerPort by port name.
std::map<std::string, std::string> NamedPorts(const YAML::Node& container) {
  std::map<std::string, std::string> ports;
  for (const YAML::Node& p : container["ports"]) ports[Str(p["name"])] = Str(p["containerPort"]);
  return ports;
}

// The volume mounted at `mount_path` in `container`, from the pod spec's volumes.
YAML::Node VolumeAt(const YAML::Node& pod, const YAML::Node& container,
                    const std::string& mount_path) {
  for (const YAML::Node& m : container["volumeMounts"]) {
    if (Str(m["mountPath"]) != mount_path) continue;
    for (const YAML::Node& v : pod["volumes"]) {
      if (Str(v["name"]) == Str(m["name"])) return v;
    }
  }
  ADD_FAILURE() << "nothing mounted at " << mount_path;
  return YAML::Node();
}

std::string DirOf(const std::string& path) { return fs::path(path).parent_path().string(); }

TEST(KubernetesManifests, AreObjectsWithKindAndName) {
  std::vector<Manifest> all = LoadManifests();
  ASSERT_FALSE(all.empty());
  for (const Manifest& m : all) {
    EXPECT_NE(Str(m.doc["apiVersion"]), "") << m.file;
    EXPECT_NE(Str(m.doc["kind"]), "") << m.file;
    EXPECT_NE(Str(m.doc["metadata"]["name"]), "") << m.file << ": " << Str(m.doc["kind"]);
  }
}

TEST(KubernetesManifests, KustomizationListsEveryFile) {
  YAML::Node k = YAML::LoadFile(SourcePath(std::string(kDir) + "/kustomization.yaml"));
  EXPECT_EQ(Str(k["kind"]), "Kustomization");
  EXPECT_EQ(Str(k["namespace"]), kNamespace);
  std::set<std::string> listed, present;
  for (const YAML::Node& r : k["resources"]) listed.insert(Str(r));
  for (const auto& entry : fs::directory_iterator(SourcePath(kDir))) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() == ".yaml" && name != "kustomization.yaml") present.insert(name);
  }
  EXPECT_EQ(listed, present);
}

TEST(KubernetesManifests, SchedulerIsOnePodOwningItsDatabase) {
  std::vector<Manifest> all = LoadManifests();
  YAML::Node deployment = Find(all, "Deployment", "breakeven-scheduler");
  ASSERT_TRUE(deployment);
  EXPECT_EQ(Str(deployment["spec"]["replicas"]), "1");
  EXPECT_EQ(Str(deployment["spec"]["strategy"]["type"]), "Recreate");
  YAML::Node pod = deployment["spec"]["template"]["spec"];
  YAML::Node c = pod["containers"][0];
  ASSERT_TRUE(c);

  std::set<std::string> accepted = FlagsAccepted(BREAKEVEN_SCHEDULER_BIN);
  for (const YAML::Node& a : c["args"]) {
    for (const std::string& flag : FlagsIn(Str(a))) {
      EXPECT_TRUE(accepted.count(flag)) << "breakeven-scheduler has no " << flag;
    }
  }
  auto ports = NamedPorts(c);
  EXPECT_EQ(PortOf(Arg(c, "--listen")), ports["frames"]);
  EXPECT_EQ(PortOf(Arg(c, "--http")), ports["http"]);
  for (const char* probe : {"readinessProbe", "livenessProbe"}) {
    EXPECT_EQ(Str(c[probe]["httpGet"]["path"]), "/healthz") << probe;
    EXPECT_EQ(Str(c[probe]["httpGet"]["port"]), "http") << probe;
  }

  YAML::Node db = VolumeAt(pod, c, DirOf(Arg(c, "--db")));
  const std::string claim = Str(At(db, {"persistentVolumeClaim", "claimName"}));
  EXPECT_TRUE(Find(all, "PersistentVolumeClaim", claim)) << "--db is not on a claimed volume";
  for (const char* flag : {"--token-file", "--admin-token-file"}) {
    YAML::Node v = VolumeAt(pod, c, DirOf(Arg(c, flag)));
    EXPECT_NE(Str(At(v, {"secret", "secretName"})), "") << flag << " is not read from a Secret";
  }

  YAML::Node service = Find(all, "Service", "breakeven-scheduler");
  ASSERT_TRUE(service);
  for (const auto& [key, value] :
       service["spec"]["selector"].as<std::map<std::string, std::string>>()) {
    EXPECT_EQ(Str(deployment["spec"]["template"]["metadata"]["labels"][key]), value) << key;
  }
  for (const YAML::Node& p : service["spec"]["ports"]) {
    EXPECT_TRUE(ports.count(Str(p["targetPort"]))) << "Service port " << Str(p["name"]);
    EXPECT_EQ(Str(p["port"]), ports[Str(p["targetPort"])]) << Str(p["name"]);
  }
}

TEST(KubernetesManifests, NodesTakeWholeGpuHostsOnTheHostNetwork) {
  std::vector<Manifest> all = LoadManifests();
  YAML::Node ds = Find(all, "DaemonSet", "breakeven-node");
  ASSERT_TRUE(ds);
  YAML::Node pod = ds["spec"]["template"]["spec"];
  YAML::Node c = pod["containers"][0];
  ASSERT_TRUE(c);
  EXPECT_EQ(Str(pod["hostNetwork"]), "true");
  EXPECT_EQ(Str(pod["dnsPolicy"]), "ClusterFirstWithHostNet");
  EXPECT_TRUE(pod["nodeSelector"] || pod["affinity"]) << "GPU hosts only";
  EXPECT_NE(Str(c["resources"]["limits"]["nvidia.com/gpu"]), "");
  YAML::Node shm = VolumeAt(pod, c, "/dev/shm");
  EXPECT_EQ(Str(At(shm, {"emptyDir", "medium"})), "Memory");

  std::set<std::string> accepted = FlagsAccepted(BREAKEVEN_NODE_BIN);
  for (const YAML::Node& a : c["args"]) {
    for (const std::string& flag : FlagsIn(Str(a))) {
      EXPECT_TRUE(accepted.count(flag)) << "breakeven-node has no " << flag;
    }
  }

  // The nodes dial the scheduler's Service by its cluster DNS name and frames port.
  YAML::Node service = Find(all, "Service", "breakeven-scheduler");
  std::string frames_port;
  for (const YAML::Node& p : service["spec"]["ports"]) {
    if (Str(p["name"]) == "frames") frames_port = Str(p["port"]);
  }
  EXPECT_EQ(Arg(c, "--scheduler"),
            "breakeven-scheduler." + std::string(kNamespace) + ".svc:" + frames_port);

  // Metrics: the annotation Prometheus follows names the port the agent serves.
  YAML::Node annotations = ds["spec"]["template"]["metadata"]["annotations"];
  EXPECT_EQ(Str(annotations["prometheus.io/scrape"]), "true");
  EXPECT_EQ(Str(annotations["prometheus.io/port"]), PortOf(Arg(c, "--http")));
  EXPECT_EQ(NamedPorts(c)["metrics"], PortOf(Arg(c, "--http")));

  // The cluster token from its Secret; the admin token never reaches a node.
  YAML::Node token = VolumeAt(pod, c, DirOf(Arg(c, "--token-file")));
  EXPECT_EQ(Str(At(token, {"secret", "secretName"})), "breakeven-cluster-token");
  for (const YAML::Node& v : pod["volumes"]) {
    EXPECT_NE(Str(At(v, {"secret", "secretName"})), "breakeven-admin-token");
  }
}

TEST(KubernetesManifests, PrometheusScrapesSchedulerNodesAndWorkers) {
  std::vector<Manifest> all = LoadManifests();
  YAML::Node cm = Find(all, "ConfigMap", "breakeven-prometheus");
  ASSERT_TRUE(cm);
  YAML::Node config = YAML::Load(Str(cm["data"]["prometheus.yml"]));
  std::map<std::string, YAML::Node> jobs;
  for (const YAML::Node& j : config["scrape_configs"]) jobs[Str(j["job_name"])] = j;
  ASSERT_EQ(jobs.size(), 3u);

  const std::string scheduler_http = "breakeven-scheduler." + std::string(kNamespace) + ".svc:7080";
  EXPECT_EQ(Str(jobs["breakeven-scheduler"]["static_configs"][0]["targets"][0]), scheduler_http);
  EXPECT_EQ(Str(jobs["breakeven-node"]["kubernetes_sd_configs"][0]["role"]), "pod");
  EXPECT_EQ(Str(jobs["breakeven-worker"]["http_sd_configs"][0]["url"]),
            "http://" + scheduler_http + "/sd/workers");
  EXPECT_EQ(Str(jobs["breakeven-worker"]["honor_labels"]), "true");

  // The scheduler Service's http port is the one scraped.
  YAML::Node service = Find(all, "Service", "breakeven-scheduler");
  for (const YAML::Node& p : service["spec"]["ports"]) {
    if (Str(p["name"]) == "http") {
      EXPECT_EQ(Str(p["port"]), PortOf(scheduler_http));
    }
  }
}

TEST(KubernetesManifests, KustomizeBuildsThemOffline) {
  auto kubectl = Which("kubectl");
  if (!kubectl) GTEST_SKIP() << "kubectl is not installed";
  CommandResult r = RunCommand({*kubectl, "kustomize", SourcePath(kDir)}, std::chrono::seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<YAML::Node> docs = YAML::LoadAll(r.out);
  EXPECT_EQ(docs.size(), LoadManifests().size());
  for (const YAML::Node& d : docs) {
    const std::string kind = Str(d["kind"]);
    if (kind == "Namespace") continue;
    EXPECT_EQ(Str(d["metadata"]["namespace"]), kNamespace) << kind << " " << d["metadata"]["name"];
  }
}

// `kubectl apply --dry-run=client` still asks an API server to map kinds to resources, so it
// runs only where one answers (KUBECONFIG).
TEST(KubernetesManifests, KubectlClientDryRunAcceptsThem) {
  auto kubectl = Which("kubectl");
  if (!kubectl) GTEST_SKIP() << "kubectl is not installed";
  CommandResult server =
      RunCommand({*kubectl, "version", "--request-timeout=5s"}, std::chrono::seconds(20));
  if (server.exit_code != 0) {
    GTEST_SKIP() << "no Kubernetes API server answers (kubectl needs one even for "
                    "--dry-run=client): "
                 << server.err;
  }
  for (const auto& entry : fs::directory_iterator(SourcePath(kDir))) {
    if (entry.path().filename() == "kustomization.yaml") continue;
    CommandResult r = RunCommand({*kubectl, "apply", "--dry-run=client", "--request-timeout=20s",
                                  "-f", entry.path().string()},
                                 std::chrono::seconds(60));
    EXPECT_EQ(r.exit_code, 0) << entry.path() << ": " << r.err;
  }
}

}  // namespace
}  // namespace breakeven::testing
