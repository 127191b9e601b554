#pragma once
// Test hook for crash tests: CAIRN_FAULT_INJECT="<phase>[:<rank>]" makes the named rank (or every
// rank) kill itself with SIGKILL when a save reaches <phase>. This is a real kill -9 of a real
// process, at a deterministic point. Phases: before_data, during_data, after_data, before_rename,
// before_state_file. Unset in normal runs; the check is one getenv per phase.
namespace cairn {

void fault_point(const char* phase, int rank);

}  // namespace cairn
