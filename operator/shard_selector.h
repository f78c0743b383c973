#pragma once
// The shardSelector a Kubernetes 1.36+ apiserver filters a LIST or WATCH by
// (KEP-5866, feature gate ShardedListAndWatch): the objects whose 64-bit FNV-1a of
// metadata.uid lies in one of the given ranges — the range layout's shards
// (common/hash.h). A server without the gate ignores the parameter and sends
// everything, so a reader keeps filtering by ShardOf itself.

#include <set>
#include <string>

#include "common/hash.h"
#include "operator/informer.h"

namespace cronlane::op {

// `shardRange(object.metadata.uid, '0x<start>', '0x<end>')` for each run of
// consecutive shards of `shards` (adjacent shards make one range), joined with
// " || ": start and end are 16 lower-case hex digits, except the end of the last
// shard, which is '0x10000000000000000' (2^64). Empty for no shards, and for all
// of them (nothing to filter).
std::string ShardRangeSelector(const std::set<int>& held, int shards);

// The tasks informer's scope for a replica holding `held` of `shards` range
// shards: the selector above, and a filter on the same shards (for a server that
// ignores the selector); nothing for no shards; everything for all of them. The
// modulo layout has no ranges: only the filter.
InformerScope ShardScope(const std::set<int>& held, int shards, ShardLayout layout);

}  // namespace cronlane::op
