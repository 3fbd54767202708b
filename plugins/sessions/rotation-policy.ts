/**
 * What a refresh token presented again means, once it already has a
 * successor: the rules of rotation, apart from how they are stored.
 */

export interface RepeatedRotation {
  /** The successor was rotated in turn: someone used it. */
  successorUsed: boolean
  /** The rotation that made the successor answered with an error: no client holds it. */
  successorUndelivered: boolean
  /** Milliseconds since the successor was issued. */
  sinceIssuedMs: number
  graceMs: number
  /** The successor's sealed copy is still stored (it goes once the grace window is over). */
  sealedCopyKept: boolean
}

export type RepeatedRotationDecision =
  /** Theft: revoke the whole session. */
  | 'theft'
  /** Parallel tabs or a retry within the grace window: hand out the same successor. */
  | 'same-successor'
  /** The successor never reached anyone: withdraw it and rotate the presented token afresh. */
  | 'withdraw-and-rotate'

export function decideRepeatedRotation (presented: RepeatedRotation): RepeatedRotationDecision {
  if (presented.successorUsed) return 'theft'
  if (presented.successorUndelivered) return 'withdraw-and-rotate'
  if (presented.sinceIssuedMs <= presented.graceMs && presented.sealedCopyKept) return 'same-successor'
  return 'theft'
}
