import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto'

/**
 * The refresh tokens' crypto, pure functions: a token is 256 random bits,
 * stored only as its SHA-256; a successor is sealed (AES-256-GCM) under a key
 * derived from its parent token, so whoever holds the parent, and only they,
 * can be handed the same successor again.
 */

export function newRefreshToken (): string {
  return randomBytes(32).toString('base64url')
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
