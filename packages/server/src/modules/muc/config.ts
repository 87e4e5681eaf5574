import { JID, NS, StanzaError, dataFormElement, fieldValues, formTypeOf, parseFormBoolean, type DataForm, type FormField, type XmlElement } from '@parley/xmpp';
import type { ParleyConfig } from '../../config/index.ts';

/** Occupant roles (XEP-0045 §5.1), `none` meaning "not in the room". */
export type Role = 'moderator' | 'participant' | 'visitor' | 'none';

/** Affiliations (XEP-0045 §5.2), `none` meaning "no affiliation". */
export type Affiliation = 'owner' | 'admin' | 'member' | 'none' | 'outcast';

/** The roles an occupant can hold, in the order the muc#roomconfig list fields use. */
export const ROLES: readonly Role[] = ['moderator', 'participant', 'visitor'];

/** Affiliation rank: who may act on whom (XEP-0045 §5.2.1, §9.1, §8.2). */
export const AFFILIATION_RANK: Readonly<Record<Affiliation, number>> = { outcast: 0, none: 1, member: 2, admin: 3, owner: 4 };

/** Role rank (XEP-0045 §5.1.1). */
export const ROLE_RANK: Readonly<Record<Role, number>> = { none: 0, visitor: 1, participant: 2, moderator: 3 };

/** Who may send private messages (`muc#roomconfig_allowpm`, XEP-0045 §15.5.3). */
export type AllowPm = 'anyone' | 'participants' | 'moderators' | 'none';

/**
 * A room's configuration: every `muc#roomconfig` field of XEP-0045 §15.5.3 (with
 * `muc#maxhistoryfetch`). Stored as JSON for persistent rooms.
 */
export interface RoomConfig {
  /** muc#roomconfig_roomname. */
  name: string;
  /** muc#roomconfig_roomdesc. */
  description: string;
  /** muc#roomconfig_lang (a language tag, or ''). */
  lang: string;
  /** muc#roomconfig_enablelogging: the room says it is logged publicly (status 170). */
  logging: boolean;
  /** muc#roomconfig_changesubject: participants may change the subject. */
  changeSubject: boolean;
  /** muc#roomconfig_allowinvites: members (not only admins) may invite. */
  allowInvites: boolean;
  /** muc#roomconfig_allowpm. */
  allowPm: AllowPm;
  /** muc#roomconfig_maxusers: occupants at most. */
  maxUsers: number;
  /** muc#roomconfig_presencebroadcast: the roles whose presence is broadcast. */
  presenceBroadcast: Role[];
  /** muc#roomconfig_getmemberlist: the roles that may retrieve the member list. */
  getMemberList: Role[];
  /** muc#roomconfig_publicroom: listed in the service's disco#items. */
  public: boolean;
  /** muc#roomconfig_persistentroom: kept when empty, and across restarts. */
  persistent: boolean;
  /** muc#roomconfig_moderatedroom: only occupants with voice may speak. */
  moderated: boolean;
  /** muc#roomconfig_membersonly. */
  membersOnly: boolean;
  /** muc#roomconfig_passwordprotectedroom. */
  passwordProtected: boolean;
  /** muc#roomconfig_roomsecret. */
  password: string;
  /** muc#roomconfig_whois: who may see real JIDs (`anyone` = non-anonymous room). */
  whois: 'moderators' | 'anyone';
  /** muc#maxhistoryfetch: discussion history messages sent on join, at most. */
  maxHistoryFetch: number;
  /** muc#roomconfig_pubsub: the room's pubsub node (an XMPP URI), or ''. */
  pubsub: string;
}

/** The service limits that bound what an owner may configure. */
export interface ConfigLimits {
  maxUsers: number;
  historyLength: number;
}

/** The configuration of a new room, from `modules.muc.default_room`. */
export function defaultRoomConfig(muc: ParleyConfig['modules']['muc']): RoomConfig {
  const d = muc.default_room;
  return {
    name: '',
    description: '',
    lang: '',
    logging: d.logging,
    changeSubject: d.change_subject,
    allowInvites: d.allow_invites,
    allowPm: d.allow_pm,
    maxUsers: Math.min(d.max_users, muc.max_users),
    presenceBroadcast: [...ROLES],
    getMemberList: [...ROLES],
    public: d.public,
    persistent: d.persistent,
    moderated: d.moderated,
    membersOnly: d.members_only,
    passwordProtected: false,
    password: '',
    whois: d.whois,
    maxHistoryFetch: muc.history_length,
    pubsub: '',
  };
}

/** Reads a stored configuration, filling what an older version did not store from `defaults`. */
export function restoreRoomConfig(json: unknown, defaults: RoomConfig): RoomConfig {
  const stored = typeof json === 'object' && json !== null ? (json as Partial<RoomConfig>) : {};
  return { ...defaults, ...stored };
}

const bool = (b: boolean) => (b ? '1' : '0');

/**
 * The owner's configuration form (XEP-0045 §10.1.3, fields of §15.5.3), filled with the
 * current values; `owners` and `admins` are the bare JIDs of those lists.
 */
export function configForm(c: RoomConfig, owners: string[], admins: string[], limits: ConfigLimits): XmlElement {
  const maxUserOptions = [10, 20, 30, 50, 100, 200, 500, 1000, 5000].filter((n) => n <= limits.maxUsers);
  if (!maxUserOptions.includes(c.maxUsers)) maxUserOptions.push(c.maxUsers);
  maxUserOptions.sort((a, b) => a - b);
  const roleOptions = ROLES.map((r) => ({ label: r[0]!.toUpperCase() + r.slice(1), value: r }));
  const fields: FormField[] = [
    { var: 'FORM_TYPE', type: 'hidden', values: [NS.MUC_ROOMCONFIG] },
    { var: 'muc#roomconfig_roomname', type: 'text-single', label: 'Natural-Language Room Name', values: [c.name] },
    { var: 'muc#roomconfig_roomdesc', type: 'text-single', label: 'Short Description of Room', values: [c.description] },
    { var: 'muc#roomconfig_lang', type: 'text-single', label: 'Natural Language for Room Discussions', values: [c.lang] },
    { var: 'muc#roomconfig_enablelogging', type: 'boolean', label: 'Enable Public Logging?', values: [bool(c.logging)] },
    { var: 'muc#roomconfig_changesubject', type: 'boolean', label: 'Allow Occupants to Change Subject?', values: [bool(c.changeSubject)] },
    { var: 'muc#roomconfig_allowinvites', type: 'boolean', label: 'Allow Members to Invite Others?', values: [bool(c.allowInvites)] },
    {
      var: 'muc#roomconfig_allowpm',
      type: 'list-single',
      label: 'Who Can Send Private Messages?',
      values: [c.allowPm],
      options: [
        { label: 'Anyone', value: 'anyone' },
        { label: 'Anyone with Voice', value: 'participants' },
        { label: 'Moderators Only', value: 'moderators' },
        { label: 'Nobody', value: 'none' },
      ],
    },
    {
      var: 'muc#roomconfig_maxusers',
      type: 'list-single',
      label: 'Maximum Number of Occupants',
      values: [String(c.maxUsers)],
      options: maxUserOptions.map((n) => ({ label: String(n), value: String(n) })),
    },
    { var: 'muc#roomconfig_presencebroadcast', type: 'list-multi', label: 'Roles for which Presence is Broadcasted', values: [...c.presenceBroadcast], options: roleOptions },
    { var: 'muc#roomconfig_getmemberlist', type: 'list-multi', label: 'Roles and Affiliations that May Retrieve Member List', values: [...c.getMemberList], options: roleOptions },
    { var: 'muc#roomconfig_publicroom', type: 'boolean', label: 'Make Room Publicly Searchable?', values: [bool(c.public)] },
    { var: 'muc#roomconfig_persistentroom', type: 'boolean', label: 'Make Room Persistent?', values: [bool(c.persistent)] },
    { var: 'muc#roomconfig_moderatedroom', type: 'boolean', label: 'Make Room Moderated?', values: [bool(c.moderated)] },
    { var: 'muc#roomconfig_membersonly', type: 'boolean', label: 'Make Room Members-Only?', values: [bool(c.membersOnly)] },
    { var: 'muc#roomconfig_passwordprotectedroom', type: 'boolean', label: 'Password Required to Enter?', values: [bool(c.passwordProtected)] },
    { var: 'muc#roomconfig_roomsecret', type: 'text-private', label: 'Password', values: c.password === '' ? [] : [c.password] },
    {
      var: 'muc#roomconfig_whois',
      type: 'list-single',
      label: 'Who May Discover Real JIDs?',
      values: [c.whois],
      options: [
        { label: 'Moderators Only', value: 'moderators' },
        { label: 'Anyone', value: 'anyone' },
      ],
    },
    { var: 'muc#maxhistoryfetch', type: 'text-single', label: 'Maximum Number of History Messages Returned by Room', values: [String(c.maxHistoryFetch)] },
    { var: 'muc#roomconfig_pubsub', type: 'text-single', label: 'Node with Associated Data', values: c.pubsub === '' ? [] : [c.pubsub] },
    { var: 'muc#roomconfig_roomadmins', type: 'jid-multi', label: 'Room Admins', values: admins },
    { var: 'muc#roomconfig_roomowners', type: 'jid-multi', label: 'Room Owners', values: owners },
  ];
  const form: DataForm = {
    type: 'form',
    title: `Configuration for ${c.name || 'the room'}`,
    instructions: ['Complete this form to modify the configuration of your room.'],
    fields,
  };
  return dataFormElement(form);
}

/** What a submitted configuration form asks for: the new configuration, and the owner and admin lists when the form set them. */
export interface ConfigSubmission {
  config: RoomConfig;
  owners?: string[];
  admins?: string[];
}

/**
 * Applies a submitted form (XEP-0045 §10.1.3, §10.2) to `current`: fields left out keep their
 * value. Throws StanzaError `bad-request` for a wrong FORM_TYPE or an unusable value,
 * `not-acceptable` for a value beyond the service's limits (maxusers, history), or a
 * password-protected room without a password.
 */
export function applyConfigForm(form: DataForm, current: RoomConfig, limits: ConfigLimits): ConfigSubmission {
  const type = formTypeOf(form);
  if (type !== undefined && type !== NS.MUC_ROOMCONFIG) throw new StanzaError('bad-request', `FORM_TYPE must be ${NS.MUC_ROOMCONFIG}`);
  const c: RoomConfig = { ...current, presenceBroadcast: [...current.presenceBroadcast], getMemberList: [...current.getMemberList] };
  const one = (name: string): string | undefined => fieldValues(form, name)?.[0] ?? (fieldValues(form, name) ? '' : undefined);
  const flagOf = (name: string, set: (v: boolean) => void) => {
    const v = parseFormBoolean(one(name), name);
    if (v !== undefined) set(v);
  };
  const text = (name: string, set: (v: string) => void) => {
    const v = one(name);
    if (v !== undefined) set(v);
  };
  text('muc#roomconfig_roomname', (v) => (c.name = v));
  text('muc#roomconfig_roomdesc', (v) => (c.description = v));
  text('muc#roomconfig_lang', (v) => (c.lang = v));
  text('muc#roomconfig_pubsub', (v) => (c.pubsub = v));
  flagOf('muc#roomconfig_enablelogging', (v) => (c.logging = v));
  flagOf('muc#roomconfig_changesubject', (v) => (c.changeSubject = v));
  flagOf('muc#roomconfig_allowinvites', (v) => (c.allowInvites = v));
  flagOf('muc#roomconfig_publicroom', (v) => (c.public = v));
  flagOf('muc#roomconfig_persistentroom', (v) => (c.persistent = v));
  flagOf('muc#roomconfig_moderatedroom', (v) => (c.moderated = v));
  flagOf('muc#roomconfig_membersonly', (v) => (c.membersOnly = v));
  flagOf('muc#roomconfig_passwordprotectedroom', (v) => (c.passwordProtected = v));
  text('muc#roomconfig_roomsecret', (v) => (c.password = v));
  const pm = one('muc#roomconfig_allowpm');
  if (pm !== undefined) {
    if (pm !== 'anyone' && pm !== 'participants' && pm !== 'moderators' && pm !== 'none') {
      throw new StanzaError('bad-request', `muc#roomconfig_allowpm: '${pm}' is not anyone, participants, moderators or none`);
    }
    c.allowPm = pm;
  }
  const whois = one('muc#roomconfig_whois');
  if (whois !== undefined) {
    if (whois !== 'moderators' && whois !== 'anyone') throw new StanzaError('bad-request', `muc#roomconfig_whois: '${whois}' is not moderators or anyone`);
    c.whois = whois;
  }
  const maxUsers = one('muc#roomconfig_maxusers');
  if (maxUsers !== undefined) {
    const n = maxUsers === 'none' || maxUsers === '' ? limits.maxUsers : Number(maxUsers);
    if (!Number.isInteger(n) || n < 1) throw new StanzaError('bad-request', `muc#roomconfig_maxusers: '${maxUsers}' is not a positive integer`);
    if (n > limits.maxUsers) throw new StanzaError('not-acceptable', `muc#roomconfig_maxusers: this service allows at most ${limits.maxUsers}`);
    c.maxUsers = n;
  }
  const history = one('muc#maxhistoryfetch');
  if (history !== undefined && history !== '') {
    const n = Number(history);
    if (!Number.isInteger(n) || n < 0) throw new StanzaError('bad-request', `muc#maxhistoryfetch: '${history}' is not a non-negative integer`);
    c.maxHistoryFetch = Math.min(n, limits.historyLength);
  }
  const roles = (name: string, set: (v: Role[]) => void) => {
    const v = fieldValues(form, name);
    if (v === undefined) return;
    for (const r of v) if (!(ROLES as string[]).includes(r)) throw new StanzaError('bad-request', `${name}: '${r}' is not a role`);
    set(v as Role[]);
  };
  roles('muc#roomconfig_presencebroadcast', (v) => (c.presenceBroadcast = v));
  roles('muc#roomconfig_getmemberlist', (v) => (c.getMemberList = v));
  if (c.passwordProtected && c.password === '') {
    throw new StanzaError('not-acceptable', 'a password-protected room needs a password (muc#roomconfig_roomsecret)');
  }
  const out: ConfigSubmission = { config: c };
  const jids = (name: string): string[] | undefined => {
    const v = fieldValues(form, name);
    if (v === undefined) return undefined;
    return v.map((s) => {
      const j = JID.tryParse(s.trim());
      if (!j) throw new StanzaError('jid-malformed', `${name}: '${s}' is not a JID`);
      return j.bareString();
    });
  };
  const owners = jids('muc#roomconfig_roomowners');
  if (owners !== undefined) out.owners = owners;
  const admins = jids('muc#roomconfig_roomadmins');
  if (admins !== undefined) out.admins = admins;
  return out;
}

/** The room's `muc_*` disco features (XEP-0045 §6.4, registry §15.3). */
export function roomFeatures(c: RoomConfig): string[] {
  return [
    c.public ? 'muc_public' : 'muc_hidden',
    c.persistent ? 'muc_persistent' : 'muc_temporary',
    c.membersOnly ? 'muc_membersonly' : 'muc_open',
    c.moderated ? 'muc_moderated' : 'muc_unmoderated',
    c.whois === 'anyone' ? 'muc_nonanonymous' : 'muc_semianonymous',
    c.passwordProtected ? 'muc_passwordprotected' : 'muc_unsecured',
  ];
}

/** The `muc#roominfo` extended disco information form (XEP-0045 §6.4, §15.5.4). */
export function roomInfoForm(c: RoomConfig, occupants: number, subject: string, contacts: string[]): XmlElement {
  const fields: FormField[] = [
    { var: 'FORM_TYPE', type: 'hidden', values: [NS.MUC_ROOMINFO] },
    { var: 'muc#roominfo_description', label: 'Description', values: [c.description] },
    { var: 'muc#roominfo_occupants', label: 'Number of occupants', values: [String(occupants)] },
    { var: 'muc#roominfo_subject', label: 'Current Subject', values: [subject] },
    { var: 'muc#roominfo_subjectmod', type: 'boolean', label: 'Occupants May Change the Subject', values: [bool(c.changeSubject)] },
    { var: 'muc#maxhistoryfetch', label: 'Maximum Number of History Messages Returned by Room', values: [String(c.maxHistoryFetch)] },
    { var: 'muc#roomconfig_roomname', label: 'Natural-Language Room Name', values: [c.name] },
    { var: 'muc#roomconfig_allowinvites', type: 'boolean', label: 'Occupants May Invite Others', values: [bool(c.allowInvites)] },
    { var: 'muc#roomconfig_allowpm', label: 'Who Can Send Private Messages', values: [c.allowPm] },
  ];
  if (c.lang !== '') fields.push({ var: 'muc#roominfo_lang', label: 'Language of Discussion', values: [c.lang] });
  if (c.pubsub !== '') fields.push({ var: 'muc#roominfo_pubsub', label: 'Associated pubsub node', values: [c.pubsub] });
  if (contacts.length > 0) fields.push({ var: 'muc#roominfo_contactjid', type: 'jid-multi', label: 'Contact Addresses', values: contacts });
  return dataFormElement({ type: 'result', fields });
}
