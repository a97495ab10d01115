// Where a target sequence must stand, and what to do to get it there: pure
// arithmetic on what the catalogs said, so every rule is unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pgtandem/sequence_catalog.hpp"

namespace pgtandem {

struct SequenceOptions {
  // Increments added past the furthest of the source's position and the
  // target's data, for sequences that are set.
  int64_t margin = 0;
  bool allow_backwards = false;  // set a target that is ahead back to the source's position
  bool fix_definitions = false;  // ALTER a target sequence whose definition differs to the source's
  bool create_missing = false;   // CREATE a sequence missing on the target, OWNED BY the same column
  // Also compare columns without an index that leads with them (a full scan
  // each); the daemon, which syncs every few seconds, leaves them to the CLI.
  bool scan_unindexed = true;
};

enum class SequenceAction {
  kNone,             // already where it must be
  kSet,              // setval
  kCreate,           // missing: create with the source's definition, then setval
  kRedefine,         // definition differs: ALTER SEQUENCE to the source's, then setval
  kKeepAhead,        // the target is further than needed and is not moved back
  kLeaveMissing,     // missing, and creating was not asked for
  kLeaveDefinition,  // definition differs, and fixing it was not asked for
  kCannot,           // the value needed lies outside the sequence's MINVALUE..MAXVALUE
};

// The furthest value already present on the target in a column the sequence
// feeds: the largest for an ascending sequence, the smallest for a descending one.
struct PresentValue {
  int64_t value = 0;
  std::string column;  // schema.table.column
};

// One source sequence on one target: what was found, and what sync does or did.
struct SequenceReport {
  TableName sequence;                        // the source's name
  std::optional<TableName> target_sequence;  // nullopt: missing on the target
  std::string reason;                        // why the sync has it
  bool ascending = true;
  int64_t source_next = 0;             // what nextval() returns next on the source
  std::optional<int64_t> target_next;  // on the target, before any change
  std::optional<PresentValue> present;
  std::vector<std::string> definition_differences;
  std::vector<std::string> unchecked_columns;  // fed columns not compared, with the reason

  // As found, before any change: the three risks `check` reports.
  bool missing = false;
  bool behind = false;          // the target's next value is short of the source's
  bool duplicate_risk = false;  // the target's next value is already present in a column it feeds

  SequenceAction action = SequenceAction::kNone;
  int64_t desired_next = 0;                  // where the target's next value must be (kSet, kCreate, kRedefine)
  SequenceValue write;                       // setval(last_value, is_called) that puts it there
  std::optional<int64_t> target_next_after;  // after sync changed it
  std::string detail;                        // why it cannot, failed, or a note (e.g. OWNED BY not set)
  bool failed = false;                       // sync tried and the server refused
  bool at_risk = false;                      // check: any risk found; sync: a risk remains afterwards

  bool RiskFound() const { return missing || behind || duplicate_risk; }
  // After sync: whether the target may still hand out a value the data holds.
  bool RiskRemains() const;
};

// What nextval() returns next for this state; saturates at the int64 limits
// (only reachable by a bigint sequence that has run out).
int64_t NextValue(const SequenceDefinition& definition, const SequenceValue& value);

// True when `a` lies further than `b` in the sequence's direction.
bool Further(bool ascending, int64_t a, int64_t b);

// Decides the action for one sequence on one target.
SequenceReport PlanSequence(const SourceSequence& source, const TargetSide& side,
                            const std::optional<PresentValue>& present, const SequenceOptions& options);

}  // namespace pgtandem
