/**
 * XMPP addresses (JIDs), RFC 7622.
 *
 * A JID is `[localpart "@"] domainpart ["/" resourcepart]`. Parts are prepared once, when a
 * JID is made, so that two JIDs are equal iff their prepared parts are equal (RFC 7622 §3):
 * the localpart with the PRECIS UsernameCaseMapped profile (§3.3), the domainpart with IDNA2008
 * via UTS #46 (§3.2), the resourcepart with the PRECIS OpaqueString profile (§3.4).
 */
import { toASCII, toUnicode } from 'tr46';
import { StanzaError } from './errors.ts';
import { PrecisError, opaqueString, usernameCaseMapped } from './precis.ts';

/** Which part of a JID an error is about. */
export type JidPart = 'localpart' | 'domainpart' | 'resourcepart';

/**
 * A string that is not a valid JID (RFC 7622 §3). It is a {@link StanzaError} with the
 * condition `jid-malformed` (RFC 6120 §8.3.3.8, type `modify`), so a handler can let it
 * propagate to the error reply. `part` says which part is wrong, when one is.
 */
export class JidError extends StanzaError {
  declare readonly condition: 'jid-malformed';
  readonly part: JidPart | undefined;
  constructor(message: string, part?: JidPart, options?: { cause?: unknown }) {
    super('jid-malformed', message);
    this.name = 'JidError';
    this.part = part;
    if (options && 'cause' in options) Object.defineProperty(this, 'cause', { value: options.cause, configurable: true, writable: true });
  }
}

/** The maximum length of each part, in UTF-8 octets, after preparation (RFC 7622 §3.2–§3.4). */
export const JID_PART_MAX_OCTETS = 1023;

/**
 * Raw parts longer than this (UTF-16 code units) are rejected before any preparation, so that
 * an oversized string costs no Unicode work. Generous: preparation would have to shrink the
 * part fourfold for a valid JID to be refused.
 */
const RAW_PART_MAX = 4 * JID_PART_MAX_OCTETS;

/** Octets of `s` in UTF-8 (lone surrogates count as U+FFFD, 3 octets). */
function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 2; // 2 units -> 4 octets
        i++;
      } else n += 2;
    } else n += 2;
  }
  return n;
}

function checkLength(s: string, part: JidPart): void {
  // Every UTF-16 unit is at least one octet, and at most three: count only when it matters.
  if (s.length > JID_PART_MAX_OCTETS || (s.length * 3 > JID_PART_MAX_OCTETS && utf8Length(s) > JID_PART_MAX_OCTETS)) {
    throw new JidError(`the ${part} is longer than ${JID_PART_MAX_OCTETS} octets (RFC 7622 §3)`, part);
  }
}

function checkRawLength(s: string, part: JidPart): void {
  if (s.length > RAW_PART_MAX) {
    throw new JidError(`the ${part} is longer than ${JID_PART_MAX_OCTETS} octets (RFC 7622 §3)`, part);
  }
}

function fromPrecis(e: unknown, part: JidPart): unknown {
  return e instanceof PrecisError ? new JidError(e.message, part, { cause: e }) : e;
}

// ---------------------------------------------------------------------------------------
// Localpart (RFC 7622 §3.3)
// ---------------------------------------------------------------------------------------

/** Code points that RFC 7622 §3.3.1 disallows in a localpart although the IdentifierClass allows them. */
const RE_LOCAL_PROHIBITED = /["&'/:<>@]/;
const LOCAL_PROHIBITED_NAMES: Readonly<Record<string, string>> = {
  '"': 'U+0022 QUOTATION MARK',
  '&': 'U+0026 AMPERSAND',
  "'": 'U+0027 APOSTROPHE',
  '/': 'U+002F SOLIDUS',
  ':': 'U+003A COLON',
  '<': 'U+003C LESS-THAN SIGN',
  '>': 'U+003E GREATER-THAN SIGN',
  '@': 'U+0040 COMMERCIAL AT',
};

/**
 * Prepares a localpart (RFC 7622 §3.3): UsernameCaseMapped profile (RFC 8265 §3.3), then the
 * additional prohibitions of §3.3.1 and the 1..1023-octet length. Returns the prepared string.
 * Throws {@link JidError} (`jid-malformed`, part `localpart`).
 */
export function prepareLocalpart(s: string): string {
  if (s === '') throw new JidError('the localpart must not be empty (RFC 7622 §3.3)', 'localpart');
  checkRawLength(s, 'localpart');
  let out: string;
  try {
    out = usernameCaseMapped(s, 'localpart');
  } catch (e) {
    throw fromPrecis(e, 'localpart');
  }
  const m = RE_LOCAL_PROHIBITED.exec(out);
  if (m) {
    throw new JidError(`${LOCAL_PROHIBITED_NAMES[m[0]]} is not allowed in a localpart (RFC 7622 §3.3.1)`, 'localpart');
  }
  checkLength(out, 'localpart');
  return out;
}

// ---------------------------------------------------------------------------------------
// Resourcepart (RFC 7622 §3.4)
// ---------------------------------------------------------------------------------------

/**
 * Prepares a resourcepart (RFC 7622 §3.4): OpaqueString profile (RFC 8265 §4.2), case
 * preserved, 1..1023 octets. Returns the prepared string.
 * Throws {@link JidError} (`jid-malformed`, part `resourcepart`).
 */
export function prepareResourcepart(s: string): string {
  if (s === '') throw new JidError('the resourcepart must not be empty (RFC 7622 §3.4)', 'resourcepart');
  checkRawLength(s, 'resourcepart');
  let out: string;
  try {
    out = opaqueString(s, 'resourcepart');
  } catch (e) {
    throw fromPrecis(e, 'resourcepart');
  }
  checkLength(out, 'resourcepart');
  return out;
}

// ---------------------------------------------------------------------------------------
// Domainpart (RFC 7622 §3.2)
// ---------------------------------------------------------------------------------------

const RE_IPV4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const RE_HEX16 = /^[0-9A-Fa-f]{1,4}$/;
/** Lowercase LDH labels with no A-label: prepared already, no IDNA work needed. */
const RE_ASCII_DOMAIN = /^[a-z0-9-]+(?:\.[a-z0-9-]+)*$/;
const RE_A_LABEL = /(?:^|\.)xn--/;
/** Label separators that IDNA2008 recognizes besides U+002E (RFC 3490 §3.1; UTS #46 maps them). */
const RE_TRAILING_DOT = /[.\u3002\uFF0E\uFF61]$/;

const IDNA_OPTIONS = {
  checkBidi: true,
  checkHyphens: false,
  checkJoiners: true,
  useSTD3ASCIIRules: true,
  transitionalProcessing: false,
} as const;

/** Whether `s` is an IPv6 address in the text form of RFC 4291 §2.2 (no zone identifier). */
function isIPv6(s: string): boolean {
  if (s.length < 2 || s.length > 45) return false;
  const halves = s.split('::');
  if (halves.length > 2) return false;
  let groups = 0;
  for (let h = 0; h < halves.length; h++) {
    const half = halves[h]!;
    if (half === '') continue;
    const parts = half.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (RE_HEX16.test(p)) groups += 1;
      else if (h === halves.length - 1 && i === parts.length - 1 && RE_IPV4.test(p)) groups += 2;
      else return false;
    }
  }
  return halves.length === 2 ? groups < 8 : groups === 8;
}

/**
 * Prepares a domainpart (RFC 7622 §3.2): strips one trailing label separator; keeps an IP
 * literal (`[IPv6]`, lowercased, or dotted-quad IPv4) as is; otherwise applies IDNA2008 through
 * UTS #46 (tr46: toASCII with the Bidi and ContextJ checks and the STD3 ASCII rules, then
 * toUnicode), giving lowercase U-labels in NFC. Rejects empty labels and more than 1023 octets.
 * Returns the prepared string. Throws {@link JidError} (`jid-malformed`, part `domainpart`).
 */
export function prepareDomainpart(s: string): string {
  if (RE_TRAILING_DOT.test(s)) s = s.slice(0, -1);
  if (s === '') throw new JidError('the domainpart must not be empty (RFC 7622 §3.2)', 'domainpart');
  checkRawLength(s, 'domainpart');
  if (s.charCodeAt(0) === 0x5b /* [ */) {
    if (s.charCodeAt(s.length - 1) !== 0x5d /* ] */ || !isIPv6(s.slice(1, -1))) {
      throw new JidError('the domainpart is not a valid IPv6 literal (RFC 7622 §3.2, RFC 3986 §3.2.2)', 'domainpart');
    }
    return s.toLowerCase();
  }
  if (RE_IPV4.test(s)) return s;
  let out = s;
  if (/[A-Z]/.test(out)) out = out.toLowerCase();
  if (!RE_ASCII_DOMAIN.test(out) || RE_A_LABEL.test(out)) {
    const ascii = toASCII(s, IDNA_OPTIONS);
    if (ascii === null) {
      throw new JidError('the domainpart is not a valid internationalized domain name (RFC 7622 §3.2, RFC 5890)', 'domainpart');
    }
    const unicode = toUnicode(ascii, IDNA_OPTIONS);
    if (unicode.error) {
      throw new JidError('the domainpart is not a valid internationalized domain name (RFC 7622 §3.2, RFC 5890)', 'domainpart');
    }
    out = unicode.domain.toLowerCase().normalize('NFC');
  }
  if (out.startsWith('.') || out.endsWith('.') || out.includes('..')) {
    throw new JidError('the domainpart has an empty label (RFC 7622 §3.2)', 'domainpart');
  }
  checkLength(out, 'domainpart');
  return out;
}

// ---------------------------------------------------------------------------------------
// JID
// ---------------------------------------------------------------------------------------

/** Parsed JIDs by input string; cleared when full. Only short inputs are cached. */
const cache = new Map<string, JID>();
const CACHE_MAX_ENTRIES = 10_000;
const CACHE_MAX_INPUT_LENGTH = 256;

/**
 * An XMPP address (RFC 7622), immutable. `local` and `resource` are `''` when absent.
 * All parts are prepared (RFC 7622 §3.2–§3.4), so comparing JIDs is comparing strings.
 * Make one with {@link JID.parse}, {@link JID.tryParse} or {@link JID.of}.
 */
export class JID {
  /** The prepared localpart, `''` when absent (RFC 7622 §3.3). */
  readonly local: string;
  /** The prepared domainpart: lowercase U-labels or an IP literal (RFC 7622 §3.2). */
  readonly domain: string;
  /** The prepared resourcepart, `''` when absent (RFC 7622 §3.4). */
  readonly resource: string;
  #string: string | undefined;
  #bare: JID | undefined;

  private constructor(local: string, domain: string, resource: string, bare?: JID) {
    this.local = local;
    this.domain = domain;
    this.resource = resource;
    this.#bare = resource === '' ? this : bare;
  }

  /**
   * Parses and prepares a JID string (RFC 7622 §3.1): the first '/' starts the resourcepart,
   * an '@' before it ends the localpart. Results are cached by input string (bounded), so a
   * repeated address is not prepared again and yields the same JID object.
   * Throws {@link JidError} (`jid-malformed`) with a message naming the rule broken.
   */
  static parse(s: string): JID {
    const hit = cache.get(s);
    if (hit !== undefined) return hit;
    const slash = s.indexOf('/');
    const bareEnd = slash === -1 ? s.length : slash;
    const at = s.indexOf('@');
    const hasLocal = at !== -1 && at < bareEnd;
    const local = hasLocal ? prepareLocalpart(s.slice(0, at)) : '';
    const domain = prepareDomainpart(s.slice(hasLocal ? at + 1 : 0, bareEnd));
    const resource = slash === -1 ? '' : prepareResourcepart(s.slice(slash + 1));
    const jid = new JID(local, domain, resource);
    if (s.length <= CACHE_MAX_INPUT_LENGTH) {
      if (cache.size >= CACHE_MAX_ENTRIES) cache.clear();
      cache.set(s, jid);
    }
    return jid;
  }

  /** Like {@link JID.parse}, but returns `null` for an invalid JID instead of throwing. */
  static tryParse(s: string): JID | null {
    try {
      return JID.parse(s);
    } catch (e) {
      if (e instanceof JidError) return null;
      throw e;
    }
  }

  /**
   * Makes a JID from its parts, preparing each (RFC 7622 §3.2–§3.4). `local` and `resource`
   * may be `''` (or `resource` omitted) for none.
   * Throws {@link JidError} (`jid-malformed`).
   */
  static of(local: string, domain: string, resource = ''): JID {
    return new JID(
      local === '' ? '' : prepareLocalpart(local),
      prepareDomainpart(domain),
      resource === '' ? '' : prepareResourcepart(resource),
    );
  }

  /** Whether the JID has no resourcepart (a bare JID, RFC 6120 §1.4). */
  isBare(): boolean {
    return this.resource === '';
  }

  /** The bare JID `local@domain` (RFC 6120 §1.4); `this` when already bare. Cached. */
  bare(): JID {
    return (this.#bare ??= new JID(this.local, this.domain, ''));
  }

  /**
   * This JID with another resourcepart, prepared (RFC 7622 §3.4); `''` gives the bare JID.
   * Throws {@link JidError} (`jid-malformed`).
   */
  withResource(resource: string): JID {
    if (resource === '') return this.bare();
    const r = prepareResourcepart(resource);
    if (r === this.resource) return this;
    return new JID(this.local, this.domain, r, this.bare());
  }

  /** Whether `other` is the same address (all three prepared parts equal, RFC 7622 §3). */
  equals(other: JID | null | undefined): boolean {
    if (other === this) return true;
    return (
      other != null && other.domain === this.domain && other.local === this.local && other.resource === this.resource
    );
  }

  /** `local@domain`, or `domain` without a localpart. */
  bareString(): string {
    return this.bare().toString();
  }

  /** The JID as a string, `[local@]domain[/resource]`, prepared. Cached. */
  toString(): string {
    if (this.#string === undefined) {
      let s = this.local === '' ? this.domain : `${this.local}@${this.domain}`;
      if (this.resource !== '') s += `/${this.resource}`;
      this.#string = s;
    }
    return this.#string;
  }

  /** JSON form: the JID string. */
  toJSON(): string {
    return this.toString();
  }
}
