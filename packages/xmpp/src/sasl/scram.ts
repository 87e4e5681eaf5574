/**
 * SCRAM (RFC 5802) with SHA-1, SHA-256 (RFC 7677) and SHA-512, with and without
 * channel binding (`-PLUS`, type `tls-exporter`, RFC 9266), server side and client side.
 *
 * Pure protocol math over node:crypto; no I/O. Messages go in and out as the raw
 * (already base64-decoded) SASL payload bytes of RFC 6120 §6.4.
 *
 * Key derivation (RFC 5802 §3):
 *   SaltedPassword  = Hi(SASLprep(password), salt, i)        (PBKDF2-HMAC-H)
 *   ClientKey       = HMAC(SaltedPassword, "Client Key")
 *   StoredKey       = H(ClientKey)
 *   ServerKey       = HMAC(SaltedPassword, "Server Key")
 *   AuthMessage     = client-first-message-bare "," server-first-message ","
 *                     client-final-message-without-proof
 *   ClientSignature = HMAC(StoredKey, AuthMessage)
 *   ClientProof     = ClientKey XOR ClientSignature
 *   ServerSignature = HMAC(ServerKey, AuthMessage)
 */

import { createHash, createHmac, pbkdf2, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { randomToken } from '../random.ts';
import { saslprep } from '@mongodb-js/saslprep';
import { SaslError } from './errors.ts';

/** The hash function H of a SCRAM mechanism (RFC 5802 §4, RFC 7677 §3). */
export type ScramHash = 'SHA-1' | 'SHA-256' | 'SHA-512';

/**
 * What the server stores for one account and one hash: never the password
 * (RFC 5802 §3, §9). `salt`, `storedKey` and `serverKey` are base64 (RFC 4648 §4);
 * `storedKey` and `serverKey` are as long as the hash output (20, 32 or 64 bytes);
 * `iterations` is the PBKDF2 iteration count `i`.
 */
export interface ScramCredentials {
  hash: ScramHash;
  /** base64 of the salt bytes */
  salt: string;
  /** PBKDF2 iteration count, an integer ≥ 1 */
  iterations: number;
  /** base64 of StoredKey = H(ClientKey) */
  storedKey: string;
  /** base64 of ServerKey = HMAC(SaltedPassword, "Server Key") */
  serverKey: string;
}

/**
 * The channel-binding data of one TLS connection: for `tls-exporter`, the 32 bytes of
 * `tlsSocket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding')` (RFC 9266 §2).
 */
export interface ScramChannelBinding {
  type: 'tls-exporter';
  data: Buffer;
}

/**
 * The SCRAM mechanism names this module implements, with their hash and whether
 * they use channel binding (RFC 5802 §4, RFC 7677 §3, RFC 9266; SHA-512 per the
 * IANA SASL registry's SCRAM-SHA-512 family).
 */
export const SCRAM_MECHANISMS: Record<string, { hash: ScramHash; plus: boolean }> = Object.freeze({
  'SCRAM-SHA-1': { hash: 'SHA-1', plus: false },
  'SCRAM-SHA-1-PLUS': { hash: 'SHA-1', plus: true },
  'SCRAM-SHA-256': { hash: 'SHA-256', plus: false },
  'SCRAM-SHA-256-PLUS': { hash: 'SHA-256', plus: true },
  'SCRAM-SHA-512': { hash: 'SHA-512', plus: false },
  'SCRAM-SHA-512-PLUS': { hash: 'SHA-512', plus: true },
});

// ---------------------------------------------------------------------------
// Primitives
// ---------------------------------------------------------------------------

type NodeDigest = 'sha1' | 'sha256' | 'sha512';

const DIGESTS: Readonly<Record<ScramHash, { name: NodeDigest; length: number }>> = {
  'SHA-1': { name: 'sha1', length: 20 },
  'SHA-256': { name: 'sha256', length: 32 },
  'SHA-512': { name: 'sha512', length: 64 },
};

/** Iteration count given to the fake credentials of unknown users unless told otherwise. */
const DEFAULT_UNKNOWN_USER_ITERATIONS = 4096;
/** Highest iteration count a client accepts from a server unless told otherwise. */
const DEFAULT_CLIENT_MAX_ITERATIONS = 1_000_000;
/** Bytes of randomness in a generated nonce (base64-encoded, so 4/3 as many characters). */
const NONCE_BYTES = 18;
/** Bytes of a generated salt. */
const SALT_BYTES = 16;

/** Per-process secret for the deterministic fake credentials of unknown users. */
const FAKE_CREDENTIALS_SECRET = randomBytes(32);

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function digestOf(hash: ScramHash): { name: NodeDigest; length: number } {
  const digest = DIGESTS[hash];
  if (digest === undefined) throw new TypeError(`unsupported SCRAM hash: ${String(hash)}`);
  return digest;
}

function hmac(hash: ScramHash, key: Buffer, data: Buffer | string): Buffer {
  return createHmac(digestOf(hash).name, key).update(data).digest();
}

function h(hash: ScramHash, data: Buffer): Buffer {
  return createHash(digestOf(hash).name).update(data).digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i] as number);
  return out;
}

/** Constant-time equality for buffers; unequal lengths compare unequal (length is not secret). */
function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict base64 (RFC 4648 §4, padded) to bytes, or null if not base64. */
function decodeBase64(text: string): Buffer | null {
  return BASE64.test(text) ? Buffer.from(text, 'base64') : null;
}

/** RFC 5802 §7 `printable`: %x21-2B / %x2D-7E (visible ASCII but ','). */
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;

function decodeUtf8(message: Buffer, what: string): string {
  try {
    return utf8.decode(message);
  } catch (cause) {
    throw new SaslError('malformed-request', `${what} is not valid UTF-8`, { cause });
  }
}

/**
 * Characters SASLprep leaves as they are: ASCII space to '~'. RFC 4013 maps only non-ASCII
 * characters (§2.1, RFC 3454 B.1 and C.1.2), NFKC changes no ASCII character, the prohibited
 * ASCII characters are the controls (§2.3, C.2.1), and no ASCII character is RandALCat (§2.4)
 * or unassigned.
 */
const SASLPREP_IDENTITY = /^[\x20-\x7e]*$/;

/** SASLprep (RFC 4013); failure or an empty result is `malformed-request`. */
function prepare(value: string, what: string, allowUnassigned: boolean): string {
  if (value.length > 0 && SASLPREP_IDENTITY.test(value)) return value;
  let prepared: string;
  try {
    prepared = saslprep(value, { allowUnassigned });
  } catch (cause) {
    throw new SaslError('malformed-request', `${what} fails SASLprep`, { cause });
  }
  if (prepared.length === 0) throw new SaslError('malformed-request', `${what} is empty after SASLprep`);
  return prepared;
}

/** RFC 5802 §5.1 saslname encoding: '=' → "=3D", ',' → "=2C". */
function encodeSaslname(value: string): string {
  return value.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/**
 * RFC 5802 §5.1/§7 saslname decoding. Any '=' not followed by "2C" or "3D" (ABNF
 * literals, so case-insensitive), a NUL, or an empty name is `malformed-request`.
 */
function decodeSaslname(value: string, what: string): string {
  if (value.length === 0 || value.includes('\0')) {
    throw new SaslError('malformed-request', `${what} is not a valid saslname`);
  }
  return value.replace(/=(..)?/gs, (_match: string, code: string | undefined) => {
    const upper = code?.toUpperCase();
    if (upper === '2C') return ',';
    if (upper === '3D') return '=';
    throw new SaslError('malformed-request', `${what} has a bad '=' escape`);
  });
}

interface Attribute {
  name: string;
  value: string;
}

/**
 * Split `attr-val *("," attr-val)` (RFC 5802 §7): each part is one ALPHA, '=', and a
 * non-empty value. Values never contain ',' so splitting on ',' is exact.
 */
function parseAttributes(text: string, what: string): Attribute[] {
  return text.split(',').map((part) => {
    const match = /^([A-Za-z])=(.+)$/s.exec(part);
    if (match === null) throw new SaslError('malformed-request', `${what} has a malformed attribute`);
    return { name: match[1] as string, value: match[2] as string };
  });
}

/** RFC 5802 §5.1: a mandatory-extension attribute `m` must fail the exchange. */
function rejectMandatoryExtensions(attributes: Attribute[], what: string): void {
  for (const attribute of attributes) {
    if (attribute.name === 'm') {
      throw new SaslError('malformed-request', `${what} carries an unsupported mandatory extension (m=)`);
    }
  }
}

function checkIterations(iterations: number): void {
  if (!Number.isSafeInteger(iterations) || iterations < 1) {
    throw new RangeError(`SCRAM iteration count must be an integer >= 1, got ${iterations}`);
  }
}

function keysFromSaltedPassword(
  hash: ScramHash,
  saltedPassword: Buffer,
): { clientKey: Buffer; storedKey: Buffer; serverKey: Buffer } {
  const clientKey = hmac(hash, saltedPassword, 'Client Key');
  return {
    clientKey,
    storedKey: h(hash, clientKey),
    serverKey: hmac(hash, saltedPassword, 'Server Key'),
  };
}

function credentialsFromSaltedPassword(
  hash: ScramHash,
  salt: Buffer,
  iterations: number,
  saltedPassword: Buffer,
): ScramCredentials {
  const { storedKey, serverKey } = keysFromSaltedPassword(hash, saltedPassword);
  return {
    hash,
    salt: salt.toString('base64'),
    iterations,
    storedKey: storedKey.toString('base64'),
    serverKey: serverKey.toString('base64'),
  };
}

function pbkdf2Async(password: string, salt: Buffer, iterations: number, hash: ScramHash): Promise<Buffer> {
  const { name, length } = digestOf(hash);
  return new Promise((resolve, reject) => {
    pbkdf2(password, salt, iterations, length, name, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

function checkDeriveArguments(hash: ScramHash, iterations: number, salt: Buffer | undefined): Buffer {
  digestOf(hash);
  checkIterations(iterations);
  if (salt !== undefined && salt.length === 0) throw new RangeError('SCRAM salt must not be empty');
  return salt ?? randomBytes(SALT_BYTES);
}

// ---------------------------------------------------------------------------
// Stored credentials
// ---------------------------------------------------------------------------

/**
 * Derive the stored SCRAM credentials for a password (for account creation or a
 * password change). The password is SASLprep'd as a stored string (unassigned code
 * points refused), then SaltedPassword = PBKDF2-HMAC-H(password, salt, iterations).
 *
 * @param password the clear-text password
 * @param hash the SCRAM hash
 * @param iterations PBKDF2 iteration count (RFC 7677 §4 recommends ≥ 4096)
 * @param salt salt bytes; 16 random bytes when omitted
 * @returns the credentials to store (base64 fields)
 * @throws SaslError `malformed-request` — the password fails SASLprep or is empty after it;
 *   RangeError — iterations is not an integer ≥ 1, or salt is empty
 * Source: RFC 5802 §3, RFC 4013, RFC 7677.
 */
export async function deriveScramCredentials(
  password: string,
  hash: ScramHash,
  iterations: number,
  salt?: Buffer,
): Promise<ScramCredentials> {
  const saltBytes = checkDeriveArguments(hash, iterations, salt);
  const prepared = prepare(password, 'password', false);
  const saltedPassword = await pbkdf2Async(prepared, saltBytes, iterations, hash);
  return credentialsFromSaltedPassword(hash, saltBytes, iterations, saltedPassword);
}

/**
 * Synchronous twin of {@link deriveScramCredentials} (blocks the event loop for the
 * whole PBKDF2 run: for CLIs, tests and migrations only). Same arguments, result and errors.
 * Source: RFC 5802 §3.
 */
export function deriveScramCredentialsSync(
  password: string,
  hash: ScramHash,
  iterations: number,
  salt?: Buffer,
): ScramCredentials {
  const saltBytes = checkDeriveArguments(hash, iterations, salt);
  const prepared = prepare(password, 'password', false);
  const { name, length } = digestOf(hash);
  const saltedPassword = pbkdf2Sync(prepared, saltBytes, iterations, length, name);
  return credentialsFromSaltedPassword(hash, saltBytes, iterations, saltedPassword);
}

/**
 * Check a clear-text password (e.g. from PLAIN, RFC 4616) against stored SCRAM
 * credentials: SASLprep (as a query), PBKDF2 with the stored salt and count, then a
 * constant-time compare of StoredKey. Costs one PBKDF2 run.
 *
 * @param password the clear-text password as received
 * @param credentials the stored credentials (e.g. from {@link fakeScramCredentials}
 *   for an unknown user, so the timing matches a wrong password)
 * @returns true when the password matches; false otherwise, including a password
 *   that fails SASLprep
 * @throws SaslError `temporary-auth-failure` — the stored credentials are corrupt
 * Source: RFC 5802 §3, RFC 4616 §2.
 */
export async function verifyScramPassword(password: string, credentials: ScramCredentials): Promise<boolean> {
  const stored = decodeCredentials(credentials, credentials.hash);
  let prepared: string;
  try {
    prepared = prepare(password, 'password', true);
  } catch {
    return false;
  }
  const saltedPassword = await pbkdf2Async(prepared, stored.salt, stored.iterations, credentials.hash);
  return safeEqual(keysFromSaltedPassword(credentials.hash, saltedPassword).storedKey, stored.storedKey);
}

/**
 * Deterministic fake credentials for a user that does not exist, so the exchange for
 * an unknown user looks like the one for a real user with a wrong password (same
 * messages, same salt on every attempt within the process, same work). Derived by HMAC
 * from a random per-process secret; no password matches them.
 *
 * @param username the (prepared) username asked for
 * @param hash the SCRAM hash of the mechanism in use
 * @param iterations the iteration count to advertise (should match real accounts'; default 4096)
 * @returns credentials with a 16-byte salt and hash-length keys
 * Source: RFC 5802 §9 (security considerations: user enumeration).
 */
export function fakeScramCredentials(
  username: string,
  hash: ScramHash,
  iterations: number = DEFAULT_UNKNOWN_USER_ITERATIONS,
): ScramCredentials {
  const { name, length } = digestOf(hash);
  checkIterations(iterations);
  const derive = (label: string, bytes: number): string =>
    createHmac(name, FAKE_CREDENTIALS_SECRET)
      .update(`${label}\0${hash}\0${username}`)
      .digest()
      .subarray(0, bytes)
      .toString('base64');
  return {
    hash,
    salt: derive('salt', SALT_BYTES),
    iterations,
    storedKey: derive('stored-key', length),
    serverKey: derive('server-key', length),
  };
}

interface DecodedCredentials {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

/** Decode and check stored credentials; anything off is `temporary-auth-failure`. */
function decodeCredentials(credentials: ScramCredentials, hash: ScramHash): DecodedCredentials {
  const corrupt = (detail: string): SaslError =>
    new SaslError('temporary-auth-failure', `stored SCRAM credentials are unusable: ${detail}`);
  const { length } = digestOf(hash);
  if (credentials.hash !== hash) throw corrupt('hash mismatch');
  if (!Number.isSafeInteger(credentials.iterations) || credentials.iterations < 1) throw corrupt('iterations');
  const salt = decodeBase64(credentials.salt);
  const storedKey = decodeBase64(credentials.storedKey);
  const serverKey = decodeBase64(credentials.serverKey);
  if (salt === null || salt.length === 0) throw corrupt('salt');
  if (storedKey === null || storedKey.length !== length) throw corrupt('storedKey');
  if (serverKey === null || serverKey.length !== length) throw corrupt('serverKey');
  return { salt, iterations: credentials.iterations, storedKey, serverKey };
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

/** Options of one {@link ScramServer} exchange. */
export interface ScramServerOptions {
  /** Hash of the mechanism the client selected. */
  hash: ScramHash;
  /** Whether the selected mechanism is a `-PLUS` one. */
  plus: boolean;
  /** The channel binding this TLS connection offers; null on plain TCP. */
  channelBinding: ScramChannelBinding | null;
  /** Whether any `-PLUS` mechanism was offered on this stream (for the 'y' downgrade check, RFC 5802 §6). */
  serverAdvertisedPlus: boolean;
  /**
   * Fetch the stored credentials of a SASLprep'd username for `hash`; null if there
   * is no such account (or none for this hash). A rejection becomes `temporary-auth-failure`.
   */
  lookup: (username: string) => Promise<ScramCredentials | null>;
  /** Fixed server nonce part (printable, no ','). For test vectors only; random 18 bytes (base64) otherwise. */
  serverNonce?: string;
  /** Iteration count shown for unknown users; set it to what real accounts use. Default 4096. */
  unknownUserIterations?: number;
}

type ServerState =
  | { phase: 'initial' }
  | {
      phase: 'started';
      clientFirstBare: string;
      serverFirst: string;
      nonce: string;
      cbindInput: Buffer;
      known: boolean;
      storedKey: Buffer;
      serverKey: Buffer;
    }
  | { phase: 'done' }
  | { phase: 'failed' };

/**
 * The server side of one SCRAM exchange (RFC 5802 §5, §7; RFC 7677; RFC 9266).
 *
 * ```
 * const scram = new ScramServer({ hash: 'SHA-256', plus, channelBinding, serverAdvertisedPlus, lookup });
 * const serverFirst = await scram.start(clientFirst);   // <challenge/>
 * const serverFinal = await scram.finish(clientFinal);  // <success/> additional data
 * scram.username; scram.authzid;                        // then check authzid (invalid-authzid)
 * ```
 *
 * Every failure is thrown as a {@link SaslError}; after one, the exchange is over.
 * An unknown user goes through the same steps with fake credentials and fails at
 * {@link finish} with the same `not-authorized` error as a wrong password.
 */
export class ScramServer {
  /** SASLprep'd authentication identity (authcid); `''` until {@link start} has parsed it. */
  username = '';
  /** Authorization identity (`a=`) as sent, decoded; undefined when absent. Not checked here. */
  authzid: string | undefined = undefined;

  readonly #options: ScramServerOptions;
  #state: ServerState = { phase: 'initial' };

  /**
   * @param options see {@link ScramServerOptions}
   * @throws TypeError — unknown hash; SaslError `malformed-request` — `serverNonce` not printable
   */
  constructor(options: ScramServerOptions) {
    digestOf(options.hash);
    if (options.serverNonce !== undefined && !PRINTABLE.test(options.serverNonce)) {
      throw new SaslError('malformed-request', 'serverNonce must be printable ASCII without ","');
    }
    if (options.unknownUserIterations !== undefined) checkIterations(options.unknownUserIterations);
    this.#options = options;
  }

  /** True once {@link finish} has verified the client's proof. */
  get authenticated(): boolean {
    return this.#state.phase === 'done';
  }

  /**
   * Process client-first-message, return server-first-message
   * (`r=<client nonce><server nonce>,s=<salt base64>,i=<iterations>`).
   *
   * @param clientFirst raw client-first-message bytes (gs2-header + client-first-message-bare)
   * @returns server-first-message bytes (ASCII)
   * @throws SaslError
   *   `malformed-request` — not UTF-8, bad gs2 header, bad or empty saslname, bad '=' escape,
   *     missing n=/r=, non-printable nonce, an `m=` extension, username failing SASLprep,
   *     'p=' on a non-PLUS mechanism, 'n'/'y' on a PLUS mechanism, a channel-binding type
   *     other than tls-exporter, or called out of order;
   *   `not-authorized` — flag 'y' while the server advertised a -PLUS mechanism (downgrade);
   *   `invalid-mechanism` — a -PLUS mechanism on a connection without channel binding;
   *   `temporary-auth-failure` — lookup rejected, or stored credentials are corrupt.
   * Source: RFC 5802 §5.1, §6, §7; RFC 9266 §3.
   */
  async start(clientFirst: Buffer): Promise<Buffer> {
    if (this.#state.phase !== 'initial') {
      this.#state = { phase: 'failed' };
      throw new SaslError('malformed-request', 'SCRAM client-first-message received out of order');
    }
    this.#state = { phase: 'failed' };
    const { hash, plus, channelBinding, serverAdvertisedPlus } = this.#options;
    if (plus && channelBinding === null) {
      throw new SaslError('invalid-mechanism', '-PLUS mechanism without channel binding on this connection');
    }

    const text = decodeUtf8(clientFirst, 'client-first-message');
    const firstComma = text.indexOf(',');
    const secondComma = firstComma < 0 ? -1 : text.indexOf(',', firstComma + 1);
    if (secondComma < 0) throw new SaslError('malformed-request', 'client-first-message lacks a gs2 header');

    // gs2-header = gs2-cbind-flag "," [ authzid ] ","
    const flag = text.slice(0, firstComma);
    let cbName: string | undefined;
    if (flag.startsWith('p=')) {
      cbName = flag.slice(2);
      if (!/^[A-Za-z0-9.-]+$/.test(cbName)) {
        throw new SaslError('malformed-request', 'malformed channel-binding type name');
      }
    } else if (flag !== 'n' && flag !== 'y') {
      throw new SaslError('malformed-request', 'unknown gs2-cbind-flag');
    }
    const authzidPart = text.slice(firstComma + 1, secondComma);
    let authzid: string | undefined;
    if (authzidPart !== '') {
      if (!authzidPart.startsWith('a=')) throw new SaslError('malformed-request', 'malformed gs2 authzid');
      authzid = decodeSaslname(authzidPart.slice(2), 'authzid');
    }

    // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
    const clientFirstBare = text.slice(secondComma + 1);
    const attributes = parseAttributes(clientFirstBare, 'client-first-message');
    rejectMandatoryExtensions(attributes, 'client-first-message');
    const [userAttribute, nonceAttribute] = attributes;
    if (userAttribute?.name !== 'n' || nonceAttribute?.name !== 'r') {
      throw new SaslError('malformed-request', 'client-first-message must start with n= then r=');
    }
    const clientNonce = nonceAttribute.value;
    if (!PRINTABLE.test(clientNonce)) throw new SaslError('malformed-request', 'client nonce is not printable');
    const username = prepare(decodeSaslname(userAttribute.value, 'username'), 'username', true);

    // Channel binding negotiation (RFC 5802 §6, RFC 9266 §3).
    if (cbName !== undefined) {
      if (!plus) throw new SaslError('malformed-request', "channel binding ('p=') requested with a non-PLUS mechanism");
      if (cbName !== 'tls-exporter' || channelBinding === null || channelBinding.type !== cbName) {
        throw new SaslError('malformed-request', `unsupported channel-binding type ${cbName}`);
      }
    } else {
      if (plus) throw new SaslError('malformed-request', `gs2-cbind-flag '${flag}' with a -PLUS mechanism`);
      if (flag === 'y' && serverAdvertisedPlus) {
        throw new SaslError('not-authorized', 'channel-binding downgrade detected (flag y while -PLUS offered)');
      }
    }
    const gs2Header = Buffer.from(text.slice(0, secondComma + 1), 'utf8');
    const cbindInput =
      cbName !== undefined && channelBinding !== null ? Buffer.concat([gs2Header, channelBinding.data]) : gs2Header;

    this.username = username;
    this.authzid = authzid;

    let stored: ScramCredentials | null;
    try {
      stored = await this.#options.lookup(username);
    } catch (cause) {
      throw new SaslError('temporary-auth-failure', 'credential lookup failed', { cause });
    }
    const known = stored !== null && stored.hash === hash;
    const credentials = decodeCredentials(
      known && stored !== null
        ? stored
        : fakeScramCredentials(username, hash, this.#options.unknownUserIterations ?? DEFAULT_UNKNOWN_USER_ITERATIONS),
      hash,
    );

    const nonce = clientNonce + (this.#options.serverNonce ?? randomToken(NONCE_BYTES, 'base64'));
    const serverFirst = `r=${nonce},s=${credentials.salt.toString('base64')},i=${credentials.iterations}`;
    this.#state = {
      phase: 'started',
      clientFirstBare,
      serverFirst,
      nonce,
      cbindInput,
      known,
      storedKey: credentials.storedKey,
      serverKey: credentials.serverKey,
    };
    return Buffer.from(serverFirst, 'utf8');
  }

  /**
   * Process client-final-message (`c=...,r=...,p=...`), verify the proof and return
   * server-final-message (`v=<ServerSignature base64>`), to send as `<success/>` data.
   *
   * @param clientFinal raw client-final-message bytes
   * @returns server-final-message bytes (ASCII)
   * @throws SaslError
   *   `malformed-request` — not UTF-8, attributes out of order or malformed, `c=`/`p=` not
   *     base64, proof of the wrong length, an `m=` extension, or called out of order;
   *   `not-authorized` — channel-binding data or gs2 header differ from client-first
   *     (RFC 9266 mismatch), nonce differs from the combined nonce, wrong proof, or unknown user.
   * Source: RFC 5802 §3, §5.1, §7; RFC 9266 §3.
   */
  async finish(clientFinal: Buffer): Promise<Buffer> {
    const state = this.#state;
    this.#state = { phase: 'failed' };
    if (state.phase !== 'started') {
      throw new SaslError('malformed-request', 'SCRAM client-final-message received out of order');
    }
    const { hash } = this.#options;

    // client-final-message = channel-binding "," nonce ["," extensions] "," proof
    const text = decodeUtf8(clientFinal, 'client-final-message');
    const attributes = parseAttributes(text, 'client-final-message');
    rejectMandatoryExtensions(attributes, 'client-final-message');
    const cbAttribute = attributes[0];
    const nonceAttribute = attributes[1];
    const proofAttribute = attributes[attributes.length - 1];
    if (
      attributes.length < 3 ||
      cbAttribute?.name !== 'c' ||
      nonceAttribute?.name !== 'r' ||
      proofAttribute?.name !== 'p'
    ) {
      throw new SaslError('malformed-request', 'client-final-message must be c=...,r=...[,ext],p=...');
    }
    const cbindInput = decodeBase64(cbAttribute.value);
    if (cbindInput === null) throw new SaslError('malformed-request', 'channel-binding (c=) is not base64');
    const proof = decodeBase64(proofAttribute.value);
    if (proof === null || proof.length !== digestOf(hash).length) {
      throw new SaslError('malformed-request', 'client proof (p=) is not base64 of the hash length');
    }
    if (!safeEqual(cbindInput, state.cbindInput)) {
      throw new SaslError('not-authorized', 'channel-binding data mismatch');
    }
    if (nonceAttribute.value !== state.nonce) throw new SaslError('not-authorized', 'nonce mismatch');

    const withoutProof = text.slice(0, text.length - proofAttribute.value.length - 3);
    const authMessage = `${state.clientFirstBare},${state.serverFirst},${withoutProof}`;
    const clientSignature = hmac(hash, state.storedKey, authMessage);
    const clientKey = xor(proof, clientSignature);
    const proofMatches = timingSafeEqual(h(hash, clientKey), state.storedKey);
    const serverSignature = hmac(hash, state.serverKey, authMessage);
    if (!proofMatches || !state.known) throw new SaslError('not-authorized', 'authentication failed');

    this.#state = { phase: 'done' };
    return Buffer.from(`v=${serverSignature.toString('base64')}`, 'utf8');
  }
}

// ---------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------

/** Most SaltedPassword values kept by the client cache. */
const SALTED_PASSWORD_CACHE_MAX = 256;
/** Client-side SaltedPassword cache: key = hash, iterations, salt, SHA-256 of the prepared password. */
const saltedPasswordCache = new Map<string, Buffer>();

/** Empty the client-side SaltedPassword cache (see `ScramClientOptions.cacheSaltedPassword`). */
export function clearScramClientCache(): void {
  saltedPasswordCache.clear();
}

/** Options of one {@link ScramClient} exchange. */
export interface ScramClientOptions {
  hash: ScramHash;
  /** Authentication identity (for XMPP, the account's localpart); SASLprep'd and saslname-encoded here. */
  username: string;
  /** Clear-text password; SASLprep'd here. */
  password: string;
  /** Use the -PLUS variant (flag `p=tls-exporter`); requires `channelBinding`. Default false. */
  plus?: boolean;
  /**
   * This connection's channel binding, if the client supports it. With `plus` false and
   * binding data present the client sends flag 'y' (it could bind, the server offered no -PLUS).
   */
  channelBinding?: ScramChannelBinding | null;
  /** Fixed client nonce (printable, no ','). For test vectors only; random 18 bytes (base64) otherwise. */
  clientNonce?: string;
  /** Authorization identity to request (`a=`), e.g. a JID; omitted by default. */
  authzid?: string;
  /**
   * Keep SaltedPassword per (hash, password, salt, iterations) in a small module-level
   * cache (at most 256 entries) so repeated logins skip PBKDF2. For benchmarks and
   * long-lived clients. Default false.
   */
  cacheSaltedPassword?: boolean;
  /** Largest iteration count accepted from the server (guards against a CPU-exhaustion server). Default 1,000,000. */
  maxIterations?: number;
}

/**
 * The client side of one SCRAM exchange (RFC 5802 §5, §7; RFC 7677; RFC 9266).
 *
 * ```
 * const scram = new ScramClient({ hash: 'SHA-256', username, password });
 * send(scram.first());                               // <auth/> initial response
 * send(await scram.final(serverFirst));              // <response/>
 * scram.verifyServerFinal(serverFinal);              // <success/> data; throws if forged
 * ```
 */
export class ScramClient {
  readonly #hash: ScramHash;
  readonly #password: string;
  readonly #gs2Header: string;
  readonly #cbindData: Buffer;
  readonly #clientFirstBare: string;
  readonly #clientNonce: string;
  readonly #cache: boolean;
  readonly #maxIterations: number;
  #serverSignature: Buffer | null = null;

  /**
   * @param options see {@link ScramClientOptions}
   * @throws SaslError `malformed-request` — username/password fail SASLprep or are empty,
   *   `clientNonce` is not printable; `invalid-mechanism` — `plus` without channel-binding data;
   *   TypeError — unknown hash
   * Source: RFC 5802 §5.1, §6; RFC 9266 §3.
   */
  constructor(options: ScramClientOptions) {
    digestOf(options.hash);
    this.#hash = options.hash;
    this.#password = prepare(options.password, 'password', true);
    const username = prepare(options.username, 'username', true);
    const channelBinding = options.channelBinding ?? null;
    let flag: string;
    if (options.plus === true) {
      if (channelBinding === null) {
        throw new SaslError('invalid-mechanism', '-PLUS mechanism needs channel-binding data');
      }
      flag = `p=${channelBinding.type}`;
      this.#cbindData = channelBinding.data;
    } else {
      flag = channelBinding === null ? 'n' : 'y';
      this.#cbindData = Buffer.alloc(0);
    }
    const authzid = options.authzid ?? '';
    this.#gs2Header = `${flag},${authzid === '' ? '' : `a=${encodeSaslname(authzid)}`},`;
    this.#clientNonce = options.clientNonce ?? randomToken(NONCE_BYTES, 'base64');
    if (!PRINTABLE.test(this.#clientNonce)) {
      throw new SaslError('malformed-request', 'clientNonce must be printable ASCII without ","');
    }
    this.#clientFirstBare = `n=${encodeSaslname(username)},r=${this.#clientNonce}`;
    this.#cache = options.cacheSaltedPassword === true;
    this.#maxIterations = options.maxIterations ?? DEFAULT_CLIENT_MAX_ITERATIONS;
  }

  /**
   * client-first-message: gs2-header + `n=<user>,r=<client nonce>`.
   * @returns the message bytes (UTF-8); the same on every call
   * Source: RFC 5802 §5.1, §7.
   */
  first(): Buffer {
    return Buffer.from(this.#gs2Header + this.#clientFirstBare, 'utf8');
  }

  /**
   * Process server-first-message and compute client-final-message
   * (`c=<base64 gs2-header [+ cb data]>,r=<nonce>,p=<ClientProof base64>`).
   * Runs PBKDF2 (asynchronously) unless the SaltedPassword is cached.
   *
   * @param serverFirst raw server-first-message bytes
   * @returns client-final-message bytes (ASCII)
   * @throws SaslError `malformed-request` — malformed message, an `m=` extension, salt not
   *   base64, iteration count not an integer in 1..maxIterations;
   *   `not-authorized` — the nonce does not extend the client nonce
   * Source: RFC 5802 §3, §5.1, §7.
   */
  async final(serverFirst: Buffer): Promise<Buffer> {
    const hash = this.#hash;
    const text = decodeUtf8(serverFirst, 'server-first-message');
    const attributes = parseAttributes(text, 'server-first-message');
    rejectMandatoryExtensions(attributes, 'server-first-message');
    const [nonceAttribute, saltAttribute, iterationsAttribute] = attributes;
    if (nonceAttribute?.name !== 'r' || saltAttribute?.name !== 's' || iterationsAttribute?.name !== 'i') {
      throw new SaslError('malformed-request', 'server-first-message must be r=...,s=...,i=...');
    }
    const nonce = nonceAttribute.value;
    if (!PRINTABLE.test(nonce)) throw new SaslError('malformed-request', 'server nonce is not printable');
    if (!nonce.startsWith(this.#clientNonce) || nonce.length === this.#clientNonce.length) {
      throw new SaslError('not-authorized', 'server nonce does not extend the client nonce');
    }
    const salt = decodeBase64(saltAttribute.value);
    if (salt === null || salt.length === 0) throw new SaslError('malformed-request', 'salt is not base64');
    if (!/^[1-9][0-9]{0,15}$/.test(iterationsAttribute.value)) {
      throw new SaslError('malformed-request', 'iteration count is not a positive integer');
    }
    const iterations = Number(iterationsAttribute.value);
    if (iterations > this.#maxIterations) {
      throw new SaslError('malformed-request', `iteration count ${iterations} exceeds ${this.#maxIterations}`);
    }

    const saltedPassword = await this.#saltedPassword(salt, iterations);
    const { clientKey, storedKey, serverKey } = keysFromSaltedPassword(hash, saltedPassword);
    const channelBinding = Buffer.concat([Buffer.from(this.#gs2Header, 'utf8'), this.#cbindData]).toString('base64');
    const withoutProof = `c=${channelBinding},r=${nonce}`;
    const authMessage = `${this.#clientFirstBare},${text},${withoutProof}`;
    const clientProof = xor(clientKey, hmac(hash, storedKey, authMessage));
    this.#serverSignature = hmac(hash, serverKey, authMessage);
    return Buffer.from(`${withoutProof},p=${clientProof.toString('base64')}`, 'utf8');
  }

  /**
   * Check server-final-message (`v=<ServerSignature>`), proving the server knows ServerKey.
   *
   * @param serverFinal raw server-final-message bytes (the `<success/>` additional data)
   * @throws SaslError `not-authorized` — signature mismatch, a server error (`e=...`, its
   *   value in the message), or called before {@link final}; `malformed-request` — malformed message
   * Source: RFC 5802 §3, §5.1, §7.
   */
  verifyServerFinal(serverFinal: Buffer): void {
    const expected = this.#serverSignature;
    if (expected === null) throw new SaslError('not-authorized', 'server-final-message before client-final-message');
    const text = decodeUtf8(serverFinal, 'server-final-message');
    const attributes = parseAttributes(text, 'server-final-message');
    rejectMandatoryExtensions(attributes, 'server-final-message');
    const [first] = attributes;
    if (first?.name === 'e') throw new SaslError('not-authorized', `server error: ${first.value}`);
    if (first?.name !== 'v') throw new SaslError('malformed-request', 'server-final-message must start with v=');
    const signature = decodeBase64(first.value);
    if (signature === null) throw new SaslError('malformed-request', 'server signature is not base64');
    if (!safeEqual(signature, expected)) throw new SaslError('not-authorized', 'server signature mismatch');
  }

  async #saltedPassword(salt: Buffer, iterations: number): Promise<Buffer> {
    if (!this.#cache) return pbkdf2Async(this.#password, salt, iterations, this.#hash);
    const passwordDigest = createHash('sha256').update(this.#password).digest('base64');
    const key = `${this.#hash}\0${iterations}\0${salt.toString('base64')}\0${passwordDigest}`;
    const cached = saltedPasswordCache.get(key);
    if (cached !== undefined) return cached;
    const saltedPassword = await pbkdf2Async(this.#password, salt, iterations, this.#hash);
    if (saltedPasswordCache.size >= SALTED_PASSWORD_CACHE_MAX) {
      const oldest = saltedPasswordCache.keys().next();
      if (oldest.done !== true) saltedPasswordCache.delete(oldest.value);
    }
    saltedPasswordCache.set(key, saltedPassword);
    return saltedPassword;
  }
}
