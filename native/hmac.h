// HMAC-SHA256 for the control plane's message authentication (src/net/auth.ts), in native
// code: under a flood of forged frames that claim a member's MAC every one costs a full HMAC,
// and node:crypto's createHmac costs 2-4 µs a message here (an object, a key copy and a digest
// buffer each time). Here the key's inner and outer SHA-256 states are computed once, and a
// message costs its own compression rounds, with nothing allocated.
#pragma once

#include <napi.h>

namespace lnlb {

// hmacSha256Prepare(key: Uint8Array, state: Uint8Array(64)): the inner and outer SHA-256
// states of HMAC under `key` (RFC 2104), written to `state`.
Napi::Value HmacSha256Prepare(const Napi::CallbackInfo& info);

// hmacSha256Tag(work: Uint8Array(108), frame: Uint8Array, from, to, outLen): with work laid
// out as
//   [0, 64)    the prepared state (hmacSha256Prepare)
//   [64, 76)   destination MAC · source MAC, written by the caller for this message
//   [76, 108)  the tag: the first outLen (1..32) bytes of the HMAC-SHA256 of
//              work[64, 76) · frame[from, to)
// Two arrays a call, not five: each typed array costs N-API time, and this runs per frame.
Napi::Value HmacSha256Tag(const Napi::CallbackInfo& info);

// hmacSha256Implementation(set?: 'auto' | 'portable') -> 'sha-ni' | 'portable': which SHA-256
// compression runs (the SHA extensions when the CPU has them); 'portable' forces the C one, so
// that a test checks both on a machine that has the extensions.
Napi::Value HmacSha256Implementation(const Napi::CallbackInfo& info);

}  // namespace lnlb
