import { randomUUID } from 'node:crypto'
import { ObjectId } from 'mongodb'
import { SignJWT, importPKCS8 } from 'jose'
import { generateSigningKey, type SigningKey } from '../keys.js'

export type BenchAlgorithm = 'HS256' | 'EdDSA' | 'ES256' | 'RS256'

export interface SigningSetup {
  env: Record<string, string>
  sign: (claims: Record<string, unknown>) => Promise<string>
}

/** Server configuration for an algorithm, and a signer producing exactly the tokens that server issues. */
export async function signingSetup (algorithm: BenchAlgorithm): Promise<SigningSetup> {
  if (algorithm === 'HS256') {
    const secret = randomUUID() + randomUUID()
    const key = new TextEncoder().encode(secret)
    return { env: { JWT_ALGORITHM: 'HS256', JWT_SECRET: secret }, sign: (claims) => sign(claims, { alg: 'HS256', typ: 'JWT' }, key) }
  }
  const signingKey: SigningKey = generateSigningKey(algorithm)
  const key = await importPKCS8(signingKey.privateKeyPem, algorithm)
  return {
    env: { JWT_ALGORITHM: algorithm, JWT_PRIVATE_KEY: signingKey.privateKeyPem },
    sign: (claims) => sign(claims, { alg: algorithm, typ: 'JWT', kid: signingKey.kid }, key)
  }
}

function sign (claims: Record<string, unknown>, header: { alg: string, typ: string, kid?: string }, key: Parameters<SignJWT['sign']>[0]) {
  return new SignJWT(claims).setProtectedHeader(header).setIssuer('auth-service').setAudience('auth-service-clients')
    .setIssuedAt().setExpirationTime('1h').sign(key)
}

/**
 * Access tokens of `count` distinct users, with the claims a login issues.
 * Signed here with the server's own key rather than through 1,000 logins:
 * the profile route never reads the database, so the tokens are the same.
 */
export async function tokenPool (setup: SigningSetup, count: number): Promise<string[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => setup.sign({
    sub: new ObjectId().toHexString(),
    email: `bench-user-${i}@example.com`,
    sid: new ObjectId().toHexString(),
    jti: randomUUID()
  })))
}
