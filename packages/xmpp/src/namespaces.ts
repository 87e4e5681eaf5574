/**
 * XML namespace names used by XMPP (RFC 6120, RFC 6121 and the XEPs).
 * One constant per namespace, named after the protocol it belongs to.
 */
export const NS = {
  CLIENT: 'jabber:client',
  SERVER: 'jabber:server',
  COMPONENT_ACCEPT: 'jabber:component:accept',
  STREAM: 'http://etherx.jabber.org/streams',
  STREAMS: 'urn:ietf:params:xml:ns:xmpp-streams',
  STANZAS: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  TLS: 'urn:ietf:params:xml:ns:xmpp-tls',
  SASL: 'urn:ietf:params:xml:ns:xmpp-sasl',
  BIND: 'urn:ietf:params:xml:ns:xmpp-bind',
  SESSION: 'urn:ietf:params:xml:ns:xmpp-session',
  XML: 'http://www.w3.org/XML/1998/namespace',
  DISCO_INFO: 'http://jabber.org/protocol/disco#info',
  DISCO_ITEMS: 'http://jabber.org/protocol/disco#items',
  PING: 'urn:xmpp:ping',
  VERSION: 'jabber:iq:version',
  TIME: 'urn:xmpp:time',
  CAPS: 'http://jabber.org/protocol/caps',
  SASL_CB: 'urn:xmpp:sasl-cb:0',
  DATA_FORMS: 'jabber:x:data',
  DELAY: 'urn:xmpp:delay',
  /** RFC 7395 §3.3: XMPP over WebSocket framing (`<open/>`, `<close/>`). */
  FRAMING: 'urn:ietf:params:xml:ns:xmpp-framing',
  /** XEP-0124 §4: the BOSH `<body/>` wrapper. */
  HTTPBIND: 'http://jabber.org/protocol/httpbind',
  /** XEP-0206 §6: BOSH attributes qualified for XMPP (`xmpp:version`, `xmpp:restart`). */
  XBOSH: 'urn:xmpp:xbosh',
} as const;

/** Namespaces that a stanza may be qualified by at stream level (RFC 6120 §4.8.3). */
export const CONTENT_NAMESPACES: ReadonlySet<string> = new Set([NS.CLIENT, NS.SERVER, NS.COMPONENT_ACCEPT]);
