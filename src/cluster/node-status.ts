/**
 * A member's status in a round (membership.ts says what each means), on its own so that the main
 * thread (node-state.ts: status and events) names them without loading the membership itself,
 * which only the control thread runs.
 */
export const NodeStatus = {
  JOINING: 'JOINING',
  WAITING_HEARTBEAT: 'WAITING_HEARTBEAT',
  ASKED_RETRASM: 'ASKED_RETRASM',
  OK: 'OK',
  DEAD: 'DEAD',
} as const;
export type NodeStatus = (typeof NodeStatus)[keyof typeof NodeStatus];
