import type { FastifyRequest } from 'fastify'

const EMAIL_FIELDS = ['email', 'newEmail'] as const

/**
 * preValidation: ` Ann@Example.COM ` and `ann@example.com` are one account.
 * Normalised before validation, so the format check sees what will be stored
 * or looked up.
 */
export async function normaliseEmail (request: FastifyRequest) {
  const body = request.body as Record<string, unknown> | null | undefined
  if (body === null || typeof body !== 'object') return
  for (const field of EMAIL_FIELDS) {
    const value = body[field]
    if (typeof value === 'string') body[field] = value.trim().toLowerCase()
  }
}

/** Bodies are JSON or forms, as the original tutorial took them. */
export const consumes = ['application/json', 'application/x-www-form-urlencoded']
