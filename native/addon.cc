// lnlb native port addon: TAP devices, AF_PACKET sockets with a TPACKET_V2 or TPACKET_V3 RX
// ring, link ioctls, watch, flock, HMAC, sd_notify. Everything is synchronous and fd-based so that a
// socket opened on the main thread can be read by a worker thread (fds and the ring table are
// process-wide). One source file per concern; this one only registers their calls.
// src/port/native.ts gives them types and turns their errors into LnlbError.

#include <napi.h>

#include "flock.h"
#include "hmac.h"
#include "ifctl.h"
#include "io.h"
#include "notify.h"
#include "packet-ring.h"
#include "packet-socket.h"
#include "tap.h"
#include "watch.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  lnlb::RegisterTap(env, exports);
  lnlb::RegisterIfctl(env, exports);
  lnlb::RegisterPacketSocket(env, exports);
  lnlb::RegisterPacketRing(env, exports);
  lnlb::RegisterIo(env, exports);
  lnlb::RegisterWatch(env, exports);
  lnlb::RegisterNotify(env, exports);
  exports.Set("flock", Napi::Function::New(env, lnlb::Flock, "flock"));
  exports.Set("hmacSha256Prepare", Napi::Function::New(env, lnlb::HmacSha256Prepare, "hmacSha256Prepare"));
  exports.Set("hmacSha256Tag", Napi::Function::New(env, lnlb::HmacSha256Tag, "hmacSha256Tag"));
  exports.Set("hmacSha256Implementation", Napi::Function::New(env, lnlb::HmacSha256Implementation, "hmacSha256Implementation"));
  return exports;
}

}  // namespace

NODE_API_MODULE(lnlb_port, Init)
