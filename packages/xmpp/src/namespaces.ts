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
  /** XEP-0045 §19.1: multi-user chat (join element, `muc#user`, `muc#admin`, `muc#owner`, forms). */
  MUC: 'http://jabber.org/protocol/muc',
  MUC_USER: 'http://jabber.org/protocol/muc#user',
  MUC_ADMIN: 'http://jabber.org/protocol/muc#admin',
  MUC_OWNER: 'http://jabber.org/protocol/muc#owner',
  MUC_ROOMCONFIG: 'http://jabber.org/protocol/muc#roomconfig',
  MUC_ROOMINFO: 'http://jabber.org/protocol/muc#roominfo',
  MUC_REQUEST: 'http://jabber.org/protocol/muc#request',
  MUC_STABLE_ID: 'http://jabber.org/protocol/muc#stable_id',
  /** XEP-0410 §3: the room answers self-pings itself. */
  MUC_SELF_PING: 'http://jabber.org/protocol/muc#self-ping-optimization',
  /** XEP-0421: anonymous unique occupant identifiers. */
  OCCUPANT_ID: 'urn:xmpp:occupant-id:0',
  /** XEP-0359: unique and stable stanza IDs. */
  SID: 'urn:xmpp:sid:0',
  /** XEP-0249: direct MUC invitations. */
  CONFERENCE: 'jabber:x:conference',
  /** RFC 7395 §3.3: XMPP over WebSocket framing (`<open/>`, `<close/>`). */
  FRAMING: 'urn:ietf:params:xml:ns:xmpp-framing',
  /** XEP-0124 §4: the BOSH `<body/>` wrapper. */
  HTTPBIND: 'http://jabber.org/protocol/httpbind',
  /** XEP-0206 §6: BOSH attributes qualified for XMPP (`xmpp:version`, `xmpp:restart`). */
  XBOSH: 'urn:xmpp:xbosh',
} as const;

/** Namespaces that a stanza may be qualified by at stream level (RFC 6120 §4.8.3). */
export const CONTENT_NAMESPACES: ReadonlySet<string> = new Set([NS.CLIENT, NS.SERVER, NS.COMPONENT_ACCEPT]);
