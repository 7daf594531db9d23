// The service manager's readiness protocol (sd_notify(3)): lnlbd under systemd with
// Type=notify tells it READY=1, STATUS=..., RELOADING=1, STOPPING=1 by one datagram each on
// the unix socket named by $NOTIFY_SOCKET. Here, not in JavaScript: Node has no unix datagram
// sockets (dgram is UDP only, net is stream only), and the protocol is one sendto(). Not
// libsystemd: one more library to link and install for ten lines (src/main/service-notify.ts).
#pragma once

#include <napi.h>

namespace lnlb {

// notify(socketPath, message) -> boolean.
void RegisterNotify(Napi::Env env, Napi::Object exports);

}  // namespace lnlb
