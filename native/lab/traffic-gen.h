// Traffic generator for benchmarks (bench/generator.ts, bench/control-forger.ts): count copies
// of one frame with the IPv4 source address walking through sourceCount values, so the
// receiver sees many flows. Lab only: not in the package (binding.gyp's lnlb_lab target).
#pragma once

#include <napi.h>

namespace lnlb {

// sendBurst.
void RegisterTrafficGen(Napi::Env env, Napi::Object exports);

}  // namespace lnlb
