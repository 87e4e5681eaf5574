import { XmlElement, type XmlAttrs } from './element.ts';
import { StreamError, type StreamErrorCondition } from '../errors.ts';

/** Limits applied while parsing a stream (RFC 6120 §13.12: resource exhaustion). */
export interface XmlStreamLimits {
  /** Largest stanza, in bytes of input; larger → `policy-violation`. */
  maxStanzaSize: number;
  /** Deepest element nesting inside a stanza; deeper → `policy-violation`. */
  maxDepth: number;
  /** Most attributes on one element; more → `policy-violation`. */
  maxAttributes: number;
}

export const DEFAULT_STREAM_LIMITS: XmlStreamLimits = { maxStanzaSize: 262144, maxDepth: 32, maxAttributes: 64 };

/** The root element of a stream as received. */
export interface StreamHeader {
  /** Local name of the root element (`stream` for TCP streams, `open` for RFC 7395 framing). */
  name: string;
  /** Namespace of the root element. */
  ns: string;
  /** Prefix of the root element on the wire (`stream` by convention). */
  prefix: string;
  /** The default namespace in scope (the stream's content namespace, e.g. `jabber:client`). */
  contentNs: string;
  /** Attributes other than namespace declarations (`to`, `from`, `version`, `xml:lang`, `id`). */
  attrs: XmlAttrs;
}

/** What an {@link XmlStreamParser} reports. All calls happen synchronously inside `feed()`. */
export interface XmlStreamHandler {
  streamStart(header: StreamHeader): void;
  stanza(el: XmlElement): void;
  streamEnd(): void;
  /** A fatal stream error; the parser accepts no more input after it. */
  streamError(err: StreamError): void;
}

const XML_NAMESPACE = 'http://www.w3.org/XML/1998/namespace';
const XMLNS_NAMESPACE = 'http://www.w3.org/2000/xmlns/';

// Character codes.
const TAB = 0x09;
const NL = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const BANG = 0x21;
const DQUOTE = 0x22;
const HASH = 0x23;
const AMP = 0x26;
const SQUOTE = 0x27;
const MINUS = 0x2d;
const SLASH = 0x2f;
const SEMI = 0x3b;
const LT = 0x3c;
const EQ = 0x3d;
const GT = 0x3e;
const QUESTION = 0x3f;
const LSQB = 0x5b;
const RSQB = 0x5d;

/** {@link XmlStreamParser.getc}: a line break that XML normalizes to `\n` (CR, CR LF; in XML 1.1 also NEL, LS, CR NEL). */
const NLX = -2;
/** {@link XmlStreamParser.getc}: a character that is not allowed; the error is already reported. */
const FAIL = -3;
/** {@link XmlStreamParser.scanName}: the chunk ended inside the name. */
const MORE = -4;

// ASCII character classes (XML 1.0 5th ed. NameStartChar / NameChar, Namespaces NCName).
const C_NAME_START = 1;
const C_NAME = 2;
const C_NCNAME_START = 4;
const C_NCNAME = 8;
const CT = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const alpha = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
  const other = (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e;
  let f = 0;
  if (alpha) f = C_NAME_START | C_NAME | C_NCNAME_START | C_NCNAME;
  else if (c === 0x3a) f = C_NAME_START | C_NAME;
  else if (other) f = C_NAME | C_NCNAME;
  CT[c] = f;
}

/** NameStartChar above ASCII (the same for Name and NCName). */
function isNameStartHigh(c: number): boolean {
  return (
    (c >= 0xc0 && c <= 0xd6) ||
    (c >= 0xd8 && c <= 0xf6) ||
    (c >= 0xf8 && c <= 0x2ff) ||
    (c >= 0x370 && c <= 0x37d) ||
    (c >= 0x37f && c <= 0x1fff) ||
    c === 0x200c ||
    c === 0x200d ||
    (c >= 0x2070 && c <= 0x218f) ||
    (c >= 0x2c00 && c <= 0x2fef) ||
    (c >= 0x3001 && c <= 0xd7ff) ||
    (c >= 0xf900 && c <= 0xfdcf) ||
    (c >= 0xfdf0 && c <= 0xfffd) ||
    (c >= 0x10000 && c <= 0xeffff)
  );
}

/** NameChar above ASCII (the same for Name and NCName). */
function isNameHigh(c: number): boolean {
  return isNameStartHigh(c) || c === 0xb7 || (c >= 0x300 && c <= 0x36f) || c === 0x203f || c === 0x2040;
}

/** A code point (or {@link getc} result) is a NameStartChar, `:` included. */
function isNameStart(c: number): boolean {
  return c < 0x80 ? c >= 0 && (CT[c]! & C_NAME_START) !== 0 : isNameStartHigh(c);
}

function isNCNameStart(c: number): boolean {
  return c < 0x80 ? c >= 0 && (CT[c]! & C_NCNAME_START) !== 0 : isNameStartHigh(c);
}

function isNCName(c: number): boolean {
  return c < 0x80 ? c >= 0 && (CT[c]! & C_NCNAME) !== 0 : isNameHigh(c);
}

function isS(c: number): boolean {
  return c === SP || c === NL || c === TAB || c === CR;
}

/** The XML 1.0 Char production (for character references). */
function isChar10(c: number): boolean {
  return (
    (c >= SP && c <= 0xd7ff) || c === NL || c === CR || c === TAB || (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff)
  );
}

/** The XML 1.1 Char production (for character references). */
function isChar11(c: number): boolean {
  return (c >= 1 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff);
}

const NC_NAME_START_CLASS =
  'A-Z_a-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C-\\u200D\\u2070-\\u218F' +
  '\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD\\u{10000}-\\u{EFFFF}';
const NC_NAME_RE = new RegExp(`^[${NC_NAME_START_CLASS}][-${NC_NAME_START_CLASS}.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040]*$`, 'u');

/** `true` when `s[from, to)` holds a character other than XML white space (space, tab, CR, LF). */
function hasNonSpace(s: string, from: number, to: number): boolean {
  for (let k = from; k < to; k++) {
    const c = s.charCodeAt(k);
    if (c !== SP && c !== NL && c !== TAB && c !== CR) return true;
  }
  return false;
}

/**
 * Decodes the complete UTF-8 sequences of each chunk (the parser keeps back an incomplete
 * one at the end): one decoder for all parsers, as it keeps no state between calls when not
 * streaming (Node's fast path: validation and decoding in one pass). `fatal`: invalid input
 * throws; `ignoreBOM`: the parser drops a byte order mark itself, once per stream.
 */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * `true` when the incomplete UTF-8 sequence `b[from, to)` (a lead byte and at most two
 * continuation bytes) can still become a valid character: the WHATWG decoder rejects
 * anything else as soon as it sees it (overlongs, surrogates, above U+10FFFF).
 */
function validUtf8Prefix(b: Uint8Array, from: number, to: number): boolean {
  const b0 = b[from]!;
  if (b0 < 0xc2 || b0 > 0xf4) return false;
  if (to - from >= 2) {
    const b1 = b[from + 1]!;
    const lo = b0 === 0xe0 ? 0xa0 : b0 === 0xf0 ? 0x90 : 0x80;
    const hi = b0 === 0xed ? 0x9f : b0 === 0xf4 ? 0x8f : 0xbf;
    if (b1 < lo || b1 > hi) return false;
  }
  if (to - from >= 3) {
    const b2 = b[from + 2]!;
    if (b2 < 0x80 || b2 > 0xbf) return false;
  }
  return true;
}

/**
 * Namespace URIs are few and long-lived (they end up in every element): keep one copy of
 * each instead of a slice of the input chunk it arrived in (which would keep the whole
 * chunk alive). A direct-mapped cache in front of a bounded map: a hit costs an equality
 * test.
 */
const INTERN_SLOTS = 256;
const internSlots: string[] = new Array<string>(INTERN_SLOTS).fill('');
const internMap = new Map<string, string>();
function intern(s: string): string {
  const n = s.length;
  if (n < 13 || n > 256) return s; // V8 copies slices shorter than 13 characters
  const h =
    (n * 31 + s.charCodeAt(n - 1) * 7 + s.charCodeAt(n - 2) * 5 + s.charCodeAt(n - 4) * 3 + s.charCodeAt(n >> 1)) &
    (INTERN_SLOTS - 1);
  const hit = internSlots[h]!;
  if (hit === s) return hit;
  let c = internMap.get(s);
  if (c === undefined) {
    if (internMap.size >= 1024) return s;
    c = JSON.parse(JSON.stringify(s)) as string; // a flat copy, not a slice of the chunk
    internMap.set(c, c);
  }
  internSlots[h] = c;
  return c;
}

/**
 * Element and attribute names, the same few over and over: one canonical (internalized)
 * string each, so that the attribute objects are built with keys V8 need not look up in its
 * string table again, and elements share their names. Cached like the URIs above.
 */
const NAME_SLOTS = 512;
const nameSlots: string[] = new Array<string>(NAME_SLOTS).fill('');
const nameSlotColons = new Int32Array(NAME_SLOTS);
const nameMap = new Map<string, string>();
/** Where the name last returned by {@link canonicalName} or {@link nameAt} has its first `:`, or -1. */
let nameColon = -1;

/** The cache slot of a name, from `h = h * 31 + c` over its code units (from 0). */
function nameSlot(h: number): number {
  return (h ^ (h >>> 9)) & (NAME_SLOTS - 1);
}

function canonicalName(s: string): string {
  const n = s.length;
  if (n > 64) {
    nameColon = s.indexOf(':');
    return s;
  }
  let h = 0;
  for (let k = 0; k < n; k++) h = (Math.imul(h, 31) + s.charCodeAt(k)) | 0;
  const slot = nameSlot(h);
  const hit = nameSlots[slot]!;
  if (hit === s) {
    nameColon = nameSlotColons[slot]!;
    return hit;
  }
  return nameMiss(s, slot);
}

/** The canonical string for the name `s[from, to)`, of hash `h` (computed while reading it): no copy when cached. */
function nameAt(s: string, from: number, to: number, h: number): string {
  const n = to - from;
  if (n > 64) {
    const name = s.slice(from, to);
    nameColon = name.indexOf(':');
    return name;
  }
  const slot = nameSlot(h);
  const hit = nameSlots[slot]!;
  if (hit.length === n) {
    let k = 0;
    while (k < n && hit.charCodeAt(k) === s.charCodeAt(from + k)) k++;
    if (k === n) {
      nameColon = nameSlotColons[slot]!;
      return hit;
    }
  }
  return nameMiss(s.slice(from, to), slot);
}

function nameMiss(s: string, slot: number): string {
  let c = nameMap.get(s);
  if (c === undefined) {
    if (nameMap.size >= 4096) {
      nameColon = s.indexOf(':');
      return s;
    }
    c = Object.keys({ [s]: 0 })[0]!; // a property key: the internalized string
    nameMap.set(c, c);
  }
  nameSlots[slot] = c;
  nameColon = nameSlotColons[slot] = c.indexOf(':');
  return c;
}

/** `String.prototype.trim()`, without the call when there is nothing to trim. */
function trim(s: string): string {
  const n = s.length;
  if (n === 0) return s;
  const a = s.charCodeAt(0);
  const b = s.charCodeAt(n - 1);
  return a > SP && a < 0x7f && b > SP && b < 0x7f ? s : s.trim();
}

// Parser states.
const S_BEGIN = 0; // nothing read yet (a BOM may follow)
const S_BEGIN_WS = 1; // white space before anything else
const S_TEXT_OUT = 2; // text before the root element
const S_TEXT = 3; // character data inside the root element
const S_ENTITY_TEXT = 4; // after `&` in character data
const S_LT = 5; // after `<`
const S_BANG = 6; // after `<!`
const S_COMMENT = 7; // after `<!--`
const S_COMMENT_DASH = 8; // `-` inside a comment
const S_CDATA = 9; // after `<![CDATA[`
const S_CDATA_B1 = 10; // `]` inside a CDATA section
const S_CDATA_B2 = 11; // `]]` inside a CDATA section
const S_PI_FIRST = 12; // after `<?`
const S_PI_REST = 13; // the target of a processing instruction
const S_PI_BODY = 14;
const S_PI_END = 15; // `?` inside a processing instruction
const S_XD_NAME_START = 16; // XML declaration: before a pseudo-attribute name
const S_XD_NAME = 17;
const S_XD_EQ = 18;
const S_XD_VALUE_START = 19;
const S_XD_VALUE = 20;
const S_XD_SEP = 21;
const S_XD_END = 22; // `?` in the XML declaration
const S_DOCTYPE = 23; // after `<!DOCTYPE`
const S_DOCTYPE_Q = 24;
const S_DTD = 25; // internal subset
const S_DTD_Q = 26;
const S_DTD_LT = 27;
const S_DTD_LT_BANG = 28;
const S_DTD_COMMENT = 29;
const S_DTD_COMMENT_DASH = 30;
const S_DTD_COMMENT_END = 31;
const S_DTD_PI = 32;
const S_DTD_PI_END = 33;
const S_TAG_NAME = 34; // start-tag name
const S_TAG_SLASH = 35; // `/` in a start tag
const S_ATTR = 36; // between attributes
const S_ATTR_NAME = 37;
const S_ATTR_NAME_WS = 38; // white space after an attribute name
const S_ATTR_EQ = 39; // after `=`
const S_ATTR_VALUE = 40; // inside a quoted attribute value
const S_ATTR_CLOSED = 41; // after an attribute value's closing quote
const S_CLOSE_NAME = 42; // after `</`
const S_CLOSE_WS = 43; // white space after an end-tag name
const S_ENTITY_ATTR = 44; // after `&` in an attribute value

/** Fields of the states met before the root element or on the way to an error (allocated when needed). */
class ColdState {
  /** Characters after `<!` (up to 7: `[CDATA[`, `--`, `DOCTYPE`). */
  bang = '';
  /** Processing-instruction target. */
  pi = '';
  /** The processing instruction has body text. */
  piText = false;
  /** XML declaration: pseudo-attribute name and the text captured so far. */
  xdName = '';
  xdText = '';
  /** XML declaration: the names still allowed (1 version, 2 encoding, 4 standalone). */
  expects = 1;
  /** The quote that closes the current literal. */
  q = 0;
  /**
   * An XML declaration may come: nothing but a byte order mark has been read yet (before
   * the root element, where this object is kept from the start of the stream).
   */
  declOk = true;
  /** Attributes read so far (name, value, …) of a start tag that the chunk ended in. */
  savedAttrs: string[] | null = null;
}

/**
 * The attributes of the start tag being read: shared by all parsers (a start tag is handled
 * without calling out in between; a parser whose chunk ends inside a start tag copies its
 * own out, see `ColdState.savedAttrs`).
 */
const ATTR_NAMES: string[] = [];
const ATTR_VALUES: string[] = [];
const ATTR_PREFIXES: string[] = [];
const ATTR_URIS: string[] = [];
const ATTR_KEYS: string[] = [];
const ATTR_COLONS: number[] = [];

/**
 * The chunk being parsed (module-wide: parsing is synchronous; saved around the handler
 * calls, which may feed another parser): the byte offset of its start, whether it is all
 * ASCII, and the byte offset of the end of the part being parsed; and the code units taken
 * by the last getc().
 */
let cBase = 0;
let cAscii = true;
let cEndB = 0;
let cw = 1;
/** What the last {@link XmlStreamParser.scanName} read: where the name ends, its hash and whether it is all ASCII, and the character after it. */
let scanEnd = 0;
let scanHash = 0;
let scanAscii = true;
let scanTerm = 0;

/** UTF-8 bytes of `s[from, to)` (a part of the chunk being parsed). */
function utf8Bytes(s: string, from: number, to: number): number {
  if (cAscii) return to - from;
  let n = 0;
  for (let k = from; k < to; k++) {
    const c = s.charCodeAt(k);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : (c & 0xf800) === 0xd800 ? 2 : 3;
  }
  return n;
}

const NO_DECLARATIONS: readonly string[] = [];

const ABORT: unique symbol = Symbol('abort');

/**
 * Streaming parser for an XMPP stream (RFC 6120 §4, §11), fed in chunks of any size and
 * split. Enforces restricted XML (§11.1: no DTD, comments, processing instructions, or
 * entity references beyond the five predefined ones → `restricted-xml`), well-formedness
 * and Namespaces in XML (`not-well-formed`), UTF-8 (invalid input → `not-well-formed`, §11.6)
 * and the size, depth and attribute limits (`policy-violation`). Whitespace between
 * stanzas is accepted (keepalives); other text at stream level → `bad-format`.
 *
 * Written for XMPP's load: one pass over the decoded text with `charCodeAt`, elements built
 * directly, and between stanzas nothing kept but the stream's root (no input buffered; an
 * unfinished stanza is held as its elements so far plus the token being read). Its results
 * are those of the saxes-based parser it replaced (see test/parser-differential.test.ts),
 * line-break normalization (§2.11) and attribute-value normalization (§3.3.3) included.
 *
 * For RFC 7395 framing (one element per WebSocket message) see {@link FramedStreamParser}.
 */
export class XmlStreamParser {
  private handler: XmlStreamHandler;
  private maxStanzaSize: number;
  private maxDepth: number;
  private maxAttributes: number;

  /**
   * The open elements of the current stanza (the root excluded), outermost first, three
   * entries each: qualified name, the length of `nsb` before its declarations, the element.
   * A new empty array between stanzas (V8 keeps the storage of a grown array).
   */
  private open: Array<string | number | XmlElement> = [];
  /** Namespace declarations of the open elements of the current stanza: prefix (`''` for the default namespace), then URI. */
  private nsb: string[] = [];
  /** The root element's qualified name (`''` until it is read) and namespace declarations (as `nsb`). */
  private rootQname = '';
  private rootNs: readonly string[] = NO_DECLARATIONS;

  private state = S_BEGIN;
  private failed = false;
  private ended = false;
  private xml11 = false;
  /** Bumped by reset(), to notice a reset made by a handler during feed(). */
  private gen = 0;
  private running = false;

  // The token being read.
  /** Character data or attribute value read so far (also a CDATA section's). */
  private text = '';
  /** Start-tag, attribute or end-tag name read so far. */
  private name = '';
  private tagName = '';
  private tagColon = -1;
  private attrName = '';
  private attrColon = -1;
  /** The quote of the attribute value being read. */
  private q = 0;
  /** `]` characters ending the text so far (for the `]]>` check). */
  private fb = 0;
  /** Text at stream level holds something other than white space. */
  private nonWs = false;
  private nattr = 0;
  private nsMark = 0;
  /** Rarely needed fields (see ColdState). */
  private x: ColdState | null = null;

  // Input.
  /** A CR or high surrogate ending the last chunk: its meaning depends on what follows. */
  private held = '';
  /** An incomplete UTF-8 sequence ending the last chunk (1-3 bytes). */
  private carry: Uint8Array | null = null;
  private bomSeen = false;
  /** Bytes fed so far. */
  private bytesIn = 0;
  /**
   * Where the data now buffered began (the stanza size limit counts from here): a byte
   * offset in the input, or while a chunk is parsed, if `markPos >= 0`, that position in it.
   */
  private markByte = 0;
  private markPos = -1;

  constructor(handler: XmlStreamHandler, limits: Partial<XmlStreamLimits> = {}) {
    this.handler = handler;
    const l = { ...DEFAULT_STREAM_LIMITS, ...limits };
    this.maxStanzaSize = l.maxStanzaSize;
    this.maxDepth = l.maxDepth;
    this.maxAttributes = l.maxAttributes;
  }

  /**
   * Discards all parser state; the next input must start a new stream (RFC 6120 §4.3.3
   * restart). Called by a handler during `feed()` (e.g. on `<starttls/>`), the rest of the
   * chunk is the start of the new stream, white space right after the restart skipped.
   */
  reset(): void {
    this.gen++;
    this.open = [];
    this.nsb = [];
    this.rootQname = '';
    this.rootNs = NO_DECLARATIONS;
    this.state = S_BEGIN;
    this.failed = false;
    this.ended = false;
    this.xml11 = false;
    this.text = this.name = this.tagName = this.attrName = '';
    this.fb = 0;
    this.nonWs = false;
    this.nattr = 0;
    this.x = null;
    if (!this.running) {
      this.held = '';
      this.markByte = this.bytesIn;
      this.markPos = -1;
    }
  }

  /** Elements open inside the current stanza (0 between stanzas). */
  get depth(): number {
    return this.open.length / 3;
  }

  /** `true` once a stream error was reported or the stream ended. */
  get closed(): boolean {
    return this.failed || this.ended;
  }

  /**
   * Feeds bytes (UTF-8) or already-decoded text. Handler callbacks run synchronously.
   * Bytes that are not UTF-8 → `not-well-formed` (RFC 6120 §11.6), before anything in
   * the chunk is parsed.
   */
  feed(chunk: Uint8Array | string): void {
    if (this.failed || this.ended) return;
    let text: string;
    let textBytes: number;
    if (typeof chunk === 'string') {
      text = chunk;
      textBytes = text.length === 0 ? 0 : Buffer.byteLength(text, 'utf8');
      this.bytesIn += textBytes;
    } else {
      let buf = chunk;
      const carry = this.carry;
      if (carry !== null) {
        const b = new Uint8Array(carry.length + chunk.length);
        b.set(carry, 0);
        b.set(chunk, carry.length);
        buf = b;
        this.carry = null;
      }
      // Keep back an incomplete UTF-8 sequence at the end (at most 3 bytes) for the next chunk.
      const n = buf.length;
      let cut = n;
      for (let k = n - 1; k >= 0 && k >= n - 3; k--) {
        const b = buf[k]!;
        if (b < 0x80) break;
        if (b >= 0xc0) {
          if (n - k < (b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2)) cut = k;
          break;
        }
      }
      let decoded: string | null = null;
      if (cut === n || validUtf8Prefix(buf, cut, n)) {
        try {
          decoded = cut === 0 ? '' : UTF8.decode(cut === n ? buf : buf.subarray(0, cut));
        } catch {
          // not UTF-8 (TypeError from the fatal decoder)
        }
      }
      if (decoded === null) {
        this.fail(new StreamError('not-well-formed', 'input is not valid UTF-8 (RFC 6120 §11.6)'), false);
        return;
      }
      text = decoded;
      if (cut < n) this.carry = Uint8Array.prototype.slice.call(buf, cut);
      this.bytesIn += chunk.length;
      textBytes = cut;
      // The WHATWG decoder drops a byte order mark that is the first thing decoded.
      if (!this.bomSeen && text.length > 0) {
        this.bomSeen = true;
        if (text.charCodeAt(0) === 0xfeff) {
          text = text.slice(1);
          textBytes -= 3;
        }
      }
    }
    let s = text;
    let heldBytes = 0;
    if (this.held !== '') {
      heldBytes = this.held === '\r' ? 1 : 2;
      s = this.held + text;
      this.held = '';
    }
    // A trailing CR may start CR LF, a trailing high surrogate a pair: wait for what follows.
    let end = s.length;
    let endBytes = this.bytesIn - (this.carry === null ? 0 : this.carry.length);
    if (end > 0) {
      const last = s.charCodeAt(end - 1);
      if (last === CR || (last >= 0xd800 && last <= 0xdbff)) {
        end--;
        this.held = last === CR ? '\r' : s.slice(end);
        endBytes -= last === CR ? 1 : 2;
      }
    }
    if (end > 0) {
      cBase = endBytes + (end < s.length ? (this.held === '\r' ? 1 : 2) : 0) - heldBytes - textBytes;
      cAscii = textBytes === text.length && heldBytes <= 1;
      cEndB = endBytes;
      this.running = true;
      try {
        this.run(s, end);
      } catch (err) {
        if (err === ABORT) return;
        this.fail(new StreamError('not-well-formed', (err as Error).message), false);
        return;
      } finally {
        this.running = false;
        if (this.markPos >= 0) {
          // The mark as a byte offset: count the bytes after it (the unfinished stanza, if any).
          this.markByte = cEndB - utf8Bytes(s, this.markPos, end);
          this.markPos = -1;
        }
      }
    }
    // RFC 6120 §13.12: cap whatever is buffered, not only open stanzas — an unfinished start
    // tag (`<message to='aaa…`), an unterminated entity or PI, stream-level text or the stream
    // header itself would otherwise grow without bound.
    if (!this.failed && !this.ended && this.bytesIn - this.markByte > this.maxStanzaSize) {
      this.fail(new StreamError('policy-violation', `stanza larger than ${this.maxStanzaSize} bytes`), false);
    }
  }

  /** Below this code unit (and from U+0020) a character needs no further check: U+D800, or U+007F in XML 1.1. */
  private get hi(): number {
    return this.xml11 ? 0x7f : 0xd800;
  }

  /** @internal Reports a fatal error (once). `abort`: also stop the feed() in progress. */
  fail(err: StreamError, abort = true): void {
    if (this.failed) {
      if (abort) throw ABORT;
      return;
    }
    this.failed = true;
    this.handler.streamError(err);
    if (abort) throw ABORT;
  }

  /** Reports an error found in the input; returns -1 (stop). */
  private error(condition: StreamErrorCondition, text: string): -1 {
    this.fail(new StreamError(condition, text), false);
    return -1;
  }

  private nwf(text: string): -1 {
    return this.error('not-well-formed', text);
  }

  /**
   * An error whose message quotes the input. The saxes-based parser chose `restricted-xml`
   * over `not-well-formed` by matching its messages against /undefined entity|doctype/i,
   * quoted input included; kept so the condition stays the same for the same input.
   */
  private quotingError(text: string): -1 {
    return this.error(/undefined entity|doctype/i.test(text) ? 'restricted-xml' : 'not-well-formed', text);
  }

  /**
   * Reads the character at `s[i]` (`i < end`) as XML does: its code point (a surrogate pair
   * joined; `cw` = code units used), {@link NLX} for a line break other than LF, or
   * {@link FAIL} after reporting a character outside the Char production (XML 1.1: also the
   * restricted C0/C1 controls).
   */
  private getc(s: string, i: number, end: number): number {
    const c = s.charCodeAt(i);
    cw = 1;
    if (c < 0xd800) {
      if (this.xml11) {
        if ((c > 0x1f && c < 0x7f) || (c > 0x9f && c !== 0x2028) || c === TAB || c === NL) return c;
        if (c === CR) {
          if (i + 1 < end) {
            const d = s.charCodeAt(i + 1);
            if (d === NL || d === 0x85) cw = 2;
          }
          return NLX;
        }
        if (c === 0x85 || c === 0x2028) return NLX;
      } else {
        if (c >= SP || c === TAB || c === NL) return c;
        if (c === CR) {
          if (i + 1 < end && s.charCodeAt(i + 1) === NL) cw = 2;
          return NLX;
        }
      }
    } else if (c > 0xdbff) {
      if (c >= 0xe000 && c <= 0xfffd) return c;
    } else {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        cw = 2;
        return ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
      }
    }
    this.nwf('disallowed character.');
    return FAIL;
  }

  /**
   * Reads the rest of a Name (XML 1.0 §2.3 [5]) from `s[i]` on, and the character after it.
   * Returns the index after that character, with the name's end in `scanEnd`, the character
   * in `scanTerm` (as {@link getc} gives it), and, for an all-ASCII name, its hash in
   * `scanHash` (`scanAscii`) for {@link nameAt}. Returns {@link MORE} when the chunk ends
   * inside the name (what was read is added to `this.name`), {@link FAIL} after reporting a
   * character outside the Char production.
   */
  private scanName(s: string, i: number, end: number): number {
    const start = i;
    let c = 0;
    let h = 0;
    let ascii = true;
    for (;;) {
      if (i >= end) {
        this.name += s.slice(start, end);
        return MORE;
      }
      c = s.charCodeAt(i);
      if (c < 0x80) {
        if ((CT[c]! & C_NAME) !== 0) {
          h = (Math.imul(h, 31) + c) | 0;
          i++;
          continue;
        }
        break;
      }
      ascii = false;
      if (c < 0xd800) {
        if (isNameHigh(c)) {
          i++;
          continue;
        }
        break;
      }
      const d = this.getc(s, i, end);
      if (d === FAIL) return FAIL;
      if (!isNameHigh(d)) break;
      i += cw;
    }
    scanEnd = i;
    scanHash = h;
    scanAscii = ascii;
    if (c >= SP && c < 0x7f) cw = 1;
    else {
      c = this.getc(s, i, end);
      if (c === FAIL) return FAIL;
    }
    scanTerm = c;
    return i + cw;
  }

  /** The canonical string of the name {@link scanName} just read from `s[start]` on (with what an earlier chunk held of it). */
  private scannedName(s: string, start: number): string {
    const name = this.name === '' && scanAscii ? nameAt(s, start, scanEnd, scanHash) : canonicalName(this.name + s.slice(start, scanEnd));
    this.name = '';
    return name;
  }

  /** Data is buffered from `s[p]` on. */
  private mark(p: number): void {
    this.markPos = p;
  }

  /** `true` when more than maxStanzaSize bytes of input lie between the mark and `s[p]`. */
  private oversize(s: string, p: number): boolean {
    const max = this.maxStanzaSize;
    const mp = this.markPos;
    // Decided without counting when even 3 bytes per UTF-16 code unit stays within the limit.
    const k = cAscii ? 1 : 3;
    if (!((mp >= 0 ? k * (p - mp) : cBase - this.markByte + k * p) > max)) return false;
    return (mp >= 0 ? utf8Bytes(s, mp, p) : cBase - this.markByte + utf8Bytes(s, 0, p)) > max;
  }

  /** Parses `s[0, end)`. Returns early after an error or the end of the stream. */
  private run(s: string, end: number): void {
    let i = 0;
    let state = this.state;
    let gen = this.gen;
    let hi = this.hi;
    if (this.nattr > 0) {
      // The last chunk ended inside a start tag: its attributes so far.
      const saved = this.x!.savedAttrs!;
      this.x!.savedAttrs = null;
      for (let k = 0; k < this.nattr; k++) {
        const name = saved[2 * k]!;
        ATTR_NAMES[k] = name;
        ATTR_VALUES[k] = saved[2 * k + 1]!;
        ATTR_COLONS[k] = name.indexOf(':');
      }
    }
    main: while (i < end) {
      switch (state) {
        case S_TEXT: {
          const inStanza = this.open.length !== 0;
          const fbStart = i;
          let start = i;
          let c = -1;
          for (;;) {
            if (i >= end) {
              c = -1;
              break;
            }
            c = s.charCodeAt(i);
            if (c > GT) {
              if (c < hi) {
                i++;
                continue;
              }
            } else if (c >= SP) {
              if (c === LT || c === AMP) break;
              if (c === GT && this.brackets(s, i, fbStart) >= 2) return void this.nwf('the string "]]>" is disallowed in char data.');
              i++;
              continue;
            } else if (c === NL || c === TAB) {
              i++;
              continue;
            }
            const d = this.getc(s, i, end);
            if (d === FAIL) return;
            if (d === NLX) {
              if (inStanza) this.text += s.slice(start, i) + '\n';
              else if (!this.nonWs) this.nonWs = hasNonSpace(s, start, i);
              i += cw;
              start = i;
              continue;
            }
            i += cw;
          }
          if (c === -1) {
            // End of the chunk: the text goes on in the next one.
            const n = this.brackets(s, end, fbStart);
            this.fb = n > 2 ? 2 : n;
            if (inStanza) {
              if (start < end) this.text += s.slice(start, end);
            } else if (!this.nonWs) this.nonWs = hasNonSpace(s, start, end);
            break main;
          }
          this.fb = 0;
          if (c === AMP) {
            if (inStanza) this.text += s.slice(start, i);
            else if (!this.nonWs) this.nonWs = hasNonSpace(s, start, i);
            state = S_ENTITY_TEXT;
            i++;
            continue main;
          }
          if (inStanza) {
            const t = this.text === '' ? s.slice(start, i) : this.text + s.slice(start, i);
            if (t !== '') {
              this.text = '';
              const open = this.open;
              (open[open.length - 1] as XmlElement).children.push(t);
            }
          } else {
            // Between stanzas only whitespace is allowed (keepalives, RFC 6120 §4.6.1).
            if (this.nonWs || hasNonSpace(s, start, i)) return void this.error('bad-format', 'character data at stream level');
            this.mark(i);
          }
          i++;
          state = S_LT;
          continue main;
        }

        case S_LT: {
          const c = s.charCodeAt(i);
          if (c === QUESTION) {
            state = S_PI_FIRST;
            i++;
            continue main;
          }
          // Anything else makes an XML declaration impossible.
          if (this.x !== null) this.x.declOk = false;
          if (c < 0x80) {
            if ((CT[c]! & C_NAME_START) !== 0) {
              state = S_TAG_NAME;
              continue main;
            }
            if (c === SLASH) {
              state = S_CLOSE_NAME;
              i++;
              continue main;
            }
            if (c === BANG) {
              (this.x ??= new ColdState()).bang = '';
              state = S_BANG;
              i++;
              continue main;
            }
          } else {
            const d = this.getc(s, i, end);
            if (d === FAIL) return;
            if (isNameStart(d)) {
              state = S_TAG_NAME;
              continue main;
            }
          }
          return void this.nwf('disallowed character in tag name');
        }

        case S_TAG_NAME: {
          const start = i;
          i = this.scanName(s, i, end);
          if (i === MORE) break main;
          if (i === FAIL) return;
          const t = scanTerm;
          const qname = this.scannedName(s, start);
          // The start tag's name is known: the depth limit applies before anything else.
          if (this.open.length / 3 >= this.maxDepth) {
            return void this.error('policy-violation', `elements nested deeper than ${this.maxDepth}`);
          }
          this.tagName = qname;
          this.tagColon = nameColon;
          this.nattr = 0;
          this.nsMark = this.nsb.length;
          if (t === GT) {
            i = this.openTag(s, i, false);
            if (i < 0) return;
            if (this.gen !== gen) {
              gen = this.gen;
              i = this.afterReset(s, i, end);
              state = this.state;
              hi = this.hi;
              continue main;
            }
            state = S_TEXT;
            continue main;
          }
          if (t === SLASH) {
            state = S_TAG_SLASH;
            continue main;
          }
          if (t === SP || t === NL || t === TAB || t === NLX) {
            state = S_ATTR;
            continue main;
          }
          return void this.nwf('disallowed character in tag name.');
        }

        case S_ATTR: {
          let c = 0;
          for (;;) {
            if (i >= end) break main;
            c = s.charCodeAt(i);
            if (c === SP || c === NL || c === TAB) {
              i++;
              continue;
            }
            if (c === CR) {
              i += i + 1 < end && s.charCodeAt(i + 1) === NL ? 2 : 1;
              continue;
            }
            break;
          }
          if (c < 0x80) {
            if ((CT[c]! & C_NAME_START) !== 0) {
              state = S_ATTR_NAME;
              continue main;
            }
            if (c === GT) {
              i = this.openTag(s, i + 1, false);
              if (i < 0) return;
              if (this.gen !== gen) {
                gen = this.gen;
                i = this.afterReset(s, i, end);
                state = this.state;
                hi = this.hi;
                continue main;
              }
              state = S_TEXT;
              continue main;
            }
            if (c === SLASH) {
              state = S_TAG_SLASH;
              i++;
              continue main;
            }
            return void this.nwf(c < SP ? 'disallowed character.' : 'disallowed character in attribute name.');
          }
          const d = this.getc(s, i, end);
          if (d === FAIL) return;
          if (d === NLX) {
            i += cw;
            continue main;
          }
          if (isNameStart(d)) {
            state = S_ATTR_NAME;
            continue main;
          }
          return void this.nwf('disallowed character in attribute name.');
        }

        case S_ATTR_NAME: {
          const start = i;
          i = this.scanName(s, i, end);
          if (i === MORE) break main;
          if (i === FAIL) return;
          const t = scanTerm;
          const name = this.scannedName(s, start);
          this.attrName = name;
          this.attrColon = nameColon;
          if (t === EQ) {
            state = S_ATTR_EQ;
            continue main;
          }
          if (t === SP || t === NL || t === TAB || t === NLX) {
            state = S_ATTR_NAME_WS;
            continue main;
          }
          return void this.nwf(t === GT ? 'attribute without value.' : 'disallowed character in attribute name.');
        }

        case S_ATTR_NAME_WS:
        case S_ATTR_EQ: {
          let d = s.charCodeAt(i);
          if (state === S_ATTR_EQ && (d === DQUOTE || d === SQUOTE)) {
            this.q = d;
            state = S_ATTR_VALUE;
            i++;
            continue main;
          }
          for (;;) {
            if (i >= end) break main;
            d = this.getc(s, i, end);
            if (d === FAIL) return;
            i += cw;
            if (d === SP || d === NL || d === TAB || d === NLX) continue;
            break;
          }
          if (state === S_ATTR_NAME_WS) {
            if (d !== EQ) return void this.nwf('attribute without value.');
            state = S_ATTR_EQ;
            continue main;
          }
          if (d !== DQUOTE && d !== SQUOTE) return void this.nwf('unquoted attribute value.');
          this.q = d;
          state = S_ATTR_VALUE;
          continue main;
        }

        case S_ATTR_VALUE: {
          const q = this.q;
          let start = i;
          for (;;) {
            if (i >= end) {
              this.text += s.slice(start, end);
              break main;
            }
            const c = s.charCodeAt(i);
            if (c > LT) {
              if (c < hi) {
                i++;
                continue;
              }
            } else if (c >= SP) {
              if (c === q) break;
              if (c === AMP) {
                this.text += s.slice(start, i);
                state = S_ENTITY_ATTR;
                i++;
                continue main;
              }
              if (c === LT) return void this.nwf('disallowed character.');
              i++;
              continue;
            } else if (c === TAB || c === NL) {
              // Attribute-value normalization (XML 1.0 §3.3.3).
              this.text += s.slice(start, i) + ' ';
              i++;
              start = i;
              continue;
            }
            const d = this.getc(s, i, end);
            if (d === FAIL) return;
            if (d === NLX) {
              this.text += s.slice(start, i) + ' ';
              i += cw;
              start = i;
              continue;
            }
            i += cw;
          }
          const value = this.text === '' ? s.slice(start, i) : this.text + s.slice(start, i);
          this.text = '';
          i++;
          if (!this.attribute(this.attrName, value)) return;
          state = S_ATTR_CLOSED;
          continue main;
        }

        case S_ATTR_CLOSED: {
          const c = s.charCodeAt(i);
          if (c === SP || c === NL || c === TAB) {
            i++;
            state = S_ATTR;
            continue main;
          }
          if (c === GT || c === SLASH) {
            if (c === SLASH) {
              i++;
              state = S_TAG_SLASH;
              continue main;
            }
            i = this.openTag(s, i + 1, false);
            if (i < 0) return;
            if (this.gen !== gen) {
              gen = this.gen;
              i = this.afterReset(s, i, end);
              state = this.state;
              hi = this.hi;
              continue main;
            }
            state = S_TEXT;
            continue main;
          }
          const d = this.getc(s, i, end);
          if (d === FAIL) return;
          if (d === NLX) {
            i += cw;
            state = S_ATTR;
            continue main;
          }
          return void this.nwf(isNameStart(d) ? 'no whitespace between attributes.' : 'disallowed character in attribute name.');
        }

        case S_TAG_SLASH: {
          if (s.charCodeAt(i) !== GT) {
            if (this.getc(s, i, end) === FAIL) return;
            return void this.nwf('forward-slash in opening tag not followed by >.');
          }
          i = this.openTag(s, i + 1, true);
          if (i < 0) return;
          if (this.gen !== gen) {
            gen = this.gen;
            i = this.afterReset(s, i, end);
            state = this.state;
            hi = this.hi;
            continue main;
          }
          state = S_TEXT;
          continue main;
        }

        case S_CLOSE_NAME: {
          const start = i;
          i = this.scanName(s, i, end);
          if (i === MORE) break main;
          if (i === FAIL) return;
          const t = scanTerm;
          const nameEnd = scanEnd;
          if (t === GT) {
            // The usual case, the name of the open element, compared where it is.
            const open = this.open;
            const expected = open.length !== 0 ? (open[open.length - 3] as string) : this.rootQname;
            const n = nameEnd - start;
            let k = 0;
            if (this.name === '' && expected.length === n) while (k < n && expected.charCodeAt(k) === s.charCodeAt(start + k)) k++;
            if (k === n && n !== 0) i = open.length !== 0 ? this.closeElement(s, i) : this.closeRoot();
            else {
              const name = this.name + s.slice(start, nameEnd);
              this.name = '';
              i = this.closeTag(s, i, name);
            }
            if (i < 0) return;
            if (this.gen !== gen) {
              gen = this.gen;
              i = this.afterReset(s, i, end);
              state = this.state;
              hi = this.hi;
              continue main;
            }
            state = S_TEXT;
            continue main;
          }
          if (t === SP || t === NL || t === TAB || t === NLX) {
            this.tagName = this.name + s.slice(start, nameEnd);
            this.name = '';
            state = S_CLOSE_WS;
            continue main;
          }
          return void this.nwf('disallowed character in closing tag.');
        }

        case S_CLOSE_WS: {
          let d = 0;
          for (;;) {
            if (i >= end) break main;
            d = this.getc(s, i, end);
            if (d === FAIL) return;
            i += cw;
            if (d === SP || d === NL || d === TAB || d === NLX) continue;
            break;
          }
          if (d !== GT) return void this.nwf('disallowed character in closing tag.');
          const name = this.tagName;
          this.tagName = '';
          i = this.closeTag(s, i, name);
          if (i < 0) return;
          if (this.gen !== gen) {
            gen = this.gen;
            i = this.afterReset(s, i, end);
            state = this.state;
            hi = this.hi;
            continue main;
          }
          state = S_TEXT;
          continue main;
        }

        case S_ENTITY_TEXT:
        case S_ENTITY_ATTR: {
          let start = i;
          for (;;) {
            if (i >= end) {
              this.name += s.slice(start, end);
              break main;
            }
            const c = s.charCodeAt(i);
            if (c === SEMI) break;
            if (c >= SP ? c < hi : c === TAB || c === NL) {
              i++;
              continue;
            }
            const d = this.getc(s, i, end);
            if (d === FAIL) return;
            if (d === NLX) {
              this.name += s.slice(start, i) + '\n';
              i += cw;
              start = i;
              continue;
            }
            i += cw;
          }
          const name = this.name === '' ? s.slice(start, i) : this.name + s.slice(start, i);
          this.name = '';
          i++;
          const value = this.entity(name);
          if (value === null) return;
          if (state === S_ENTITY_ATTR) {
            this.text += value;
            state = S_ATTR_VALUE;
          } else {
            if (this.open.length !== 0) this.text += value;
            else if (!this.nonWs) this.nonWs = hasNonSpace(value, 0, value.length);
            state = S_TEXT;
          }
          continue main;
        }

        default: {
          // The states met before the root element, in comments, PIs, CDATA sections and DTDs.
          this.state = state;
          i = this.cold(s, i, end);
          if (i < 0) return;
          state = this.state;
          hi = this.hi;
        }
      }
    }
    this.state = state;
    if (this.nattr > 0) {
      // The chunk ends inside a start tag: keep its attributes so far (the table is shared).
      const saved: string[] = [];
      for (let k = 0; k < this.nattr; k++) saved.push(ATTR_NAMES[k]!, ATTR_VALUES[k]!);
      (this.x ??= new ColdState()).savedAttrs = saved;
    }
  }

  /**
   * How many `]` end the text before `s[i]`: counted back to `from`, the start of the text
   * in this chunk since the last entity reference (plus `this.fb` from the chunk before).
   */
  private brackets(s: string, i: number, from: number): number {
    let n = 0;
    let k = i - 1;
    while (n < 2 && k >= from && s.charCodeAt(k) === RSQB) {
      n++;
      k--;
    }
    if (n < 2 && k < from) n += this.fb;
    return n;
  }

  /** After a handler reset the parser during feed(): the rest of the chunk starts the new stream. */
  private afterReset(s: string, i: number, end: number): number {
    this.mark(i);
    while (i < end) {
      const c = s.charCodeAt(i);
      if (c !== SP && c !== NL && c !== TAB && c !== CR) break;
      i++;
    }
    if (this.held === '\r') this.held = '';
    return i;
  }

  /** An attribute was read (Namespaces in XML: a declaration takes effect now). Returns `false` after an error. */
  private attribute(name: string, value: string): boolean {
    const colon = this.attrColon;
    if (colon !== -1) {
      if (colon === 0 || colon === name.length - 1 || name.indexOf(':', colon + 1) !== -1) {
        this.quotingError(`malformed name: ${name}.`);
        return false;
      }
      if (colon === 5 && name.startsWith('xmlns')) {
        const prefix = name.slice(6);
        const uri = trim(value);
        if (!this.xml11 && uri === '') {
          this.nwf('invalid attempt to undefine prefix in XML 1.0');
          return false;
        }
        this.nsb.push(prefix, intern(uri));
        if (!this.nsPairCheck(prefix, uri)) return false;
      }
    } else if (name === 'xmlns') {
      const uri = trim(value);
      this.nsb.push('', intern(uri));
      if (!this.nsPairCheck('', uri)) return false;
    }
    const k = this.nattr++;
    ATTR_NAMES[k] = name;
    ATTR_VALUES[k] = value;
    ATTR_COLONS[k] = colon;
    return true;
  }

  /** The reserved prefixes and namespaces (Namespaces in XML §3). */
  private nsPairCheck(prefix: string, uri: string): boolean {
    if (prefix === 'xml' && uri !== XML_NAMESPACE) this.nwf(`xml prefix must be bound to ${XML_NAMESPACE}.`);
    else if (prefix === 'xmlns' && uri !== XMLNS_NAMESPACE) this.nwf(`xmlns prefix must be bound to ${XMLNS_NAMESPACE}.`);
    else if (uri === XMLNS_NAMESPACE) {
      this.nwf(prefix === '' ? `the default namespace may not be set to ${uri}.` : `may not assign a prefix (even "xmlns") to the URI ${XMLNS_NAMESPACE}.`);
    } else if (uri === XML_NAMESPACE && prefix !== 'xml') {
      this.nwf(prefix === '' ? `the default namespace may not be set to ${uri}.` : 'may not assign the xml namespace to another prefix.');
    } else return true;
    return false;
  }

  /** The namespace bound to a prefix (`''`: the default namespace), or `undefined`. */
  private resolve(prefix: string): string | undefined {
    const nsb = this.nsb;
    for (let k = nsb.length - 2; k >= 0; k -= 2) if (nsb[k] === prefix) return nsb[k + 1];
    const root = this.rootNs;
    for (let k = root.length - 2; k >= 0; k -= 2) if (root[k] === prefix) return root[k + 1];
    if (prefix === 'xml') return XML_NAMESPACE;
    if (prefix === 'xmlns') return XMLNS_NAMESPACE;
    return undefined;
  }

  /**
   * A start tag ended at `s[i - 1]` (`>`): resolve its namespaces, check its attributes,
   * then report the stream header or build the element. Returns where to go on, or -1.
   */
  private openTag(s: string, i: number, selfClosing: boolean): number {
    const qname = this.tagName;
    this.tagName = '';
    let prefix = '';
    let local = qname;
    const colon = this.tagColon;
    if (colon !== -1) {
      if (colon === 0 || colon === qname.length - 1 || qname.indexOf(':', colon + 1) !== -1) {
        return this.quotingError(`malformed name: ${qname}.`);
      }
      prefix = qname.slice(0, colon);
      local = canonicalName(qname.slice(colon + 1));
    }
    const uri = this.resolve(prefix) ?? '';
    if (prefix !== '') {
      if (prefix === 'xmlns') return this.nwf('tags may not have "xmlns" as prefix.');
      if (uri === '') return this.quotingError(`unbound namespace prefix: ${JSON.stringify(prefix)}.`);
    }
    const n = this.nattr;
    this.nattr = 0;
    // Namespaces in XML §6.3: resolve prefixes (the default namespace does not apply to
    // attributes) and refuse two attributes with the same expanded name.
    let keys: Set<string> | null = n > 16 ? new Set() : null;
    for (let k = 0; k < n; k++) {
      const name = ATTR_NAMES[k]!;
      const c = ATTR_COLONS[k]!;
      let key = name;
      if (c === -1) {
        ATTR_PREFIXES[k] = '';
      } else {
        const p = name.slice(0, c);
        const u = this.resolve(p);
        if (u === undefined) return this.quotingError(`unbound namespace prefix: ${JSON.stringify(p)}.`);
        ATTR_PREFIXES[k] = p;
        ATTR_URIS[k] = u;
        key = `{${u}}${name.slice(c + 1)}`;
      }
      if (keys !== null) {
        if (keys.has(key)) return this.quotingError(`duplicate attribute: ${key}.`);
        keys.add(key);
      } else {
        for (let j = 0; j < k; j++) if (ATTR_KEYS[j] === key) return this.quotingError(`duplicate attribute: ${key}.`);
        ATTR_KEYS[k] = key;
      }
    }
    keys = null;
    if (n > this.maxAttributes) return this.error('policy-violation', `more than ${this.maxAttributes} attributes on <${qname}>`);
    const attrs: XmlAttrs = {};
    for (let k = 0; k < n; k++) {
      const name = ATTR_NAMES[k]!;
      const p = ATTR_PREFIXES[k]!;
      if (p === '') {
        if (name !== 'xmlns') attrs[name] = ATTR_VALUES[k]!;
      } else if (p !== 'xmlns') {
        // A namespaced attribute keeps its prefix; declare it on this element (xml: is predeclared).
        attrs[name] = ATTR_VALUES[k]!;
        if (p !== 'xml') attrs['xmlns:' + p] = ATTR_URIS[k]!;
      }
      if (p !== '') ATTR_URIS[k] = '';
      ATTR_VALUES[k] = ATTR_KEYS[k] = '';
    }
    if (this.rootQname === '') {
      // The stream header. Its namespace declarations stay in scope for the whole stream.
      this.rootQname = intern(qname);
      this.x = null;
      const nsb = this.nsb;
      let contentNs = '';
      for (let k = nsb.length - 2; k >= 0; k -= 2) {
        if (nsb[k] === '') {
          contentNs = nsb[k + 1]!;
          break;
        }
      }
      this.rootNs = nsb.slice();
      nsb.length = 0;
      this.mark(i);
      const gen = this.gen;
      const b = cBase, a = cAscii, eb = cEndB;
      this.handler.streamStart({ name: local, ns: uri, prefix, contentNs, attrs });
      (cBase = b), (cAscii = a), (cEndB = eb);
      if (this.failed || this.ended) return -1;
      if (this.gen !== gen || !selfClosing) return i;
      this.ended = true;
      this.handler.streamEnd();
      return -1;
    }
    const el = new XmlElement(local, uri, attrs);
    const open = this.open;
    if (open.length !== 0) (open[open.length - 1] as XmlElement).children.push(el);
    open.push(qname, this.nsMark, el);
    return selfClosing ? this.closeElement(s, i) : i;
  }

  /** An end tag `</name>` ended at `s[i - 1]`. Returns where to go on, or -1. */
  private closeTag(s: string, i: number, name: string): number {
    if (this.rootQname === '') {
      return name === '' ? this.nwf('weird empty close tag.') : this.quotingError(`unmatched closing tag: ${name}.`);
    }
    if (name === '') return this.nwf('weird empty close tag.');
    const open = this.open;
    if (open.length === 0) {
      if (name !== this.rootQname) return this.nwf(`unexpected close tag </${name}>`);
      return this.closeRoot();
    }
    if (open[open.length - 3] !== name) return this.nwf(`unexpected close tag </${name}>`);
    return this.closeElement(s, i);
  }

  /** The root element ended: </stream:stream>. Returns -1. */
  private closeRoot(): -1 {
    this.ended = true;
    this.handler.streamEnd();
    return -1;
  }

  /** The innermost open element of a stanza ended at `s[i - 1]`: maybe the stanza is complete. */
  private closeElement(s: string, i: number): number {
    const open = this.open;
    const el = open.pop() as XmlElement;
    const mark = open.pop() as number;
    open.pop();
    const nsb = this.nsb;
    // Between stanzas keep nothing: new empty arrays rather than the grown ones (V8 keeps
    // an array's storage when it shrinks, unless to length 0, a runtime call).
    if (nsb.length !== mark) {
      if (mark === 0) this.nsb = [];
      else nsb.length = mark;
    }
    if (open.length !== 0) return i;
    this.open = [];
    if (this.oversize(s, i)) return this.error('policy-violation', `stanza larger than ${this.maxStanzaSize} bytes`);
    this.mark(i);
    const b = cBase, a = cAscii, eb = cEndB;
    this.handler.stanza(el);
    (cBase = b), (cAscii = a), (cEndB = eb);
    if (this.failed || this.ended) return -1;
    return i;
  }

  /** The text of an entity or character reference (`name` between `&` and `;`), or `null` after an error. */
  private entity(name: string): string | null {
    switch (name) {
      case 'amp':
        return '&';
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
      case '':
        this.nwf('empty entity name.');
        return null;
    }
    if (name.charCodeAt(0) !== HASH) {
      if (NC_NAME_RE.test(name)) {
        this.error('restricted-xml', `undefined entity${name.length <= 64 ? ` &${name};` : ''} (RFC 6120 §11.1)`);
      } else this.nwf('disallowed character in entity name.');
      return null;
    }
    let num = NaN;
    if (name.charCodeAt(1) === 0x78 && /^#x[0-9a-f]+$/i.test(name)) num = parseInt(name.slice(2), 16);
    else if (/^#[0-9]+$/.test(name)) num = parseInt(name.slice(1), 10);
    if (!(this.xml11 ? isChar11(num) : isChar10(num))) {
      this.nwf('malformed character entity.');
      return null;
    }
    return String.fromCodePoint(num);
  }

  /** A CDATA section ended before position `i`. */
  private cdata(i: number, text: string): number {
    const open = this.open;
    if (open.length !== 0) {
      (open[open.length - 1] as XmlElement).children.push(text);
      return i;
    }
    if (hasNonSpace(text, 0, text.length)) return this.error('bad-format', 'character data at stream level');
    this.mark(i);
    return i;
  }

  /**
   * The rarely met states, at least one character each call: the start of the stream
   * (BOM, XML declaration, text before the root), `<!` and `<?` constructs (refused, at the
   * point where saxes refused them) and CDATA sections. Returns where to go on, or -1.
   */
  private cold(s: string, i: number, end: number): number {
    const x = (this.x ??= new ColdState());
    let d: number;
    switch (this.state) {
      case S_BEGIN:
        if (s.charCodeAt(i) === 0xfeff) i++;
        this.state = S_BEGIN_WS;
        return i;

      case S_BEGIN_WS: {
        const i0 = i;
        for (;;) {
          if (i >= end) {
            if (i > i0) x.declOk = false;
            return i;
          }
          d = this.getc(s, i, end);
          if (d === FAIL) return -1;
          if (d === SP || d === NL || d === TAB || d === NLX) {
            i += cw;
            continue;
          }
          break;
        }
        if (i > i0) x.declOk = false;
        if (d === LT) {
          this.state = S_LT;
          return i + 1;
        }
        x.declOk = false;
        this.state = S_TEXT_OUT;
        return i;
      }

      case S_TEXT_OUT: {
        // Text before the root element: white space only.
        let nonSpace = false;
        for (;;) {
          if (i >= end) return nonSpace ? this.nwf('text data outside of root node.') : i;
          const c = s.charCodeAt(i);
          if (c === LT) {
            if (nonSpace) return this.error('bad-format', 'character data at stream level');
            this.state = S_LT;
            return i + 1;
          }
          if (c === AMP) return this.nwf('text data outside of root node.');
          if (c === SP || c === NL || c === TAB) {
            i++;
            continue;
          }
          if (c > SP && c < this.hi) {
            nonSpace = true;
            i++;
            continue;
          }
          d = this.getc(s, i, end);
          if (d === FAIL) return -1;
          if (d !== NLX) nonSpace = true;
          i += cw;
        }
      }

      case S_BANG: {
        d = this.getc(s, i, end);
        if (d === FAIL) return -1;
        i += cw;
        const b = (x.bang += String.fromCodePoint(d === NLX ? NL : d));
        if (b === '[CDATA[') {
          if (this.rootQname === '') return this.nwf('text data outside of root node.');
          x.bang = '';
          this.text = '';
          this.state = S_CDATA;
        } else if (b === '--') {
          x.bang = '';
          this.state = S_COMMENT;
        } else if (b === 'DOCTYPE') {
          if (this.rootQname !== '') return this.error('restricted-xml', 'a DTD is not allowed (RFC 6120 §11.1): inappropriately located doctype declaration');
          x.bang = '';
          this.state = S_DOCTYPE;
        } else if (b.length >= 7) return this.nwf('incorrect syntax.');
        return i;
      }

      case S_COMMENT:
        for (;;) {
          if (i >= end) return i;
          const c = s.charCodeAt(i);
          if (c === MINUS) {
            this.state = S_COMMENT_DASH;
            return i + 1;
          }
          if (c >= SP ? c < this.hi : c === TAB || c === NL) {
            i++;
            continue;
          }
          if (this.getc(s, i, end) === FAIL) return -1;
          i += cw;
        }

      case S_COMMENT_DASH:
        d = this.getc(s, i, end);
        if (d === FAIL) return -1;
        if (d === MINUS) return this.error('restricted-xml', 'comments are not allowed (RFC 6120 §11.1)');
        this.state = S_COMMENT;
        return i + cw;

      case S_CDATA: {
        let start = i;
        for (;;) {
          if (i >= end) {
            this.text += s.slice(start, end);
            return i;
          }
          const c = s.charCodeAt(i);
          if (c === RSQB) {
            this.text += s.slice(start, i);
            this.state = S_CDATA_B1;
            return i + 1;
          }
          if (c >= SP ? c < this.hi : c === TAB || c === NL) {
            i++;
            continue;
          }
          d = this.getc(s, i, end);
          if (d === FAIL) return -1;
          if (d === NLX) {
            this.text += s.slice(start, i) + '\n';
            i += cw;
            start = i;
            continue;
          }
          i += cw;
        }
      }

      case S_CDATA_B1:
        d = this.getc(s, i, end);
        if (d === FAIL) return -1;
        i += cw;
        if (d === RSQB) this.state = S_CDATA_B2;
        else {
          this.text += ']' + String.fromCodePoint(d === NLX ? NL : d);
          this.state = S_CDATA;
        }
        return i;

      case S_CDATA_B2: {
        d = this.getc(s, i, end);
        if (d === FAIL) return -1;
        i += cw;
        if (d === GT) {
          const t = this.text;
          this.text = '';
          this.x = null;
          this.fb = 0;
          this.state = S_TEXT;
          return this.cdata(i, t);
        }
        if (d === RSQB) this.text += ']';
        else {
          this.text += ']]' + String.fromCodePoint(d === NLX ? NL : d);
          this.state = S_CDATA;
        }
        return i;
      }

      case S_PI_FIRST:
        d = this.getc(s, i, end);
        if (d === FAIL) return -1;
        if (d === NLX) d = NL;
        i += cw;
        if (!isNCNameStart(d)) {
          return this.nwf(d === QUESTION || isS(d) ? 'processing instruction without a target.' : 'disallowed character in processing instruction name.');
        }
        x.pi = String.fromCodePoint(d);
        x.piText = false;
        this.state = S_PI_REST;
        return i;

      case S_PI_REST: {
        const start = i;
        for (;;) {
          if (i >= end) {
            x.pi += s.slice(start, end);
            return i;
          }
          d = this.getc(s, i, end);
          if (d === FAIL) return -1;
          if (d === NLX) d = NL;
          if (!isNCName(d)) break;
          i += cw;
        }
        x.pi += s.slice(start, i);
        i += cw;
        if (d !== QUESTION && !isS(d)) return this.nwf('disallowed character in processing instruction name.');
        if (x.pi === 'xml') {
          if (this.rootQname !== '' || !x.declOk) return this.nwf('an XML declaration must be at the start of the document.');
          x.xdName = x.xdText = '';
          x.expects = 1;
          this.state = d === QUESTION ? S_XD_END : S_XD_NAME_START;
        } else this.state = d === QUESTION ? S_PI_END : S_PI_BODY;
        return i;
      }

      case S_PI_BODY:
        if (!x.piText) {
          d = this.getc(s, i, end);
          if (d === FAIL) return -1;
          if (d === NLX) d = NL;
          i += cw;
          if (d === QUESTION) this.state = S_PI_END;
          else if (!isS(d)) x.piText = true;
          return i;
        }
        for (;;) {
          if (i >= end) return i;
          d = this.getc(s, i, end);
          if (d === FAIL) return -1;
          i += cw;
          if (d === QUESTION) {
            this.state = S_PI_END;
            return i;
          }
        }

      case S_PI_END:
        d = this.getc(s, i, end);
        if (d === FAIL) return -1;
        i += cw;
        x.declOk = false;
        if (d === GT) {
          if (x.pi.toLowerCase() === 'xml') return this.nwf('the XML declaration must appear at the start of the document.');
          const target = x.pi.length <= 64 ? x.pi : x.pi.slice(0, 64) + '…';
          return this.error('restricted-xml', `processing instruction <?${target}?> is not allowed (RFC 6120 §11.1)`);
        }
        x.piText = true;
        if (d !== QUESTION) this.state = S_PI_BODY;
        return i;

      case S_XD_NAME_START:
        for (;;) {
          if (i >= end) return i;
          d = this.getc(s, i, end);
          if (d === FAIL) return -1;
          if (d === NLX) d = NL;
          i += cw;
          if (isS(d)) continue;
          if (d === QUESTION) this.state = S_XD_END;
          else {
            x.xdName = String.fromCodePoint(d);
            x.xdText = '';
            this.state = S_XD_NAME;
          }
          return i;
        }

      case S_XD_NAME: {
        const start = i;
        for (;;) {
          if (i >= end) {
            x.xdText += s.slice(start, end);
            return i;
          }
          d = this.getc(s, i, end);
          if (d === FAIL) return -1;
          if (d === NLX) d = NL;
          if (d === EQ || d === QUESTION || isS(d)) break;
          i += cw;
        }
        x.xdText += s.slice(start, i);
        i += cw;
        if (d === QUESTION) return this.nwf('XML declaration is incomplete.');
        x.xdName += x.xdText;
        x.xdText = '';
        const bit = x.xdName === 'version' ? 1 : x.xdName === 'encoding' ? 2 : x.xdName === 'standalone' ? 4 : 0;
        if ((bit & x.expects) === 0) return this.nwf('unexpected name in the XML declaration.');
        this.state = d === EQ ? S_XD_VALUE_START : S_XD_EQ;
        return i;
      }

      case S_XD_EQ:
      case S_XD_VALUE_START:
        d = this.getc(s, i, end);
        if (d === FAIL) return -1;
        if (d === NLX) d = NL;
        i += cw;
        if (d === QUESTION) return this.nwf('XML declaration is incomplete.');
        if (isS(d)) return i;
        if (this.state === S_XD_EQ) {
          if (d !== EQ) return this.nwf('value required.');
          this.state = S_XD_VALUE_START;
          return i;
        }
        if (d !== DQUOTE && d !== SQUOTE) return this.nwf('value must be quoted.');
        x.q = d;
        x.xdText = '';
        this.state = S_XD_VALUE;
        return i;

      case S_XD_VALUE: {
        let start = i;
        for (;;) {
          if (i >= end) {
            x.xdText += s.slice(start, end);
            return i;
          }
          d = this.getc(s, i, end);
          if (d === FAIL) return -1;
          if (d === x.q || d === QUESTION) break;
          if (d === NLX) {
            x.xdText += s.slice(start, i) + '\n';
            i += cw;
            start = i;
            continue;
          }
          i += cw;
        }
        const value = x.xdText + s.slice(start, i);
        x.xdText = '';
        i += cw;
        if (d === QUESTION) return this.nwf('XML declaration is incomplete.');
        if (x.xdName === 'version') {
          x.expects = 6;
          if (!/^1\.[0-9]+$/.test(value)) return this.nwf('version number must match /^1\\.[0-9]+$/.');
          // Any version but 1.0 is parsed by the rules of XML 1.1 (as saxes does).
          this.xml11 = value !== '1.0';
        } else if (x.xdName === 'encoding') {
          if (!/^[A-Za-z][A-Za-z0-9._-]*$/.test(value)) return this.nwf('encoding value must match /^[A-Za-z0-9][A-Za-z0-9._-]*$/.');
          x.expects = 4;
        } else {
          if (value !== 'yes' && value !== 'no') return this.nwf('standalone value must match "yes" or "no".');
          x.expects = 0;
        }
        x.xdName = '';
        this.state = S_XD_SEP;
        return i;
      }

      case S_XD_SEP:
        d = this.getc(s, i, end);
        if (d === FAIL) return -1;
        if (d === NLX) d = NL;
        i += cw;
        if (d === QUESTION) this.state = S_XD_END;
        else if (!isS(d)) return this.nwf('whitespace required.');
        else this.state = S_XD_NAME_START;
        return i;

      case S_XD_END:
        d = this.getc(s, i, end);
        if (d === FAIL) return -1;
        i += cw;
        x.declOk = false;
        if (d !== GT) return this.nwf('The character ? is disallowed anywhere in XML declarations.');
        if ((x.expects & 1) !== 0) return this.nwf('XML declaration must contain a version.');
        this.state = S_TEXT_OUT;
        return i;

      // A DTD (before the root element) is refused when it ends, as saxes reported it then.
      case S_DOCTYPE:
        for (;;) {
          if (i >= end) return i;
          d = this.getc(s, i, end);
          if (d === FAIL) return -1;
          i += cw;
          if (d === GT) return this.error('restricted-xml', 'a DTD is not allowed (RFC 6120 §11.1)');
          if (d === LSQB) {
            this.state = S_DTD;
            return i;
          }
          if (d === DQUOTE || d === SQUOTE) {
            x.q = d;
            this.state = S_DOCTYPE_Q;
            return i;
          }
        }

      case S_DOCTYPE_Q:
      case S_DTD_Q:
        for (;;) {
          if (i >= end) return i;
          d = this.getc(s, i, end);
          if (d === FAIL) return -1;
          i += cw;
          if (d === x.q) {
            this.state = this.state === S_DTD_Q ? S_DTD : S_DOCTYPE;
            return i;
          }
        }

      case S_DTD:
        for (;;) {
          if (i >= end) return i;
          d = this.getc(s, i, end);
          if (d === FAIL) return -1;
          i += cw;
          if (d === RSQB) this.state = S_DOCTYPE;
          else if (d === LT) this.state = S_DTD_LT;
          else if (d === DQUOTE || d === SQUOTE) {
            x.q = d;
            this.state = S_DTD_Q;
          } else continue;
          return i;
        }

      case S_DTD_LT:
        d = this.getc(s, i, end);
        if (d === FAIL) return -1;
        i += cw;
        if (d === BANG) {
          x.bang = '';
          this.state = S_DTD_LT_BANG;
        } else this.state = d === QUESTION ? S_DTD_PI : S_DTD;
        return i;

      case S_DTD_LT_BANG: {
        d = this.getc(s, i, end);
        if (d === FAIL) return -1;
        i += cw;
        const b = (x.bang += String.fromCodePoint(d === NLX ? NL : d));
        if (b !== '-') {
          this.state = b === '--' ? S_DTD_COMMENT : S_DTD;
          x.bang = '';
        }
        return i;
      }

      case S_DTD_COMMENT:
      case S_DTD_PI: {
        const stop = this.state === S_DTD_COMMENT ? MINUS : QUESTION;
        for (;;) {
          if (i >= end) return i;
          d = this.getc(s, i, end);
          if (d === FAIL) return -1;
          i += cw;
          if (d === stop) {
            this.state = stop === MINUS ? S_DTD_COMMENT_DASH : S_DTD_PI_END;
            return i;
          }
        }
      }

      case S_DTD_COMMENT_DASH:
        d = this.getc(s, i, end);
        if (d === FAIL) return -1;
        this.state = d === MINUS ? S_DTD_COMMENT_END : S_DTD_COMMENT;
        return i + cw;

      case S_DTD_COMMENT_END:
        d = this.getc(s, i, end);
        if (d === FAIL) return -1;
        if (d !== GT) return this.nwf('malformed comment.');
        this.state = S_DTD;
        return i + cw;

      case S_DTD_PI_END:
        d = this.getc(s, i, end);
        if (d === FAIL) return -1;
        if (d === GT) this.state = S_DTD;
        return i + cw;
    }
    throw new Error(`XmlStreamParser: unknown state ${this.state}`);
  }
}

/** A stream parser class, as {@link parseXml} constructs it. */
export type XmlStreamParserClass = new (handler: XmlStreamHandler, limits: Partial<XmlStreamLimits>) => { feed(chunk: string): void };

/**
 * Parses one complete XML fragment (e.g. a stanza in a test, or a WebSocket
 * frame's element) into an element. Throws a StreamError on bad input.
 * `Parser` is for the differential test, which runs the same fragment through its oracle.
 */
export function parseXml(input: string, limits: Partial<XmlStreamLimits> = {}, Parser: XmlStreamParserClass = XmlStreamParser): XmlElement {
  let result: XmlElement | undefined;
  let error: StreamError | undefined;
  const p = new Parser(
    {
      streamStart: () => {},
      stanza: (el) => {
        result = el;
      },
      streamEnd: () => {},
      streamError: (e) => {
        error = e;
      },
    },
    limits,
  );
  p.feed(`<wrapper xmlns='jabber:client'>${input}</wrapper>`);
  if (error) throw error;
  if (!result) throw new StreamError('not-well-formed', 'no element');
  return result;
}
