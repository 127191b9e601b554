// SPDX-License-Identifier: Apache-2.0
#include "checkpoint/restore_context.hpp"

#include <algorithm>
#include <atomic>
#include <numeric>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "cairn/optim/optimizer.hpp"
#include "cairn/state/state.hpp"
#include "cairn/tensor/variable.hpp"
#include "checkpoint/graph_walk.hpp"
#include "checkpoint/saved_scope.hpp"
#include "core/log.hpp"
#include "core/printable.hpp"
#include "storage/fault_injection.hpp"
#include "storage/hdf5_lock.hpp"
#include "storage/node_share.hpp"
#include "storage/saved_records.hpp"
#include "storage/tensor_read.hpp"

namespace cairn::detail {
namespace {

// restore() calls are collective and SPMD, so every rank numbers them alike.
std::atomic<uint64_t> restores_started{0};

}  // namespace

RestoreContext::RestoreContext(const Session& session, std::string path, Manifest manifest,
                               CommitMark mark, std::shared_ptr<SavedRecords> records,
                               std::shared_ptr<Trackable> root)
    : session_(&session),
      rank_(session.rank()),
      nranks_(session.size()),
      options_(session.options()),
      path_(std::move(path)),
      manifest_(std::move(manifest)),
      mark_(std::move(mark)),
      records_(std::move(records)),
      root_(root),
      node_tensor_(manifest_.nodes.size(), -1),
      node_state_(manifest_.nodes.size(), -1),
      bound_(manifest_.nodes.size()),
      matched_(manifest_.nodes.size(), 0),
      restored_(manifest_.nodes.size(), 0),
      superseded_(manifest_.nodes.size(), 0),
      visited_(manifest_.nodes.size(), 0),
      generation_(++restores_started) {
  if (records_) {
    // Format 2.x: the table names each value's node (its decoder checked that node and value
    // name each other), and the manifest lists tensors and states in the table's order.
    const GlobalTable& table = records_->table();
    for (std::size_t i = 0; i < table.tensors.size(); ++i)
      node_tensor_.at(table.tensors[i].node) = static_cast<int32_t>(i);
    for (std::size_t i = 0; i < table.states.size(); ++i)
      node_state_.at(table.states[i].node) = static_cast<int32_t>(i);
  } else {
    resolve_keys();
  }
  for (std::size_t n = 1; n < manifest_.nodes.size(); ++n)
    pending_ += manifest_.nodes[n].value_key.empty() ? 1 : 2;
}

void RestoreContext::resolve_keys() {
  // Keys are resolved once here, not per lookup (a restore of tens of thousands of tensors).
  std::unordered_map<std::string_view, int32_t> tensors, states;
  tensors.reserve(manifest_.tensors.size());
  states.reserve(manifest_.states.size());
  for (std::size_t i = 0; i < manifest_.tensors.size(); ++i)
    tensors.emplace(manifest_.tensors[i].key, static_cast<int32_t>(i));
  for (std::size_t i = 0; i < manifest_.states.size(); ++i)
    states.emplace(manifest_.states[i].key, static_cast<int32_t>(i));
  for (std::size_t n = 0; n < manifest_.nodes.size(); ++n) {
    const std::string& key = manifest_.nodes[n].value_key;
    if (key.empty()) continue;
    if (auto t = tensors.find(key); t != tensors.end())
      node_tensor_[n] = t->second;
    else if (auto s = states.find(key); s != states.end())
      node_state_[n] = s->second;
  }
}

RestoreContext::~RestoreContext() {
  close_file();
  // A check that found every saved value restored stays true: matches and restores only grow.
  if (expect_partial_ || fully_used_) return;
  // Destructors must not communicate or throw: this is this rank's own view (rank 0's unless
  // every rank logs), summarized in one line; a warning that cannot be composed is dropped.
  try {
    if (!log_enabled(options_.log, rank_, LogLevel::kWarning)) return;
    const LocalAccount a = account();
    const std::size_t unused = a.unmatched_checkpoint_objects.size() + a.unrestored_values.size();
    if (unused == 0) return;
    const std::string& example = !a.unmatched_checkpoint_objects.empty()
                                     ? a.unmatched_checkpoint_objects.front().text
                                     : a.unrestored_values.front().text;
    log_line(options_.log, rank_, LogLevel::kWarning,
             "checkpoint '" + printable(path_) + "': " + std::to_string(unused) +
                 " saved objects or values were never restored (first: " + example +
                 "). Call expect_partial() on the restore status if that is intended.");
  } catch (...) {
  }
}

void RestoreContext::abandon() noexcept {
  expect_partial_ = true;
  close_file();
  for (auto& weak : bound_)
    if (auto object = weak.lock()) object->remove_restore_binding(this);
}

void RestoreContext::close_file() noexcept {
  if (!local_reader_) return;
  std::lock_guard<std::recursive_mutex> hdf5(hdf5_mutex());
  local_reader_.reset();
}

void RestoreContext::release_if_done() noexcept {
  if (pending_ > 0) return;
  close_file();
  // The matches stay recorded (bound_), so the status checks still see them.
  for (auto& weak : bound_)
    if (auto object = weak.lock()) object->remove_restore_binding(this);
}

void RestoreContext::supersede_older_restores() {
  const auto root = root_.lock();
  if (!root) return;
  // A copy: an older restore left with nothing pending lets go of its binding on the root.
  const std::vector<RestoreBinding> bindings = root->restore_bindings();
  std::vector<RestoreContext*> older;
  for (const RestoreBinding& b : bindings)
    if (b.generation < generation_)
      if (auto* context = dynamic_cast<RestoreContext*>(b.hook.get())) older.push_back(context);
  // The usual restore has no older one pending: the map of 20,000 paths is not built for it.
  if (older.empty()) return;
  // Per path of this checkpoint: whether it holds a value there.
  std::unordered_map<std::string_view, bool> provided;
  provided.reserve(manifest_.nodes.size());
  for (std::size_t n = 1; n < manifest_.nodes.size(); ++n)
    provided.emplace(manifest_.nodes[n].path, !manifest_.nodes[n].value_key.empty());
  for (RestoreContext* context : older) context->supersede(provided);
}

void RestoreContext::supersede(const std::unordered_map<std::string_view, bool>& provided) {
  for (std::size_t n = 1; n < manifest_.nodes.size(); ++n) {
    const NodeRecord& record = manifest_.nodes[n];
    const bool has_value = !record.value_key.empty();
    const int64_t pending = (matched_[n] ? 0 : 1) + (has_value && !restored_[n] ? 1 : 0);
    if (superseded_[n] || pending == 0) continue;
    const auto newer = provided.find(record.path);
    if (newer == provided.end() || (has_value && !newer->second)) continue;
    superseded_[n] = 1;
    pending_ -= pending;
  }
  release_if_done();
}

void RestoreContext::finish_collective_restore() noexcept {
  // Best effort: if it fails, older restores keep their pending values and their files.
  try {
    supersede_older_restores();
  } catch (...) {
  }
  if (pending_ == 0) return release_if_done();
  // Opened now: retention may delete the file before the objects that need it are created, and
  // an open file keeps its data. Best effort, and local, so never a reason for this rank alone to
  // fail the collective restore: if it fails, the first deferred restore opens the file (by
  // name) and reports what is wrong.
  try {
    std::lock_guard<std::recursive_mutex> hdf5(hdf5_mutex());
    local_reader_ = std::make_unique<ContainerReader>(
        path_, ContainerReader::Known{mark_, manifest_.packed_bytes});
  } catch (...) {
    local_reader_.reset();
  }
}

void RestoreContext::note_conflict(int64_t node, const std::shared_ptr<Trackable>& first,
                                   const std::shared_ptr<Trackable>& second) {
  // Reported by the status checks, once per pair.
  const bool known = std::any_of(conflicts_.begin(), conflicts_.end(), [&](const Conflict& c) {
    return c.node == node && c.second.lock() == second;
  });
  if (!known) conflicts_.push_back({node, first, second});
}

bool RestoreContext::bind(int64_t node, const std::shared_ptr<Trackable>& object) {
  const auto n = static_cast<std::size_t>(node);
  auto& slot = bound_[n];
  if (auto previous = slot.lock(); previous && previous != object) {
    note_conflict(node, previous, object);  // first match wins
    return false;
  }
  slot = object;
  if (!matched_[n] && n != 0 && !superseded_[n]) --pending_;  // the root is not pending
  matched_[n] = 1;
  object->add_restore_binding({shared_from_this(), node, generation_});
  return true;
}

void RestoreContext::mark_restored(int64_t node, Trackable& object) {
  const auto n = static_cast<std::size_t>(node);
  if (!restored_[n] && !superseded_[n]) --pending_;
  restored_[n] = 1;
  if (object.restored_generation() < generation_) object.set_restored_generation(generation_);
}

std::vector<RestoreContext::Match> RestoreContext::slot_matches_for_variable(
    int64_t variable_node, const std::shared_ptr<Trackable>& variable) {
  std::vector<Match> found;
  auto* var = dynamic_cast<Variable*>(variable.get());
  if (!var) return found;
  for (int64_t opt_node : optimizer_nodes_) {
    auto optimizer =
        std::dynamic_pointer_cast<Optimizer>(bound_[static_cast<std::size_t>(opt_node)].lock());
    if (!optimizer) continue;
    for (const SlotRecord& s : manifest_.nodes[static_cast<std::size_t>(opt_node)].slots)
      if (s.variable == variable_node)
        if (auto slot = optimizer->get_slot(*var, s.name)) found.push_back({s.slot, slot});
  }
  return found;
}

std::vector<RestoreContext::Match> RestoreContext::match(int64_t node,
                                                         const std::shared_ptr<Trackable>& object) {
  std::vector<Match> matched;
  std::vector<Match> queue{{node, object}};  // breadth first: consumed from `next` on
  // Cycles and shared objects are walked once per call; a new epoch forgets the last call's visits
  // without clearing a per-node array (deferred restores call this once per attached object).
  if (++visit_epoch_ == 0) {
    std::fill(visited_.begin(), visited_.end(), 0);
    visit_epoch_ = 1;
  }
  for (std::size_t next = 0; next < queue.size(); ++next) {
    Match m = std::move(queue[next]);
    const auto n = static_cast<std::size_t>(m.node);
    if (visited_[n] == visit_epoch_) {
      // A second path to a saved object: it must lead to the same live object.
      if (auto first = bound_[n].lock(); first && first != m.object)
        note_conflict(m.node, first, m.object);
      continue;
    }
    visited_[n] = visit_epoch_;
    if (!bind(m.node, m.object)) continue;
    const NodeRecord& record = manifest_.nodes[n];
    const std::vector<Trackable::Edge>& edges = m.object->edges();
    for (std::size_t k = 0; k < record.children.size(); ++k) {
      const auto& [name, child_node] = record.children[k];
      // A graph built as the saved one was has its edges in the saved order, and names are unique
      // per object: the same name at the same position is the edge child(name) would find,
      // without hashing the name (the lookups were 7% of a W2 restore's profile).
      std::shared_ptr<Trackable> child =
          k < edges.size() && edges[k].name == name ? edges[k].get() : m.object->child(name);
      if (child) queue.push_back({child_node, std::move(child)});
    }
    if (!record.slots.empty()) {
      if (auto* optimizer = dynamic_cast<Optimizer*>(m.object.get())) {
        optimizer_nodes_.push_back(m.node);
        for (const SlotRecord& s : record.slots) {
          auto var = std::dynamic_pointer_cast<Variable>(
              bound_[static_cast<std::size_t>(s.variable)].lock());
          if (!var) continue;
          if (auto slot = optimizer->get_slot(*var, s.name)) queue.push_back({s.slot, slot});
        }
      }
    }
    if (!optimizer_nodes_.empty() && record.kind == "variable")
      for (Match& slot : slot_matches_for_variable(m.node, m.object))
        queue.push_back(std::move(slot));
    matched.push_back(std::move(m));
  }
  return matched;
}

void RestoreContext::validate(const std::vector<Match>& matches) const {
  for (const Match& m : matches) {
    const auto n = static_cast<std::size_t>(m.node);
    const NodeRecord& record = manifest_.nodes[n];
    // The context is built only for an error: this loop runs once per object of the graph.
    auto fail = [&](ErrorCode code, const std::string& what) {
      throw Error(code, what,
                  {.rank = rank_,
                   .checkpoint = path_,
                   .key = record.value_key.empty() ? record.path : record.value_key,
                   .operation = "restore"});
    };
    const auto* v = dynamic_cast<const Variable*>(m.object.get());
    const auto* s = v ? nullptr : dynamic_cast<const StateObject*>(m.object.get());
    if (record.value_key.empty() && (v || s))
      fail(ErrorCode::kInvalidArgument, std::string("the checkpoint holds a ") + record.kind +
                                            " without a value here, the live object is a " +
                                            m.object->kind());
    if (node_tensor_[n] >= 0) {
      const TensorRecord& saved = manifest_.tensors[static_cast<std::size_t>(node_tensor_[n])];
      if (!v)
        fail(ErrorCode::kInvalidArgument,
             std::string("the checkpoint holds a variable here, the live object is a ") +
                 m.object->kind());
      if (v->dtype() != saved.dtype)
        fail(ErrorCode::kInvalidArgument,
             std::string("dtype mismatch: the variable is ") + std::string(dtype_name(v->dtype())) +
                 ", the checkpoint holds " + std::string(dtype_name(saved.dtype)));
      if (v->shape() != saved.shape)
        fail(ErrorCode::kInvalidArgument,
             "shape mismatch: the variable is " + shape_to_string(v->shape()) +
                 ", the checkpoint holds " + shape_to_string(saved.shape));
      if (v->rank() != rank_ || v->nranks() != nranks_)
        fail(ErrorCode::kShardMismatch,
             "variable was created for rank " + std::to_string(v->rank()) + " of " +
                 std::to_string(v->nranks()) + ", but the session is rank " +
                 std::to_string(rank_) + " of " + std::to_string(nranks_));
    } else if (node_state_[n] >= 0) {
      if (!s)
        fail(ErrorCode::kInvalidArgument,
             std::string("the checkpoint holds opaque state here, the live object is a ") +
                 m.object->kind());
      const StateRecord& saved = manifest_.states[static_cast<std::size_t>(node_state_[n])];
      auto scope = [](SavedScope sc) { return sc == SavedScope::kPerRank ? "per-rank" : "global"; };
      if (saved_scope(s->scope()) != saved.scope)
        fail(ErrorCode::kInvalidArgument, std::string("state scope mismatch: the live object is ") +
                                              scope(saved_scope(s->scope())) +
                                              ", the checkpoint holds " + scope(saved.scope) +
                                              " state");
    }
  }
}

void RestoreContext::load_records(const std::vector<Match>& matches, ContainerReader& reader) {
  if (!records_) return;
  // Appended without a list per box: 20,000 tensors name the same few writers.
  std::vector<int> writers;
  bool every_writer = false;
  for (const Match& m : matches) {
    const auto n = static_cast<std::size_t>(m.node);
    if (superseded_[n] || m.object->restored_generation() >= generation_) continue;
    if (const int32_t t = node_tensor_[n]; t >= 0) {
      const auto* v = static_cast<const Variable*>(m.object.get());
      for (const Box& box : v->local_boxes())
        records_->append_writers_for(static_cast<std::size_t>(t), box, writers);
    } else if (const int32_t s = node_state_[n];
               s >= 0 &&
               manifest_.states[static_cast<std::size_t>(s)].scope == SavedScope::kPerRank) {
      // At the saved job size a rank takes its own saved value; at another, a state's rescale
      // rule may use every saved rank's value.
      if (manifest_.world_size == nranks_)
        writers.push_back(rank_);
      else
        every_writer = true;
    }
  }
  if (every_writer) {
    writers.resize(static_cast<std::size_t>(manifest_.world_size));
    std::iota(writers.begin(), writers.end(), 0);
  }
  std::sort(writers.begin(), writers.end());
  writers.erase(std::unique(writers.begin(), writers.end()), writers.end());
  records_->load(reader, manifest_, writers);
}

RestoreContext::ReadCounts RestoreContext::restore_values(const std::vector<Match>& matches,
                                                          ContainerReader& reader,
                                                          NodeShare* share) {
  struct PendingState {
    int64_t node;
    StateObject* object;
    const StateRecord* record;
    std::vector<std::string> values;  // one per blob read
  };
  std::vector<PendingState> states;
  // A value is restored at most once per restore (an object tracked again, or reached by a new
  // path, keeps what it learned since), and never over a newer restore's (TensorFlow's rules).
  auto already_restored = [&](const Match& m) {
    return m.object->restored_generation() >= generation_;
  };
  // The current variable's buffers, one per local box: refilled per variable rather than a list
  // kept for each of 20,000 (the reads keep the pointers, not the list).
  std::vector<std::byte*> buffers;
  auto fill_buffers = [&](Variable& v) -> const std::vector<std::byte*>& {
    buffers.clear();
    for (std::size_t b = 0; b < v.local_boxes().size(); ++b)
      buffers.push_back(v.box_bytes(b).data());
    return buffers;
  };
  if (share) {
    // What this rank needs, for the node to find what several of its ranks need.
    std::vector<PieceNeed> needs;
    std::optional<Error> failure;
    try {
      for (const Match& m : matches) {
        const auto n = static_cast<std::size_t>(m.node);
        if (superseded_[n] || node_tensor_[n] < 0 || already_restored(m)) continue;
        const auto t = static_cast<std::size_t>(node_tensor_[n]);
        auto* v = static_cast<Variable*>(m.object.get());
        collect_piece_needs(manifest_.tensors[t], static_cast<uint32_t>(t), v->local_boxes(),
                            fill_buffers(*v), needs);
      }
    } catch (...) {
      failure.emplace(current_exception_as_error(ErrorContext{.rank = rank_}));
    }
    share->plan(std::move(needs), options_.staging_bytes, failure ? &*failure : nullptr);
  }
  ReadCounts counts;
  std::optional<Error> failure;
  std::vector<int64_t> tensor_nodes;
  const int me = rank_;
  const bool same_size = manifest_.world_size == nranks_;
  try {
    PackedReadBatch packed;
    packed.reserve(matches.size());  // W2: 20,000 requests, grown by doubling before
    OverlappedChecks checks;         // dataset blocks are verified while the next ones are read
    const std::unordered_set<const PieceRecord*>* supplied = share ? &share->supplied() : nullptr;
    // The crash-test hook fires once about half of the dataset tensors are read (they are read
    // right away; packed values are only queued here and read together below).
    std::size_t dataset_tensors = 0, datasets_read = 0;
    for (const Match& m : matches)
      if (const int32_t t = node_tensor_[static_cast<std::size_t>(m.node)];
          t >= 0 && !manifest_.tensors[static_cast<std::size_t>(t)].packed)
        ++dataset_tensors;
    const std::size_t halfway = (dataset_tensors + 1) / 2;
    for (std::size_t i = 0; i < matches.size(); ++i) {
      const Match& m = matches[i];
      const auto n = static_cast<std::size_t>(m.node);
      if (superseded_[n]) continue;  // a newer restore of the same root provides this value
      if (already_restored(m)) {     // it counts as consumed
        if (node_tensor_[n] >= 0 || node_state_[n] >= 0) mark_restored(m.node, *m.object);
        continue;
      }
      if (node_tensor_[n] >= 0) {
        const TensorRecord& record = manifest_.tensors[static_cast<std::size_t>(node_tensor_[n])];
        auto* v = static_cast<Variable*>(m.object.get());
        counts.from_file += read_tensor(reader, record, v->local_boxes(), fill_buffers(*v), packed,
                                        &checks, supplied);
        tensor_nodes.push_back(static_cast<int64_t>(i));
        if (!record.packed && ++datasets_read == halfway) fault_point("restore_during_read", rank_);
      } else if (node_state_[n] >= 0) {
        const StateRecord& record = manifest_.states[static_cast<std::size_t>(node_state_[n])];
        states.push_back({m.node, static_cast<StateObject*>(m.object.get()), &record, {}});
      }
    }
    checks.finish();
    // One live variable matched to two saved values (two paths to it) gets both, in file order,
    // as a copy each: read straight into it, one could land while the other is being verified.
    std::vector<const Trackable*> read_into;
    read_into.reserve(tensor_nodes.size());
    for (int64_t i : tensor_nodes)
      read_into.push_back(matches[static_cast<std::size_t>(i)].object.get());
    std::sort(read_into.begin(), read_into.end());
    if (std::adjacent_find(read_into.begin(), read_into.end()) != read_into.end())
      packed.allow_direct_reads(false);
    // Blobs are queued only now: `states` no longer grows, so the strings they fill stay put.
    for (PendingState& st : states) {
      const bool one_blob = st.record->scope == SavedScope::kGlobal || same_size;
      st.values.resize(one_blob ? 1 : st.record->blobs.size());
      std::size_t k = 0;
      for (const StateBlob& blob : st.record->blobs) {
        if (st.record->scope == SavedScope::kPerRank && same_size && blob.rank != me) continue;
        if (k < st.values.size()) {
          read_state_blob(*st.record, blob, st.values[k++], packed);
          counts.from_file += blob.bytes;
        }
      }
      st.values.resize(k);
    }
    if (halfway == 0) fault_point("restore_during_read", rank_);
    // A small batch this rank reads for its node goes through the same merged windows.
    if (share) share->queue_own_reads(packed);
    // With a share, an empty batch leaves the read-ahead to the node's reads (NodeShare::run).
    if (!share || !packed.empty()) packed.run(reader, options_.staging_bytes);
  } catch (...) {
    if (!share) throw;
    // The node's collective reads below must still be entered: the failure is agreed there.
    failure.emplace(current_exception_as_error(ErrorContext{.rank = rank_}));
  }
  if (share) {
    share->run(reader, failure ? &*failure : nullptr);
    counts.from_file += share->bytes_read();
    counts.from_peers += share->bytes_received();
  }
  for (int64_t i : tensor_nodes)
    mark_restored(matches[static_cast<std::size_t>(i)].node,
                  *matches[static_cast<std::size_t>(i)].object);
  for (PendingState& st : states) {
    bool loaded = false;
    try {
      if (st.record->scope == SavedScope::kGlobal || same_size) {
        if (!st.values.empty()) {
          st.object->load_bytes(st.values.front());
          loaded = true;
        }
      } else {
        std::vector<std::string> by_rank(static_cast<std::size_t>(manifest_.world_size));
        std::vector<int> saved_ranks;
        for (std::size_t k = 0; k < st.values.size(); ++k) {
          saved_ranks.push_back(st.record->blobs[k].rank);
          by_rank[static_cast<std::size_t>(st.record->blobs[k].rank)] = std::move(st.values[k]);
        }
        const StateObject::Rescaled r = st.object->rescale_from(by_rank, me);
        loaded = r.loaded;
        if (r.by_default) {
          // The default rule gives rank r the value of saved rank r: values of saved ranks this
          // job does not have reach nobody, which the status reports (on every rank alike).
          std::vector<int> dropped;
          for (int saved : saved_ranks)
            if (saved >= nranks_) dropped.push_back(saved);
          std::erase_if(dropped_, [&](const auto& d) { return d.first == st.node; });
          if (!dropped.empty()) dropped_.emplace_back(st.node, std::move(dropped));
        }
      }
    } catch (const Error& e) {
      throw Error(
          e.code(), e.message(),
          {.rank = me, .checkpoint = path_, .key = st.record->key, .operation = "restore state"});
    }
    if (loaded) mark_restored(st.node, *st.object);
  }
  return counts;
}

void RestoreContext::restore_deferred(const std::vector<Match>& matches) {
  if (matches.empty()) return;
  validate(matches);
  std::lock_guard<std::recursive_mutex> hdf5(hdf5_mutex());
  if (!local_reader_)
    local_reader_ = std::make_unique<ContainerReader>(
        path_, ContainerReader::Known{mark_, manifest_.packed_bytes});
  load_records(matches, *local_reader_);
  restore_values(matches, *local_reader_);
  release_if_done();
}

void RestoreContext::on_child_attached(Trackable&, int64_t parent_node, const std::string& name,
                                       const std::shared_ptr<Trackable>& child) {
  // The context may be let go by its last object inside restore_deferred.
  const std::shared_ptr<RestoreContext> self = shared_from_this();
  for (const auto& [edge, child_node] :
       manifest_.nodes[static_cast<std::size_t>(parent_node)].children)
    if (edge == name) return restore_deferred(match(child_node, child));
}

void RestoreContext::on_slot_added(Trackable&, int64_t optimizer_node,
                                   const std::shared_ptr<Trackable>& variable,
                                   const std::string& slot_name,
                                   const std::shared_ptr<Trackable>& slot) {
  const std::shared_ptr<RestoreContext> self = shared_from_this();
  int64_t variable_node = -1;
  for (const RestoreBinding& b : variable->restore_bindings())
    if (b.hook.get() == this) variable_node = b.node;
  if (variable_node < 0) return;  // the variable was not matched by this restore
  for (const SlotRecord& s : manifest_.nodes[static_cast<std::size_t>(optimizer_node)].slots)
    if (s.variable == variable_node && s.name == slot_name)
      return restore_deferred(match(s.slot, slot));
}

LocalAccount RestoreContext::account() const {
  LocalAccount a;
  std::unordered_set<const Trackable*> matched;
  matched.reserve(bound_.size());
  std::unordered_set<std::string_view> superseded_paths;
  for (std::size_t n = 1; n < bound_.size(); ++n) {
    const NodeRecord& record = manifest_.nodes[n];
    if (superseded_[n]) {
      // A newer restore provides it: that restore's status reports it if it is never restored.
      superseded_paths.insert(record.path);
      if (!matched_[n]) continue;
    }
    if (!matched_[n]) {
      a.unmatched_checkpoint_objects.push_back(
          {"'" + printable(record.path) + "' (" + record.kind + ")", record.path});
      continue;
    }
    if (auto object = bound_[n].lock()) matched.insert(object.get());
    ++a.matched_objects;
    if (record.value_key.empty()) continue;
    if (restored_[n])
      ++a.restored_values;
    else if (!superseded_[n])
      a.unrestored_values.push_back({"'" + printable(record.value_key) + "'", record.value_key});
  }
  for (const auto& [node, ranks] : dropped_) {
    std::string list;
    for (int r : ranks) list += (list.empty() ? "" : ",") + std::to_string(r);
    const std::string& key = manifest_.nodes[static_cast<std::size_t>(node)].value_key;
    a.unrestored_values.push_back(
        {"'" + printable(key) + "' of saved rank" + (ranks.size() > 1 ? "s " : " ") + list +
             " of " + std::to_string(manifest_.world_size) + " (this job has " +
             std::to_string(nranks_) +
             " ranks and the state's load_rescaled() does not merge saved values)",
         key});
  }
  if (a.unmatched_checkpoint_objects.empty() && a.unrestored_values.empty()) fully_used_ = true;
  if (auto root = root_.lock()) {
    const LiveGraph live = walk_graph(root);
    std::unordered_map<const Trackable*, std::string> live_path;
    for (std::size_t i = 1; i < live.nodes.size(); ++i)
      live_path.emplace(live.nodes[i].object.get(), printable(live.nodes[i].record.path));
    for (const Conflict& c : conflicts_) {
      const auto first = c.first.lock(), second = c.second.lock();
      if (!first || !second) continue;
      const auto p1 = live_path.find(first.get()), p2 = live_path.find(second.get());
      if (p1 == live_path.end() || p2 == live_path.end() || matched.count(second.get())) continue;
      matched.insert(second.get());  // one verdict per object: not also "not in the checkpoint"
      const std::string& node_path = manifest_.nodes[static_cast<std::size_t>(c.node)].path;
      a.inconsistent_references.push_back({"'" + p1->second + "' and '" + p2->second +
                                               "' reference one object in the checkpoint ('" +
                                               printable(node_path) +
                                               "') but two different live objects",
                                           node_path});
    }
    for (std::size_t i = 1; i < live.nodes.size(); ++i)
      if (!matched.count(live.nodes[i].object.get()) &&
          !superseded_paths.count(live.nodes[i].record.path))
        a.unmatched_live_objects.push_back(
            {"'" + printable(live.nodes[i].record.path) + "' (" + live.nodes[i].record.kind + ")",
             live.nodes[i].record.path});
  }
  return a;
}

}  // namespace cairn::detail
