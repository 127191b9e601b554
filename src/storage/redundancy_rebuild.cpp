// SPDX-License-Identifier: Apache-2.0
// rebuild(): every node leader reads its metadata and checks its own file and the redundancy data
// it keeps; the job gathers these small facts, so every rank takes the same decision from the same
// inputs, and only then are bytes moved.
#include <algorithm>
#include <filesystem>
#include <future>
#include <optional>

#include "core/trace.hpp"
#include "storage/checksum.hpp"
#include "storage/durable_file.hpp"
#include "storage/redundancy_internal.hpp"

namespace cairn::detail {

using namespace redundancy;
using nlohmann::json;

namespace {

// What the job knows after gathering every node's metadata file.
struct Recorded {
  std::vector<bool> usable;                      // per node: its metadata file is of this protect
  std::vector<std::optional<FileRecord>> files;  // per node: its file as recorded anywhere
  std::vector<json> metas;                       // per node (null if unusable)
  std::vector<int> foreign;  // nodes whose metadata file is damaged, stale or of another geometry
  std::string protect_id;    // of the lowest node with a usable metadata file
};

// Whether node k's metadata matches this checkpoint, scheme and layout (a protect of another
// geometry cannot be rebuilt on this one).
bool matches(const json& meta, int k, const NodeLayout& layout, const RedundancySpec& spec,
             const std::string& name) {
  if (!meta.is_object() || meta.value("format", "") != kMetaFormat ||
      meta.value("version", 0) != kMetaVersion || meta.value("checkpoint", "") != name ||
      meta.value("scheme", "") != scheme_name(spec.scheme) ||
      meta.value("nodes", -1) != layout.nodes || meta.value("node", -1) != k)
    return false;
  if (spec.scheme == Redundancy::kPartner && protects(layout, spec))
    return meta.at("partner").at("keeps_node").get<int>() == layout.partner_kept_by(k);
  if (spec.scheme == Redundancy::kXor && protects(layout, spec)) {
    if (meta.value("xor_group_size", -1) != spec.xor_group_size) return false;
    const auto groups = layout.xor_groups(spec.xor_group_size);
    const int g = meta.at("xor").at("group").get<int>();
    return g >= 0 && g < static_cast<int>(groups.size()) &&
           meta.at("xor").at("members").get<std::vector<int>>() ==
               groups[static_cast<std::size_t>(g)];
  }
  return true;
}

Recorded gather_recorded(const Comm& job, const NodeLayout& layout, const RedundancySpec& spec,
                         const std::string& name, const json& mine) {
  const std::vector<json> metas = per_node(job, layout, mine);
  Recorded r;
  r.usable.assign(metas.size(), false);
  r.files.resize(metas.size());
  r.metas.assign(metas.size(), json());
  std::string& id = r.protect_id;
  for (std::size_t k = 0; k < metas.size(); ++k) {
    if (metas[k].is_null()) continue;
    r.foreign.push_back(static_cast<int>(k));  // until it proves usable
    try {
      if (!matches(metas[k], static_cast<int>(k), layout, spec, name)) continue;
      std::vector<std::pair<int, FileRecord>> files;
      for (const json& f : metas[k].at("files"))
        files.emplace_back(f.at("node").get<int>(), record_from_json(f));
      const std::string its_id = metas[k].at("protect_id").get<std::string>();
      if (id.empty()) id = its_id;
      if (its_id != id) continue;
      for (auto& [node, record] : files)
        if (node >= 0 && node < layout.nodes && !r.files[static_cast<std::size_t>(node)])
          r.files[static_cast<std::size_t>(node)] = std::move(record);
      r.usable[k] = true;
      r.metas[k] = metas[k];
      r.foreign.pop_back();
    } catch (...) {
      // A damaged metadata file counts as missing.
    }
  }
  return r;
}

bool file_matches(const std::string& path, const FileRecord& record, int64_t block) {
  try {
    const InputFile file(path);
    return file.size() == record.map.size &&
           file.stream_checksum(record.map, block) == record.checksum &&
           file.zero_outside(record.map, block);
  } catch (...) {
    return false;
  }
}

// Whether this node's redundancy data (the copy or the parity its metadata names) is intact.
bool red_data_valid(const json& meta, const std::string& red_dir, const Recorded& r,
                    int64_t block) {
  try {
    if (meta.contains("partner")) {
      const int kept = meta["partner"]["keeps_node"].get<int>();
      const std::optional<FileRecord>& rec = r.files[static_cast<std::size_t>(kept)];
      return rec &&
             file_matches(red_dir + "/" + meta["partner"]["file"].get<std::string>(), *rec, block);
    }
    if (meta.contains("xor")) {
      const InputFile parity(red_dir + "/" + meta["xor"]["file"].get<std::string>());
      uint64_t expected = 0;
      const int64_t chunk = meta["xor"]["chunk_bytes"].get<int64_t>();
      return checksum_from_hex(meta["xor"]["checksum"].get<std::string>(), expected) &&
             parity.size() == chunk && dense_checksum(parity, chunk, block) == expected;
    }
    return true;  // nothing to keep
  } catch (...) {
    return false;
  }
}

struct Decision {
  RebuildOutcome outcome;
  std::vector<int> to_rebuild;
  bool reprotect = false;
};

Decision decide(const NodeLayout& layout, const RedundancySpec& spec, const std::string& name,
                const Recorded& r, const std::vector<bool>& own_ok,
                const std::vector<bool>& red_ok) {
  Decision d;
  std::vector<int> lost;
  for (int k = 0; k < layout.nodes; ++k)
    if (!own_ok[static_cast<std::size_t>(k)]) lost.push_back(k);
  std::vector<std::string> why;
  std::vector<int> unrecoverable;
  const auto cannot = [&](int k, const std::string& text) {
    unrecoverable.push_back(k);
    why.push_back("node " + std::to_string(k) + " " + text);
  };
  for (int k : lost) {
    const auto ku = static_cast<std::size_t>(k);
    if (!protects(layout, spec)) {
      cannot(k, layout.nodes < 2 ? "lost its file and a job of one node keeps no redundancy"
                                 : "lost its file and the scheme keeps no redundancy");
    } else if (!r.files[ku]) {
      cannot(k, "lost its file and no node has a record of it");
    } else if (spec.scheme == Redundancy::kPartner) {
      const int keeper = layout.partner_of(k);
      if (!red_ok[static_cast<std::size_t>(keeper)])
        cannot(k, "lost its file and node " + std::to_string(keeper) +
                      ", which keeps its copy, has no valid copy");
    } else {
      for (const std::vector<int>& members : layout.xor_groups(spec.xor_group_size)) {
        if (std::find(members.begin(), members.end(), k) == members.end()) continue;
        std::vector<int> also_lost, no_parity;
        for (int m : members) {
          if (m == k) continue;
          if (!own_ok[static_cast<std::size_t>(m)])
            also_lost.push_back(m);
          else if (!red_ok[static_cast<std::size_t>(m)])
            no_parity.push_back(m);
        }
        if (!also_lost.empty())
          cannot(k, "lost its file, and so did node" +
                        std::string(also_lost.size() > 1 ? "s " : " ") + join_nodes(also_lost) +
                        " of its XOR group (one loss per group is rebuildable)");
        else if (!no_parity.empty())
          cannot(k, "lost its file and node" + std::string(no_parity.size() > 1 ? "s " : " ") +
                        join_nodes(no_parity) + " of its XOR group ha" +
                        (no_parity.size() > 1 ? "ve" : "s") + " no valid parity");
      }
    }
  }
  d.outcome.complete = unrecoverable.empty();
  if (!d.outcome.complete) {
    d.outcome.lost_nodes = unrecoverable;
    std::string reason = "checkpoint '" + name + "' (redundancy " + scheme_name(spec.scheme) +
                         ", " + std::to_string(layout.nodes) + " node" +
                         (layout.nodes > 1 ? "s" : "") + "): ";
    for (std::size_t i = 0; i < why.size(); ++i) reason += (i ? "; " : "") + why[i];
    if (!r.foreign.empty())
      reason += " (the redundancy metadata of node" +
                std::string(r.foreign.size() > 1 ? "s " : " ") + join_nodes(r.foreign) +
                " is damaged, or from another protect, scheme or number of nodes)";
    d.outcome.reason = reason;
    return d;
  }
  d.to_rebuild = lost;
  d.outcome.rebuilt_nodes = lost;
  d.reprotect = !lost.empty() || (protects(layout, spec) &&
                                  std::find(red_ok.begin(), red_ok.end(), false) != red_ok.end());
  return d;
}

void rebuild_partner(const Steps& steps, const Recorded& r, const std::vector<int>& lost,
                     int64_t block, const std::string& own_file, const std::string& red_dir,
                     StreamWriter* sink) {
  const NodeLayout& layout = steps.layout();
  std::vector<PairPlan> pairs;
  std::optional<int> sending;
  for (int k : lost) {
    const int keeper = layout.partner_of(k);
    pairs.push_back({keeper, k, r.files[static_cast<std::size_t>(k)]->map.stream_bytes()});
    if (layout.is_leader && keeper == layout.node_index) sending = k;
  }
  std::optional<InputFile> copy;
  steps.run([&] {
    if (sending) copy.emplace(partner_path(red_dir, steps.name(), *sending));
  });
  (void)own_file;
  transfer_pairs(steps, pairs, block, copy ? &*copy : nullptr,
                 sending ? &r.files[static_cast<std::size_t>(*sending)]->map : nullptr, sink);
}

void rebuild_xor(const Steps& steps, const RedundancySpec& spec, const Recorded& r,
                 const std::vector<int>& lost, int64_t block, const std::string& own_file,
                 const std::string& red_dir, StreamWriter* sink) {
  const NodeLayout& layout = steps.layout();
  std::vector<int64_t> streams;
  for (const auto& f : r.files) streams.push_back(f ? f->map.stream_bytes() : 0);
  const Groups plan = xor_plan(layout, spec.xor_group_size, streams);
  std::vector<int> gone(plan.groups.size(), -1);
  for (std::size_t g = 0; g < plan.groups.size(); ++g)
    for (std::size_t p = 0; p < plan.groups[g].members.size(); ++p)
      if (std::find(lost.begin(), lost.end(), plan.groups[g].members[p]) != lost.end())
        gone[g] = static_cast<int>(p);
  const std::optional<Comm> comm = group_comm(layout, plan.mine);
  const bool survivor = layout.is_leader && gone[static_cast<std::size_t>(plan.mine)] >= 0 && !sink;
  std::optional<InputFile> own, parity;
  const FileRecord* mine = r.files[static_cast<std::size_t>(layout.node_index)]
                               ? &*r.files[static_cast<std::size_t>(layout.node_index)]
                               : nullptr;
  steps.run([&] {
    if (!survivor) return;
    own.emplace(own_file);
    parity.emplace(parity_path(red_dir, steps.name(), plan.mine, layout.node_index));
  });
  xor_decode(steps, plan.groups, gone, block, comm ? &*comm : nullptr, plan.mine,
             own ? &*own : nullptr, mine ? &mine->map : nullptr, parity ? &*parity : nullptr, sink);
}

// Partner scheme, once every node's own file is whole again: the nodes in `needs` lost the copy
// they keep (and their metadata) with their directory, or have a damaged one. Each gets its copy
// again from the node it copies and writes its metadata for the same protect; the other nodes'
// copies and metadata are untouched. A whole protect would move every node's file again: at
// restart, after a lost node, that was the largest part of the time.
void restore_partner_copies(const Steps& steps, const Recorded& r, const std::vector<int>& needs,
                            int64_t block, const RedundancySpec& spec, const std::string& own_file,
                            const std::string& red_dir) {
  const NodeLayout& layout = steps.layout();
  const int me = layout.node_index;
  const auto me_u = static_cast<std::size_t>(me);
  std::vector<PairPlan> pairs;
  bool sending = false, receiving = false;
  for (int n : needs) {
    const int kept = layout.partner_kept_by(n);
    pairs.push_back({kept, n, r.files[static_cast<std::size_t>(kept)]->map.stream_bytes()});
    sending |= layout.is_leader && kept == me;
    receiving |= layout.is_leader && n == me;
  }
  const int kept = layout.partner_kept_by(me);
  const FileRecord* theirs =
      r.files[static_cast<std::size_t>(kept)] ? &*r.files[static_cast<std::size_t>(kept)] : nullptr;
  std::optional<InputFile> own;
  std::optional<StreamWriter> sink;
  steps.run([&] {
    if (sending) own.emplace(own_file);
    if (!receiving) return;
    std::filesystem::create_directories(red_dir);
    remove_redundancy(steps.name(), red_dir);
    sink.emplace(partner_path(red_dir, steps.name(), kept), theirs->map);
  });
  transfer_pairs(steps, pairs, block, own ? &*own : nullptr,
                 sending ? &r.files[me_u]->map : nullptr, sink ? &*sink : nullptr);
  steps.run([&] {
    if (!receiving) return;
    commit_copy(*sink, kept, theirs->checksum);
    json meta = meta_base(layout, spec, steps.name(), r.protect_id);
    meta["partner"] = partner_entry(steps.name(), kept, theirs->checksum);
    meta["files"] = json::array({file_entry(me, *r.files[me_u]), file_entry(kept, *theirs)});
    write_file_atomically(meta_path(red_dir, steps.name()), meta.dump(1));
  });
}

// Protects the checkpoint again where a loss or damage left it unprotected: only the copies that
// are missing (partner, when every node's file has a record), else a whole protect.
void protect_again(const Comm& job, const Steps& steps, const Recorded& r,
                   const std::vector<bool>& red_ok, int64_t block, const RedundancySpec& spec,
                   const std::string& own_file, const std::string& red_dir) {
  const NodeLayout& layout = steps.layout();
  std::vector<int> needs;
  bool recorded = !r.protect_id.empty();
  for (int n = 0; n < layout.nodes; ++n) {
    const auto nu = static_cast<std::size_t>(n);
    recorded &= r.files[nu].has_value();
    if (!red_ok[nu]) needs.push_back(n);
  }
  if (spec.scheme == Redundancy::kPartner && recorded) {
    if (!needs.empty()) restore_partner_copies(steps, r, needs, block, spec, own_file, red_dir);
    return;
  }
  protect(job, layout, spec, steps.name(), own_file, red_dir);
}

}  // namespace

RebuildOutcome rebuild(const Comm& job, const NodeLayout& layout, const RedundancySpec& spec,
                       const std::string& name, const std::string& own_file,
                       const std::string& red_dir) {
  const Steps steps(job, layout, name, "rebuild");
  check_arguments(steps, spec, name);
  const int64_t block = block_size(spec);
  const bool leader = layout.is_leader;
  const auto me = static_cast<std::size_t>(layout.node_index);

  PhaseTrace trace("redundancy rebuild", job.rank(), name);
  json mine;
  if (leader) {
    try {
      mine = json::parse(read_whole_file(meta_path(red_dir, name)));
    } catch (...) {
      mine = json();  // missing or damaged: this node's records are gone
    }
  }
  const Recorded r = gather_recorded(job, layout, spec, name, mine);

  bool own_ok = false, red_ok = false;
  if (leader) {
    // Two reads of up to a node's whole share each: the second on a helper thread (a node's other
    // cores are idle at restart), or here if no thread can be had.
    const auto check_own = [&] {
      return r.files[me] && file_matches(own_file, *r.files[me], block);
    };
    std::future<bool> own_checked;
    try {
      own_checked = std::async(std::launch::async, check_own);
    } catch (...) {  // no thread (or no memory for one): checked below, on this thread
    }
    red_ok = r.usable[me] && red_data_valid(r.metas[me], red_dir, r, block);
    own_ok = own_checked.valid() ? own_checked.get() : check_own();
  }
  std::vector<bool> own_oks, red_oks;
  for (const json& flags : per_node(job, layout, json::array({own_ok, red_ok}))) {
    own_oks.push_back(flags.at(0).get<bool>());
    red_oks.push_back(flags.at(1).get<bool>());
  }
  Decision d = decide(layout, spec, name, r, own_oks, red_oks);
  trace.mark("check files and redundancy data, decide");
  if (!d.outcome.complete || d.to_rebuild.empty()) {
    if (d.reprotect) protect_again(job, steps, r, red_oks, block, spec, own_file, red_dir);
    return d.outcome;
  }

  const bool lost_here = leader && std::find(d.to_rebuild.begin(), d.to_rebuild.end(),
                                             layout.node_index) != d.to_rebuild.end();
  std::optional<StreamWriter> sink;
  steps.run([&] {
    if (!lost_here) return;
    std::filesystem::create_directories(parent_directory(own_file));
    sink.emplace(own_file, r.files[me]->map);
  });
  if (spec.scheme == Redundancy::kPartner)
    rebuild_partner(steps, r, d.to_rebuild, block, own_file, red_dir, sink ? &*sink : nullptr);
  else
    rebuild_xor(steps, spec, r, d.to_rebuild, block, own_file, red_dir, sink ? &*sink : nullptr);
  steps.run([&] {
    if (!lost_here) return;
    const FileRecord& rec = *r.files[me];
    if (sink->written() != rec.map.stream_bytes() || sink->checksum() != rec.checksum)
      throw Error(
          ErrorCode::kCorrupt,
          "the rebuilt file '" + own_file + "' has checksum " + checksum_to_hex(sink->checksum()) +
              " over " + std::to_string(sink->written()) + " bytes, protect recorded " +
              checksum_to_hex(rec.checksum) + " over " + std::to_string(rec.map.stream_bytes()));
    sink->commit();
  });
  trace.mark("rebuild lost files", sink ? sink->written() : 0);
  // The lost node's redundancy directory went with it: protect again so the next loss is covered.
  protect_again(job, steps, r, red_oks, block, spec, own_file, red_dir);
  trace.mark("protect again");
  return d.outcome;
}

}  // namespace cairn::detail
