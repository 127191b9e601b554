// SPDX-License-Identifier: Apache-2.0
#include "cairn/checkpoint/status.hpp"

#include <map>

#include "checkpoint/restore_context.hpp"
#include "comm/wire.hpp"

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

// Collective: every rank's problems are merged on rank 0 into one summary (identical problems of
// several ranks become one line naming the ranks), then every rank throws the same error. Its
// context names the checkpoint, the check, and the rank and key of the first problem listed.
void global_verdict(const detail::RestoreContext& context,
                    const std::vector<detail::AccountItem>& local, const std::string& check) {
  const Comm& comm = context.session().comm();
  const int64_t total = comm.allreduce_sum(static_cast<int64_t>(local.size()));
  if (total == 0) return;
  const auto failed_ranks = static_cast<int>(comm.allreduce_sum(local.empty() ? 0 : 1));
  wire::Message mine = wire::Message::array();
  for (std::size_t i = 0; i < local.size() && i < kMaxProblemsPerRank; ++i)
    mine.push_back(wire::Message::array({local[i].text, local[i].key}));
  const std::vector<wire::Message> all = wire::gather(comm, mine, 0);
  wire::Message error;
  if (comm.rank() == 0) {
    std::map<std::string, std::vector<int>> ranks_of;
    std::vector<std::string> order;
    ErrorContext where{.checkpoint = context.path(), .operation = check};
    for (std::size_t r = 0; r < all.size(); ++r) {
      for (const auto& item : all[r]) {
        std::string line = item.at(0).get<std::string>();
        if (order.empty()) {
          where.rank = static_cast<int>(r);
          where.key = item.at(1).get<std::string>();
        }
        auto [it, fresh] = ranks_of.try_emplace(line);
        if (fresh) order.push_back(line);
        it->second.push_back(static_cast<int>(r));
      }
    }
    std::string message = check + " failed for checkpoint '" + context.path() +
                          "': " + std::to_string(order.size()) + " problem(s)";
    for (std::size_t i = 0; i < order.size() && i < kMaxProblemsShown; ++i)
      message += "\n  - " + order[i] + rank_list(ranks_of[order[i]], comm.size());
    if (order.size() > kMaxProblemsShown)
      message += "\n  ... and " + std::to_string(order.size() - kMaxProblemsShown) + " more";
    error = wire::from_error(Error(ErrorCode::kNotFound, message, std::move(where), failed_ranks));
  }
  wire::broadcast(comm, error, 0);
  throw wire::to_error(error);
}

std::vector<detail::AccountItem> prefixed(const std::vector<detail::AccountItem>& items,
                                          const std::string& prefix) {
  std::vector<detail::AccountItem> out;
  out.reserve(items.size());
  for (const detail::AccountItem& item : items) out.push_back({prefix + item.text, item.key});
  return out;
}

}  // namespace

RestoreStatus::RestoreStatus(std::shared_ptr<detail::RestoreContext> context)
    : context_(std::move(context)) {}
RestoreStatus::~RestoreStatus() = default;
RestoreStatus::RestoreStatus(RestoreStatus&&) noexcept = default;
RestoreStatus& RestoreStatus::operator=(RestoreStatus&&) noexcept = default;

RestoreStatus& RestoreStatus::assert_consumed() {
  const detail::LocalAccount a = context_->account();
  std::vector<detail::AccountItem> problems =
      prefixed(a.unmatched_checkpoint_objects, "checkpoint object not matched: ");
  for (auto& s : prefixed(a.unrestored_values, "checkpoint value not restored: "))
    problems.push_back(s);
  for (auto& s : prefixed(a.inconsistent_references, "inconsistent references: "))
    problems.push_back(s);
  for (auto& s : prefixed(a.unmatched_live_objects, "live object not in the checkpoint: "))
    problems.push_back(s);
  global_verdict(*context_, problems, "assert_consumed");
  return *this;
}

RestoreStatus& RestoreStatus::assert_existing_objects_matched() {
  const detail::LocalAccount a = context_->account();
  std::vector<detail::AccountItem> problems =
      prefixed(a.unmatched_live_objects, "live object not in the checkpoint: ");
  for (auto& s : prefixed(a.inconsistent_references, "inconsistent references: "))
    problems.push_back(s);
  for (auto& s : prefixed(a.unrestored_values, "checkpoint value not restored: "))
    problems.push_back(s);
  global_verdict(*context_, problems, "assert_existing_objects_matched");
  return *this;
}

RestoreStatus& RestoreStatus::assert_nontrivial_match() {
  const detail::LocalAccount a = context_->account();
  std::vector<detail::AccountItem> problems;
  if (a.matched_objects == 0) problems.push_back({"nothing but the root object was matched", ""});
  global_verdict(*context_, problems, "assert_nontrivial_match");
  return *this;
}

RestoreStatus& RestoreStatus::expect_partial() {
  context_->set_expect_partial();
  return *this;
}

RestoreSummary RestoreStatus::summary() const {
  const Comm& comm = context_->session().comm();
  const detail::LocalAccount a = context_->account();
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
    s.details = e.what();
  }
  return s;
}

const std::string& RestoreStatus::path() const {
  return context_->path();
}

}  // namespace cairn
