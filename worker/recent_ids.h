#pragma once
// The ids a worker consumed most recently (its dedupe window): Insert tells a new
// id from one still remembered, and the oldest is forgotten once `capacity` are
// held. Every fired task passes through it, so it is built for that: the ids lie
// in a ring of strings whose buffers are reused, found through an open-addressing
// table of (32-bit hash, ring index) pairs probed linearly and deleted by backward
// shift. A lookup touches one run of the table and compares a string only when its
// hash matches; a steady stream of ids allocates nothing. (std::unordered_set took
// about 9% of the in-process worker's CPU on node and string cache misses; no
// library at hand offers a flat set.)
//
// Not thread-safe: the worker guards it with its seen_mu_.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cronlane::worker {

class RecentIds {
 public:
  // Remembers up to `capacity` ids (0: none; at most kMaxCapacity, beyond which it
  // is cut to that: a ring index is 32 bits).
  explicit RecentIds(size_t capacity);
  static constexpr size_t kMaxCapacity = size_t{1} << 30;

  // Adds `id` and returns true, or returns false when it is remembered already.
  // Beyond `capacity`, the oldest id is forgotten.
  bool Insert(std::string_view id);
  bool Contains(std::string_view id) const;
  // Forgets `id` (an id handed back, to be run again); its place in the window is
  // left empty until it would have been forgotten. No-op when absent.
  void Erase(std::string_view id);
  // Ids remembered.
  size_t size() const { return live_; }

 private:
  struct Slot {
    uint32_t hash = 0;
    uint32_t index = 0;  // ring index + 1; 0: empty
  };
  static uint32_t Hash(std::string_view id);
  // The table slot holding `id` (hash `h`), or none (the empty slot that ended the
  // probe, whose index is 0).
  size_t Find(std::string_view id, uint32_t h) const;
  // Empties table slot `i`, shifting back the entries probed past it.
  void EraseSlot(size_t i);
  // Forgets the oldest ring entry (the ring is full).
  void DropOldest();

  size_t capacity_;
  std::vector<std::string> ring_;  // ids, oldest at head_
  std::vector<uint32_t> ring_hash_;
  std::vector<uint8_t> ring_live_;  // 0: an erased id's place
  size_t head_ = 0, used_ = 0, live_ = 0;
  std::vector<Slot> table_;  // a power of two, at least twice the capacity
  size_t mask_ = 0;
};

}  // namespace cronlane::worker
