import { InvalidCursorError } from '../errors.js'
import type { RevocationRecord } from '../plugins/sessions/revocation-feed.js'

// What the feed (GET /revocations) and the stream (GET /revocations/stream)
// both hand out: entries in one shape, and cursors over the feed's seq.

const CURSOR_PREFIX = 'r1.'
const CURSOR = /^r1\.(0|[1-9]\d*)$/

export function encodeCursor (seq: number): string {
  return Buffer.from(`${CURSOR_PREFIX}${seq}`).toString('base64url')
}

/** The seq of a cursor this service issued, exactly as it was issued; anything else is refused. */
export function decodeCursor (cursor: string): number {
  const match = CURSOR.exec(Buffer.from(cursor, 'base64url').toString())
  const seq = match === null ? Number.NaN : Number(match[1])
  if (!Number.isSafeInteger(seq) || encodeCursor(seq) !== cursor) throw new InvalidCursorError()
  return seq
}

export type FeedEntry = { sid?: string, sub?: string, notBefore?: string, revokedAt: string, expiresAt: string }

export function toFeedEntry (revocation: RevocationRecord): FeedEntry {
  return {
    ...(revocation.sessionId === undefined
      ? { sub: revocation.userId!, notBefore: revocation.notBefore!.toISOString() }
      : { sid: revocation.sessionId }),
    revokedAt: revocation.revokedAt.toISOString(),
    expiresAt: revocation.expiresAt.toISOString()
  }
}
