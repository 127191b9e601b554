// SPDX-License-Identifier: Apache-2.0
// cairn verify: a checkpoint file, or a directory of checkpoints with its state file. The checking
// is in verify_engine.cpp; this file decides what to check and prints the verdict (rank 0).
#include "cairn/inspect/verify.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>

#include "cairn/inspect/common.hpp"
#include "comm/wire.hpp"
#include "inspect/node_parts.hpp"
#include "inspect/scan.hpp"
#include "inspect/text.hpp"
#include "inspect/verify_engine.hpp"
#include "storage/hdf5_lock.hpp"
#include "storage/schema.hpp"
#include "storage/state_file.hpp"

namespace cairn::inspect {
namespace {

namespace fs = std::filesystem;
using detail::CheckpointVerdict;
using detail::FileStatus;
using nlohmann::ordered_json;

int exit_code_of(const CheckpointVerdict& v) {
  if (v.verdict == "ok") return kExitOk;
  if (v.verdict == "damaged" || v.verdict == "not-a-checkpoint") return kExitFailed;
  return kExitIo;
}

ordered_json problem_json(const detail::Problem& p, const std::string& checkpoint = "") {
  ordered_json j;
  if (!checkpoint.empty()) j["checkpoint"] = checkpoint;
  j["key"] = p.key;
  j["box"] = p.box;
  j["message"] = p.message;
  return j;
}

ordered_json verdict_json(const CheckpointVerdict& v) {
  ordered_json j;
  j["path"] = v.path;
  j["verdict"] = v.verdict;
  j["status"] = detail::status_name(v.status);
  if (v.status == FileStatus::kCommitted) {
    j["format_version"] = v.format_version;
    j["save_counter"] = v.save_counter;
    j["world_size"] = v.world_size;
    j["committed_unix"] = v.committed_unix;
    j["tensors"] = v.tensors;
    j["states"] = v.states;
    j["datasets_checked"] = v.datasets_checked;
    j["pieces_checked"] = v.pieces_checked;
    j["blobs_checked"] = v.blobs_checked;
    j["bytes_checked"] = v.bytes_checked;
  }
  if (v.part) {
    // "checked" says what the verdict covers: a part's "ok" is not the whole checkpoint's.
    j["checked"] = "part";
    j["part"] = {{"index", v.part->index}, {"count", v.part->count}, {"writers", v.part->writers}};
  } else if (v.status == FileStatus::kCommitted) {
    j["checked"] = "checkpoint";
  }
  j["problems_total"] = v.problems_total;
  ordered_json problems = ordered_json::array();
  for (const detail::Problem& p : v.problems) problems.push_back(problem_json(p));
  j["problems"] = std::move(problems);
  return j;
}

std::string verdict_word(const std::string& verdict) {
  std::string upper = verdict;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return upper;
}

void print_problems(std::ostream& out,
                    const std::vector<std::pair<std::string, detail::Problem>>& problems,
                    int64_t total, bool with_checkpoint) {
  if (problems.empty()) return;
  out << "\nproblems";
  if (total > static_cast<int64_t>(problems.size()))
    out << " (first " << problems.size() << " of " << total << ")";
  out << ":\n";
  std::vector<std::string> header = {"key", "box", "problem"};
  if (with_checkpoint) header.insert(header.begin(), "checkpoint");
  detail::Table table(header);
  for (const auto& [checkpoint, p] : problems) {
    std::vector<std::string> row = {p.key.empty() ? "-" : p.key, p.box.empty() ? "-" : p.box,
                                    p.message};
    if (with_checkpoint) row.insert(row.begin(), checkpoint);
    table.add(std::move(row));
  }
  table.print(out, "  ");
}

void print_file(std::ostream& out, const CheckpointVerdict& v, int ranks) {
  detail::Table t({"", ""});
  t.add({"checkpoint", v.path});
  if (v.status == FileStatus::kCommitted) {
    t.add({"commit", "committed " + detail::utc_time(v.committed_unix) + "; manifest checksum ok"});
    t.add({"manifest",
           "format " + v.format_version + ", save counter " + std::to_string(v.save_counter) +
               ", " + detail::plural(v.world_size, "rank") + " at save, " +
               detail::plural(v.tensors, "tensor") + ", " + detail::plural(v.states, "state") +
               (v.part ? ": consistent; the records of every other writer are empty"
                       : ": consistent, every tensor covered exactly once")});
    if (v.part)
      t.add({"part", detail::describe_part(*v.part) +
                         ": its writers' pieces, its own copy of the replicated tensors and "
                         "global state; the other writers are in the other parts"});
    t.add({"datasets", std::to_string(v.datasets_checked) + " checked against the manifest"});
    t.add({"data", detail::plural(v.pieces_checked, "piece") + " and " +
                       detail::plural(v.blobs_checked, "state value") + " (" +
                       detail::human_bytes(v.bytes_checked) + ") checked on " +
                       detail::plural(ranks, "rank")});
  } else {
    t.add({"status", detail::status_name(v.status)});
    if (v.part) t.add({"part", detail::describe_part(*v.part) + " (its header says)"});
  }
  std::string verdict = verdict_word(v.verdict);
  if (v.status != FileStatus::kCommitted && !v.problems.empty()) {
    verdict += ": " + v.problems.front().message;
    if (!v.problems.front().key.empty()) verdict += " (key " + v.problems.front().key + ")";
  } else if (v.problems_total > 0) {
    verdict += ": " + detail::plural(v.problems_total, "problem");
  }
  if (v.part)
    verdict += " (part " + std::to_string(v.part->index + 1) + " of " +
               std::to_string(v.part->count) + " only, not the whole checkpoint)";
  t.add({"verdict", verdict});
  t.print(out);
  if (v.status != FileStatus::kCommitted) return;
  std::vector<std::pair<std::string, detail::Problem>> problems;
  for (const detail::Problem& p : v.problems) problems.emplace_back("", p);
  print_problems(out, problems, v.problems_total, false);
}

int verify_file(const detail::Group& group, const VerifyOptions& options, std::ostream& out) {
  const CheckpointVerdict v = detail::verify_checkpoint(group, options.path, options);
  int code = exit_code_of(v);
  if (group.rank() == 0) {
    if (options.json) {
      ordered_json j;
      j["kind"] = "checkpoint";
      j["ranks"] = group.size();
      const ordered_json fields = verdict_json(v);
      for (auto it = fields.begin(); it != fields.end(); ++it) j[it.key()] = it.value();
      out << j.dump(2) << '\n';
    } else {
      print_file(out, v, group.size());
    }
  }
  return code;
}

// A node part to verify: the node directory it is in, and the parts its checkpoint has.
struct ExpectedPart {
  int node = 0;
  int count = 0;
};

// What rank 0 decides to check in a directory, shared with every rank.
struct DirectoryPlan {
  std::vector<std::string> files;  // to verify: names in the directory, or "node-<k>/<name>"
  std::vector<std::string> paths;  // their paths
  std::map<std::string, ExpectedPart> parts;                 // by entry of `files`
  std::vector<std::pair<std::string, std::string>> skipped;  // name, why
  std::string state_status = "missing";                      // "ok", "missing", "damaged", "stale"
  std::string state_message;
  std::string latest;
  std::vector<std::string> recorded;
  std::vector<std::string> node_local_only;  // recorded at the node-local level only
};

DirectoryPlan plan_directory(const std::string& dir, const std::string& node_root) {
  DirectoryPlan plan;
  for (const std::string& name : detail::checkpoint_like_files(dir)) {
    if (detail::is_temporary_name(name)) {
      plan.skipped.emplace_back(name, "temporary file of a save");
    } else {
      plan.files.push_back(name);
      plan.paths.push_back((fs::path(dir) / name).string());
    }
  }
  std::vector<std::pair<int, std::string>> node_dirs;
  if (!node_root.empty()) node_dirs = detail::node_directories(node_root);
  try {
    if (auto state = cairn::detail::read_state_file(dir)) {
      plan.state_status = "ok";
      plan.latest = state->latest;
      for (const auto& e : state->checkpoints) {
        plan.recorded.push_back(e.name);
        if (!e.shared) plan.node_local_only.push_back(e.name);
        if (!e.node_local()) continue;
        for (const auto& [k, node_dir] : node_dirs) {
          const fs::path part = fs::path(node_dir) / e.name;
          std::error_code ec;
          if (!fs::exists(part, ec)) continue;
          const std::string shown = "node-" + std::to_string(k) + "/" + e.name;
          plan.files.push_back(shown);
          plan.paths.push_back(part.string());
          plan.parts[shown] = {k, e.node_local_nodes};
        }
      }
    }
  } catch (const Error& e) {
    plan.state_status = "damaged";
    plan.state_message = bare_message(e);
  }
  return plan;
}

int verify_directory(const detail::Group& group, const VerifyOptions& options, std::ostream& out) {
  const std::string& dir = options.path;
  wire::Message shared;
  DirectoryPlan plan;
  group.run_agreed([&] {
    if (group.rank() != 0) return;
    plan = plan_directory(dir, options.node_local_directory);
    shared = {{"paths", plan.paths}};
  });
  group.broadcast(shared);
  const auto paths = shared.at("paths").get<std::vector<std::string>>();
  std::vector<CheckpointVerdict> verdicts;
  for (const std::string& path : paths)
    verdicts.push_back(detail::verify_checkpoint(group, path, options));
  if (group.rank() != 0) return kExitOk;  // the caller agrees on rank 0's code

  std::vector<std::pair<std::string, detail::Problem>> problems;
  std::vector<std::string> warnings;
  int64_t total = 0;
  auto add = [&](const std::string& where, detail::Problem p) {
    ++total;
    if (static_cast<int>(problems.size()) < options.max_problems)
      problems.emplace_back(where, std::move(p));
  };
  if (plan.state_status == "damaged")
    add(cairn::detail::schema::kStateFileName,
        {"", "", "the state file is damaged: " + plan.state_message});
  auto exists = [&](const std::string& name) { return fs::exists(fs::path(dir) / name); };
  if (plan.state_status == "ok" && !plan.latest.empty() && !exists(plan.latest)) {
    plan.state_status = "stale";
    plan.state_message =
        "names '" + plan.latest + "' as the latest checkpoint, but it does not exist";
    add(cairn::detail::schema::kStateFileName, {"", "", plan.state_message});
  }
  std::vector<std::string> notes;
  if (plan.state_status == "ok" || plan.state_status == "stale") {
    for (const std::string& name : plan.recorded) {
      if (name == plan.latest || exists(name)) continue;
      const bool node_local = std::find(plan.node_local_only.begin(), plan.node_local_only.end(),
                                        name) != plan.node_local_only.end();
      const bool parts_checked =
          std::any_of(plan.parts.begin(), plan.parts.end(),
                      [&](const auto& kv) { return kv.first.ends_with("/" + name); });
      if (!node_local)
        warnings.push_back("the state file lists '" + name + "', which does not exist");
      else if (!parts_checked)
        notes.push_back("'" + name + "' is recorded at the node-local level only: " +
                        (options.node_local_directory.empty()
                             ? "verify its parts in the node-local directories (cairn verify "
                               "--node-local ROOT DIR)"
                             : "no part of it in the node directories this machine sees"));
    }
  }
  int damaged = 0, checked = 0;
  for (std::size_t i = 0; i < verdicts.size(); ++i) {
    CheckpointVerdict& v = verdicts[i];
    const std::string& name = plan.files[i];
    // A file in a node directory must be the part that node holds of its checkpoint.
    if (const auto it = plan.parts.find(name);
        it != plan.parts.end() && v.status == FileStatus::kCommitted &&
        (!v.part || v.part->index != it->second.node || v.part->count != it->second.count)) {
      ++v.problems_total;
      v.problems.insert(
          v.problems.begin(),
          {"", "",
           (v.part ? "holds " + detail::describe_part(*v.part) : "a whole checkpoint") +
               ", not part " + std::to_string(it->second.node + 1) + " of " +
               std::to_string(it->second.count) + " that its node directory should hold"});
      v.verdict = "damaged";
    }
    if (v.verdict == "not-a-checkpoint") {
      plan.skipped.emplace_back(name,
                                "not a cairn checkpoint (an HDF5 file without cairn's marks)");
      continue;
    }
    ++checked;
    if (v.verdict == "ok") continue;
    ++damaged;
    total += v.problems_total - static_cast<int64_t>(v.problems.size());
    for (const detail::Problem& p : v.problems) add(name, p);
  }
  const bool ok = total == 0;
  if (options.json) {
    ordered_json j;
    j["kind"] = "directory";
    j["path"] = dir;
    j["ranks"] = group.size();
    j["verdict"] = ok ? "ok" : "damaged";
    j["state_file"] = {{"status", plan.state_status},
                       {"latest", plan.latest},
                       {"recorded", plan.recorded},
                       {"message", plan.state_message}};
    if (!options.node_local_directory.empty())
      j["node_local_directory"] = options.node_local_directory;
    ordered_json list = ordered_json::array();
    for (std::size_t i = 0; i < verdicts.size(); ++i) {
      ordered_json one = verdict_json(verdicts[i]);
      one["file"] = plan.files[i];
      list.push_back(std::move(one));
    }
    j["checkpoints"] = std::move(list);
    ordered_json skipped = ordered_json::array();
    for (const auto& [name, why] : plan.skipped)
      skipped.push_back({{"name", name}, {"reason", why}});
    j["skipped"] = std::move(skipped);
    j["warnings"] = warnings;
    j["notes"] = notes;
    j["problems_total"] = total;
    ordered_json pj = ordered_json::array();
    for (const auto& [where, p] : problems) pj.push_back(problem_json(p, where));
    j["problems"] = std::move(pj);
    out << j.dump(2) << '\n';
    return ok ? kExitOk : kExitFailed;
  }
  out << "directory   " << dir << '\n';
  std::string state = plan.state_status;
  if (plan.state_status == "ok")
    state += ": latest " + (plan.latest.empty() ? std::string("(none)") : plan.latest) + ", " +
             detail::plural(static_cast<int64_t>(plan.recorded.size()), "checkpoint") + " recorded";
  if (plan.state_status == "stale") state += ": " + plan.state_message;
  out << "state file  " << state << "\n\n";
  detail::Table table({"file", "verdict", "details"});
  for (std::size_t i = 0; i < verdicts.size(); ++i) {
    const CheckpointVerdict& v = verdicts[i];
    if (v.verdict == "not-a-checkpoint") continue;
    std::string details;
    if (v.part)
      details = "part " + std::to_string(v.part->index + 1) + " of " +
                std::to_string(v.part->count) + " only (not a whole checkpoint), ";
    if (v.status == FileStatus::kCommitted)
      details += "save counter " + std::to_string(v.save_counter) + ", " +
                 detail::plural(v.pieces_checked, "piece") + ", " +
                 detail::human_bytes(v.bytes_checked);
    if (v.problems_total > 0)
      details +=
          std::string(details.empty() ? "" : "; ") + detail::plural(v.problems_total, "problem");
    table.add({plan.files[i], verdict_word(v.verdict), details});
  }
  for (const auto& [name, why] : plan.skipped) table.add({name, "SKIPPED", why});
  if (!table.empty()) table.print(out, "  ");
  for (const std::string& w : warnings) out << "warning: " << w << '\n';
  for (const std::string& n : notes) out << "note: " << n << '\n';
  print_problems(out, problems, total, true);
  out << "\nverdict     " << (ok ? "OK" : "DAMAGED") << ": " << checked << " checked, " << damaged
      << " damaged";
  if (plan.state_status == "damaged") out << ", state file damaged";
  if (plan.state_status == "stale") out << ", state file names a missing latest";
  out << " (" << detail::plural(group.size(), "rank") << ")\n";
  return ok ? kExitOk : kExitFailed;
}

}  // namespace

int verify(const VerifyOptions& options, const Comm* comm, std::ostream& out) {
  // HDF5 is not thread-safe here: this process's background saves finish first (they may need
  // collectives of their own), then this verify holds HDF5 to itself.
  cairn::detail::wait_for_background_saves();
  std::lock_guard<std::recursive_mutex> hdf5(cairn::detail::hdf5_mutex());
  const detail::Group group(comm);
  // Every rank must take the same branch: rank 0 decides whether the path is a directory.
  wire::Message kind;
  group.run_agreed([&] {
    if (group.rank() == 0) kind = {{"directory", fs::is_directory(options.path)}};
  });
  group.broadcast(kind);
  // Every check is agreed, but rank 0 alone prints: its exit code, or its error with the code,
  // message and context, reaches every rank.
  wire::Message outcome;
  try {
    outcome = {{"exit", kind.at("directory").get<bool>() ? verify_directory(group, options, out)
                                                         : verify_file(group, options, out)}};
  } catch (...) {
    outcome = {{"error", wire::from_error(current_exception_as_error({.rank = group.rank()}))}};
  }
  group.broadcast(outcome);
  if (outcome.contains("error")) throw wire::to_error(outcome.at("error"));
  return outcome.at("exit").get<int>();
}

}  // namespace cairn::inspect
