import { parseXml, type XmlElement, type XmlStreamLimits } from '@parley/xmpp';

/**
 * Limits for re-reading XML the server stored itself (vCards, private XML):
 * the data passed the stream limits when it was received, and a stored element
 * sits at least one level shallower than it did inside its stanza, so only
 * sanity bounds apply here.
 */
const STORED_LIMITS: XmlStreamLimits = { maxStanzaSize: 64 * 1024 * 1024, maxDepth: 1000, maxAttributes: 10_000 };

/**
 * Serializes an element for a `kv_store` value: the element with its own
 * `xmlns` always written (so it parses back to the same namespace wherever it
 * is later inserted). Returns the XML text (UTF-8 when stored).
 */
export function serializeStored(el: XmlElement): string {
  return el.toString('');
}

/**
 * Parses a value written by {@link serializeStored} back into an element.
 * Throws a StreamError (`not-well-formed`) if the stored text is corrupt;
 * the router turns that into `internal-server-error` for the requester.
 */
export function parseStored(text: string): XmlElement {
  return parseXml(text, STORED_LIMITS);
}
