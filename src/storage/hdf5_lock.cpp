// SPDX-License-Identifier: Apache-2.0
#include "storage/hdf5_lock.hpp"

#include <condition_variable>

namespace cairn::detail {
namespace {

std::mutex g_flight_mutex;
std::condition_variable g_flight_done;
int g_in_flight = 0;

}  // namespace

std::recursive_mutex& hdf5_mutex() {
  static std::recursive_mutex mutex;
  return mutex;
}

void background_save_started() {
  std::lock_guard<std::mutex> lock(g_flight_mutex);
  ++g_in_flight;
}

void background_save_finished() {
  {
    std::lock_guard<std::mutex> lock(g_flight_mutex);
    --g_in_flight;
  }
  g_flight_done.notify_all();
}

void wait_for_background_saves() {
  std::unique_lock<std::mutex> lock(g_flight_mutex);
  g_flight_done.wait(lock, [] { return g_in_flight == 0; });
}

}  // namespace cairn::detail
