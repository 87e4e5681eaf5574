/**
 * SASL failure conditions and the error that carries them.
 *
 * Source: RFC 6120 §6.5 (SASL errors), §6.4.5 (<failure/>).
 */

/**
 * A SASL failure condition, the name of the child element of `<failure/>`
 * in the `urn:ietf:params:xml:ns:xmpp-sasl` namespace (RFC 6120 §6.5.1–§6.5.11).
 */
export type SaslCondition =
  | 'aborted'
  | 'account-disabled'
  | 'credentials-expired'
  | 'encryption-required'
  | 'incorrect-encoding'
  | 'invalid-authzid'
  | 'invalid-mechanism'
  | 'malformed-request'
  | 'mechanism-too-weak'
  | 'not-authorized'
  | 'temporary-auth-failure';

/**
 * Every SASL failure condition of RFC 6120 §6.5, in the RFC's order.
 * Useful to validate a condition read off the wire (client side).
 */
export const SASL_CONDITIONS: readonly SaslCondition[] = Object.freeze([
  'aborted',
  'account-disabled',
  'credentials-expired',
  'encryption-required',
  'incorrect-encoding',
  'invalid-authzid',
  'invalid-mechanism',
  'malformed-request',
  'mechanism-too-weak',
  'not-authorized',
  'temporary-auth-failure',
]);

/**
 * A failed SASL exchange. `condition` is what goes on the wire as the child of
 * `<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`; `message` is for logs
 * (it may be sent as `<text/>` only if it reveals nothing about the account —
 * the SCRAM and PLAIN code here keeps messages identical for "no such user"
 * and "wrong password").
 *
 * Source: RFC 6120 §6.4.5, §6.5.
 */
export class SaslError extends Error {
  /** The RFC 6120 §6.5 condition. */
  readonly condition: SaslCondition;

  /**
   * @param condition the RFC 6120 §6.5 condition
   * @param message human-readable detail (defaults to the condition name)
   * @param options standard `Error` options (`cause`)
   */
  constructor(condition: SaslCondition, message?: string, options?: { cause?: unknown }) {
    super(message ?? condition, options);
    this.name = 'SaslError';
    this.condition = condition;
  }
}
