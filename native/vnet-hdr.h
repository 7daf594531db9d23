// The virtio-net header that a TAP with IFF_VNET_HDR or a packet socket with PACKET_VNET_HDR
// puts before each frame (checksum and GSO offload hints).
#pragma once

#include <stddef.h>

namespace lnlb {

// sizeof(struct virtio_net_hdr) (linux/virtio_net.h is not valid C++: a field is named `class`).
constexpr size_t kVnetHdrLen = 10;

}  // namespace lnlb
