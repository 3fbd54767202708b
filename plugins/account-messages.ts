import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config.js'
import { durationInWords, linkWithToken } from './email/codes.js'
import { loadTemplates, type MessageKind, type TemplateView } from './email/templates.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The messages of the account flows, each stored in the outbox before the call resolves. */
    accountMessages: {
      /** A code (and link) confirming the account's address. */
      sendVerification: (user: { id: string, email: string }) => Promise<void>
      /** A code (and link) to the new address, and a notice to the current one. */
      sendEmailChange: (user: { id: string, email: string }, newEmail: string) => Promise<void>
      /** A code (and link) that resets the password. */
      sendPasswordReset: (user: { id: string, email: string }) => Promise<void>
      notifyPasswordChanged: (email: string) => Promise<void>
      notifyEmailChanged: (previousEmail: string, newEmail: string) => Promise<void>
    }
  }
}

export type AccountMessagesOptions = Config['email']

async function accountMessagesPlugin (fastify: FastifyInstance, options: AccountMessagesOptions) {
  const render = loadTemplates(options.templatesDir)

  async function send (kind: MessageKind, to: string, view: Omit<TemplateView, 'product'>) {
    await fastify.outbox.enqueue({ kind, to, ...render(kind, { product: options.productName, ...view }) })
  }

  function linkTo (page: string | undefined, token: string) {
    return page === undefined ? {} : { link: linkWithToken(page, token) }
  }

  const verificationExpiry = durationInWords(options.verificationCodeTtlSeconds)

  fastify.decorate('accountMessages', {
    async sendVerification (user: { id: string, email: string }) {
      const { code, token } = await fastify.emailCodes.issue('email_verification', { userId: user.id, email: user.email }, options.verificationCodeTtlSeconds)
      await send('email_verification', user.email, { email: user.email, code, expiresIn: verificationExpiry, ...linkTo(options.verifyUrl, token) })
    },

    async sendEmailChange (user: { id: string, email: string }, newEmail: string) {
      const { code, token } = await fastify.emailCodes.issue('email_change', { userId: user.id, email: newEmail, previousEmail: user.email }, options.verificationCodeTtlSeconds)
      await send('email_verification', newEmail, { email: newEmail, code, expiresIn: verificationExpiry, ...linkTo(options.verifyUrl, token) })
      await send('email_change_requested', user.email, { email: user.email, newEmail })
    },

    async sendPasswordReset (user: { id: string, email: string }) {
      const { code, token } = await fastify.emailCodes.issue('password_reset', { userId: user.id, email: user.email }, options.resetCodeTtlSeconds)
      await send('password_reset', user.email, { email: user.email, code, expiresIn: durationInWords(options.resetCodeTtlSeconds), ...linkTo(options.passwordResetUrl, token) })
    },

    async notifyPasswordChanged (email: string) {
      await send('password_changed', email, { email, time: new Date().toISOString() })
    },

    async notifyEmailChanged (previousEmail: string, newEmail: string) {
      await send('email_changed', previousEmail, { email: previousEmail, newEmail, time: new Date().toISOString() })
    }
  })
}

export default fp(accountMessagesPlugin, { name: 'account-messages', fastify: '5.x', dependencies: ['outbox', 'email-codes'] })
