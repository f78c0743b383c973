#include "operator/kube/list_stream.h"

namespace cronlane::kube {

ListStream::ListStream(Handler on_item, Handler on_metadata)
    : on_item_(std::move(on_item)), on_metadata_(std::move(on_metadata)) {}

Status ListStream::Feed(std::string_view data) {
  capture_from_ = 0;
  const char* p = data.data();
  const size_t n = data.size();
  for (size_t i = 0; i < n; ++i) {
    // Fast paths over what cannot change the state: the inside of a string up to
    // its next quote or backslash, and the inside of an item (deeper than the
    // fields it needs) up to the next string or bracket. Byte() takes the rest.
    if (in_string_ && !escaped_ && !key_string_) {
      while (i < n && p[i] != '"' && p[i] != '\\') ++i;
    } else if (!in_string_ && depth_ >= 3) {
      while (i < n && p[i] != '"' && p[i] != '{' && p[i] != '}' && p[i] != '[' && p[i] != ']') ++i;
    }
    if (i == n) break;
    if (Status s = Byte(data, i); !s.ok()) return s;
  }
  // A value still open at the end of the piece: keep what it has so far.
  if (capture_ != Capture::kNone) captured_.append(data.substr(capture_from_));
  return Status::Ok();
}

Status ListStream::Byte(std::string_view data, size_t i) {
  const char c = data[i];
  if (in_string_) {
    if (escaped_) {
      escaped_ = false;
    } else if (c == '\\') {
      escaped_ = true;
    } else if (c == '"') {
      in_string_ = false;
      key_string_ = false;
    } else if (key_string_) {
      key_ += c;  // top-level keys are plain names; an escape in one only makes it unknown
    }
    return Status::Ok();
  }
  if (c == ' ' || c == '\n' || c == '\r' || c == '\t') return Status::Ok();
  if (done_) return InvalidArgument("text after the list's object");
  if (depth_ == 0) {
    if (c != '{') return InvalidArgument("the response is not a JSON object");
    depth_ = 1;
    expect_key_ = true;
    return Status::Ok();
  }
  if (capture_ == Capture::kNone) {
    // A value starts: an element of "items", or the value of a top-level key.
    Capture start = Capture::kNone;
    if (in_items_ && depth_ == 2 && c != ']' && c != ',') {
      if (c != '{') return InvalidArgument("an item is not a JSON object");
      start = Capture::kItem;
    } else if (depth_ == 1 && !expect_key_ && !value_seen_ && c != ':' && c != ',' && c != '}') {
      value_seen_ = true;
      if (key_ == "items") {
        if (c == '[') {
          in_items_ = true;
        } else if (c != 'n') {  // null: no items
          return InvalidArgument("items is neither an array nor null");
        }
      } else if (key_ == "metadata" && c == '{') {
        start = Capture::kMetadata;
      }
    }
    if (start != Capture::kNone) {
      capture_ = start;
      capture_from_ = i;
      capture_depth_ = depth_;  // the depth it returns to when it closes
    }
  }
  switch (c) {
    case '"':
      in_string_ = true;
      if (depth_ == 1 && expect_key_) {
        key_string_ = true;
        key_.clear();
      }
      break;
    case ':':
      if (depth_ == 1) {
        expect_key_ = false;
        value_seen_ = false;
      }
      break;
    case ',':
      if (depth_ == 1) expect_key_ = true;
      break;
    case '{':
    case '[':
      ++depth_;
      break;
    case '}':
    case ']':
      --depth_;
      if (capture_ != Capture::kNone && depth_ == capture_depth_) {
        // A value within this piece is handed over where it lies; one that began
        // in an earlier piece is completed in captured_ (whose buffer is reused).
        std::string_view value = data.substr(capture_from_, i + 1 - capture_from_);
        if (!captured_.empty()) {
          captured_.append(value);
          value = captured_;
        }
        const Capture was = capture_;
        capture_ = Capture::kNone;
        Status s = was == Capture::kItem ? on_item_(value) : on_metadata_(value);
        captured_.clear();
        if (!s.ok()) return s;
      }
      if (depth_ == 1 && c == ']') in_items_ = false;
      if (depth_ == 0) done_ = true;
      break;
    default:
      break;
  }
  return Status::Ok();
}

Status ListStream::Finish() const {
  if (!done_) return InvalidArgument("the response ended inside the list's object");
  return Status::Ok();
}

}  // namespace cronlane::kube
