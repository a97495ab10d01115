// Sequence planning: where a target sequence must stand, and what sync does about it.
#include "pgtandem/sequence_plan.hpp"

#include <catch2/catch.hpp>

namespace pgtandem {
namespace {

SourceSequence Source(int64_t last_value, bool is_called, int64_t increment = 1) {
  SourceSequence s;
  s.name = {"public", "orders_id_seq"};
  s.definition.increment = increment;
  if (increment < 0) {
    s.definition.min = INT64_MIN;
    s.definition.max = -1;
    s.definition.start = -1;
  }
  s.value = {last_value, is_called};
  return s;
}

TargetSide Target(const SourceSequence& source, int64_t last_value, bool is_called) {
  TargetSide side;
  side.sequence.emplace();
  side.sequence->name = source.name;
  side.sequence->definition = source.definition;
  side.sequence->value = SequenceValue{last_value, is_called};
  return side;
}

std::optional<PresentValue> Present(int64_t value) { return PresentValue{value, "public.orders.id"}; }

}  // namespace

TEST_CASE("NextValue accounts for is_called and saturates at the int64 limits") {
  SequenceDefinition up;
  CHECK(NextValue(up, {10, true}) == 11);
  CHECK(NextValue(up, {10, false}) == 10);
  SequenceDefinition down;
  down.increment = -3;
  CHECK(NextValue(down, {-10, true}) == -13);
  CHECK(NextValue(up, {INT64_MAX, true}) == INT64_MAX);
  down.increment = -1;
  CHECK(NextValue(down, {INT64_MIN, true}) == INT64_MIN);
}

TEST_CASE("A target behind the source gets the source's exact state") {
  SourceSequence source = Source(41, true);
  SequenceReport r = PlanSequence(source, Target(source, 1, false), std::nullopt, {});
  CHECK(r.behind);
  CHECK_FALSE(r.duplicate_risk);
  CHECK(r.action == SequenceAction::kSet);
  CHECK(r.write.last_value == 41);
  CHECK(r.write.is_called);
  CHECK(r.desired_next == 42);

  SourceSequence fresh = Source(50, false);
  SequenceReport f = PlanSequence(fresh, Target(fresh, 1, false), std::nullopt, {});
  CHECK(f.write.last_value == 50);
  CHECK_FALSE(f.write.is_called);
}

TEST_CASE("A target already where the source is needs nothing, whatever is_called says") {
  SourceSequence source = Source(41, true);
  SequenceReport r = PlanSequence(source, Target(source, 42, false), std::nullopt, {});
  CHECK_FALSE(r.RiskFound());
  CHECK(r.action == SequenceAction::kNone);
  CHECK_FALSE(r.RiskRemains());
}

TEST_CASE("Values present on the target push the sequence past them, plus the margin") {
  SourceSequence source = Source(41, true);
  SequenceReport r = PlanSequence(source, Target(source, 41, true), Present(1000), {});
  CHECK(r.duplicate_risk);
  CHECK_FALSE(r.behind);
  CHECK(r.action == SequenceAction::kSet);
  CHECK(r.desired_next == 1001);
  CHECK(r.write.last_value == 1000);
  CHECK(r.write.is_called);

  SequenceOptions margin;
  margin.margin = 10;
  CHECK(PlanSequence(source, Target(source, 41, true), Present(1000), margin).desired_next == 1011);
  CHECK(PlanSequence(source, Target(source, 41, true), Present(5), margin).desired_next == 52);
}

TEST_CASE("A descending sequence moves down, past the smallest value present") {
  SourceSequence source = Source(-7, true, -1);
  SequenceReport r = PlanSequence(source, Target(source, -1, false), Present(-400), {});
  CHECK(r.behind);
  CHECK(r.duplicate_risk);
  CHECK_FALSE(r.ascending);
  CHECK(r.desired_next == -401);
  CHECK(r.write.last_value == -400);
  CHECK(r.write.is_called);
  CHECK(Further(false, -5, -3));
}

TEST_CASE("A target ahead is kept unless backwards moves are allowed") {
  SourceSequence source = Source(5, true);
  SequenceReport kept = PlanSequence(source, Target(source, 5000, true), std::nullopt, {});
  CHECK_FALSE(kept.RiskFound());
  CHECK(kept.action == SequenceAction::kKeepAhead);
  SequenceOptions backwards;
  backwards.allow_backwards = true;
  SequenceReport moved = PlanSequence(source, Target(source, 5000, true), std::nullopt, backwards);
  CHECK(moved.action == SequenceAction::kSet);
  CHECK(moved.write.last_value == 5);
}

TEST_CASE("Missing sequences and differing definitions are left alone unless asked") {
  SourceSequence source = Source(5, true);
  SequenceReport missing = PlanSequence(source, TargetSide{}, std::nullopt, {});
  CHECK(missing.missing);
  CHECK(missing.action == SequenceAction::kLeaveMissing);
  CHECK(missing.RiskRemains());
  SequenceOptions create;
  create.create_missing = true;
  CHECK(PlanSequence(source, TargetSide{}, std::nullopt, create).action == SequenceAction::kCreate);

  TargetSide side = Target(source, 1, false);
  side.sequence->definition.increment = 2;
  side.sequence->definition.cycle = true;
  SequenceReport differs = PlanSequence(source, side, std::nullopt, {});
  REQUIRE(differs.definition_differences.size() == 2);
  CHECK(differs.definition_differences[0] == "increment 1 on the source, 2 on the target");
  CHECK(differs.definition_differences[1] == "cycle no on the source, yes on the target");
  CHECK(differs.action == SequenceAction::kLeaveDefinition);
  CHECK(differs.RiskRemains());  // it is behind, and stays so
  SequenceOptions fix;
  fix.fix_definitions = true;
  CHECK(PlanSequence(source, side, std::nullopt, fix).action == SequenceAction::kRedefine);
}

TEST_CASE("A value outside the sequence's bounds cannot be set") {
  SourceSequence source = Source(90, true);
  source.definition.max = 100;
  SequenceReport r = PlanSequence(source, Target(source, 1, false), Present(100), {});
  CHECK(r.action == SequenceAction::kCannot);
  CHECK(r.RiskRemains());
  CHECK_THAT(r.detail, Catch::Contains("outside MINVALUE 1 .. MAXVALUE 100"));
  // The source's own state is always copied, even a sequence that has run out.
  SourceSequence run_out = source;
  run_out.value = {100, true};
  SequenceReport exhausted = PlanSequence(run_out, Target(run_out, 1, false), std::nullopt, {});
  CHECK(exhausted.action == SequenceAction::kSet);
}

}  // namespace pgtandem
