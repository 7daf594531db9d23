// Receive rings (TPACKET_V2 or TPACKET_V3) on AF_PACKET sockets, mmapped and shared with the
// kernel; ringRead copies whole frames out of them (see packet-ring.cc for the layouts).
#pragma once

#include <napi.h>

namespace lnlb {

// Closes fd and drops the ring registered on it, if any: the mapping goes when the last
// reader lets go of it.
void CloseDroppingRing(Napi::Env env, int fd);

// ringOpen, ringRead, ringStats, ringWake.
void RegisterPacketRing(Napi::Env env, Napi::Object exports);

}  // namespace lnlb
