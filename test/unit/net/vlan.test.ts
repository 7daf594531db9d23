import test from 'ava';
import { BPF_ACCEPT, dataFilter, runBpf, validateBpf, withVlanGuard } from '../../../src/net/bpf.js';
import { formatMac, parseMac } from '../../../src/net/ethernet.js';
import { copyWithTag, insertVlanTag, tagForEgress } from '../../../src/net/vlan.js';
import { CLUSTER_MAC, ipv4Frame } from '../../fixtures/frames.js';

const OWN_MAC = parseMac('52:54:00:00:00:01');

test('the VLAN guard: 0 passes untagged and priority-tagged frames only; an id passes that VLAN only, whatever the priority', (t) => {
  const frame = ipv4Frame({ dst: CLUSTER_MAC });
  const untagged = withVlanGuard(dataFilter(CLUSTER_MAC), 0);
  const trunk = withVlanGuard(dataFilter(CLUSTER_MAC), 100);
  for (const p of [untagged, trunk]) t.is(validateBpf(p), null);
  t.is(runBpf(untagged, frame, frame.length), BPF_ACCEPT);
  t.is(runBpf(untagged, frame, frame.length, { vlanTci: 0x2000 }), BPF_ACCEPT, 'priority 1, VLAN 0');
  t.is(runBpf(untagged, frame, frame.length, { vlanTci: 100 }), 0);
  t.is(runBpf(trunk, frame, frame.length, { vlanTci: 100 }), BPF_ACCEPT);
  t.is(runBpf(trunk, frame, frame.length, { vlanTci: 0xe000 | 100 }), BPF_ACCEPT, 'priority 7');
  t.is(runBpf(trunk, frame, frame.length, { vlanTci: 200 }), 0);
  t.is(runBpf(trunk, frame, frame.length), 0, 'untagged on a trunk');
  const other = ipv4Frame({ dst: OWN_MAC });
  t.is(runBpf(trunk, other, other.length, { vlanTci: 100 }), 0, 'the program behind the guard still decides');
  t.throws(() => withVlanGuard(dataFilter(CLUSTER_MAC), 4095), { message: /0 \(untagged\) to 4094/ });
});

test('a tag goes in after the MAC addresses, the rest moved on', (t) => {
  const frame = ipv4Frame({ dst: CLUSTER_MAC });
  const buf = new Uint8Array(frame.length + 4 + 3);
  buf.set(frame, 3);
  t.is(insertVlanTag(buf, 3, frame.length, 200), frame.length + 4);
  t.deepEqual([...buf.subarray(3 + 12, 3 + 16)], [0x81, 0x00, 0x00, 200]);
  t.deepEqual([...buf.subarray(3 + 16, 3 + frame.length + 4)], [...frame.subarray(12)]);
  t.deepEqual([...buf.subarray(3, 15)], [...frame.subarray(0, 12)]);
  t.throws(() => insertVlanTag(new Uint8Array(frame.length), 0, frame.length, 5), { message: /no room/ });
});

test("egress: the host's frame leaves tagged, from the node's own MAC, its virtio-net offsets moved past the tag", (t) => {
  const frame = ipv4Frame({ dst: parseMac('52:54:00:00:00:99'), src: CLUSTER_MAC, lead: 10 });
  frame[0] = 1; // NEEDS_CSUM
  frame[1] = 1; // GSO TCPv4
  frame[2] = 54; // hdr_len
  frame[6] = 34; // csum_start
  frame[8] = 16; // csum_offset
  const out = new Uint8Array(2048);
  const length = tagForEgress(frame, frame.length, out, OWN_MAC, 100, 10);
  t.is(length, frame.length + 4);
  t.is(out[2], 58, 'hdr_len + 4');
  t.is(out[6], 38, 'csum_start + 4');
  t.is(out[8], 16, 'csum_offset is from csum_start: unchanged');
  t.is(formatMac(out, 10), '52:54:00:00:00:99', 'the same destination');
  t.is(formatMac(out, 16), formatMac(OWN_MAC), 'the node as source, never the cluster MAC');
  t.deepEqual([...out.subarray(22, 26)], [0x81, 0x00, 0x00, 100]);
  t.deepEqual([...out.subarray(26, length)], [...frame.subarray(22)]);
  const plain = ipv4Frame({ lead: 10 });
  const plainLength = tagForEgress(plain, plain.length, out, OWN_MAC, 4094, 10);
  t.is(out[6], 0, 'no checksum to complete: nothing moved');
  t.deepEqual([...out.subarray(24, 26)], [0x0f, 0xfe]);
  t.is(plainLength, plain.length + 4);
  t.is(tagForEgress(plain, 20, out, OWN_MAC, 100, 10), -1, 'a runt');
  t.is(tagForEgress(plain, plain.length, new Uint8Array(plain.length), OWN_MAC, 100, 10), -1, 'no room');
});

test('copyWithTag: the whole TCI goes back in (priority and DEI kept), the source MAC stays, the frame copied from any offset', (t) => {
  const frame = ipv4Frame({ dst: CLUSTER_MAC, src: OWN_MAC, lead: 10 });
  const buf = new Uint8Array(frame.length + 7);
  buf.set(frame, 7);
  const out = new Uint8Array(2048);
  const length = copyWithTag(buf, 7, frame.length, out, 0xb064, 10); // priority 5, DEI 1, VLAN 100
  t.is(length, frame.length + 4);
  t.deepEqual([...out.subarray(10 + 12, 10 + 16)], [0x81, 0x00, 0xb0, 0x64]);
  t.is(formatMac(out, 16), formatMac(OWN_MAC));
  t.deepEqual([...out.subarray(26, length)], [...frame.subarray(22)]);
  t.is(copyWithTag(buf, 7, frame.length + 1, out, 100, 10), -1, 'past the end of the source');
});
