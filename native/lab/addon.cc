// lnlb lab addon: what only the benchmarks, the lab and the tests need (a traffic generator,
// netns entry, a service manager's notify socket), kept out of the port addon that lnlbd loads and the package ships.
// lab/native.ts gives its calls types and turns their errors into LnlbError.

#include <napi.h>

#include "netns.h"
#include "notify-listen.h"
#include "traffic-gen.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  lnlb::RegisterTrafficGen(env, exports);
  lnlb::RegisterNetns(env, exports);
  lnlb::RegisterNotifyListen(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(lnlb_lab, Init)
