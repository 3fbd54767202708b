import { Type, type Static } from '@sinclair/typebox'

export const RevocationsQuerySchema = Type.Object({
  since: Type.Optional(Type.String({ maxLength: 64, description: 'The `cursor` of the previous response; omit it to get every still-relevant revocation.' }))
})
export type RevocationsQuery = Static<typeof RevocationsQuerySchema>

export const RevocationsResponseSchema = Type.Object({
  revoked: Type.Array(Type.Object({
    sid: Type.Optional(Type.String({ description: 'A revoked session: refuse access tokens whose `sid` claim is this.' })),
    sub: Type.Optional(Type.String({ description: 'With `notBefore`, a revoked user (a password reset, a disabled or deleted account): refuse every token of this `sub` issued before `notBefore`.' })),
    notBefore: Type.Optional(Type.String({ format: 'date-time', description: 'Refuse the user\'s tokens whose `iat` is before this.' })),
    revokedAt: Type.String({ format: 'date-time' }),
    expiresAt: Type.String({ format: 'date-time', description: 'No access token of this session is valid after this; forget the entry then.' })
  }), { description: 'In feed order; at most 1000 per response.' }),
  cursor: Type.String({ description: 'Opaque; pass it as `since` on the next poll.' }),
  hasMore: Type.Boolean({ description: 'True when more entries may follow right away: poll again with the new cursor without waiting.' })
}, { description: 'Revocations after the cursor.' })
