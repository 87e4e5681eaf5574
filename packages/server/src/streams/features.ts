import type { XmlElement } from '@parley/xmpp';
import type { Session } from '../core/session.ts';

/**
 * A stream feature offered to clients after authentication (RFC 6120 §4.3.2),
 * registered by a module (e.g. stream management, client state indication).
 */
export interface StreamFeatureProvider {
  /** The element advertised in `<stream:features/>`, or `null` to offer nothing on this stream. */
  feature(info: { authenticated: boolean; bound: boolean; secure: boolean }): XmlElement | null;
  /** The namespace of the first-level elements (nonzas) this feature handles, e.g. `urn:xmpp:sm:3`. */
  ns?: string;
  /** Handles a nonza in {@link ns} received on a bound stream. */
  handle?(el: XmlElement, session: Session): void;
}
