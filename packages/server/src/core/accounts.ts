import { JID, StanzaError, deriveScramCredentials, verifyScramPassword, type ScramCredentials, type ScramHash } from '@parley/xmpp';
import { AccountExistsError, AccountStore, type Database } from '../storage/index.ts';

/**
 * Accounts of one host: creation, passwords, removal, and the credentials SASL
 * needs. Passwords are stored only as SCRAM salted keys (StoredKey/ServerKey per
 * hash, RFC 5802 §3), never in clear (ARCHITECTURE §4).
 */
export class AccountService {
  readonly host: string;
  private store: AccountStore;
  private iterations: number;
  private hashes: ScramHash[];

  /**
   * @param iterations PBKDF2 iteration count for new credentials (RFC 7677 §4: at least 4096).
   * @param hashes the SCRAM hashes to store keys for (one per enabled SCRAM mechanism family).
   */
  constructor(db: Database, host: string, iterations: number, hashes: ScramHash[]) {
    this.store = new AccountStore(db);
    this.host = host;
    this.iterations = iterations;
    this.hashes = hashes.length ? hashes : ['SHA-256'];
  }

  /**
   * Prepares a username with the localpart profile (RFC 7622 §3.3.1).
   * Throws StanzaError `jid-malformed` when it is not a valid localpart.
   */
  prepareUsername(username: string): string {
    const jid = JID.tryParse(`${username}@${this.host}`);
    if (!jid || jid.local === '' || jid.resource !== '') {
      throw new StanzaError('jid-malformed', `'${username}' is not a valid username (RFC 7622 §3.3)`);
    }
    return jid.local;
  }

  private async derive(password: string): Promise<ScramCredentials[]> {
    if (password.length === 0) throw new StanzaError('not-acceptable', 'the password is empty');
    return Promise.all(this.hashes.map((h) => deriveScramCredentials(password, h, this.iterations)));
  }

  /** Creates an account. Throws StanzaError `conflict` if it exists, `jid-malformed` for a bad username. */
  async create(username: string, password: string): Promise<string> {
    const user = this.prepareUsername(username);
    const creds = await this.derive(password);
    try {
      await this.store.create(this.host, user, creds);
    } catch (err) {
      if (err instanceof AccountExistsError) throw new StanzaError('conflict', `the account '${user}' exists`);
      throw err;
    }
    return user;
  }

  /** Replaces an account's password. Throws StanzaError `item-not-found` when there is no such account. */
  async setPassword(username: string, password: string): Promise<void> {
    const user = this.prepareUsername(username);
    if (!(await this.store.exists(this.host, user))) throw new StanzaError('item-not-found', `no account '${user}'`);
    await this.store.setCredentials(this.host, user, await this.derive(password));
  }

  /** Removes an account and its data; returns whether it existed. */
  async remove(username: string): Promise<boolean> {
    return this.store.remove(this.host, this.prepareUsername(username));
  }

  /** `true` when the (prepared) username has an account. */
  exists(username: string): Promise<boolean> {
    return this.store.exists(this.host, username);
  }

  /** Usernames of the host, sorted. */
  list(): Promise<string[]> {
    return this.store.list(this.host);
  }

  /** The SCRAM credentials of a prepared username for one hash, or `null`. */
  async credentials(username: string, hash: ScramHash): Promise<ScramCredentials | null> {
    const row = await this.store.getCredentials(this.host, username, hash);
    return row ? { ...row, hash } : null;
  }

  /**
   * Checks a password against the stored SCRAM keys (for SASL PLAIN, RFC 4616):
   * derives StoredKey with the stored salt and iteration count and compares in
   * constant time. Returns `false` for unknown accounts.
   */
  async verifyPassword(username: string, password: string): Promise<boolean> {
    for (const hash of this.hashes) {
      const stored = await this.credentials(username, hash);
      if (stored) return verifyScramPassword(password, stored);
    }
    return false;
  }
}
