/**
 * The state `lnlbctl status` shows on each member's row, in words (docs/operating.md lists
 * them). Pure: what the control plane knows of a member in, a word out.
 *
 * This node's own row shows the interface's state, the word of the status header (converged,
 * draining, stopped, held, ...), from the same function: the row and the header cannot
 * disagree (before, a drained node's header said `stopped` while its row said `OK` with the
 * weight `draining`). Another member's row says what this node sees of it:
 *
 *   serving               in the view, heard this round, takes new clients by its weight
 *   draining              in the view and serving its tracked clients, but takes no new ones
 *                         (it announces the draining weight: lnlbctl drainstop)
 *   not serving           in the view with the draining weight, and says it does not serve:
 *                         listening after its start, or held (a key mismatch on the LAN)
 *   asked to retransmit   its heartbeat for this round is late: it was asked to send it again
 *                         (it dies if silent for --dead-after-ms)
 *   joining               heard (JOIN, WELCOME or a heartbeat), not yet in the view: the next
 *                         round takes it in
 *
 * The JSON keeps the membership's code beside it (`status`: OK, ASKED_RETRASM, JOINING, the
 * names of LNLB's node table) for scripts written against it.
 */

import { DRAINING_WEIGHT } from '../cluster/election.js';
import { NodeStatus } from '../cluster/node-status.js';

export const MEMBER_STATES = ['serving', 'draining', 'not serving', 'asked to retransmit', 'joining'] as const;
export type MemberState = (typeof MEMBER_STATES)[number];

/** Readable names of the membership's codes (LNLB's node table). */
export const STATUS_NAMES: Readonly<Record<string, string>> = {
  [NodeStatus.JOINING]: 'joining',
  [NodeStatus.WAITING_HEARTBEAT]: 'waiting for its heartbeat',
  [NodeStatus.ASKED_RETRASM]: 'asked to retransmit',
  [NodeStatus.OK]: 'heard this round',
  [NodeStatus.DEAD]: 'dead',
};

/** Another member's state as this node sees it: its membership code, its weight in the view, whether it says it serves. */
export function memberState(status: string, weight: number, joined: boolean): MemberState {
  if (status === NodeStatus.JOINING) return 'joining';
  if (status === NodeStatus.ASKED_RETRASM) return 'asked to retransmit';
  if (weight === DRAINING_WEIGHT) return joined ? 'draining' : 'not serving';
  return 'serving';
}

/** The WEIGHT column: a capacity, or '-' for the draining marker (the state says why). */
export const weightText = (weight: number): string => (weight === DRAINING_WEIGHT ? '-' : String(weight));
