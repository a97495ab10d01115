// pg_snapshot parsing and the reconstruction of a restored copy's snapshot.
#include "pgtandem/xid_snapshot.hpp"

#include <algorithm>
#include <charconv>
#include <map>

#include <fmt/format.h>

#include "pgtandem/error.hpp"

namespace pgtandem {
namespace {

uint64_t ParseXid(std::string_view text, std::string_view whole) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw Error(ErrorKind::kInternal, fmt::format("malformed snapshot \"{}\"", whole));
  }
  return value;
}

bool Contains(const std::vector<uint64_t>& sorted, uint64_t value) {
  return std::binary_search(sorted.begin(), sorted.end(), value);
}

std::map<int, const std::vector<uint64_t>*> ByTable(const std::vector<TableTxids>& tables) {
  std::map<int, const std::vector<uint64_t>*> out;
  for (const auto& t : tables) out[t.table_id] = &t.txids;
  return out;
}

}  // namespace

XidSnapshot XidSnapshot::Parse(std::string_view text) {
  auto first = text.find(':');
  auto second = first == std::string_view::npos ? first : text.find(':', first + 1);
  if (second == std::string_view::npos) throw Error(ErrorKind::kInternal, fmt::format("malformed snapshot \"{}\"", text));
  XidSnapshot s;
  s.xmin = ParseXid(text.substr(0, first), text);
  s.xmax = ParseXid(text.substr(first + 1, second - first - 1), text);
  std::string_view rest = text.substr(second + 1);
  while (!rest.empty()) {
    auto comma = rest.find(',');
    s.xip.push_back(ParseXid(rest.substr(0, comma), text));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  std::sort(s.xip.begin(), s.xip.end());
  return s;
}

std::string XidSnapshot::Text() const { return fmt::format("{}:{}:{}", xmin, xmax, fmt::join(xip, ",")); }

bool XidSnapshot::Visible(uint64_t txid) const {
  if (txid < xmin) return true;
  if (txid >= xmax) return false;
  return !Contains(xip, txid);
}

XidSnapshot DeriveRestoredSnapshot(const std::vector<TableTxids>& restored, const std::vector<TableTxids>& source_now,
                                   uint64_t restored_floor, const std::vector<uint64_t>& running_now) {
  uint64_t xmax = std::max<uint64_t>(restored_floor, 1);
  for (const auto& t : restored) {
    if (!t.txids.empty()) xmax = std::max(xmax, t.txids.back() + 1);
  }
  auto copy = ByTable(restored);
  std::vector<uint64_t> xip;
  for (const auto& table : source_now) {
    auto found = copy.find(table.table_id);
    for (uint64_t txid : table.txids) {
      if (txid >= xmax) break;
      bool in_copy = found != copy.end() && Contains(*found->second, txid);
      if (!in_copy && txid >= restored_floor) xip.push_back(txid);
    }
  }
  for (uint64_t txid : running_now) {
    if (txid < xmax) xip.push_back(txid);
  }
  std::sort(xip.begin(), xip.end());
  xip.erase(std::unique(xip.begin(), xip.end()), xip.end());
  XidSnapshot s;
  s.xmax = xmax;
  s.xmin = xip.empty() ? xmax : xip.front();
  s.xip = std::move(xip);
  return s;
}

bool BoundaryMatches(const XidSnapshot& boundary, const std::vector<TableTxids>& restored,
                     const std::vector<TableTxids>& source_now, uint64_t restored_floor) {
  for (const auto& table : restored) {
    for (uint64_t txid : table.txids) {
      if (!boundary.Visible(txid)) return false;
    }
  }
  auto copy = ByTable(restored);
  for (const auto& table : source_now) {
    auto found = copy.find(table.table_id);
    for (uint64_t txid : table.txids) {
      if (txid < restored_floor || !boundary.Visible(txid)) continue;
      if (found == copy.end() || !Contains(*found->second, txid)) return false;
    }
  }
  return true;
}

}  // namespace pgtandem
