// Interface changes go through a throw-away AF_INET datagram socket (ioctl), reads through
// rtnetlink; both live in the calling thread's network namespace.
#pragma once

#include <napi.h>
#include <net/if.h>

#include <string>

namespace lnlb {

// Throws ENAMETOOLONG for a name of IFNAMSIZ bytes or more, EINVAL for an empty one unless
// allowEmpty (a TAP whose name the kernel picks).
void CheckIfName(Napi::Env env, const std::string& name, bool allowEmpty);

// A zeroed ifreq naming the device (name checked).
struct ifreq IfReq(Napi::Env env, const std::string& name);

// ifInfo, hostAddresses, ifSetMac, ifSetUp, ifSetMtu, ifSetIPv4, ifClearIPv4, ifAddIPv6.
void RegisterIfctl(Napi::Env env, Napi::Object exports);

}  // namespace lnlb
