// HMAC-SHA256 (FIPS 180-4, RFC 2104) with the key's pads hashed once: see hmac.h.

#include "hmac.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace lnlb {

namespace {

constexpr uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

constexpr uint32_t IV[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

inline uint32_t Rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

void CompressPortable(uint32_t h[8], const uint8_t block[64]) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++) {
    w[i] = (uint32_t(block[4 * i]) << 24) | (uint32_t(block[4 * i + 1]) << 16) | (uint32_t(block[4 * i + 2]) << 8) | uint32_t(block[4 * i + 3]);
  }
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = Rotr(w[i - 15], 7) ^ Rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = Rotr(w[i - 2], 17) ^ Rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = hh + (Rotr(e, 6) ^ Rotr(e, 11) ^ Rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
    uint32_t t2 = (Rotr(a, 2) ^ Rotr(a, 13) ^ Rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += hh;
}

#if defined(__x86_64__)
// The same compression with the SHA extensions (Intel SHA-NI, AMD Zen): the state kept as
// ABEF/CDGH, four rounds a step, the message schedule by sha256msg1/msg2 (FIPS 180-4 6.2.2).
__attribute__((target("sha,sse4.1,ssse3"))) void CompressShaNi(uint32_t h[8], const uint8_t block[64]) {
  const __m128i kByteSwap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(&h[0])), 0xB1);  // CDAB
  __m128i state1 = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(&h[4])), 0x1B);  // EFGH
  __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);  // ABEF
  state1 = _mm_blend_epi16(state1, tmp, 0xF0);       // CDGH
  const __m128i abef = state0;
  const __m128i cdgh = state1;
  __m128i w[4];
  for (int j = 0; j < 16; j++) {
    if (j < 4) {
      w[j] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * j)), kByteSwap);
    } else {
      // W[4j..4j+3] from W[4j-16..4j-1]: w[j&3] holds group j-4 until it is replaced here.
      __m128i t = _mm_sha256msg1_epu32(w[j & 3], w[(j - 3) & 3]);
      t = _mm_add_epi32(t, _mm_alignr_epi8(w[(j - 1) & 3], w[(j - 2) & 3], 4));
      w[j & 3] = _mm_sha256msg2_epu32(t, w[(j - 1) & 3]);
    }
    __m128i msg = _mm_add_epi32(w[j & 3], _mm_loadu_si128(reinterpret_cast<const __m128i*>(&K[4 * j])));
    state1 = _mm_sha256rnds2_epu32(state1, state0, msg);
    msg = _mm_shuffle_epi32(msg, 0x0E);
    state0 = _mm_sha256rnds2_epu32(state0, state1, msg);
  }
  state0 = _mm_add_epi32(state0, abef);
  state1 = _mm_add_epi32(state1, cdgh);
  tmp = _mm_shuffle_epi32(state0, 0x1B);        // FEBA
  state1 = _mm_shuffle_epi32(state1, 0xB1);     // DCHG
  state0 = _mm_blend_epi16(tmp, state1, 0xF0);  // DCBA
  state1 = _mm_alignr_epi8(state1, tmp, 8);     // HGFE
  _mm_storeu_si128(reinterpret_cast<__m128i*>(&h[0]), state0);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(&h[4]), state1);
}

bool CpuHasShaNi() {
  unsigned a, b, c, d;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0 || (b & (1u << 29)) == 0) return false;  // SHA
  if (__get_cpuid(1, &a, &b, &c, &d) == 0) return false;
  return (c & (1u << 19)) != 0 && (c & (1u << 9)) != 0;  // SSE4.1, SSSE3
}
#endif

// Which compression runs: the SHA extensions when the CPU has them (hmacSha256Implementation
// can force the portable one, so that both are tested on any machine).
#if defined(__x86_64__)
bool useShaNi = CpuHasShaNi();
#else
constexpr bool useShaNi = false;
#endif

inline void Compress(uint32_t h[8], const uint8_t block[64]) {
#if defined(__x86_64__)
  if (useShaNi) {
    CompressShaNi(h, block);
    return;
  }
#endif
  CompressPortable(h, block);
}

// A SHA-256 in progress from a state that has already absorbed `prefix` bytes (a pad block).
struct Sha256 {
  uint32_t h[8];
  uint8_t buf[64];
  size_t used = 0;
  uint64_t total;

  Sha256(const uint32_t state[8], uint64_t prefix) : total(prefix) { memcpy(h, state, sizeof h); }

  void Update(const uint8_t* p, size_t n) {
    total += n;
    if (used > 0) {
      size_t take = 64 - used < n ? 64 - used : n;
      memcpy(buf + used, p, take);
      used += take;
      p += take;
      n -= take;
      if (used < 64) return;
      Compress(h, buf);
      used = 0;
    }
    for (; n >= 64; p += 64, n -= 64) Compress(h, p);
    memcpy(buf, p, n);
    used = n;
  }

  void Final(uint8_t out[32]) {
    uint64_t bits = total * 8;
    buf[used++] = 0x80;
    if (used > 56) {
      memset(buf + used, 0, 64 - used);
      Compress(h, buf);
      used = 0;
    }
    memset(buf + used, 0, 56 - used);
    for (int i = 0; i < 8; i++) buf[56 + i] = uint8_t(bits >> (56 - 8 * i));
    Compress(h, buf);
    for (int i = 0; i < 8; i++) {
      out[4 * i] = uint8_t(h[i] >> 24);
      out[4 * i + 1] = uint8_t(h[i] >> 16);
      out[4 * i + 2] = uint8_t(h[i] >> 8);
      out[4 * i + 3] = uint8_t(h[i]);
    }
  }
};

struct Bytes {
  uint8_t* data;
  size_t length;
};

Bytes Uint8Arg(const Napi::CallbackInfo& info, size_t i, const char* name, const char* usage) {
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(info.Env(), std::string(usage) + ": " + name + " must be a Uint8Array");
  }
  Napi::Uint8Array a = info[i].As<Napi::Uint8Array>();
  return {a.Data(), a.ByteLength()};
}

void StateToWords(const uint8_t* bytes, uint32_t words[8]) { memcpy(words, bytes, 32); }

const char* kPrepareUsage = "hmacSha256Prepare(key: Uint8Array, state: Uint8Array(64))";
const char* kTagUsage = "hmacSha256Tag(work: Uint8Array(108), frame, from, to, outLen)";
// The work area (hmac.h): the prepared state, then the 12 bytes of MACs, then the tag.
constexpr size_t kMacsAt = 64;
constexpr size_t kTagAt = 76;
constexpr size_t kWorkBytes = 108;

}  // namespace

Napi::Value HmacSha256Prepare(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes key = Uint8Arg(info, 0, "key", kPrepareUsage);
  Bytes state = Uint8Arg(info, 1, "state", kPrepareUsage);
  if (state.length < 64) throw Napi::RangeError::New(env, std::string(kPrepareUsage) + ": state needs 64 bytes");
  uint8_t block[64] = {0};
  if (key.length > 64) {
    Sha256 k(IV, 0);
    k.Update(key.data, key.length);
    k.Final(block);
  } else {
    memcpy(block, key.data, key.length);
  }
  uint8_t pad[64];
  uint32_t inner[8], outer[8];
  for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x36;
  memcpy(inner, IV, sizeof inner);
  Compress(inner, pad);
  for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x5c;
  memcpy(outer, IV, sizeof outer);
  Compress(outer, pad);
  memcpy(state.data, inner, 32);
  memcpy(state.data + 32, outer, 32);
  memset(block, 0, sizeof block);
  memset(pad, 0, sizeof pad);
  return env.Undefined();
}

Napi::Value HmacSha256Tag(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes work = Uint8Arg(info, 0, "work", kTagUsage);
  Bytes frame = Uint8Arg(info, 1, "frame", kTagUsage);
  if (!info[2].IsNumber() || !info[3].IsNumber() || !info[4].IsNumber()) throw Napi::TypeError::New(env, std::string(kTagUsage) + ": from, to and outLen are numbers");
  int64_t from = info[2].As<Napi::Number>().Int64Value();
  int64_t to = info[3].As<Napi::Number>().Int64Value();
  int64_t outLen = info[4].As<Napi::Number>().Int64Value();
  if (work.length < kWorkBytes || from < 0 || to < from || static_cast<uint64_t>(to) > frame.length || outLen < 1 || outLen > 32) {
    throw Napi::RangeError::New(env, std::string(kTagUsage) + ": a range outside its array");
  }
  uint32_t inner[8], outer[8];
  StateToWords(work.data, inner);
  StateToWords(work.data + 32, outer);
  uint8_t digest[32];
  Sha256 in(inner, 64);
  in.Update(work.data + kMacsAt, 12);
  in.Update(frame.data + from, static_cast<size_t>(to - from));
  in.Final(digest);
  Sha256 o(outer, 64);
  o.Update(digest, 32);
  o.Final(digest);
  memcpy(work.data + kTagAt, digest, static_cast<size_t>(outLen));
  return env.Undefined();
}

Napi::Value HmacSha256Implementation(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() > 0 && info[0].IsString()) {
    std::string want = info[0].As<Napi::String>().Utf8Value();
    if (want == "portable") {
#if defined(__x86_64__)
      useShaNi = false;
#endif
    } else if (want == "auto") {
#if defined(__x86_64__)
      useShaNi = CpuHasShaNi();
#endif
    } else {
      throw Napi::TypeError::New(env, "hmacSha256Implementation('auto' | 'portable')");
    }
  }
  return Napi::String::New(env, useShaNi ? "sha-ni" : "portable");
}

}  // namespace lnlb
