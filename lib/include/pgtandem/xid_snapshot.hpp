// A pg_snapshot value ("xmin:xmax:xip,..."), parsed, for visibility tests in pgtandem itself.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pgtandem {

struct XidSnapshot {
  uint64_t xmin = 1;
  uint64_t xmax = 1;
  std::vector<uint64_t> xip;  // sorted, each in [xmin, xmax)

  // Throws Error(kInternal) for text PostgreSQL would not print.
  static XidSnapshot Parse(std::string_view text);
  std::string Text() const;
  // As pg_visible_in_snapshot(): committed before the snapshot was taken.
  bool Visible(uint64_t txid) const;
};

// The source txids of captured transactions, per captured table.
struct TableTxids {
  int table_id = 0;
  std::vector<uint64_t> txids;  // sorted, distinct
};

// Rebuilds the snapshot a restored copy of the source was taken in, from the
// captured transactions its delta tables hold. Every captured transaction the
// snapshot saw left its deltas in the copy (unless purged before, and then
// below `restored_floor`); every one it did not see either ran concurrently
// (it is in the source's deltas now but not in the copy) or got its txid
// later (above every txid in the copy). `running_now` are the source's
// transactions in progress at bootstrap, which may still write.
// Returns the snapshot whose invisible transactions are exactly those to apply.
XidSnapshot DeriveRestoredSnapshot(const std::vector<TableTxids>& restored, const std::vector<TableTxids>& source_now,
                                   uint64_t restored_floor, const std::vector<uint64_t>& running_now);

// True when `boundary` is the snapshot the copy was taken in, as far as the
// deltas can tell: the copy holds no transaction the boundary does not see,
// and every captured transaction the boundary sees is in the copy (or was
// purged before it, below `restored_floor`).
bool BoundaryMatches(const XidSnapshot& boundary, const std::vector<TableTxids>& restored,
                     const std::vector<TableTxids>& source_now, uint64_t restored_floor);

}  // namespace pgtandem
