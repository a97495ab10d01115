// The rules for moving a target sequence: forward past the source and the
// target's data, never back unless asked, and only within its bounds.
#include "pgtandem/sequence_plan.hpp"

#include <limits>

#include <fmt/format.h>

namespace pgtandem {
namespace {

int64_t Saturate(bool overflow, int64_t value, bool upward) {
  if (!overflow) return value;
  return upward ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
}

int64_t AddSaturating(int64_t a, int64_t b) {
  int64_t sum = 0;
  bool overflow = __builtin_add_overflow(a, b, &sum);
  return Saturate(overflow, sum, b > 0);
}

int64_t MultiplySaturating(int64_t a, int64_t b) {
  int64_t product = 0;
  bool overflow = __builtin_mul_overflow(a, b, &product);
  return Saturate(overflow, product, (a > 0) == (b > 0));
}

bool WithinBounds(const SequenceDefinition& d, int64_t value) { return value >= d.min && value <= d.max; }

// The setval() arguments whose next nextval() is `next`: "last handed out was
// next - increment" where that is a legal value, else "next, not yet called".
SequenceValue WriteFor(const SequenceDefinition& d, int64_t next) {
  int64_t before = 0;
  if (!__builtin_sub_overflow(next, d.increment, &before) && WithinBounds(d, before)) return {before, true};
  return {next, false};
}

SequenceAction ChooseAction(const SequenceReport& r, const SequenceOptions& options) {
  if (r.missing) return options.create_missing ? SequenceAction::kCreate : SequenceAction::kLeaveMissing;
  if (!r.definition_differences.empty()) {
    return options.fix_definitions ? SequenceAction::kRedefine : SequenceAction::kLeaveDefinition;
  }
  if (*r.target_next == r.desired_next) return SequenceAction::kNone;
  if (Further(r.ascending, *r.target_next, r.desired_next) && !options.allow_backwards) {
    return SequenceAction::kKeepAhead;
  }
  return SequenceAction::kSet;
}

}  // namespace

std::vector<std::string> SequenceDefinition::Differences(const SequenceDefinition& target) const {
  std::vector<std::string> out;
  auto compare = [&](std::string_view what, const auto& mine, const auto& theirs) {
    if (mine != theirs) out.push_back(fmt::format("{} {} on the source, {} on the target", what, mine, theirs));
  };
  compare("type", type, target.type);
  compare("increment", increment, target.increment);
  compare("minvalue", min, target.min);
  compare("maxvalue", max, target.max);
  compare("cycle", cycle ? "yes" : "no", target.cycle ? "yes" : "no");
  return out;
}

bool SequenceReport::RiskRemains() const {
  switch (action) {
    case SequenceAction::kNone:
    case SequenceAction::kSet:
    case SequenceAction::kCreate:
    case SequenceAction::kRedefine:
    case SequenceAction::kKeepAhead: return failed;
    case SequenceAction::kLeaveDefinition: return behind || duplicate_risk;
    case SequenceAction::kLeaveMissing:
    case SequenceAction::kCannot: return true;
  }
  return true;
}

int64_t NextValue(const SequenceDefinition& definition, const SequenceValue& value) {
  return value.is_called ? AddSaturating(value.last_value, definition.increment) : value.last_value;
}

bool Further(bool ascending, int64_t a, int64_t b) { return ascending ? a > b : a < b; }

SequenceReport PlanSequence(const SourceSequence& source, const TargetSide& side,
                            const std::optional<PresentValue>& present, const SequenceOptions& options) {
  const SequenceDefinition& d = source.definition;
  SequenceReport r;
  r.sequence = source.name;
  r.reason = source.reason;
  r.ascending = d.Ascending();
  r.source_next = NextValue(d, source.value);
  r.present = present;
  r.missing = !side.sequence;
  if (side.sequence) {
    r.target_sequence = side.sequence->name;
    r.definition_differences = d.Differences(side.sequence->definition);
    if (side.sequence->value) r.target_next = NextValue(side.sequence->definition, *side.sequence->value);
  }
  r.behind = r.target_next && Further(r.ascending, r.source_next, *r.target_next);
  r.duplicate_risk = r.target_next && present && !Further(r.ascending, *r.target_next, present->value);

  // The source's own state is copied as it is, unless the target's data or
  // the margin push the next value further.
  r.desired_next = r.source_next;
  bool exact = true;
  if (present) {
    int64_t after = AddSaturating(present->value, d.increment);
    if (Further(r.ascending, after, r.desired_next)) r.desired_next = after, exact = false;
  }
  if (options.margin > 0) {
    r.desired_next = AddSaturating(r.desired_next, MultiplySaturating(options.margin, d.increment));
    exact = false;
  }
  if (!r.missing && !r.target_next) return r;  // unreadable: the caller names the grant
  r.action = ChooseAction(r, options);
  if (r.action == SequenceAction::kRedefine && !options.allow_backwards &&
      Further(r.ascending, *r.target_next, r.desired_next)) {
    r.desired_next = *r.target_next;  // keep the target's lead under the new definition
    exact = false;
  }
  bool writes =
      r.action == SequenceAction::kSet || r.action == SequenceAction::kCreate || r.action == SequenceAction::kRedefine;
  if (writes && !exact && !WithinBounds(d, r.desired_next)) {
    r.detail = fmt::format(
        "its next value must be {} to stay past the source and the target's data, outside "
        "MINVALUE {} .. MAXVALUE {}; widen the sequence (ALTER SEQUENCE {} AS bigint MAXVALUE "
        "...) or lower --margin",
        r.desired_next, d.min, d.max, source.name.Quoted());
    r.action = SequenceAction::kCannot;
    return r;
  }
  r.write = exact ? source.value : WriteFor(d, r.desired_next);
  return r;
}

}  // namespace pgtandem
