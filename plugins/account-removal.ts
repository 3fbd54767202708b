import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { UserRecord } from './users-repository.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Deletes an account and its personal data: sessions (revoked with one
     * user-wide feed entry, so other services refuse its tokens), codes, messages to its address, then the account
     * itself, whose address can sign up again. The account goes last, so a
     * failure half-way leaves something a retry completes. Returns the
     * number of sessions revoked.
     */
    removeAccount: (user: UserRecord) => Promise<number>
  }
}

async function accountRemovalPlugin (fastify: FastifyInstance) {
  fastify.decorate('removeAccount', async function removeAccount (user: UserRecord) {
    const revoked = await fastify.sessionsRepository.revokeUser(user.id, 'account_deleted')
    await fastify.emailCodes.revokeOfUser(user.id, ['password_reset', 'email_verification', 'email_change'])
    await fastify.outbox.forget(user.email)
    await fastify.usersRepository.deleteAccount(user.id)
    return revoked
  })
}

export default fp(accountRemovalPlugin, { name: 'account-removal', fastify: '5.x', dependencies: ['users-repository', 'sessions-repository', 'email-codes', 'outbox'] })
