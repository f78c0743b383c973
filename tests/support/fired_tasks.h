#pragma once
// Produces fired tasks exactly as the dispatcher builds them (CloudEvent headers,
// keys), for tests that feed workers without running the operator. Header-only:
// only tests that link the dispatcher include it.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/kafka.h"
#include "dispatcher/dispatcher.h"

namespace cronlane::testing {

// One occurrence per payload, of tasks named <prefix>0, <prefix>1, ... Returns the
// ce_ids ("uid-<prefix><i>:1800000000").
inline std::vector<std::string> ProduceFiredTasks(const std::string& bootstrap, const std::string& topic,
                                                  const std::vector<std::string>& payloads, int max_attempts,
                                                  const std::string& prefix = "task") {
  auto p = kafka::NewProducer({{"bootstrap.servers", bootstrap}});
  EXPECT_TRUE(p.ok());
  std::vector<std::string> ids;
  for (size_t i = 0; i < payloads.size() && p.ok(); ++i) {
    dispatcher::TaskDefinition t;
    t.id = "uid-" + prefix + std::to_string(i);
    t.ns = "ns";
    t.name = prefix + std::to_string(i);
    t.payload_json = payloads[i];
    t.max_attempts = max_attempts;
    t.backoff_seconds = 0;
    for (auto& m : dispatcher::BuildMessages(t, dispatcher::Instant{std::chrono::seconds{1800000000}},
                                             std::chrono::seconds(0), topic)) {
      EXPECT_TRUE(kafka::Produce(p->get(), m.topic, m.key, m.value, m.headers).ok());
      ids.push_back(t.id + ":1800000000");
    }
  }
  if (p.ok()) {
    EXPECT_TRUE(kafka::Flush(p->get(), std::chrono::seconds(10)).ok());
  }
  return ids;
}

}  // namespace cronlane::testing
