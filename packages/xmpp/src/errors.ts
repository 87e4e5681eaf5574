import { XmlElement, xml } from './xml/element.ts';
import { NS } from './namespaces.ts';

/** Stream error conditions (RFC 6120 §4.9.3). */
export type StreamErrorCondition =
  | 'bad-format' | 'bad-namespace-prefix' | 'conflict' | 'connection-timeout' | 'host-gone'
  | 'host-unknown' | 'improper-addressing' | 'internal-server-error' | 'invalid-from'
  | 'invalid-namespace' | 'invalid-xml' | 'not-authorized' | 'not-well-formed' | 'policy-violation'
  | 'remote-connection-failed' | 'reset' | 'resource-constraint' | 'restricted-xml' | 'see-other-host'
  | 'system-shutdown' | 'undefined-condition' | 'unsupported-encoding' | 'unsupported-feature'
  | 'unsupported-stanza-type' | 'unsupported-version';

/**
 * A stream-level error (RFC 6120 §4.9): fatal for the stream. `text` is a
 * human-readable description sent in `<text/>`.
 */
export class StreamError extends Error {
  readonly condition: StreamErrorCondition;
  readonly text: string | undefined;
  constructor(condition: StreamErrorCondition, text?: string) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = 'StreamError';
    this.condition = condition;
    this.text = text;
  }

  /**
   * The `<stream:error>` element (RFC 6120 §4.9.2) with the `stream:` prefix. `framed`: the element is a document of its own
   * (RFC 7395 §3.5, XEP-0206 §7) and declares the `stream` prefix.
   */
  toXML(framed = false): string {
    const text = this.text
      ? `<text xmlns='${NS.STREAMS}'>${this.text.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>`
      : '';
    const open = framed ? `<stream:error xmlns:stream='${NS.STREAM}'>` : '<stream:error>';
    return `${open}<${this.condition} xmlns='${NS.STREAMS}'/>${text}</stream:error>`;
  }
}

/** Stanza error conditions (RFC 6120 §8.3.3). */
export type StanzaErrorCondition =
  | 'bad-request' | 'conflict' | 'feature-not-implemented' | 'forbidden' | 'gone'
  | 'internal-server-error' | 'item-not-found' | 'jid-malformed' | 'not-acceptable' | 'not-allowed'
  | 'not-authorized' | 'policy-violation' | 'recipient-unavailable' | 'redirect'
  | 'registration-required' | 'remote-server-not-found' | 'remote-server-timeout'
  | 'resource-constraint' | 'service-unavailable' | 'subscription-required'
  | 'undefined-condition' | 'unexpected-request';

/** Error types (RFC 6120 §8.3.2). */
export type StanzaErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

/** The usual type for each condition, as in the examples of RFC 6120 §8.3.3. */
export const DEFAULT_ERROR_TYPE: Readonly<Record<StanzaErrorCondition, StanzaErrorType>> = {
  'bad-request': 'modify',
  conflict: 'cancel',
  'feature-not-implemented': 'cancel',
  forbidden: 'auth',
  gone: 'cancel',
  'internal-server-error': 'cancel',
  'item-not-found': 'cancel',
  'jid-malformed': 'modify',
  'not-acceptable': 'modify',
  'not-allowed': 'cancel',
  'not-authorized': 'auth',
  'policy-violation': 'modify',
  'recipient-unavailable': 'wait',
  redirect: 'modify',
  'registration-required': 'auth',
  'remote-server-not-found': 'cancel',
  'remote-server-timeout': 'wait',
  'resource-constraint': 'wait',
  'service-unavailable': 'cancel',
  'subscription-required': 'auth',
  'undefined-condition': 'cancel',
  'unexpected-request': 'wait',
};

/**
 * A stanza-level error (RFC 6120 §8.3): thrown by handlers, turned into an
 * error reply by the router. `by` is the JID of the entity that generated it.
 */
export class StanzaError extends Error {
  readonly condition: StanzaErrorCondition;
  readonly type: StanzaErrorType;
  readonly text: string | undefined;
  /** Application-specific condition element (RFC 6120 §8.3.4), if any. */
  readonly appCondition: XmlElement | undefined;
  constructor(condition: StanzaErrorCondition, text?: string, type?: StanzaErrorType, appCondition?: XmlElement) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = 'StanzaError';
    this.condition = condition;
    this.type = type ?? DEFAULT_ERROR_TYPE[condition];
    this.text = text;
    this.appCondition = appCondition;
  }

  /** The `<error/>` child element (RFC 6120 §8.3.2). */
  toElement(by?: string): XmlElement {
    return xml(
      'error',
      { type: this.type, by },
      xml(this.condition, { xmlns: NS.STANZAS }),
      this.text ? xml('text', { xmlns: NS.STANZAS, 'xml:lang': 'en' }, this.text) : null,
      this.appCondition ?? null,
    );
  }
}

/**
 * Builds the error reply to a stanza (RFC 6120 §8.3.1): same name and id, `to`
 * and `from` swapped, `type='error'`, the original payload included (for
 * messages and presence) and the `<error/>` element appended.
 * Returns `null` for a stanza of type `error`: an error is never answered (§8.3.1 rule 1).
 */
export function errorReply(stanza: XmlElement, error: StanzaError, includeOriginal = true): XmlElement | null {
  if (stanza.attrs.type === 'error') return null;
  const attrs: Record<string, string> = { type: 'error' };
  if (stanza.attrs.id !== undefined) attrs.id = stanza.attrs.id;
  if (stanza.attrs.from !== undefined) attrs.to = stanza.attrs.from;
  if (stanza.attrs.to !== undefined) attrs.from = stanza.attrs.to;
  const reply = new XmlElement(stanza.name, stanza.ns, attrs);
  if (includeOriginal && stanza.name !== 'iq') {
    for (const c of stanza.children) reply.append(typeof c === 'string' ? c : c.clone());
  }
  reply.append(error.toElement());
  return reply;
}

/** Reads the condition of an error stanza, or `undefined` if it has none. */
export function stanzaErrorCondition(stanza: XmlElement): string | undefined {
  const err = stanza.getChild('error');
  if (!err) return undefined;
  for (const c of err.children) {
    if (typeof c !== 'string' && c.ns === NS.STANZAS && c.name !== 'text') return c.name;
  }
  return undefined;
}
