/**
 * SASL mechanism math for XMPP (RFC 6120 §6): SCRAM-SHA-1/256/512 with and without
 * -PLUS (RFC 5802, RFC 7677, RFC 9266), PLAIN (RFC 4616), and the SASL failure conditions.
 */
export * from './errors.ts';
export * from './plain.ts';
export * from './scram.ts';
