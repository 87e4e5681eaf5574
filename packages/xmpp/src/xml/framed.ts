import { NS } from '../namespaces.ts';
import { StreamError } from '../errors.ts';
import type { XmlElement } from './element.ts';
import { XmlStreamParser, type XmlStreamHandler, type XmlStreamLimits } from './parser.ts';

const LT = 0x3c;
const GT = 0x3e;

/** The first (`step` 1) or last (`step` -1) character code that is not XML whitespace, or -1. */
function firstNonSpace(m: Uint8Array | string, step: 1 | -1): number {
  const n = m.length;
  for (let i = step === 1 ? 0 : n - 1; i >= 0 && i < n; i += step) {
    const c = typeof m === 'string' ? m.charCodeAt(i) : m[i]!;
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return c;
  }
  return -1;
}

/**
 * Parser for XMPP over WebSocket (RFC 7395 §3.3): every WebSocket message is one
 * complete element — `<open/>` and `<close/>` in `urn:ietf:params:xml:ns:xmpp-framing`
 * instead of the stream header and its end tag, and stanzas that carry their own
 * namespace declarations (§3.3.3). Reports the same events as {@link XmlStreamParser}:
 * `<open/>` becomes `streamStart` (header `name: 'open'`, `ns:` the framing namespace),
 * `<close/>` becomes `streamEnd`. Restricted XML, UTF-8 and the size, depth and attribute
 * limits apply per element as on a TCP stream.
 *
 * Errors (`streamError`): a message that leaves an element unfinished or holds text
 * outside an element → `not-well-formed` / `bad-format` (§3.3.3); the limits →
 * `policy-violation`.
 */
export class FramedStreamParser {
  private readonly inner: XmlStreamParser;
  private readonly handler: XmlStreamHandler;

  constructor(handler: XmlStreamHandler, limits: Partial<XmlStreamLimits> = {}) {
    this.handler = handler;
    // One long-lived parser inside a virtual root: no per-message parser set-up, and a
    // stanza without an xmlns still resolves to jabber:client.
    this.inner = new XmlStreamParser(
      {
        streamStart: () => {},
        stanza: (el) => this.element(el),
        streamEnd: () => handler.streamError(new StreamError('not-well-formed', 'unexpected end tag')),
        streamError: (err) => handler.streamError(err),
      },
      limits,
    );
    this.inner.feed(`<frames xmlns='${NS.CLIENT}'>`);
  }

  /** `true` once a stream error was reported. */
  get closed(): boolean {
    return this.inner.closed;
  }

  /** Parses one WebSocket text message (RFC 7395 §3.3.3: one complete element). */
  feed(message: Uint8Array | string): void {
    const p = this.inner;
    if (p.closed) return;
    // Text outside the element would sit in the parser until the next message; refuse it now.
    const first = firstNonSpace(message, 1);
    if (first === -1) return;
    if (first !== LT || firstNonSpace(message, -1) !== GT) {
      p.fail(new StreamError('bad-format', 'a WebSocket message holds one element and no text outside it (RFC 7395 §3.3.3)'), false);
      return;
    }
    p.feed(message);
    if (!p.closed && p.depth > 0) {
      p.fail(new StreamError('not-well-formed', 'a WebSocket message must hold complete elements (RFC 7395 §3.3.3)'), false);
    }
  }

  /** Restarts need no parser reset over WebSocket: the client sends a new `<open/>` (RFC 7395 §3.7). */
  reset(): void {}

  private element(el: XmlElement): void {
    if (el.ns !== NS.FRAMING) return this.handler.stanza(el);
    if (el.name === 'open') {
      return this.handler.streamStart({ name: 'open', ns: NS.FRAMING, prefix: '', contentNs: NS.CLIENT, attrs: el.attrs });
    }
    if (el.name === 'close') return this.handler.streamEnd();
    this.handler.streamError(new StreamError('unsupported-stanza-type', `<${el.name}/> is not an RFC 7395 framing element`));
  }
}
