/**
 * The starting configuration written by `parley init`: every option with its default value
 * and a one-line explanation. Parsing it gives exactly the defaults (with the chosen domain),
 * which test/config.test.ts checks. Keep it in step with schema.ts and docs/configuration.md.
 */

/** A YAML scalar: plain when safe and unambiguous, else a JSON (= YAML double-quoted) string. */
function scalar(value: string | number | boolean | null): string {
  if (value === null) return 'null';
  if (typeof value !== 'string') return String(value);
  const plainSafe =
    /^[A-Za-z0-9_./-]+$/.test(value) &&
    !value.startsWith('-') &&
    !/^\.(?:inf|nan)$/i.test(value) &&
    !/^(?:true|false|null|yes|no|on|off|y|n|~)$/i.test(value) &&
    !/^[-+]?(?:\d[\d_]*)?(?:\.\d*)?(?:e[-+]?\d+)?$/i.test(value) &&
    !/^0[xo]/i.test(value);
  return plainSafe ? value : JSON.stringify(value);
}

/** A YAML flow sequence of scalars: `[a, "b c"]`. */
function list(values: readonly string[]): string {
  return `[${values.map(scalar).join(', ')}]`;
}

/**
 * Returns the text of a commented starting `parley.yaml`.
 *
 * Takes `domain` (the XMPP domain to serve, default `localhost`; written as given, validated
 * only when the file is loaded). Every option appears with its default value and a comment;
 * the PostgreSQL storage and a real certificate appear as commented-out alternatives.
 */
export function configTemplate(opts: { domain?: string } = {}): string {
  const domain = opts.domain ?? 'localhost';
  return `# Parley XMPP server configuration.
#
# Every option is listed below with its default value; delete or comment out what you do
# not change. Durations are a number of milliseconds or a string such as "500ms", "30s",
# "5m", "1h". Relative paths are relative to the directory of this file.
# Check the file with "parley check --config parley.yaml"; see docs/configuration.md.

# The XMPP domain this server serves: the part after "@" in your users' addresses (RFC 7622).
domain: ${scalar(domain)}

# Directory for the SQLite database and the generated TLS certificate.
data_dir: ${scalar('./data')}

# Log verbosity: fatal, error, warn, info, debug, trace or silent.
log_level: info

# Client-to-server connections (RFC 6120).
c2s:
  # TCP port for XMPP clients, with STARTTLS (0 = any free port, for tests).
  port: 5222
  # TCP port for clients that start TLS at once (XEP-0368); null disables it.
  direct_tls_port: 5223
  # Addresses to listen on; "::" is every interface, IPv6 and IPv4.
  interfaces: ${list(['::'])}
  # Refuse to authenticate clients before STARTTLS (RFC 6120 §5.3.1). Keep this true.
  require_encryption: true
  # Close connections that have not authenticated after this long.
  auth_timeout: 30s

# The HTTP listener: XMPP over WebSocket (RFC 7395), BOSH (XEP-0124/0206), connection-method
# discovery (XEP-0156, /.well-known/host-meta) and the web chat page. See docs/web.md.
http:
  # Plain HTTP port; null disables it.
  port: 5280
  # HTTPS port, with the certificate of the tls section; null disables it.
  tls_port: 5281
  # Addresses to listen on. Loopback only by default: put a reverse proxy in front (docs/web.md)
  # or list public addresses.
  interfaces: ${list(['127.0.0.1', '::1'])}
  # Web origins (e.g. "https://example.com") allowed to use WebSocket and BOSH from a browser,
  # besides the server's own pages; "*" allows any.
  allowed_origins: []
  # Count plain-HTTP connections from loopback (a local browser, a reverse proxy on this host
  # that terminates TLS) as encrypted, so that clients may authenticate over them.
  secure_loopback: true
  # Take the client address and scheme from X-Forwarded-For / X-Forwarded-Proto (only behind
  # a reverse proxy you run).
  trust_proxy: false
  # XMPP over WebSocket (RFC 7395).
  websocket:
    # Serve WebSocket connections.
    enabled: true
    # URL path of the WebSocket endpoint.
    path: /xmpp-websocket
    # Interval of WebSocket pings; a client that misses one is disconnected.
    keepalive: 30s
  # BOSH (XEP-0124, XEP-0206).
  bosh:
    # Serve BOSH sessions.
    enabled: true
    # URL path of the BOSH endpoint.
    path: /http-bind
    # Longest time a request is held waiting for data ("wait" is capped to this).
    max_wait: 60s
    # A session with no request in flight for this long is ended.
    max_inactivity: 60s
    # Most requests a client may have the server hold ("hold" is capped to this).
    max_hold: 1
    # Longest pause a client may ask for (XEP-0124 §10).
    max_pause: 120s
  # The web chat page (Converse.js) for this server.
  chat:
    # Serve the page (false turns it off).
    enabled: true
    # URL path of the page.
    path: /chat

# TLS certificate for STARTTLS and direct TLS.
tls:
  # PEM certificate chain; null (with key null) = a self-signed pair generated in data_dir
  # on first start (fine for tests, refused by most clients and servers).
  certificate: null
  # PEM private key of the certificate; set both or neither.
  key: null
  # e.g.  certificate: /etc/letsencrypt/live/example.com/fullchain.pem
  #       key: /etc/letsencrypt/live/example.com/privkey.pem
  # Oldest TLS version accepted: TLSv1.2 or TLSv1.3.
  min_version: TLSv1.2

# Authentication (SASL, RFC 6120 §6).
auth:
  # Mechanisms offered, most preferred first. -PLUS = SCRAM with channel binding (RFC 9266).
  mechanisms: ${list(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-1', 'PLAIN'])}
  # PBKDF2 iterations for new SCRAM credentials; at least 4096 (RFC 7677 §4).
  scram_iterations: 4096
  # UNSAFE: offer PLAIN (clear-text password) on unencrypted connections.
  allow_plain_without_tls: false
  # Delay after a failed login from one IP address, doubled per consecutive failure ...
  failure_delay: 1s
  # ... up to this much.
  max_failure_delay: 30s

# Limits on what a client may send (RFC 6120 §13.12); exceeding one closes the stream
# with a policy-violation error.
limits:
  # Largest stanza, in bytes (256 KiB); at least 10000.
  max_stanza_size: 262144
  # Deepest element nesting within a stanza.
  max_depth: 32
  # Most attributes on one element.
  max_attributes: 64
  # Bytes queued for a client that does not read its stream (4 MiB) before the server gives
  # up on it (policy-violation stream error), so a stuck client cannot grow the server's memory.
  max_output_queue: 4194304

# Server-initiated pings of idle clients (XEP-0199).
ping:
  # Ping a client silent for this long; null disables pings.
  interval: 5m
  # Close the stream (connection-timeout) if the ping is not answered within this.
  timeout: 60s

# Where accounts, rosters and other data are stored.
storage:
  # sqlite: one file in data_dir (the embedded default).
  driver: sqlite
  # The SQLite file, relative to data_dir.
  path: parley.db
  # For PostgreSQL, replace the two lines above with:
  # driver: postgres
  # url: postgres://parley:secret@localhost:5432/parley
  # pool_size: 10

# Server modules (features).
modules:
  # Built-in modules to turn off: disco, ping, version, time, presence, offline, vcard, private, register, blocking, last, caps,
  # legacyauth, muc.
  disabled: []
  # Third-party modules to load: file paths or npm package names.
  extra: []
  # Software version reported to other entities (XEP-0092).
  version:
    # Software name reported.
    name: Parley
    # Also report the operating system.
    show_os: false
  # vCards (XEP-0054).
  vcard:
    # Largest vCard a user may store, in bytes of XML (128 KiB); a larger one is refused
    # with not-acceptable. A vCard also has to fit in limits.max_stanza_size.
    max_size: 131072
  # In-band registration, password change and account removal by clients (XEP-0077).
  register:
    # Who may create an account from a client: open (anyone), closed (nobody; accounts
    # are made with "parley user add"), invite (only with a token from "parley user invite").
    # null = open when domain is localhost, closed for any other domain.
    policy: null
    # More fields for the registration form, e.g.
    #   - { var: email, label: Email address, type: text-single, required: true }
    # type: text-single, text-private, text-multi, boolean or jid-single.
    extra_fields: []
    # At most max registrations per IP address within window; more are refused.
    rate_limit:
      # Registrations allowed per address per window.
      max: 5
      # The sliding window.
      window: 1h
    # Addresses (or CIDR ranges) the rate limit does not apply to.
    exempt: ${list(['127.0.0.0/8', '::1'])}
  # Rosters (RFC 6121 §2).
  roster:
    # Most contacts one account may have; adding more is refused with not-allowed.
    max_items: 1000
  # Offline messages (XEP-0160).
  offline:
    # Messages kept per account while it is offline; beyond it senders get service-unavailable.
    max_messages: 500
  # Multi-user chat (XEP-0045): group chat rooms on a service of their own.
  muc:
    # The service's address; null = conference.<domain>.
    host: null
    # The service's name in service discovery.
    name: Chatrooms
    # Who may create rooms: anyone (any JID, also of other servers), local (accounts of
    # this server), admins (only the JIDs listed in admins).
    creation: local
    # Bare JIDs that own every room (they may configure and destroy any room).
    admins: []
    # Messages of discussion history a room keeps and sends on join, at most; an owner may
    # lower it for a room (muc#maxhistoryfetch).
    history_length: 20
    # The largest room an owner may configure (muc#roomconfig_maxusers).
    max_users: 1000
    # Accept a join without the <x xmlns='http://jabber.org/protocol/muc'/> element, as
    # very old clients send it (groupchat 1.0); false = answer it with a kick (status 333).
    groupchat_1_0: true
    # The configuration a new room starts with (its owner may change it).
    default_room:
      # Listed in the service's room list (muc#roomconfig_publicroom).
      public: true
      # Kept when the last occupant leaves, and across restarts.
      persistent: false
      # Only members may enter.
      members_only: false
      # Only occupants with voice may speak.
      moderated: false
      # Who sees occupants' real JIDs: moderators or anyone.
      whois: moderators
      # Who may send private messages: anyone, participants, moderators or none.
      allow_pm: anyone
      # Members may invite others (in members-only rooms invitations add members).
      allow_invites: false
      # Participants (not only moderators) may change the subject.
      change_subject: false
      # Announce that the room is logged publicly (muc#roomconfig_enablelogging).
      logging: false
      # Occupants at most (muc#roomconfig_maxusers).
      max_users: 200
  # Non-SASL authentication (XEP-0078, jabber:iq:auth), obsolete: only for very old clients.
  legacyauth:
    # Offer it (plain password over TLS only; digest is not possible with SCRAM-only storage).
    enabled: false

# What the server tells about itself in service discovery (XEP-0030 disco#info).
server_info:
  # Contact addresses (XEP-0157), each a list of URIs such as mailto:, xmpp: or https:, e.g.
  #   admin: ["xmpp:admin@example.com", "mailto:xmpp@example.com"]
  contact:
    # Where to report abusive traffic (spam, attacks from accounts of this server).
    abuse: []
    # The service administrators.
    admin: []
    # Customer feedback.
    feedback: []
    # Sales and marketing.
    sales: []
    # Security concerns (vulnerability reports).
    security: []
    # Service status pages (these must be URIs).
    status: []
    # Customer support.
    support: []
  # More extended information forms (XEP-0128), e.g.
  #   - form_type: urn:example:info
  #     fields: { motd: "Welcome", ip_version: [ipv4, ipv6] }
  extra_forms: []
`;
}
