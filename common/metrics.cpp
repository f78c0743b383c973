#include "common/metrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>

namespace cronlane {

void CallbackMetrics::Add(std::string name, std::string help, Type type, std::function<double()> read) {
  std::lock_guard lock(mu_);
  entries_.push_back({std::move(name), std::move(help), type, std::move(read)});
}

std::vector<prometheus::MetricFamily> CallbackMetrics::Collect() const {
  std::lock_guard lock(mu_);
  std::vector<prometheus::MetricFamily> out;
  for (const auto& e : entries_) {
    prometheus::MetricFamily f;
    f.name = e.name;
    f.help = e.help;
    prometheus::ClientMetric m;
    if (e.type == Type::kGauge) {
      f.type = prometheus::MetricType::Gauge;
      m.gauge.value = e.read();
    } else {
      f.type = prometheus::MetricType::Counter;
      m.counter.value = e.read();
    }
    f.metric.push_back(std::move(m));
    out.push_back(std::move(f));
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
