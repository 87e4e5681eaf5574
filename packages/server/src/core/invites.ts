import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Invitation tokens for in-band registration with `modules.register.policy: invite`
 * (XEP-0077 registration, with the token in the registration form's `token` field).
 *
 * Nothing is stored per invitation: a token carries its expiry (and, optionally, the one
 * username it may create) and an HMAC-SHA-256 over them, keyed with a secret kept in the
 * file `invite.key` of the data directory. So:
 *
 * - a token is valid on any node that has the same `invite.key`, until it expires;
 * - a token made for a username can create that account only, hence at most once (the
 *   account exists afterwards: `conflict`); a token for any username may be used by
 *   several people until it expires;
 * - deleting (or replacing) `invite.key` revokes every token issued so far.
 *
 * Format: `<expiry, seconds since epoch, base 36>.<nonce>.<base64url(username) or empty>.<mac>`,
 * the mac being the first 16 bytes (128 bits) of HMAC-SHA-256 over a label, the domain and
 * the first three parts, in base64url.
 */

/** The key file's name in the data directory. */
export const INVITE_KEY_FILE = 'invite.key';

/** Key length, bytes (HMAC-SHA-256 block-sized keys are not needed; 32 random bytes are plenty). */
const KEY_BYTES = 32;
const MAC_BYTES = 16;
const LABEL = 'parley-invite-v1';

/**
 * Reads the invitation key from `path`, creating it (32 random bytes as hex, mode 0600,
 * parent directories too) when it does not exist. Throws when the file holds fewer than
 * 64 hex digits.
 */
export function loadInviteKey(path: string): Buffer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(dirname(path), { recursive: true });
    try {
      writeFileSync(path, `${randomBytes(KEY_BYTES).toString('hex')}\n`, { flag: 'wx', mode: 0o600 });
    } catch (e) {
      // Another process (the server, or `parley user invite`) created it first.
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    text = readFileSync(path, 'utf8');
  }
  const hex = text.trim();
  const key = /^[0-9a-fA-F]+$/.test(hex) && hex.length % 2 === 0 ? Buffer.from(hex, 'hex') : Buffer.alloc(0);
  if (key.length < KEY_BYTES) throw new Error(`${path} must hold a key of at least ${KEY_BYTES * 2} hex digits; delete it to have a new one made`);
  return key;
}

/** What a valid token allows. */
export interface Invite {
  /** When the token stops being valid. */
  expires: Date;
  /** The (prepared) username the token is limited to, or `null` for any username. */
  username: string | null;
}

/** The result of {@link verifyInvite}. */
export type InviteCheck = ({ valid: true } & Invite) | { valid: false; reason: string };

function mac(key: Buffer, domain: string, payload: string): Buffer {
  return createHmac('sha256', key).update(`${LABEL}\n${domain}\n${payload}`).digest().subarray(0, MAC_BYTES);
}

/**
 * Makes an invitation token for `domain`, valid for `validityMs` milliseconds from `now`
 * (ms since epoch), limited to `username` (an already prepared localpart) when given.
 */
export function createInvite(
  key: Buffer,
  domain: string,
  opts: { validityMs: number; username?: string | null; now?: number },
): { token: string } & Invite {
  const expiresSec = Math.ceil(((opts.now ?? Date.now()) + opts.validityMs) / 1000);
  const username = opts.username ?? null;
  const payload = `${expiresSec.toString(36)}.${randomBytes(6).toString('base64url')}.${username === null ? '' : Buffer.from(username, 'utf8').toString('base64url')}`;
  return { token: `${payload}.${mac(key, domain, payload).toString('base64url')}`, expires: new Date(expiresSec * 1000), username };
}

/**
 * Checks a token made by {@link createInvite} for `domain` with `key`: well-formed,
 * authentic (constant-time compare) and not expired at `now` (ms since epoch).
 */
export function verifyInvite(key: Buffer, domain: string, token: string, now = Date.now()): InviteCheck {
  const parts = token.trim().split('.');
  if (parts.length !== 4 || !/^[0-9a-z]{1,12}$/.test(parts[0]!)) return { valid: false, reason: 'the token is malformed' };
  const payload = parts.slice(0, 3).join('.');
  const given = Buffer.from(parts[3]!, 'base64url');
  const expected = mac(key, domain, payload);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { valid: false, reason: 'the token is not valid here' };
  const expires = new Date(Number.parseInt(parts[0]!, 36) * 1000);
  if (expires.getTime() <= now) return { valid: false, reason: `the token expired on ${expires.toISOString()}` };
  const username = parts[2] === '' ? null : Buffer.from(parts[2]!, 'base64url').toString('utf8');
  return { valid: true, expires, username };
}
