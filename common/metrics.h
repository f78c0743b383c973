#pragma once
// Prometheus metrics whose values are read at scrape time from callbacks, so hot
// paths only bump their own atomics. Serialized in the text exposition format.

#include <prometheus/collectable.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace cronlane {

class CallbackMetrics final : public prometheus::Collectable {
 public:
  enum class Type { kGauge, kCounter };
  // Registers a metric; `read` is called on every scrape, from the scraping thread.
  void Add(std::string name, std::string help, Type type, std::function<double()> read);

  // One labelled sample of a family.
  struct Sample {
    std::vector<std::pair<std::string, std::string>> labels;
    double value = 0;
  };
  // Registers a family whose samples (one per label set) are read on every scrape.
  void AddFamily(std::string name, std::string help, Type type, std::function<std::vector<Sample>()> read);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct Entry {
    std::string name, help;
    Type type;
    std::function<double()> read;
    std::function<std::vector<Sample>()> read_family;
  };
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
};

// The text exposition of everything in `registry` plus `extra`.
std::string SerializeMetrics(const std::vector<const prometheus::Collectable*>& collectables);

}  // namespace cronlane
