// Unit tests of the Kubernetes client pieces that need no server: kubeconfig and
// in-cluster loading, error mapping, the rate limiter, and watch-stream parsing
// through a fake transport.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/rate_limiter.h"
#include "operator/kube/client.h"
#include "operator/kube/config.h"
#include "operator/kube/token_source.h"

namespace cronlane::kube {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir()
      : path_(fs::temp_directory_path() /
              ("cronlane-kube-" + std::to_string(::getpid()) + "-" + std::to_string(n_++))) {
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& text) const {
    auto p = path_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  std::string path() const { return path_.string(); }

 private:
  static inline int n_ = 0;
  fs::path path_;
};

const char* kKubeconfig = R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority: ca.crt
- name: other
  cluster:
    server: https://10.9.9.9:443
    certificate-authority-data: Q0EtREFUQQ==
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
- name: robot
  user:
    token: s3cret
contexts:
- name: dev
  context: {cluster: local, user: admin, namespace: team-a}
- name: prod
  context: {cluster: other, user: robot}
- name: broken
  context: {cluster: missing, user: admin}
)";

TEST(Kubeconfig, CurrentContextWithFilesAndData) {
  TempDir d;
  d.Write("ca.crt", "CA-FILE");
  auto cfg = LoadKubeconfig(d.Write("config", kKubeconfig));
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->server, "https://127.0.0.1:6443");
  EXPECT_EQ(cfg->ca_pem, "CA-FILE") << "relative to the kubeconfig's directory";
  EXPECT_EQ(cfg->client_cert_pem, "CERT");
  EXPECT_EQ(cfg->client_key_pem, "KEY");
  EXPECT_EQ(cfg->default_namespace, "team-a");
  EXPECT_FALSE(cfg->insecure_skip_tls_verify);
}

TEST(Kubeconfig, ExplicitContextAndToken) {
  TempDir d;
  auto cfg = LoadKubeconfig(d.Write("config", kKubeconfig), "prod");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->server, "https://10.9.9.9:443");
  EXPECT_EQ(cfg->ca_pem, "CA-DATA");
  EXPECT_EQ(cfg->token, "s3cret");
  EXPECT_TRUE(cfg->insecure_skip_tls_verify);
  EXPECT_EQ(cfg->default_namespace, "default");
}

TEST(Kubeconfig, ClearErrors) {
  TempDir d;
  std::string path = d.Write("config", kKubeconfig);
  EXPECT_THAT(LoadKubeconfig(path, "nope").status().message(), HasSubstr("context \"nope\" not found"));
  EXPECT_THAT(LoadKubeconfig(path, "broken").status().message(), HasSubstr("cluster \"missing\" not found"));
  EXPECT_THAT(LoadKubeconfig(path).status().message(), HasSubstr("certificate-authority"))
      << "ca.crt does not exist in this directory";
  EXPECT_EQ(LoadKubeconfig(d.path() + "/absent").status().code(), StatusCode::kNotFound);
  EXPECT_THAT(LoadKubeconfig(d.Write("bad", "a: [")).status().message(), HasSubstr("not valid YAML"));
  std::string exec = d.Write("exec", R"(current-context: c
clusters: [{name: k, cluster: {server: "https://x"}}]
users: [{name: u, user: {exec: {command: aws}}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
)");
  EXPECT_THAT(LoadKubeconfig(exec).status().message(), HasSubstr("exec or auth-provider plugin"));
}

// Found by tests/fuzz/kubeconfig_fuzz.cpp: YAML of another shape than a kubeconfig
// threw out of the loader (and ended the operator or the CLI).
TEST(Kubeconfig, OtherShapesAreMalformedNotACrash) {
  TempDir d;
  for (const char* text : {"apiVersion", "- a\n- b\n", "clusters: 3\ncurrent-context: c\n",
                           "current-context: c\ncontexts: [{name: {a: 1}}]\n",
                           "current-context: c\ncontexts: [{name: c, context: [1]}]\n"}) {
    Result<KubeConfig> cfg = InvalidArgument("not run");
    ASSERT_NO_THROW(cfg = LoadKubeconfig(d.Write("config", text))) << text;
    EXPECT_EQ(cfg.status().code(), StatusCode::kInvalidArgument) << text;
  }
  EXPECT_THAT(LoadKubeconfig(d.Write("config", "apiVersion")).status().message(),
              HasSubstr("is malformed: operator[] call on a scalar"));
}

TEST(Kubeconfig, ListMergesFirstWins) {
  TempDir d;
  std::string a = d.Write("a", "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n");
  std::string b = d.Write("b", "current-context: other\nclusters: [{name: k, cluster: {server: \"https://b:1\"}}]\n");
  auto cfg = LoadKubeconfig(a + ":" + d.path() + "/missing:" + b);
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->server, "https://b:1");
}

TEST(InCluster, ServiceAccountFiles) {
  TempDir d;
  d.Write("token", "tok\n");
  d.Write("ca.crt", "SA-CA");
  d.Write("namespace", "cronlane-system");
  auto env = [](const std::string& k) -> std::string {
    if (k == "KUBERNETES_SERVICE_HOST") return "fd00::1";
    if (k == "KUBERNETES_SERVICE_PORT") return "443";
    return "";
  };
  auto cfg = LoadInCluster(env, d.path());
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->server, "https://[fd00::1]:443");
  EXPECT_EQ(cfg->token_file, d.path() + "/token");
  EXPECT_EQ(cfg->ca_pem, "SA-CA");
  EXPECT_EQ(cfg->default_namespace, "cronlane-system");
  EXPECT_EQ(LoadInCluster([](const std::string&) { return std::string(); }, d.path()).status().code(),
            StatusCode::kNotFound);
}

// A projected ServiceAccount token is replaced by the kubelet: the file is read
// again once a minute (on the injected clock), and a file caught empty mid-rotation
// keeps the token already read.
TEST(TokenSource, FollowsARotatedTokenFileOnceAMinute) {
  TempDir d;
  std::string file = d.Write("token", "first\n");
  FakeClock clock;
  TokenSource tokens("", file, clock);
  EXPECT_EQ(tokens.Get(), "first");
  d.Write("token", "second\n");
  clock.Advance(std::chrono::seconds(59));
  EXPECT_EQ(tokens.Get(), "first");  // read less than a minute ago
  clock.Advance(std::chrono::seconds(1));
  EXPECT_EQ(tokens.Get(), "second");
  d.Write("token", "");
  clock.Advance(std::chrono::minutes(1));
  EXPECT_EQ(tokens.Get(), "second");  // empty mid-rotation: keep the last one
  EXPECT_EQ(TokenSource("static", "", clock).Get(), "static");
}

TEST(LoadDefault, FlagThenEnvThenInClusterThenHome) {
  TempDir d;
  d.Write("ca.crt", "CA");
  std::string path = d.Write("config", kKubeconfig);
  auto env_with = [&](const std::string& k) { return k == "KUBECONFIG" ? path : std::string(); };
  EXPECT_EQ(LoadDefault("", "", env_with)->server, "https://127.0.0.1:6443");
  auto nothing = [](const std::string&) { return std::string(); };
  EXPECT_THAT(LoadDefault("", "", nothing).status().message(), HasSubstr("no Kubernetes configuration"));
}

TEST(StatusFromHttp, MapsCodesAndKeepsTheMessage) {
  std::string body = R"({"kind":"Status","reason":"AlreadyExists","message":"scheduledtasks \"a\" already exists"})";
  Status s = StatusFromHttp(409, body, "POST /x");
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(s.message(), HasSubstr("already exists"));
  EXPECT_EQ(StatusFromHttp(409, R"({"reason":"Conflict"})", "PUT").code(), StatusCode::kAborted);
  EXPECT_EQ(StatusFromHttp(404, "", "GET").code(), StatusCode::kNotFound);
  EXPECT_EQ(StatusFromHttp(410, "", "GET").code(), StatusCode::kExpired);
  EXPECT_EQ(StatusFromHttp(403, "", "GET").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(StatusFromHttp(422, "", "GET").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusFromHttp(429, "", "GET").code(), StatusCode::kUnavailable);
  EXPECT_EQ(StatusFromHttp(503, "<html>", "GET").code(), StatusCode::kUnavailable);
}

TEST(RateLimiter, BurstThenQps) {
  FakeClock clock;
  RateLimiter limiter(clock, 10, 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.Acquire().count(), 0) << "burst";
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(limiter.Acquire()).count(), 100);
  EXPECT_FALSE(limiter.TryAcquire());
  clock.Advance(std::chrono::milliseconds(100));
  EXPECT_TRUE(limiter.TryAcquire());
  clock.Advance(std::chrono::seconds(10));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.TryAcquire()) << "refills up to the burst only";
  EXPECT_FALSE(limiter.TryAcquire());
  RateLimiter unlimited(clock, 0, 1);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(unlimited.TryAcquire());
}

class ScriptedTransport : public Transport {
 public:
  std::vector<std::string> lines;
  int status = 200;
  std::vector<HttpRequest> sent;
  Result<HttpResponse> Send(const HttpRequest& req) override {
    sent.push_back(req);
    return HttpResponse{status, lines.empty() ? "" : lines[0]};
  }
  Result<int> Stream(const HttpRequest& req, const std::function<bool(std::string_view)>& on_line, CancelToken&,
                     std::string* error_body) override {
    sent.push_back(req);
    if (status != 200) {
      *error_body = lines.empty() ? "" : lines[0];
      return status;
    }
    for (const auto& l : lines) {
      if (!on_line(l)) break;
    }
    return status;
  }
};

TEST(Watch, ParsesEventsAndErrorEvents) {
  auto t = std::make_unique<ScriptedTransport>();
  t->lines = {
      R"({"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"5"}}})", "",
      R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}})",
      R"j({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version: 1 (9)"}})j",
      R"({"type":"ADDED","object":{"metadata":{"name":"never"}}})"};
  auto* raw = t.get();
  KubeClient c(std::move(t), RealClock::Get(), 0, 1);
  CancelToken cancel;
  std::vector<std::string> got;
  Status s = c.Watch(
      "/apis/x?watch=1",
      [&](std::string_view type, Json& obj) {
        got.push_back(std::string(type) + ":" + obj["metadata"]["resourceVersion"].get<std::string>());
        return true;
      },
      cancel);
  EXPECT_EQ(s.code(), StatusCode::kExpired) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("too old resource version"));
  EXPECT_EQ(got, (std::vector<std::string>{"ADDED:5", "BOOKMARK:9"}));
  EXPECT_EQ(raw->sent.at(0).path, "/apis/x?watch=1");
}

TEST(Watch, GarbageEndsTheWatchWithAnError) {
  auto t = std::make_unique<ScriptedTransport>();
  t->lines = {"{not json"};
  KubeClient c(std::move(t), RealClock::Get(), 0, 1);
  CancelToken cancel;
  EXPECT_EQ(c.Watch(
                 "/w", [](std::string_view, Json&) { return true; }, cancel)
                .code(),
            StatusCode::kInternal);
}

TEST(List, DecodesItemsOneAtATimeInAnyFieldOrder) {
  auto t = std::make_unique<ScriptedTransport>();
  // The apiserver sorts a custom resource list's keys: items before metadata.
  t->lines = {R"({"apiVersion":"v1","items":[{"metadata":{"name":"a\"b"},"x":[1,{"y":null}]},)"
              R"({"metadata":{"name":"c"}}],"kind":"List","metadata":{"continue":"tok","resourceVersion":"42"}})"};
  auto* raw = t.get();
  KubeClient c(std::move(t), RealClock::Get(), 0, 1);
  std::vector<std::string> names;
  auto meta = c.List("/apis/x?limit=2", [&](Json& item) { names.push_back(item["metadata"]["name"]); });
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_EQ(names, (std::vector<std::string>{"a\"b", "c"}));
  EXPECT_EQ(meta->continue_token, "tok");
  EXPECT_EQ(meta->resource_version, "42");

  raw->lines = {R"({"metadata":{"resourceVersion":"7"},"items":null})"};
  names.clear();
  meta = c.List("/apis/x", [&](Json& item) { names.push_back(item.dump()); });
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_TRUE(names.empty());
  EXPECT_EQ(meta->continue_token, "") << "the last page";
  EXPECT_EQ(meta->resource_version, "7");
}

TEST(List, MalformedResponsesAndApiErrorsAreErrors) {
  auto t = std::make_unique<ScriptedTransport>();
  auto* raw = t.get();
  KubeClient c(std::move(t), RealClock::Get(), 0, 1);
  auto ignore = [](Json&) {};
  for (const char* body : {"{not json", "[]", R"({"items":{}})", R"({"items":[{"a":}]})", R"({"items":[1,)"}) {
    raw->lines = {body};
    auto r = c.List("/apis/x", ignore);
    EXPECT_EQ(r.status().code(), StatusCode::kInternal) << body;
  }
  raw->status = 410;
  raw->lines = {R"({"kind":"Status","code":410,"reason":"Expired","message":"continue token expired"})"};
  auto r = c.List("/apis/x", ignore);
  EXPECT_EQ(r.status().code(), StatusCode::kExpired) << r.status().ToString();
}

TEST(ResourceRef, Paths) {
  ResourceRef tasks{"cronlane.dev", "v1alpha1", "scheduledtasks"};
  EXPECT_EQ(tasks.Path("ns"), "/apis/cronlane.dev/v1alpha1/namespaces/ns/scheduledtasks");
  EXPECT_EQ(tasks.Path(""), "/apis/cronlane.dev/v1alpha1/scheduledtasks");
  EXPECT_EQ(tasks.Path("ns", "a", "status"), "/apis/cronlane.dev/v1alpha1/namespaces/ns/scheduledtasks/a/status");
  ResourceRef leases{"coordination.k8s.io", "v1", "leases"};
  EXPECT_EQ(leases.Path("kube-system", "x"), "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/x");
  ResourceRef ns{"", "v1", "namespaces", false};
  EXPECT_EQ(ns.Path("ignored", "default"), "/api/v1/namespaces/default");
  EXPECT_EQ(UrlEscape("a=b&c d/é"), "a%3Db%26c%20d%2F%C3%A9");
}

}  // namespace
}  // namespace cronlane::kube
