/**
 * The PLAIN SASL mechanism message (RFC 4616 §2).
 *
 *   message = [authzid] UTF8NUL authcid UTF8NUL passwd
 *
 * Each of authzid, authcid and passwd is at most 255 octets of UTF-8 without NUL;
 * authcid and passwd are non-empty. Pure parsing and building: preparing the
 * strings (SASLprep, RFC 4013) and checking them is the caller's job.
 */

import { SaslError } from './errors.ts';

/** Longest authzid, authcid or passwd, in octets (RFC 4616 §2). */
const MAX_FIELD_OCTETS = 255;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parse a PLAIN initial response (already base64-decoded).
 *
 * @param message the raw message bytes: `[authzid] NUL authcid NUL passwd`
 * @returns `{ authzid, authcid, password }` exactly as sent (not prepared);
 *   `authzid` is `''` when the client sent none
 * @throws SaslError `malformed-request` — not exactly two NUL octets, invalid UTF-8,
 *   empty authcid or password, or any field longer than 255 octets
 * Source: RFC 4616 §2.
 */
export function parsePlain(message: Buffer): { authzid: string; authcid: string; password: string } {
  const first = message.indexOf(0);
  if (first < 0) throw new SaslError('malformed-request', 'PLAIN message has no NUL separator');
  const second = message.indexOf(0, first + 1);
  if (second < 0) throw new SaslError('malformed-request', 'PLAIN message has only one NUL separator');
  if (message.indexOf(0, second + 1) >= 0) {
    throw new SaslError('malformed-request', 'PLAIN message has more than two NUL separators');
  }
  const authzidBytes = message.subarray(0, first);
  const authcidBytes = message.subarray(first + 1, second);
  const passwordBytes = message.subarray(second + 1);
  if (authcidBytes.length === 0) throw new SaslError('malformed-request', 'PLAIN authcid is empty');
  if (passwordBytes.length === 0) throw new SaslError('malformed-request', 'PLAIN password is empty');
  if (
    authzidBytes.length > MAX_FIELD_OCTETS ||
    authcidBytes.length > MAX_FIELD_OCTETS ||
    passwordBytes.length > MAX_FIELD_OCTETS
  ) {
    throw new SaslError('malformed-request', 'PLAIN field longer than 255 octets');
  }
  try {
    return {
      authzid: utf8.decode(authzidBytes),
      authcid: utf8.decode(authcidBytes),
      password: utf8.decode(passwordBytes),
    };
  } catch (cause) {
    throw new SaslError('malformed-request', 'PLAIN message is not valid UTF-8', { cause });
  }
}

/**
 * Build a PLAIN initial response (to be base64-encoded by the caller).
 *
 * @param authcid the authentication identity (for XMPP, the account's localpart); non-empty
 * @param password the password; non-empty
 * @param authzid the authorization identity (a JID), omitted when undefined or `''`
 * @returns the message bytes `[authzid] NUL authcid NUL passwd`
 * @throws SaslError `malformed-request` — a field contains NUL, authcid or password is
 *   empty, or a field is longer than 255 octets once UTF-8 encoded
 * Source: RFC 4616 §2.
 */
export function buildPlain(authcid: string, password: string, authzid?: string): Buffer {
  const fields = [authzid ?? '', authcid, password].map((value) => Buffer.from(value, 'utf8'));
  const [authzidBytes, authcidBytes, passwordBytes] = fields as [Buffer, Buffer, Buffer];
  for (const field of fields) {
    if (field.includes(0)) throw new SaslError('malformed-request', 'PLAIN field contains NUL');
    if (field.length > MAX_FIELD_OCTETS) {
      throw new SaslError('malformed-request', 'PLAIN field longer than 255 octets');
    }
  }
  if (authcidBytes.length === 0) throw new SaslError('malformed-request', 'PLAIN authcid is empty');
  if (passwordBytes.length === 0) throw new SaslError('malformed-request', 'PLAIN password is empty');
  return Buffer.concat([authzidBytes, Buffer.of(0), authcidBytes, Buffer.of(0), passwordBytes]);
}
