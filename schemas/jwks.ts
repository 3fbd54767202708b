import { Type } from '@sinclair/typebox'

export const JsonWebKeySchema = Type.Object({
  kty: Type.String({ description: '`OKP` (Ed25519), `EC` (P-256) or `RSA`.' }),
  kid: Type.String({ description: 'Key id (RFC 7638 thumbprint); the `kid` header of the tokens it signed.' }),
  alg: Type.String({ description: '`EdDSA`, `ES256` or `RS256`.' }),
  use: Type.Literal('sig'),
  crv: Type.Optional(Type.String()),
  x: Type.Optional(Type.String()),
  y: Type.Optional(Type.String()),
  n: Type.Optional(Type.String()),
  e: Type.Optional(Type.String())
})

export const JsonWebKeySetSchema = Type.Object({
  keys: Type.Array(JsonWebKeySchema, { description: 'Every public key that may verify a current access token; empty with a shared HMAC secret.' })
}, { description: 'The key set (RFC 7517).' })
