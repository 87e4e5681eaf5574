import { JID, StanzaError } from '@parley/xmpp';
import { parseDuration, registrationPolicy, resolveDataPath } from '../config/index.ts';
import { CommandRegistry } from './commands.ts';
import { INVITE_KEY_FILE, createInvite, loadInviteKey } from './invites.ts';

/** `alice` or `alice@domain` → the username, checking the domain (`jid-malformed`, `item-not-found`). */
function usernameOf(arg: string | undefined, domain: string): string {
  if (arg === undefined || arg === '') throw new StanzaError('bad-request', 'a username is required');
  if (!arg.includes('@')) return arg;
  const j = JID.tryParse(arg);
  if (!j || j.resource !== '' || j.local === '') throw new StanzaError('jid-malformed', `'${arg}' is not a valid account address`);
  if (j.domain !== domain) throw new StanzaError('item-not-found', `'${arg}' is not on this server's domain (${domain})`);
  return j.local;
}

/** The built-in administrative commands: account management. */
export const ADMIN_COMMANDS = new CommandRegistry();

ADMIN_COMMANDS.define({
  name: 'user.add',
  description: 'create an account (the password is asked for when not given)',
  permission: 'admin',
  args: [
    { name: 'username', description: 'localpart or bare JID' },
    { name: 'password', description: 'the password', optional: true, secret: true },
  ],
  async run({ accounts, config }, a) {
    const u = await accounts.create(usernameOf(a.username, config.domain), a.password ?? '');
    return [`created ${u}@${config.domain}`];
  },
});

ADMIN_COMMANDS.define({
  name: 'user.passwd',
  description: "change an account's password (asked for when not given)",
  permission: 'admin',
  args: [
    { name: 'username', description: 'localpart or bare JID' },
    { name: 'password', description: 'the new password', optional: true, secret: true },
  ],
  async run({ accounts, config }, a) {
    const u = usernameOf(a.username, config.domain);
    await accounts.setPassword(u, a.password ?? '');
    return [`password changed for ${accounts.prepareUsername(u)}@${config.domain}`];
  },
});

ADMIN_COMMANDS.define({
  name: 'user.remove',
  description: 'remove an account and its data',
  permission: 'admin',
  args: [{ name: 'username', description: 'localpart or bare JID' }],
  async run({ accounts, config }, a) {
    const u = usernameOf(a.username, config.domain);
    if (!(await accounts.remove(u))) throw new StanzaError('item-not-found', `no account '${u}'`);
    return [`removed ${accounts.prepareUsername(u)}@${config.domain}`];
  },
});

ADMIN_COMMANDS.define({
  name: 'user.list',
  description: 'list the accounts',
  permission: 'admin',
  args: [],
  async run({ accounts, config }) {
    return (await accounts.list()).map((u) => `${u}@${config.domain}`);
  },
});

ADMIN_COMMANDS.define({
  name: 'user.invite',
  description: "print an invitation token for in-band registration with modules.register.policy 'invite' (XEP-0077)",
  permission: 'admin',
  args: [
    { name: 'username', description: "the only username the token may create ('-' or left out: any)", optional: true },
    { name: 'validity', description: 'how long the token is valid, e.g. 1h, 7d (default 7d)', optional: true },
  ],
  async run({ accounts, config }, a) {
    const validityMs = parseDuration(a.validity ?? '7d');
    if (validityMs === null || validityMs < 60_000) {
      throw new StanzaError('bad-request', `validity '${a.validity ?? ''}' is not a duration of at least 1m (e.g. 1h, 7d)`);
    }
    let username: string | null = null;
    if (a.username !== undefined && a.username !== '' && a.username !== '-') {
      username = accounts.prepareUsername(usernameOf(a.username, config.domain));
      if (await accounts.exists(username)) throw new StanzaError('conflict', `the account '${username}' exists`);
    }
    // Stateless tokens (core/invites.ts): an HMAC keyed with data_dir/invite.key; nothing to store.
    const key = loadInviteKey(resolveDataPath(config, INVITE_KEY_FILE));
    const invite = createInvite(key, config.domain, { validityMs, username });
    const policy = registrationPolicy(config);
    return [
      invite.token,
      `valid until ${invite.expires.toISOString()} for ${username === null ? 'any new username' : `${username}@${config.domain} only`}; give it in the registration form's 'token' field`,
      ...(policy === 'invite' ? [] : [`note: modules.register.policy is '${policy}'; tokens are only asked for with 'invite'`]),
    ];
  },
});
