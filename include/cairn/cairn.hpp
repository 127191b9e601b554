// SPDX-License-Identifier: Apache-2.0
#pragma once
// Everything a training program needs. Opaque state over Boost.Serialization is in
// "cairn/state/boost_state.hpp".
#include "cairn/checkpoint/checkpoint.hpp"
#include "cairn/checkpoint/reader.hpp"
#include "cairn/checkpoint/status.hpp"
#include "cairn/comm/session.hpp"
#include "cairn/core/error.hpp"
#include "cairn/graph/trackable.hpp"
#include "cairn/manager/manager.hpp"
#include "cairn/manager/preemption.hpp"
#include "cairn/optim/optimizer.hpp"
#include "cairn/state/state.hpp"
#include "cairn/tensor/layout.hpp"
#include "cairn/tensor/variable.hpp"
#include "cairn/version.hpp"
