// A seeded random write load on the sample schema, from several concurrent writers.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace pgtandem::test {

// Foreign keys, a partitioned table, composite, uuid and text keys, names that
// need quoting, jsonb, bytea, arrays, an enum, a domain, numeric, timestamptz,
// a generated column and large TOASTed values.
extern const std::string kSampleSchema;
// The "tables" array of a sync selecting every table of kSampleSchema.
extern const std::string kSampleTables;

// Writers run until Stop(). Each transaction does 1 to 4 random operations:
// inserts, updates (NULLs included), deletes cascading through foreign keys,
// primary-key changes, rows moving between partitions, upserts, and now and
// then a TRUNCATE of a table or of one partition. Statements that conflict
// (unique keys, deadlocks) roll back, as an application's would.
class RandomWorkload {
 public:
  // Without `truncates` (pg_dump -j cannot run beside a TRUNCATE: its workers
  // lock tables with NOWAIT after the leader did).
  // With `reconnect`, a writer whose connection is lost (the source
  // restarted) connects again and goes on, as an application's pool would;
  // without it, the loss is a failure Stop() reports.
  RandomWorkload(std::string dsn, uint64_t seed, int writers, bool truncates = true, bool reconnect = false);
  ~RandomWorkload();
  RandomWorkload(const RandomWorkload&) = delete;
  RandomWorkload& operator=(const RandomWorkload&) = delete;

  // Stops and joins the writers; throws if a writer lost its connection.
  void Stop();
  int64_t Committed() const { return committed_; }

 private:
  void Write(uint64_t seed);

  std::string dsn_;
  bool truncates_;
  bool reconnect_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> committed_{0};
  std::vector<std::thread> threads_;
  std::vector<std::string> failures_;
  std::atomic<bool> stopped_{false};
};

}  // namespace pgtandem::test
