#include "common/metrics.h"

#include <prometheus/text_serializer.h>

#include <map>
#include <sstream>

namespace cronlane {

void CallbackMetrics::Add(std::string name, std::string help, Type type, std::function<double()> read) {
  MutexLock lock(mu_);
  entries_.push_back({std::move(name), std::move(help), type, std::move(read), nullptr});
}

void CallbackMetrics::AddFamily(std::string name, std::string help, Type type,
                                std::function<std::vector<Sample>()> read) {
  MutexLock lock(mu_);
  entries_.push_back({std::move(name), std::move(help), type, nullptr, std::move(read)});
}

void CallbackMetrics::AddHistogram(std::string name, std::string help, std::function<prometheus::ClientMetric()> read) {
  MutexLock lock(mu_);
  entries_.push_back({std::move(name), std::move(help), Type::kHistogram, nullptr, nullptr, 0, {}, std::move(read)});
}

CallbackMetrics::Scope::Scope(CallbackMetrics& registry) : registry_(registry) {
  MutexLock lock(registry_.mu_);
  owner_ = registry_.next_owner_++;
}

CallbackMetrics::Scope::Scope(CallbackMetrics& registry, std::vector<std::pair<std::string, std::string>> labels)
    : Scope(registry) {
  labels_ = std::move(labels);
}

CallbackMetrics::Scope::~Scope() {
  MutexLock lock(registry_.mu_);  // waits for a scrape in progress
  std::erase_if(registry_.entries_, [this](const Entry& e) { return e.owner == owner_; });
}

void CallbackMetrics::Scope::Add(std::string name, std::string help, Type type, std::function<double()> read) {
  MutexLock lock(registry_.mu_);
  registry_.entries_.push_back({std::move(name), std::move(help), type, std::move(read), nullptr, owner_, labels_});
}

void CallbackMetrics::Scope::AddFamily(std::string name, std::string help, Type type,
                                       std::function<std::vector<Sample>()> read) {
  MutexLock lock(registry_.mu_);
  registry_.entries_.push_back({std::move(name), std::move(help), type, nullptr, std::move(read), owner_, labels_});
}

void CallbackMetrics::Scope::AddHistogram(std::string name, std::string help,
                                          std::function<prometheus::ClientMetric()> read) {
  MutexLock lock(registry_.mu_);
  registry_.entries_.push_back(
      {std::move(name), std::move(help), Type::kHistogram, nullptr, nullptr, owner_, labels_, std::move(read)});
}

std::vector<prometheus::MetricFamily> CallbackMetrics::Collect() const {
  MutexLock lock(mu_);
  std::vector<prometheus::MetricFamily> out;
  std::map<std::string, size_t> index;  // family name -> position in `out`
  for (const auto& e : entries_) {
    auto [at, added] = index.try_emplace(e.name, out.size());
    if (added) {
      out.emplace_back();
      out.back().name = e.name;
      out.back().help = e.help;
      out.back().type = e.type == Type::kGauge     ? prometheus::MetricType::Gauge
                        : e.type == Type::kCounter ? prometheus::MetricType::Counter
                                                   : prometheus::MetricType::Histogram;
    }
    prometheus::MetricFamily& f = out[at->second];
    if (e.read_histogram) {
      prometheus::ClientMetric m = e.read_histogram();
      for (const auto& [k, v] : e.labels) m.label.push_back({k, v});
      f.metric.push_back(std::move(m));
      continue;
    }
    std::vector<Sample> samples;
    if (e.read_family) {
      samples = e.read_family();
    } else {
      samples.push_back({{}, e.read()});
    }
    for (auto& sample : samples) {
      prometheus::ClientMetric m;
      for (const auto& [k, v] : e.labels) m.label.push_back({k, v});
      for (auto& [k, v] : sample.labels) m.label.push_back({k, v});
      if (e.type == Type::kGauge) {
        m.gauge.value = sample.value;
      } else {
        m.counter.value = sample.value;
      }
      f.metric.push_back(std::move(m));
    }
  }
  return out;
}

std::string SerializeMetrics(const std::vector<const prometheus::Collectable*>& collectables) {
  std::vector<prometheus::MetricFamily> families;
  for (const auto* c : collectables) {
    auto f = c->Collect();
    families.insert(families.end(), std::make_move_iterator(f.begin()), std::make_move_iterator(f.end()));
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace cronlane
