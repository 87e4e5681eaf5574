import { BlockList, isIP } from 'node:net';
import {
  JID,
  NS,
  SaslError,
  StanzaError,
  parseDataForm,
  StreamError,
  errorReply,
  xml,
  type StanzaErrorCondition,
  type XmlElement,
} from '@parley/xmpp';
import { registrationPolicy, resolveDataPath } from '../config/index.ts';
import { HANDLED } from '../core/hooks.ts';
import { INVITE_KEY_FILE, loadInviteKey, verifyInvite } from '../core/invites.ts';
import { defineModule } from '../core/module.ts';
import { Router, type StanzaEvent } from '../core/router.ts';
import type { Session } from '../core/session.ts';
import type { PreAuthEvent } from '../streams/c2s.ts';

/** The In-Band Registration namespace (XEP-0077 §13.1). */
export const NS_REGISTER = 'jabber:iq:register';
/** The stream feature namespace (XEP-0077 §8, §13.2). */
export const NS_REGISTER_FEATURE = 'http://jabber.org/features/iq-register';
/** FORM_TYPE of the registration data form (XEP-0077 §4 rule 4, §13.4.1). */
const FORM_TYPE_REGISTER = 'jabber:iq:register';
/** FORM_TYPE of the password change data form (XEP-0077 §3.3, §13.4.3). */
const FORM_TYPE_CHANGEPASSWORD = 'jabber:iq:register:changepassword';
/** kv_store set holding the extra fields an account registered with. */
const KV_SET = 'register';

/**
 * The data-carrying children of `<query xmlns='jabber:iq:register'/>` in the order the
 * schema's xs:sequence fixes (XEP-0077 §14.1); `misc`, `text` and `key` are obsolete.
 * An extra field with one of these names (and a text type) is "equivalent to a defined
 * iq:register field" (§6) and is also offered as that element.
 */
const LEGACY_ORDER = ['username', 'nick', 'password', 'name', 'first', 'last', 'email', 'address', 'city', 'state', 'zip', 'phone', 'url', 'date'];
const LEGACY_NAMES = new Set(LEGACY_ORDER);

/**
 * HTTP-style error codes for the old error syntax, which XEP-0077 §9 requires a server to
 * support alongside the RFC 6120 conditions (mapping of XEP-0086 §3).
 */
const LEGACY_CODES: Partial<Record<StanzaErrorCondition, string>> = {
  'bad-request': '400',
  'jid-malformed': '400',
  'unexpected-request': '400',
  'not-authorized': '401',
  forbidden: '403',
  'item-not-found': '404',
  'not-allowed': '405',
  'not-acceptable': '406',
  'registration-required': '407',
  conflict: '409',
  'internal-server-error': '500',
  'resource-constraint': '500',
  'undefined-condition': '500',
  'feature-not-implemented': '501',
  'service-unavailable': '503',
};

/** A field of the registration form (XEP-0004 §3.2). */
interface FieldDef {
  var: string;
  label: string;
  type: string;
  required: boolean;
}

/** What a client submitted: field name → values, from the data form or the iq:register elements. */
interface Submission {
  values: Map<string, string[]>;
  /** `true` when a data form was submitted (it takes precedence over the elements, XEP-0077 §4 rule 5, §6). */
  form: boolean;
}

/** The error reply to `request`, with the legacy `code` attribute (XEP-0077 §9); never the request's payload. */
function errorFor(request: XmlElement, err: StanzaError): XmlElement | null {
  // errorReply never copies an iq's payload: XEP-0077 §3.3 asks not to echo password changes.
  const reply = errorReply(request, err);
  const code = LEGACY_CODES[err.condition];
  const el = reply?.getChild('error');
  if (el && code) el.attrs.code = code;
  return reply;
}

/**
 * Reads a submission (XEP-0077 §3.1, §4): the `jabber:x:data` form when there is one —
 * it must be of type `submit` with the FORM_TYPE one of `formTypes` when given
 * (`bad-request` otherwise) — or else the iq:register elements.
 */
function readSubmission(query: XmlElement, formTypes: string[]): Submission {
  const values = new Map<string, string[]>();
  const x = query.getChild('x', NS.DATA_FORMS);
  if (x) {
    const form = parseDataForm(x);
    if (form.type !== 'submit') throw new StanzaError('bad-request', "the data form must be of type 'submit' (XEP-0004 §3.1)");
    for (const f of form.fields) if (f.var !== undefined) values.set(f.var, f.values);
    const formType = values.get('FORM_TYPE');
    if (formType !== undefined && !(formType.length === 1 && formTypes.includes(formType[0]!))) {
      throw new StanzaError('bad-request', `FORM_TYPE must be ${formTypes.join(' or ')}`);
    }
    values.delete('FORM_TYPE');
    return { values, form: true };
  }
  for (const c of query.getChildren(undefined, NS_REGISTER)) {
    if (LEGACY_NAMES.has(c.name)) values.set(c.name, [c.text()]);
  }
  return { values, form: false };
}

/** The single value of a field ('' when absent or empty). */
function single(sub: Submission, name: string): string {
  return sub.values.get(name)?.[0] ?? '';
}

/**
 * Sliding-window count of registrations per IP address (`modules.register.rate_limit`),
 * addresses in `exempt` not counted. Memory: one timestamp per registration in the window.
 */
class RegistrationLimiter {
  private stamps = new Map<string, number[]>();
  private exempt = new BlockList();
  constructor(
    private max: number,
    private windowMs: number,
    exempt: readonly string[],
  ) {
    for (const range of exempt) {
      const [address, prefix] = range.split('/') as [string, string | undefined];
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (prefix === undefined) this.exempt.addAddress(address, family);
      else this.exempt.addSubnet(address, Number(prefix), family);
    }
  }

  /**
   * Takes a slot for `address` at `now` (ms): returns a function that gives it back (when
   * the registration then fails), or the ms until a slot frees.
   */
  take(address: string, now = Date.now()): { release: () => void } | { retryMs: number } {
    const family = isIP(address);
    if (family !== 0 && this.exempt.check(address, family === 6 ? 'ipv6' : 'ipv4')) return { release: () => {} };
    const list = (this.stamps.get(address) ?? []).filter((t) => now - t < this.windowMs);
    if (list.length >= this.max) {
      this.stamps.set(address, list);
      return { retryMs: this.windowMs - (now - list[0]!) };
    }
    list.push(now);
    this.stamps.set(address, list);
    return {
      release: () => {
        const cur = this.stamps.get(address);
        const i = cur ? cur.indexOf(now) : -1;
        if (i >= 0) cur!.splice(i, 1);
      },
    };
  }

  /** Forgets addresses with no registration in the window. */
  prune(now = Date.now()): void {
    for (const [address, list] of this.stamps) {
      if (list.every((t) => now - t >= this.windowMs)) this.stamps.delete(address);
    }
  }
}

/** `5m`, `2h`: a rounded-up human duration for error texts. */
function humanMs(ms: number): string {
  return ms >= 3_600_000 ? `${Math.ceil(ms / 3_600_000)}h` : ms >= 60_000 ? `${Math.ceil(ms / 60_000)}m` : `${Math.ceil(ms / 1000)}s`;
}

/**
 * In-Band Registration (XEP-0077) for the server's own accounts.
 *
 * Before authentication (on TLS-protected streams, §11): the `<register/>` stream feature
 * (§8) when `modules.register.policy` allows registration; `get` returns the fields (§3.1,
 * with a `jabber:x:data` form when extra fields or an invitation token are asked for, §4,
 * §6); `set` creates the account. After authentication, on the account itself: `get`
 * answers `<registered/>` (§3.1); `set` with username and password changes the password
 * (§3.3); `set` with `<remove/>` deletes the account and every session (§3.2).
 */
export const registerModule = defineModule({
  name: 'register',
  xeps: ['XEP-0077'],
  load(ctx) {
    const cfg = ctx.config.modules.register;
    const policy = registrationPolicy(ctx.config);
    const inviteKey = policy === 'invite' ? loadInviteKey(resolveDataPath(ctx.config, INVITE_KEY_FILE)) : null;
    const limiter = new RegistrationLimiter(cfg.rate_limit.max, cfg.rate_limit.window, cfg.exempt);
    ctx.every(Math.min(cfg.rate_limit.window, 10 * 60_000), () => limiter.prune());

    const extras: FieldDef[] = cfg.extra_fields.map((f) => ({ var: f.var, label: f.label ?? f.var, type: f.type, required: f.required }));
    const fields: FieldDef[] = [
      { var: 'username', label: 'Username', type: 'text-single', required: true },
      { var: 'password', label: 'Password', type: 'text-private', required: true },
      ...(policy === 'invite' ? [{ var: 'token', label: 'Invitation token', type: 'text-single', required: true }] : []),
      ...extras,
    ];
    const legacyEquivalent = (f: FieldDef) => LEGACY_NAMES.has(f.var) && (f.type === 'text-single' || f.type === 'text-private');
    // §6: iq:register fields with the form only when every required field has an iq:register
    // equivalent; otherwise the form and <instructions/> only. Every element offered must be
    // provided (§3.1), so optional extras are offered in the form only.
    const offerLegacy = fields.every((f) => !f.required || legacyEquivalent(f));
    const offerForm = fields.length > 2;
    const legacyOffered = offerLegacy ? LEGACY_ORDER.filter((n) => n === 'username' || n === 'password' || extras.some((f) => f.var === n && f.required)) : [];

    // §10: jabber:iq:register in the server's disco#info (password change and removal work whatever the policy).
    ctx.onUnload(ctx.disco.host.addFeature(NS_REGISTER));
    // §8: the stream feature, before authentication, when registration is possible on this stream.
    ctx.streamFeature({
      feature: ({ authenticated, secure }) =>
        !authenticated && secure && policy !== 'closed' ? xml('register', { xmlns: NS_REGISTER_FEATURE }) : null,
    });

    /** §3.1 "Host Returns Registration Fields to Entity", plus the data form of §4. */
    function registrationFields(): XmlElement {
      const instructions =
        policy === 'invite'
          ? `Registration on ${ctx.host} needs an invitation: fill in the form with your username, a password and the invitation token you were given.`
          : offerForm && !offerLegacy
            ? `Fill in the form to register on ${ctx.host}.`
            : `Choose a username and password to register on ${ctx.host}.`;
      return xml(
        'query',
        { xmlns: NS_REGISTER },
        xml('instructions', null, instructions),
        legacyOffered.map((n) => xml(n)),
        offerForm
          ? xml(
              'x',
              { xmlns: NS.DATA_FORMS, type: 'form' },
              xml('title', null, `Register on ${ctx.host}`),
              xml('instructions', null, instructions),
              xml('field', { type: 'hidden', var: 'FORM_TYPE' }, xml('value', null, FORM_TYPE_REGISTER)),
              fields.map((f) => xml('field', { type: f.type, var: f.var, label: f.label }, f.required ? xml('required') : null)),
            )
          : null,
      );
    }

    /**
     * Checks a registration submission against the fields (XEP-0077 §3.1: anything
     * required missing or empty → `not-acceptable`; XEP-0004 §3.2, §3.3 and §4 "Data
     * Validation": one value for single-valued types, booleans and JIDs well-formed →
     * `not-acceptable`).
     */
    function validate(sub: Submission): void {
      for (const f of fields) {
        const vals = sub.values.get(f.var) ?? [];
        if (vals.length > 1 && f.type !== 'text-multi') throw new StanzaError('not-acceptable', `the field '${f.var}' takes one value`);
        const v = vals.join('\n');
        if (v === '') {
          if (f.required) throw new StanzaError('not-acceptable', `'${f.var}' is required`);
          continue;
        }
        if (f.type === 'boolean' && !/^(?:0|1|true|false)$/.test(v)) throw new StanzaError('not-acceptable', `'${f.var}' must be true or false`);
        if (f.type === 'jid-single' && !JID.tryParse(v)) throw new StanzaError('not-acceptable', `'${f.var}' must be a JID`);
      }
    }

    /** §3.1 "Entity Provides Required Information": creates the account or throws the condition. */
    async function register(query: XmlElement, remoteAddress: string): Promise<void> {
      const sub = readSubmission(query, [FORM_TYPE_REGISTER]);
      validate(sub);
      // RFC 6120 §8.3.3.8: a localpart that violates RFC 7622 §3.3 is jid-malformed (XEP-0077 names no condition).
      const user = ctx.accounts.prepareUsername(single(sub, 'username'));
      if (inviteKey) {
        const check = verifyInvite(inviteKey, ctx.host, single(sub, 'token'));
        // RFC 6120 §8.3.3.4: without a valid invitation the entity lacks the permission to register.
        if (!check.valid) throw new StanzaError('forbidden', `invitation: ${check.reason}`);
        if (check.username !== null && check.username !== user) {
          throw new StanzaError('forbidden', `this invitation is for the username '${check.username}'`);
        }
      }
      // §3.1: "the desired username is already in use" (checked first to spare the key derivation).
      if (await ctx.accounts.exists(user)) throw new StanzaError('conflict', `the username '${user}' is taken`);
      const slot = limiter.take(remoteAddress);
      if ('retryMs' in slot) {
        // §3.1.1: a server MAY return not-acceptable when an unregistered entity registers too many times.
        throw new StanzaError('not-acceptable', `too many registrations from your address; try again in ${humanMs(slot.retryMs)}`, 'wait');
      }
      try {
        await ctx.accounts.create(user, single(sub, 'password'));
      } catch (err) {
        slot.release();
        // A password SASLprep refuses (RFC 4013) could never be used to log in.
        if (err instanceof SaslError) throw new StanzaError('not-acceptable', 'the password contains characters that are not allowed (SASLprep, RFC 4013)');
        throw err;
      }
      for (const f of extras) {
        const v = (sub.values.get(f.var) ?? []).join('\n');
        if (v !== '') await ctx.kv.set(ctx.host, user, KV_SET, f.var, v).catch((err) => ctx.log.error({ err }, 'register: storing a field failed'));
      }
      ctx.log.info({ user, ip: remoteAddress, invite: inviteKey !== null }, 'register: account created in-band');
      await ctx.router.hooks
        .emit('user/registered', { username: user, jid: `${user}@${ctx.host}`, remoteAddress })
        .catch((err) => ctx.log.error({ err }, 'user/registered hook failed'));
    }

    /** Before authentication: `preauth/iq/jabber:iq:register` from c2s. */
    async function preAuth(ev: PreAuthEvent): Promise<void> {
      const { stanza, stream } = ev;
      const type = stanza.attrs.type;
      if (type !== 'get' && type !== 'set') return; // c2s has validated the request; this narrows the type
      try {
        const query = stanza.getChild('query', NS_REGISTER);
        if (!query) throw new StanzaError('bad-request', "the payload is <query xmlns='jabber:iq:register'/>");
        // §3.1: "If the host does not support In-Band Registration, it MUST return a <service-unavailable/> error."
        if (policy === 'closed') throw new StanzaError('service-unavailable', `accounts on ${ctx.host} are not created in-band`);
        // §11: not over a channel that is not secured (the condition §3.3 uses for an unsafe channel).
        if (!stream.secure) throw new StanzaError('not-authorized', 'registration needs a TLS-protected stream');
        if (type === 'get') {
          stream.send(xml('iq', { type: 'result', id: stanza.attrs.id, from: stanza.attrs.to }, registrationFields()));
          return;
        }
        // §3.2 Unregister Error Cases: unexpected-request when the entity is not registered with the server.
        if (query.getChild('remove', NS_REGISTER)) throw new StanzaError('unexpected-request', 'authenticate to remove your account');
        await register(query, stream.remoteAddress);
        stream.send(xml('iq', { type: 'result', id: stanza.attrs.id, from: stanza.attrs.to }));
      } catch (err) {
        const reply = errorFor(stanza, asStanzaError(err));
        if (reply) stream.send(reply);
      }
    }

    function asStanzaError(err: unknown): StanzaError {
      if (err instanceof StanzaError) return err;
      ctx.log.error({ err }, 'register: request failed');
      return new StanzaError('internal-server-error');
    }

    ctx.on('preauth/iq/jabber:iq:register', (ev: PreAuthEvent) => {
      void preAuth(ev);
      return HANDLED;
    });

    /** After authentication: requests of an account to the server or to its own bare JID. */
    const accountRequest = (ev: StanzaEvent): boolean | Promise<boolean> => {
      const session = ev.origin;
      if (!session || ev.from.domain !== ctx.host || ev.from.local === '') return false;
      // Requests to another account's bare JID are not ours to answer (the router says service-unavailable).
      if (ev.kind === 'bare' && ev.to.bareString() !== ev.from.bareString()) return false;
      return handleAccount(ev, session).then(() => HANDLED);
    };
    ctx.on(`iq/host/${NS_REGISTER}`, accountRequest);
    ctx.on(`iq/bare/${NS_REGISTER}`, accountRequest);

    /** Replies on the requesting session itself, so a result precedes a stream close (§3.2). */
    function answer(ev: StanzaEvent, session: Session, payload: XmlElement | null): void {
      // A request with no 'to' is answered without 'from' (as ModuleContext.iq does, RFC 6120 §10.3.3).
      session.send(Router.resultFor(ev.stanza, payload));
    }

    async function handleAccount(ev: StanzaEvent, session: Session): Promise<void> {
      const { stanza } = ev;
      try {
        const query = stanza.getChild('query', NS_REGISTER);
        if (!query) throw new StanzaError('bad-request', "the payload is <query xmlns='jabber:iq:register'/>");
        const user = ev.from.local;
        if (stanza.attrs.type === 'get') return answer(ev, session, await registered(user));
        if (query.getChild('remove', NS_REGISTER)) {
          // §3.2 Unregister Error Cases: bad-request when <remove/> is not the only child of <query/>.
          if (query.getChildren().length !== 1) throw new StanzaError('bad-request', '<remove/> must be the only child of <query/>');
          return await removeAccount(ev, session);
        }
        await changePassword(query, user, session);
        answer(ev, session, null);
      } catch (err) {
        const reply = errorFor(stanza, asStanzaError(err));
        if (reply) session.send(reply);
      }
    }

    /** §3.1 "Host Informs Entity of Current Registration": <registered/>, the username and what is on file. */
    async function registered(user: string): Promise<XmlElement> {
      const stored = await ctx.kv.all(ctx.host, user, KV_SET);
      return xml(
        'query',
        { xmlns: NS_REGISTER },
        xml('registered'),
        xml('instructions', null, 'You are registered. To change your password, send your username and a new password; to delete your account, send <remove/>.'),
        LEGACY_ORDER.map((n) => {
          if (n === 'username') return xml('username', null, user);
          // Only SCRAM keys are stored: "the <password/> element MAY be empty".
          if (n === 'password') return xml('password');
          const v = stored.get(n);
          return v === undefined ? null : xml(n, null, v);
        }),
      );
    }

    /**
     * §3.3: username and new password, as iq:register elements or a
     * `jabber:iq:register:changepassword` form (whose `old_password`, when given, must be
     * right). Conditions from the Password Change Error Cases table.
     */
    async function changePassword(query: XmlElement, user: string, session: Session): Promise<void> {
      // "The server or service does not consider the channel safe enough to enable a password change."
      if (!session.secure) throw new StanzaError('not-authorized', 'change the password over a TLS-protected stream');
      const sub = readSubmission(query, [FORM_TYPE_CHANGEPASSWORD, FORM_TYPE_REGISTER]);
      const given = single(sub, 'username');
      const password = single(sub, 'password');
      // "does not contain complete information"; an empty <password/> keeps the existing password.
      if (given === '' || password === '') throw new StanzaError('bad-request', 'send <username/> and a non-empty <password/>');
      // The username may be the localpart or the bare JID (§3.3 form example); it must be the requester's own.
      const j = JID.tryParse(given.includes('@') ? given : `${given}@${ctx.host}`);
      if (!j || j.local !== user || j.domain !== ctx.host || j.resource !== '') {
        throw new StanzaError('bad-request', 'the username is not the one of this account');
      }
      const old = sub.values.get('old_password');
      if (old !== undefined && !(await ctx.accounts.verifyPassword(user, old[0] ?? ''))) {
        throw new StanzaError('not-authorized', 'the old password is wrong');
      }
      try {
        await ctx.accounts.setPassword(user, password);
      } catch (err) {
        if (err instanceof SaslError) throw new StanzaError('bad-request', 'the password contains characters that are not allowed (SASLprep, RFC 4013)');
        throw err;
      }
      ctx.log.info({ user, ip: session.remoteAddress }, 'register: password changed in-band');
    }

    /**
     * §3.2 "Entity Cancels an Existing Registration" with the home server: remove the
     * account (its roster, offline messages, vCard and private data go with it: ON DELETE
     * CASCADE), answer the result, then end every session of the account with the
     * `<not-authorized/>` stream error.
     */
    async function removeAccount(ev: StanzaEvent, session: Session): Promise<void> {
      const user = ev.from.local;
      const bare = ev.from.bare();
      const payload = { username: user, jid: bare.toString() };
      // While the account's data still exists (e.g. to cancel presence subscriptions, §3.2).
      await ctx.router.hooks.emit('user/deleting', payload).catch((err) => ctx.log.error({ err }, 'user/deleting hook failed'));
      // §3.2 Unregister Error Cases: registration-required when the entity was not registered.
      if (!(await ctx.accounts.remove(user))) throw new StanzaError('registration-required');
      answer(ev, session, null);
      for (const s of ctx.sessions.resources(bare)) s.close(new StreamError('not-authorized', 'the account was removed'));
      // Whatever the session list says, the requesting stream ends too.
      session.close(new StreamError('not-authorized', 'the account was removed'));
      ctx.log.info({ user, ip: session.remoteAddress }, 'register: account removed in-band');
      await ctx.router.hooks.emit('user/deleted', payload).catch((err) => ctx.log.error({ err }, 'user/deleted hook failed'));
    }
  },
});
