import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto'

/**
 * The refresh tokens' crypto, pure functions. A token is its session's id,
 * 256 random bits and a MAC of both under the service's key, base64url: the
 * store keeps only a session's newest tokens, and a token it no longer has is
 * still known by its MAC as one this service issued for that session (a
 * rotated-away token: theft), while a forged one is known for what it is.
 * A token is stored only as its SHA-256; a successor is sealed (AES-256-GCM)
 * under a key derived from its parent token, so whoever holds the parent, and
 * only they, can be handed the same successor again.
 */

const SESSION_ID_BYTES = 12
const RANDOM_BYTES = 32
const MAC_BYTES = 16
/** The length of a token in base64url: 60 bytes. */
export const REFRESH_TOKEN_LENGTH = 80

/**
 * The MAC key, derived from the access tokens' signing secret or private key
 * (HKDF, its own label): no other secret to configure. A new signing key
 * makes older tokens unrecognisable once the store has dropped them (they
 * then fail as unknown, without revoking their session).
 */
export function refreshTokenKey (signingMaterial: string): Buffer {
  return Buffer.from(hkdfSync('sha256', signingMaterial, '', 'auth-service refresh-token mac', 32))
}

function mac (key: Buffer, body: Buffer): Buffer {
  return createHmac('sha256', key).update(body).digest().subarray(0, MAC_BYTES)
}

/** A new token of the session (`sessionId`: 24 hex digits). */
export function newRefreshToken (key: Buffer, sessionId: string): string {
  const body = Buffer.concat([Buffer.from(sessionId, 'hex'), randomBytes(RANDOM_BYTES)])
  return Buffer.concat([body, mac(key, body)]).toString('base64url')
}

/** The session a token was issued for, when its MAC proves this service issued it; null for anything else. */
export function sessionOfRefreshToken (key: Buffer, token: string): string | null {
  if (token.length !== REFRESH_TOKEN_LENGTH || !/^[A-Za-z0-9_-]+$/.test(token)) return null
  const bytes = Buffer.from(token, 'base64url')
  const body = bytes.subarray(0, SESSION_ID_BYTES + RANDOM_BYTES)
  if (!timingSafeEqual(bytes.subarray(SESSION_ID_BYTES + RANDOM_BYTES), mac(key, body))) return null
  return body.subarray(0, SESSION_ID_BYTES).toString('hex')
}

export function hashRefreshToken (token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

function successorKey (parentToken: string): Buffer {
  return createHmac('sha256', parentToken).update('auth-service refresh-token successor').digest()
}

export function sealSuccessor (parentToken: string, successor: string): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', successorKey(parentToken), iv)
  const sealed = Buffer.concat([cipher.update(successor, 'utf8'), cipher.final()])
  return Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64url')
}

/** The successor, or null when the sealed copy was not made under this parent (or was tampered with). */
export function unsealSuccessor (parentToken: string, sealedToken: string): string | null {
  try {
    const bytes = Buffer.from(sealedToken, 'base64url')
    const decipher = createDecipheriv('aes-256-gcm', successorKey(parentToken), bytes.subarray(0, 12))
    decipher.setAuthTag(bytes.subarray(12, 28))
    return Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString('utf8')
  } catch {
    return null
  }
}
