#include "worker/recent_ids.h"

#include <algorithm>
#include <bit>
#include <functional>

namespace cronlane::worker {

RecentIds::RecentIds(size_t capacity) : capacity_(std::min(capacity, kMaxCapacity)) {
  if (capacity_ == 0) return;
  ring_.resize(capacity_);
  ring_hash_.resize(capacity_);
  ring_live_.resize(capacity_);
  // At most half full: probe runs stay short.
  table_.resize(std::bit_ceil(2 * capacity_));
  mask_ = table_.size() - 1;
}

uint32_t RecentIds::Hash(std::string_view id) {
  const size_t h = std::hash<std::string_view>{}(id);
  return static_cast<uint32_t>(h ^ (h >> 32));
}

size_t RecentIds::Find(std::string_view id, uint32_t h) const {
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    const Slot& s = table_[i];
    if (s.index == 0 || (s.hash == h && ring_[s.index - 1] == id)) return i;
  }
}

void RecentIds::EraseSlot(size_t i) {
  // Backward shift: an entry further along the run moves into the hole when its
  // home slot does not lie (cyclically) between the hole and itself.
  for (size_t j = (i + 1) & mask_; table_[j].index != 0; j = (j + 1) & mask_) {
    const size_t home = table_[j].hash & mask_;
    const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (!stays) {
      table_[i] = table_[j];
      i = j;
    }
  }
  table_[i] = Slot{};
}

void RecentIds::DropOldest() {
  if (ring_live_[head_] != 0) {
    const size_t at = Find(ring_[head_], ring_hash_[head_]);
    EraseSlot(at);
    ring_live_[head_] = 0;
    --live_;
  }
  head_ = (head_ + 1) % capacity_;
  --used_;
}

bool RecentIds::Insert(std::string_view id) {
  if (capacity_ == 0) return true;
  const uint32_t h = Hash(id);
  if (table_[Find(id, h)].index != 0) return false;
  if (used_ == capacity_) DropOldest();
  const size_t r = (head_ + used_) % capacity_;
  ring_[r].assign(id);  // reuses the forgotten id's buffer
  ring_hash_[r] = h;
  ring_live_[r] = 1;
  ++used_;
  ++live_;
  // Dropping the oldest may have shifted the run: probed again for its end.
  table_[Find(id, h)] = Slot{h, static_cast<uint32_t>(r + 1)};
  return true;
}

bool RecentIds::Contains(std::string_view id) const {
  return capacity_ != 0 && table_[Find(id, Hash(id))].index != 0;
}

void RecentIds::Erase(std::string_view id) {
  if (capacity_ == 0) return;
  const size_t at = Find(id, Hash(id));
  if (table_[at].index == 0) return;
  ring_live_[table_[at].index - 1] = 0;
  --live_;
  EraseSlot(at);
}

}  // namespace cronlane::worker
