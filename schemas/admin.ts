import { Type, type Static } from '@sinclair/typebox'
import { ObjectIdSchema, PasswordToCheckSchema } from './common.js'

/** A role: lower-case letters, digits and `_ : -`, starting with a letter. */
export const RoleSchema = Type.String({ pattern: '^[a-z][a-z0-9_:-]{0,63}$', description: 'A role name, e.g. `admin` or `billing:read`.' })

export const AdminUserSchema = Type.Object({
  id: ObjectIdSchema,
  email: Type.String({ format: 'email' }),
  emailVerified: Type.Boolean(),
  roles: Type.Array(Type.String(), { description: 'The roles the user holds, `admin` from ADMIN_EMAILS included.' }),
  disabled: Type.Boolean({ description: 'A disabled account cannot log in (403 ACCOUNT_DISABLED) or refresh.' }),
  createdAt: Type.String({ format: 'date-time' })
}, { $id: 'AdminUser', title: 'User', description: 'A user as an admin sees it.' })
export type AdminUser = Static<typeof AdminUserSchema>

export const UserListQuerySchema = Type.Object({
  email: Type.Optional(Type.String({ maxLength: 254, description: 'Only users whose address starts with this (case-insensitive: addresses are stored lower-cased).' })),
  cursor: Type.Optional(Type.String({ pattern: '^[0-9a-f]{24}$', description: 'The `cursor` of the previous page.' })),
  limit: Type.Integer({ minimum: 1, maximum: 200, default: 50, description: 'Users per page.' })
}, { additionalProperties: false })
export type UserListQuery = Static<typeof UserListQuerySchema>

export const UserListResponseSchema = Type.Object({
  users: Type.Array(Type.Ref(AdminUserSchema), { description: 'In id (signup) order.' }),
  cursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass it as `cursor` for the next page; null on the last page.' })
}, { description: 'A page of users.' })

export const UserParamsSchema = Type.Object({
  id: Type.String({ maxLength: 64, description: 'A user id.' })
})
export type UserParams = Static<typeof UserParamsSchema>

export const UserPatchSchema = Type.Object({
  roles: Type.Optional(Type.Array(RoleSchema, { maxItems: 32, uniqueItems: true, description: 'The complete new set of granted roles (replaces the old one). `admin` from ADMIN_EMAILS is added regardless.' })),
  disabled: Type.Optional(Type.Boolean({ description: 'true disables the account and revokes every session; false enables it again.' }))
}, { additionalProperties: false, minProperties: 1, title: 'UserPatch' })
export type UserPatch = Static<typeof UserPatchSchema>

export const DeleteAccountBodySchema = Type.Object({
  password: PasswordToCheckSchema
}, { additionalProperties: false, title: 'DeleteAccount' })

/** A scope: lower-case letters, digits and `_ : . -`, starting with a letter (e.g. `notes:read`). */
export const ScopeSchema = Type.String({ pattern: '^[a-z][a-z0-9_:.-]{0,63}$', description: 'A scope, e.g. `notes:read`.' })

export const NewClientSchema = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 100, description: 'What the client is, for people (e.g. `billing-service`).' }),
  scopes: Type.Array(ScopeSchema, { maxItems: 32, uniqueItems: true, description: 'What its tokens may carry; a token request may narrow them.' }),
  audience: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'The `aud` of its tokens (the service that takes them); JWT_AUDIENCE by default.' }))
}, { additionalProperties: false, title: 'NewClient' })
export type NewClient = Static<typeof NewClientSchema>

const clientFields = {
  clientId: Type.String({ description: 'The client id (`client_id` at POST /oauth/token).' }),
  name: Type.String(),
  scopes: Type.Array(Type.String()),
  audience: Type.Union([Type.String(), Type.Null()], { description: 'null: the service\'s JWT_AUDIENCE.' }),
  createdAt: Type.String({ format: 'date-time' })
}

export const ClientSchema = Type.Object(clientFields, { title: 'Client', description: 'A service client (never its secret).' })

export const CreatedClientSchema = Type.Object({
  ...clientFields,
  clientSecret: Type.String({ description: 'Shown only here: store it now. Only its hash is kept.' })
}, { title: 'CreatedClient', description: 'The client, with its secret.' })

export const ClientListSchema = Type.Object({
  clients: Type.Array(ClientSchema)
}, { description: 'Every service client, oldest first.' })

export const ClientParamsSchema = Type.Object({
  id: Type.String({ maxLength: 64, description: 'A client id.' })
})

export const ClientSecretSchema = Type.Object({
  clientId: Type.String(),
  clientSecret: Type.String({ description: 'The new secret, shown only here; the previous one works for CLIENT_SECRET_OVERLAP_SECONDS more.' })
}, { description: 'A new secret.' })
