#pragma once
// Prometheus metrics whose values are read at scrape time from callbacks, so hot
// paths only bump their own atomics. Serialized in the text exposition format.

#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/thread_annotations.h"

namespace cronlane {

class CallbackMetrics final : public prometheus::Collectable {
 public:
  enum class Type { kGauge, kCounter, kHistogram };
  // Registers a metric; `read` is called on every scrape, from the scraping thread,
  // with the registry's lock held.
  void Add(std::string name, std::string help, Type type, std::function<double()> read);
  // Registers a histogram kept by its owner (a prometheus::Histogram, which is
  // thread-safe); `read` returns its state (Histogram::Collect()), called like Add's.
  void AddHistogram(std::string name, std::string help, std::function<prometheus::ClientMetric()> read);

  // One labelled sample of a family.
  struct Sample {
    std::vector<std::pair<std::string, std::string>> labels;
    double value = 0;
  };
  // Registers a family whose samples (one per label set) are read on every scrape.
  void AddFamily(std::string name, std::string help, Type type, std::function<std::vector<Sample>()> read);
  std::vector<prometheus::MetricFamily> Collect() const override;

  // Metrics of an object that lives shorter than the registry (a leadership term):
  // what is added through a Scope is removed when the Scope is destroyed, and the
  // destructor waits for a scrape in progress, so no callback outlives its object.
  // Declare the Scope after the objects its callbacks read.
  class Scope {
   public:
    explicit Scope(CallbackMetrics& registry);
    // Every sample added through this Scope carries `labels` too (a shard's term:
    // {shard="3"}); metrics of the same name from several Scopes form one family.
    Scope(CallbackMetrics& registry, std::vector<std::pair<std::string, std::string>> labels);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    void Add(std::string name, std::string help, Type type, std::function<double()> read);
    void AddFamily(std::string name, std::string help, Type type, std::function<std::vector<Sample>()> read);
    void AddHistogram(std::string name, std::string help, std::function<prometheus::ClientMetric()> read);

   private:
    CallbackMetrics& registry_;
    int owner_;
    std::vector<std::pair<std::string, std::string>> labels_;
  };

 private:
  struct Entry {
    std::string name, help;
    Type type;
    std::function<double()> read;
    std::function<std::vector<Sample>()> read_family;
    int owner = 0;                                            // 0: for the registry's life; else a Scope's
    std::vector<std::pair<std::string, std::string>> labels;  // added to every sample
    std::function<prometheus::ClientMetric()> read_histogram;
  };
  mutable Mutex mu_;
  std::vector<Entry> entries_ GUARDED_BY(mu_);
  int next_owner_ GUARDED_BY(mu_) = 1;
};

// The text exposition of everything in `registry` plus `extra`.
std::string SerializeMetrics(const std::vector<const prometheus::Collectable*>& collectables);

}  // namespace cronlane
