/**
 * The saxes-based XmlStreamParser and parseXml as they were before the parser of
 * packages/xmpp/src/xml/parser.ts replaced them: the oracle of parser-differential.test.ts
 * and the baseline of bench/parser.ts (kept unchanged but for their names).
 */
import { SaxesParser, type SaxesTagNS } from 'saxes';
import { DEFAULT_STREAM_LIMITS, StreamError, XmlElement, type XmlAttrs, type XmlStreamHandler, type XmlStreamLimits } from '../../src/index.ts';

// ---------------------------------------------------------------------------
// The oracle: the saxes-based XmlStreamParser and parseXml as they were.
// ---------------------------------------------------------------------------

const decoderOptions = { fatal: true } as const;

/**
 * Streaming parser for an XMPP stream (RFC 6120 §4, §11) on top of saxes, fed in
 * chunks of any size and split. Enforces restricted XML (§11.1: no DTD,
 * comments, processing instructions, or entity references beyond the five
 * predefined ones → `restricted-xml`), well-formedness (`not-well-formed`),
 * UTF-8 (`unsupported-encoding`, §11.6) and the size, depth and attribute
 * limits (`policy-violation`). Whitespace between stanzas is accepted (keepalives).
 *
 * For RFC 7395 framing (one element per WebSocket message) see {@link FramedStreamParser}.
 */
export class OldXmlStreamParser {
  private sax!: StreamSax;
  private decoder = new TextDecoder('utf-8', decoderOptions);
  private handler: XmlStreamHandler;
  private limits: XmlStreamLimits;
  private stack: XmlElement[] = [];
  private rootSeen = false;
  /**
   * Byte offset where the data now buffered began: the start of the current stanza, or
   * the end of the last top-level event (stream header, stanza, stream-level text).
   */
  private stanzaStartBytes = 0;
  /** Bytes and characters of input before the chunk being parsed, and that chunk's sizes. */
  private bytesBefore = 0;
  private charsBefore = 0;
  private chunkBytes = 0;
  private chunkChars = 0;
  private failed = false;
  private ended = false;

  constructor(handler: XmlStreamHandler, limits: Partial<XmlStreamLimits> = {}) {
    this.handler = handler;
    this.limits = { ...DEFAULT_STREAM_LIMITS, ...limits };
    this.reset();
  }

  /** Discards all parser state; the next input must start a new stream (RFC 6120 §4.3.3 restart). */
  reset(): void {
    const sax = new StreamSax(this);
    this.sax = sax;
    this.stack = [];
    this.rootSeen = false;
    this.stanzaStartBytes = 0;
    this.bytesBefore = 0;
    this.charsBefore = 0;
    this.chunkBytes = 0;
    this.chunkChars = 0;
    this.failed = false;
    this.ended = false;
  }

  /** Elements open inside the current stanza (0 between stanzas). */
  get depth(): number {
    return this.stack.length;
  }

  /** `true` once a stream error was reported or the stream ended. */
  get closed(): boolean {
    return this.failed || this.ended;
  }

  /**
   * Feeds bytes (UTF-8) or already-decoded text. Handler callbacks run
   * synchronously. Invalid UTF-8 → `unsupported-encoding`... reported as
   * `not-well-formed` when the bytes are not UTF-8 at all (RFC 6120 §11.6).
   */
  feed(chunk: Uint8Array | string): void {
    if (this.failed || this.ended) return;
    let text: string;
    if (typeof chunk === 'string') text = chunk;
    else {
      try {
        text = this.decoder.decode(chunk, { stream: true });
      } catch {
        // Not through the ABORT path: we are outside sax.write(), so nothing would catch it
        // (it crashed the process on a client's invalid UTF-8, RFC 6120 §11.6).
        this.fail(new StreamError('not-well-formed', 'input is not valid UTF-8 (RFC 6120 §11.6)'), false);
        return;
      }
    }
    this.charsBefore = this.sax.consumed;
    this.chunkChars = text.length;
    this.chunkBytes = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    try {
      this.sax.write(text);
    } catch (err) {
      if (err === ABORT) return;
      this.fail(new StreamError('not-well-formed', (err as Error).message), false);
      return;
    }
    // RFC 6120 §13.12: cap whatever saxes buffers, not only open stanzas — an unfinished start
    // tag (`<message to='aaa…`), an unterminated entity or PI, stream-level text or the stream
    // header itself would otherwise grow without bound.
    this.bytesBefore += this.chunkBytes;
    this.charsBefore += this.chunkChars;
    this.chunkBytes = this.chunkChars = 0;
    if (!this.failed && !this.ended && this.bytesBefore - this.stanzaStartBytes > this.limits.maxStanzaSize) {
      this.fail(
        new StreamError('policy-violation', `stanza larger than ${this.limits.maxStanzaSize} bytes`),
        false,
      );
    }
  }

  /** @internal */
  fail(err: StreamError, abort = true): void {
    if (this.failed) {
      if (abort) throw ABORT;
      return;
    }
    this.failed = true;
    this.handler.streamError(err);
    if (abort) throw ABORT;
  }

  /**
   * The byte offset of a character position in the chunk being parsed: exact for
   * ASCII chunks, interpolated within a chunk that holds multi-byte characters.
   */
  private bytesAt(charPos: number): number {
    const into = charPos - this.charsBefore;
    if (into <= 0 || this.chunkChars === 0) return this.bytesBefore;
    return this.bytesBefore + Math.ceil((into * this.chunkBytes) / this.chunkChars);
  }

  /** Marks where the data now buffered begins (the limit on raw input bytes counts from here). */
  private mark(): void {
    this.stanzaStartBytes = this.bytesAt(this.sax.position);
  }

  /** @internal */
  onOpenTagStart(): void {
    if (this.stack.length === 0 && this.rootSeen) this.mark();
    if (this.stack.length >= this.limits.maxDepth) {
      this.fail(new StreamError('policy-violation', `elements nested deeper than ${this.limits.maxDepth}`));
    }
  }

  /** @internal */
  onOpenTag(tag: SaxesTagNS): void {
    const attrs: XmlAttrs = {};
    let count = 0;
    const tagAttrs = tag.attributes;
    for (const k in tagAttrs) {
      const a = tagAttrs[k]!;
      if (++count > this.limits.maxAttributes) {
        this.fail(new StreamError('policy-violation', `more than ${this.limits.maxAttributes} attributes on <${tag.name}>`));
      }
      const prefix = a.prefix;
      if (prefix === '') {
        if (a.name !== 'xmlns') attrs[a.name] = a.value;
      } else if (prefix !== 'xmlns') {
        // A namespaced attribute keeps its prefix; declare it on this element (xml: is predeclared).
        attrs[a.name] = a.value;
        if (prefix !== 'xml') attrs['xmlns:' + prefix] = a.uri;
      }
    }
    if (!this.rootSeen) {
      this.rootSeen = true;
      this.handler.streamStart({
        name: tag.local,
        ns: tag.uri,
        prefix: tag.prefix,
        contentNs: tag.ns?.[''] ?? '',
        attrs,
      });
      this.mark();
      return;
    }
    const el = new XmlElement(tag.local, tag.uri, attrs);
    const stack = this.stack;
    if (stack.length > 0) stack[stack.length - 1]!.children.push(el);
    stack.push(el);
  }

  /** @internal */
  onCloseTag(): void {
    const stack = this.stack;
    if (stack.length === 0) {
      // The root element closed: </stream:stream>.
      this.ended = true;
      this.handler.streamEnd();
      throw ABORT;
    }
    const el = stack.pop()!;
    if (stack.length === 0) {
      if (this.bytesAt(this.sax.position) - this.stanzaStartBytes > this.limits.maxStanzaSize) {
        this.fail(new StreamError('policy-violation', `stanza larger than ${this.limits.maxStanzaSize} bytes`));
      }
      this.mark();
      this.handler.stanza(el);
      if (this.failed || this.ended) throw ABORT;
    }
  }

  /** @internal */
  onText(text: string): void {
    const stack = this.stack;
    if (stack.length === 0) {
      // Between stanzas only whitespace is allowed (keepalives, RFC 6120 §4.6.1).
      if (!/^[ \t\r\n]*$/.test(text)) this.fail(new StreamError('bad-format', 'character data at stream level'));
      this.mark();
      return;
    }
    stack[stack.length - 1]!.children.push(text);
  }
}

const ABORT: unique symbol = Symbol('abort');

/** The handler slots of SaxesParser (private in its typings; set once at construction, not with `.on()`). */
interface SaxHandlerSlots {
  doctypeHandler: (doctype: string) => void;
  commentHandler: (comment: string) => void;
  piHandler: (pi: { target: string; body: string }) => void;
  openTagStartHandler: () => void;
  openTagHandler: (tag: SaxesTagNS) => void;
  closeTagHandler: () => void;
  textHandler: (text: string) => void;
  cdataHandler: (text: string) => void;
  errorHandler: (err: Error) => void;
}

/** saxes with namespaces and positions, its handlers bound to one XmlStreamParser. */
class StreamSax extends SaxesParser<{ xmlns: true; position: true }> {
  /** Characters consumed by completed `write()` calls (valid between writes). */
  get consumed(): number {
    return (this as unknown as { chunkPosition: number }).chunkPosition;
  }

  constructor(owner: OldXmlStreamParser) {
    super({ xmlns: true, position: true });
    const slots = this as unknown as SaxHandlerSlots;
    slots.doctypeHandler = () => owner.fail(new StreamError('restricted-xml', 'a DTD is not allowed (RFC 6120 §11.1)'));
    slots.commentHandler = () => owner.fail(new StreamError('restricted-xml', 'comments are not allowed (RFC 6120 §11.1)'));
    slots.piHandler = (pi) =>
      owner.fail(new StreamError('restricted-xml', `processing instruction <?${pi.target}?> is not allowed (RFC 6120 §11.1)`));
    slots.openTagStartHandler = () => owner.onOpenTagStart();
    slots.openTagHandler = (tag) => owner.onOpenTag(tag);
    slots.closeTagHandler = () => owner.onCloseTag();
    slots.textHandler = (text) => owner.onText(text);
    slots.cdataHandler = (text) => owner.onText(text);
    // saxes pops the open element and calls closeTagHandler *before* comparing names, so
    // `<message>…</foo>` would deliver the stanza and a stray `</foo>` would end the stream
    // cleanly; check the name first so both are not-well-formed (RFC 6120 §11.3).
    const internals = this as unknown as { name: string; tags: SaxesTagNS[]; closeTag: () => void };
    const closeTag = internals.closeTag;
    internals.closeTag = () => {
      const top = internals.tags[internals.tags.length - 1];
      if (internals.name !== '' && top !== undefined && top.name !== internals.name) {
        owner.fail(new StreamError('not-well-formed', `unexpected close tag </${internals.name}>`));
      }
      closeTag.call(this);
    };
    slots.errorHandler = (err) => {
      // RFC 6120 §11.1: an entity reference other than the five predefined ones ("undefined entity")
      // and a DTD inside the stream ("inappropriately located doctype") are restricted XML; other
      // entity errors (`&#0;`, `&;`, `&a b;`) are plain well-formedness errors.
      const cond = /undefined entity|doctype/i.test(err.message) ? 'restricted-xml' : 'not-well-formed';
      owner.fail(new StreamError(cond, err.message));
    };
  }
}
