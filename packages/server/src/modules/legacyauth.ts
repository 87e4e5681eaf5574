import { StanzaError, StreamError, errorReply, xml, type StanzaErrorCondition, type XmlElement } from '@parley/xmpp';
import { HANDLED } from '../core/hooks.ts';
import { defineModule } from '../core/module.ts';
import type { PreAuthEvent } from '../streams/c2s.ts';

/** The Non-SASL Authentication namespace (XEP-0078 §9.1). */
export const NS_AUTH = 'jabber:iq:auth';
/** The stream feature namespace (XEP-0078 §4, §9.2). */
export const NS_AUTH_FEATURE = 'http://jabber.org/features/iq-auth';

/** HTTP-style codes sent beside the conditions: XEP-0078 §5 asks for both error syntaxes (mapping of XEP-0086 §3). */
const LEGACY_CODES: Partial<Record<StanzaErrorCondition, string>> = {
  'bad-request': '400',
  'not-authorized': '401',
  'not-acceptable': '406',
  conflict: '409',
  'internal-server-error': '500',
  'service-unavailable': '503',
  'unexpected-request': '400',
};

/** The error reply to `request`, with the old `code` (XEP-0078 §5) and without the credentials (§3: SHOULD NOT include the original XML). */
function errorFor(request: XmlElement, err: StanzaError): XmlElement | null {
  const reply = errorReply(request, err); // never copies an iq's payload
  const code = LEGACY_CODES[err.condition];
  const el = reply?.getChild('error');
  if (el && code) el.attrs.code = code;
  return reply;
}

/**
 * Non-SASL authentication (XEP-0078, `jabber:iq:auth`) for clients that predate SASL.
 * Obsolete (§1) and off by default: `modules.legacyauth.enabled`.
 *
 * Enabled, before authentication on a TLS-protected stream: the `<auth
 * xmlns='http://jabber.org/features/iq-auth'/>` stream feature (§4, "a server MAY advertise
 * this feature only after successful TLS negotiation"); `get` returns the fields
 * `<username/>`, `<password/>`, `<resource/>` (§3, the same whether or not a given username
 * exists); `set` with username, password and resource authenticates and binds the resource in
 * one step (C2SStream `legacyLogin`), after which the stream is a bound session.
 *
 * Only the plaintext method: the `<digest/>` method (§3, SHA1(stream id + password)) needs the
 * password itself, and Parley stores only SCRAM keys (ARCHITECTURE §4), from which the digest
 * cannot be computed. So `<digest/>` is never offered and a set without `<password/>` gets
 * `not-acceptable`. The password travels inside TLS only (§7: plaintext "SHOULD NOT be used
 * unless the underlying stream is encrypted").
 *
 * Errors (§3, with the old codes, §5): a missing or empty username, password or resource →
 * `not-acceptable` (406); unknown account or wrong password → `not-authorized` (401); a stream
 * without TLS → `not-authorized`; after a failed SASL attempt → `policy-violation` stream
 * error (§3, §7). A resource already in use is not a `conflict`: the older session is replaced,
 * as §3 recommends. Disabled (the default), every request gets `service-unavailable` (503): "If
 * the server does not support non-SASL authentication ... it MUST return a
 * <service-unavailable/> error" (§3).
 */
export const legacyAuthModule = defineModule({
  name: 'legacyauth',
  xeps: ['XEP-0078'],
  load(ctx) {
    const enabled = ctx.config.modules.legacyauth.enabled;
    if (enabled) {
      ctx.streamFeature({
        feature: ({ authenticated, secure }) => (!authenticated && secure ? xml('auth', { xmlns: NS_AUTH_FEATURE }) : null),
      });
    }

    async function handle(ev: PreAuthEvent): Promise<void> {
      const { stanza, stream } = ev;
      const type = stanza.attrs.type;
      if (type !== 'get' && type !== 'set') return; // c2s has validated the request; this narrows the type
      const reply = (payload: XmlElement | null) => xml('iq', { type: 'result', id: stanza.attrs.id, from: stanza.attrs.to }, payload);
      try {
        if (!enabled) throw new StanzaError('service-unavailable', 'non-SASL authentication is not offered; use SASL (RFC 6120 §6)');
        // §3 / §7: "If a client attempts to authenticate using the 'jabber:iq:auth' namespace after an attempt at SASL
        // authentication fails, the server MUST refuse the 'jabber:iq:auth' attempt by returning a <policy-violation/> stream error".
        if (stream.saslFailed) {
          stream.close(new StreamError('policy-violation', 'jabber:iq:auth after a failed SASL attempt'));
          return;
        }
        if (!stream.secure) throw new StanzaError('not-authorized', 'non-SASL authentication needs a TLS-protected stream');
        const query = stanza.getChild('query', NS_AUTH)!;
        if (type === 'get') {
          // §3 "Server Returns Authentication Fields": no <digest/> (see above); no error for an unknown username.
          stream.send(reply(xml('query', { xmlns: NS_AUTH }, xml('username'), xml('password'), xml('resource'))));
          return;
        }
        const username = query.getChildText('username', NS_AUTH)?.trim() ?? '';
        const password = query.getChildText('password', NS_AUTH) ?? '';
        const resource = query.getChildText('resource', NS_AUTH)?.trim() ?? '';
        // §3: "Both the username and the resource are REQUIRED"; missing information → not-acceptable.
        if (username === '' || resource === '') throw new StanzaError('not-acceptable', 'username and resource are required');
        if (password === '') {
          throw new StanzaError(
            'not-acceptable',
            query.getChild('digest', NS_AUTH)
              ? 'digest authentication is not supported (the server keeps only SCRAM keys); send <password/>'
              : 'password is required',
          );
        }
        const r = await stream.legacyLogin(username, password, resource, reply(null));
        if ('error' in r) throw r.error;
        ctx.log.debug({ user: username, resource, ip: stream.remoteAddress }, 'legacyauth: authenticated with jabber:iq:auth');
      } catch (err) {
        const e =
          err instanceof StanzaError
            ? err
            : (ctx.log.error({ err }, 'legacyauth: request failed'), new StanzaError('internal-server-error'));
        const r = errorFor(stanza, e);
        if (r) stream.send(r);
      }
    }

    ctx.on(`preauth/iq/${NS_AUTH}`, (ev: PreAuthEvent) => {
      void handle(ev);
      return HANDLED;
    });
  },
});
