/**
 * What one control message's MAC costs: the native HMAC-SHA256 the daemon uses
 * (port.hmacSha256) against node:crypto's createHmac (the authenticator's default), through
 * ControlAuthenticator.open() on the same sealed heartbeat-sized frame with a bad tag (what a
 * flood of forged frames that claim a member's MAC costs: every one is a full MAC), alternated
 * in the same run. No goal: a cost is reported.
 */

import { randomBytes } from 'node:crypto';
import { AUTH_TRAILER_LENGTH, ControlAuthenticator, nodeCryptoHmacSha256, type ControlMacFunction } from '../src/net/auth.js';
import { encodeMessage, MessageType } from '../src/net/cluster-message.js';
import { hmacSha256 } from '../src/port/native.js';
import { fmtSpread, ratio, spread, type BenchOptions, type BenchResult } from './report.js';

const SRC = new Uint8Array([2, 0, 0, 0, 0, 1]);
const DST = new Uint8Array([2, 0, 10, 0, 0, 100]);

/** ns per open() of a forged frame (the tag flipped): the HMAC is the whole cost. */
function openNs(macFactory: (key: Uint8Array) => ControlMacFunction, count: number): number {
  const key = randomBytes(32);
  const now = (): number => 1_700_000_000_000;
  const tx = new ControlAuthenticator(key, now, { macFactory });
  const frame = new Uint8Array(128);
  const len = encodeMessage(frame, 0, { clusterIp: 0x0a000064, type: MessageType.HEARTBEAT, flags: 0, messageId: 1, data: new Uint8Array(48) });
  const sealed = tx.seal(frame, 0, len, SRC, DST);
  frame[sealed - 1] = frame[sealed - 1]! ^ 0xff; // a forgery: the MAC never matches, the window never moves
  let rx = new ControlAuthenticator(key, now, { macFactory });
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    if (rx.open(frame, 0, sealed, SRC, DST) === 0) rx = new ControlAuthenticator(key, now, { macFactory }); // never: a bad tag
  }
  return Number(process.hrtime.bigint() - start) / count;
}

export async function benchAuthMac(o: BenchOptions): Promise<BenchResult> {
  const count = o.quick ? 100_000 : 1_000_000;
  const runs = o.quick ? 3 : 7;
  openNs(hmacSha256, count / 10); // warm-up
  openNs(nodeCryptoHmacSha256, count / 10);
  const native: number[] = [];
  const crypto: number[] = [];
  for (let r = 0; r < runs; r++) {
    o.progress(`auth-mac: run ${r + 1} of ${runs}`);
    native.push(openNs(hmacSha256, count));
    crypto.push(openNs(nodeCryptoHmacSha256, count));
  }
  const n = spread(native);
  const c = spread(crypto);
  return {
    rows: [
      {
        figure: 'open() of a forged heartbeat, ns',
        note: `the control plane's check of one forged heartbeat (its ${AUTH_TRAILER_LENGTH}-byte trailer), ns, with the native HMAC-SHA256; ref: node:crypto createHmac doing the same, this run`,
        lnlb: fmtSpread(n, 0),
        reference: fmtSpread(c, 0),
        ratio: ratio(n.median, c.median),
        goal: '',
      },
    ],
    json: { nativeNs: n, nodeCryptoNs: c },
  };
}
