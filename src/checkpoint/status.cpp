// SPDX-License-Identifier: Apache-2.0
#include "cairn/checkpoint/status.hpp"

#include <xxhash.h>

#include <algorithm>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <unordered_set>

#include "checkpoint/restore_context.hpp"
#include "comm/wire.hpp"
#include "storage/fault_injection.hpp"

namespace cairn {
namespace {

constexpr std::size_t kMaxProblemsPerRank = 200;
constexpr std::size_t kMaxProblemsShown = 20;

std::string rank_list(const std::vector<int>& ranks, int nranks) {
  if (static_cast<int>(ranks.size()) == nranks) return nranks == 1 ? "" : " (all ranks)";
  std::string out = ranks.size() == 1 ? " (rank " : " (ranks ";
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    std::size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (i) out += ",";
    out += std::to_string(ranks[i]);
    if (j > i) out += "-" + std::to_string(ranks[j]);
    i = j;
  }
  return out + ")";
}

uint64_t line_hash(const std::string& line) {
  return XXH3_64bits(line.data(), line.size());
}

// Local. The merged summary of every rank's problems (`all`, in rank order): identical problems
// of several ranks become one line naming the ranks. Each rank lists its first problems and sends
// the hashes of the rest, so the count of distinct problems is exact beyond what is listed.
Error merged_problems(const detail::RestoreContext& context, const std::vector<wire::Message>& all,
                      const std::string& check) {
  std::map<std::string, std::vector<int>> ranks_of;
  std::vector<std::string> order;
  std::unordered_set<uint64_t> distinct;
  ErrorContext where{.checkpoint = context.path(), .operation = check};
  for (std::size_t r = 0; r < all.size(); ++r) {
    for (const auto& item : all[r].at("listed")) {
      std::string line = item.at(0).get<std::string>();
      if (order.empty()) {
        where.rank = static_cast<int>(r);
        where.key = item.at(1).get<std::string>();
      }
      distinct.insert(line_hash(line));
      auto [it, fresh] = ranks_of.try_emplace(line);
      if (fresh) order.push_back(line);
      it->second.push_back(static_cast<int>(r));
    }
    for (const auto& hash : all[r].at("unlisted")) distinct.insert(hash.get<uint64_t>());
  }
  std::string message = check + " failed for checkpoint '" + context.path() +
                        "': " + std::to_string(distinct.size()) + " problem(s)";
  const std::size_t shown = std::min(order.size(), kMaxProblemsShown);
  for (std::size_t i = 0; i < shown; ++i)
    message += "\n  - " + order[i] + rank_list(ranks_of[order[i]], static_cast<int>(all.size()));
  if (distinct.size() > shown)
    message += "\n  ... and " + std::to_string(distinct.size() - shown) + " more";
  return Error(ErrorCode::kNotFound, message, std::move(where));
}

// Collective: each rank builds its report with `build` inside an agreement (a failure there on one
// rank reaches every rank), the lowest rank with a problem merges every rank's, and Comm::agree
// throws that error on every rank, counting the ranks with problems. Its context names the
// checkpoint, the check, and the rank and key of the first problem listed.
void global_verdict(const detail::RestoreContext& context,
                    const std::function<std::vector<detail::AccountItem>()>& build,
                    const std::string& check) {
  const Comm& comm = context.session().comm();
  std::vector<detail::AccountItem> local;
  comm.run_agreed([&] {
    fault_point("status_report", comm.rank());
    local = build();
  });
  const auto lowest =
      static_cast<int>(comm.allreduce_min(local.empty() ? comm.size() : comm.rank()));
  if (lowest == comm.size()) return;
  wire::Message mine = {{"listed", wire::Message::array()}, {"unlisted", wire::Message::array()}};
  for (std::size_t i = 0; i < local.size(); ++i)
    if (i < kMaxProblemsPerRank)
      mine["listed"].push_back(wire::Message::array({local[i].text, local[i].key}));
    else
      mine["unlisted"].push_back(line_hash(local[i].text));
  const std::vector<wire::Message> all = wire::gather(comm, mine, lowest);
  std::optional<Error> failure;
  try {
    if (comm.rank() == lowest)
      failure.emplace(merged_problems(context, all, check));
    else if (!local.empty())
      failure.emplace(ErrorCode::kNotFound, check);  // counted; only the lowest rank's travels
  } catch (...) {
    failure.emplace(current_exception_as_error({.rank = comm.rank(), .operation = check}));
  }
  comm.agree(failure ? &*failure : nullptr);
}

// One of the account's problem lists, and the words that say what its lines are.
struct ProblemList {
  std::vector<detail::AccountItem> detail::LocalAccount::*items;
  const char* prefix;
};

// The lines of `lists` in this rank's account, in the order given, each prefixed.
std::vector<detail::AccountItem> problems_in(const detail::RestoreContext& context,
                                             std::initializer_list<ProblemList> lists) {
  const detail::LocalAccount account = context.account();
  std::vector<detail::AccountItem> out;
  for (const ProblemList& list : lists)
    for (const detail::AccountItem& item : account.*list.items)
      out.push_back({list.prefix + item.text, item.key});
  return out;
}

constexpr ProblemList kUnmatchedCheckpointObjects{
    &detail::LocalAccount::unmatched_checkpoint_objects, "checkpoint object not matched: "};
constexpr ProblemList kUnrestoredValues{&detail::LocalAccount::unrestored_values,
                                        "checkpoint value not restored: "};
constexpr ProblemList kInconsistentReferences{&detail::LocalAccount::inconsistent_references,
                                              "inconsistent references: "};
constexpr ProblemList kUnmatchedLiveObjects{&detail::LocalAccount::unmatched_live_objects,
                                            "live object not in the checkpoint: "};

}  // namespace

RestoreStatus::RestoreStatus(std::shared_ptr<detail::RestoreContext> context)
    : context_(std::move(context)) {}
RestoreStatus::~RestoreStatus() = default;
RestoreStatus::RestoreStatus(RestoreStatus&&) noexcept = default;
RestoreStatus& RestoreStatus::operator=(RestoreStatus&&) noexcept = default;

RestoreStatus& RestoreStatus::assert_consumed() {
  global_verdict(
      *context_,
      [&] {
        return problems_in(*context_, {kUnmatchedCheckpointObjects, kUnrestoredValues,
                                       kInconsistentReferences, kUnmatchedLiveObjects});
      },
      "assert_consumed");
  return *this;
}

RestoreStatus& RestoreStatus::assert_existing_objects_matched() {
  global_verdict(
      *context_,
      [&] {
        return problems_in(*context_,
                           {kUnmatchedLiveObjects, kInconsistentReferences, kUnrestoredValues});
      },
      "assert_existing_objects_matched");
  return *this;
}

RestoreStatus& RestoreStatus::assert_nontrivial_match() {
  global_verdict(
      *context_,
      [&] {
        std::vector<detail::AccountItem> problems;
        if (context_->account().matched_objects == 0)
          problems.push_back({"nothing but the root object was matched", ""});
        return problems;
      },
      "assert_nontrivial_match");
  return *this;
}

RestoreStatus& RestoreStatus::expect_partial() {
  context_->set_expect_partial();
  return *this;
}

RestoreSummary RestoreStatus::summary() const {
  const Comm& comm = context_->session().comm();
  detail::LocalAccount a;
  comm.run_agreed([&] {
    fault_point("status_report", comm.rank());
    a = context_->account();
  });
  const auto n = static_cast<int64_t>(context_->manifest().nodes.size());
  RestoreSummary s;
  s.checkpoint_objects = n - 1;
  // An object counts as matched, and a value as restored, only if it is so on every rank.
  s.matched_objects = comm.allreduce_min(a.matched_objects);
  s.checkpoint_values = static_cast<int64_t>(context_->manifest().tensors.size() +
                                             context_->manifest().states.size());
  s.restored_values = comm.allreduce_min(a.restored_values);
  s.unmatched_live_objects =
      comm.allreduce_sum(static_cast<int64_t>(a.unmatched_live_objects.size()));
  try {
    RestoreStatus probe(context_);
    probe.assert_consumed();
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) throw;  // the same on every rank: agreed
    s.details = e.what();
  }
  return s;
}

const std::string& RestoreStatus::path() const {
  return context_->path();
}

}  // namespace cairn
