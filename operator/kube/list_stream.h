#pragma once
// Splits a Kubernetes LIST response ({"items": [ {...}, ... ], "metadata": {...},
// ...}, keys in any order) into its items as the body arrives in pieces, so a
// 100k-object list (about 90 MB) is never held whole: KubeClient::List feeds it
// the body piece by piece and parses one item at a time.
//
// It tracks only what it needs (nesting, strings and their escapes, the top-level
// keys) and hands over each item's and the top-level metadata's raw JSON text;
// the caller parses them, which is where malformed JSON inside them is found.
// Anything else at the top level is skipped. Not thread-safe: one list, one thread.
//
// Written here rather than taken from a library: simdjson and nlohmann parse a
// document held whole (simdjson's document streams split only concatenated
// documents), and this needs about a hundred lines.

#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cronlane::kube {

class ListStream {
 public:
  // `on_item` gets each element of the top-level "items" array, `on_metadata` the
  // top-level "metadata"; an error either returns ends the stream (Feed returns it).
  using Handler = std::function<Status(std::string_view json)>;
  ListStream(Handler on_item, Handler on_metadata);

  // The next piece of the body. InvalidArgument when it cannot be a list: not an
  // object, an item that is not an object, "items" neither an array nor null,
  // text after the top-level object.
  Status Feed(std::string_view data);
  // The body ended: InvalidArgument unless the top-level object was complete.
  Status Finish() const;

 private:
  enum class Capture { kNone, kItem, kMetadata };
  Status Byte(std::string_view data, size_t i);

  Handler on_item_;
  Handler on_metadata_;
  int depth_ = 0;  // open objects and arrays
  bool in_string_ = false;
  bool escaped_ = false;
  bool done_ = false;        // the top-level object closed
  bool expect_key_ = false;  // at depth 1, the next string is a key
  bool key_string_ = false;  // the string being read is a top-level key
  bool value_seen_ = false;  // the current top-level key's value has started
  std::string key_;          // the last top-level key
  bool in_items_ = false;    // inside the top-level "items" array (depth 2)
  Capture capture_ = Capture::kNone;
  int capture_depth_ = 0;    // the depth the captured value opened
  std::string captured_;     // the captured value's text so far
  size_t capture_from_ = 0;  // where the capture starts in the current piece
};

}  // namespace cronlane::kube
