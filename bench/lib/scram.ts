/**
 * A minimal SCRAM client (RFC 5802, RFC 7677) for the load generator: SCRAM-SHA-1 or
 * SCRAM-SHA-256 without channel binding (gs2 header `n,,`), for the ASCII account names
 * `bench<i>` (nothing to SASLprep or escape).
 *
 * Every account has its own random salt on every server, so PBKDF2 would run on every
 * login. The SaltedPassword is therefore cached per (hash, salt, iteration count) with no
 * size limit (all accounts share one password): the scenarios log every account in once,
 * untimed, before measuring, and `pbkdf2Runs` counts what had to be derived anyway (a
 * server that draws a new salt per login, as ejabberd does for accounts stored with plain
 * passwords, makes the generator pay PBKDF2 on every login; the login line reports it).
 */
import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';

export type ScramMechanism = 'SCRAM-SHA-1' | 'SCRAM-SHA-256';

interface Keys {
  clientKey: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

/** (hash, iterations, salt) → keys derived from the one password. */
const cache = new Map<string, Keys | Promise<Keys>>();

/** PBKDF2 derivations run so far (cache misses). */
export let pbkdf2Runs = 0;

/** Iteration count of the last server-first-message seen (null before any). */
export let lastIterations: number | null = null;

export class ScramClient {
  readonly #hash: 'sha1' | 'sha256';
  readonly #password: string;
  readonly #clientFirstBare: string;
  readonly #nonce: string;
  #serverSignature: Buffer | null = null;

  constructor(mechanism: ScramMechanism, username: string, password: string) {
    this.#hash = mechanism === 'SCRAM-SHA-1' ? 'sha1' : 'sha256';
    this.#password = password;
    this.#nonce = randomBytes(18).toString('base64');
    this.#clientFirstBare = `n=${username},r=${this.#nonce}`;
  }

  /** client-first-message, base64 (the `<auth/>` initial response). */
  first(): string {
    return Buffer.from(`n,,${this.#clientFirstBare}`).toString('base64');
  }

  /** client-final-message, base64, from server-first-message (base64). */
  async final(serverFirstB64: string): Promise<string> {
    const serverFirst = Buffer.from(serverFirstB64, 'base64').toString('utf8');
    let nonce = '';
    let salt = '';
    let iterations = 0;
    for (const part of serverFirst.split(',')) {
      if (part.startsWith('r=')) nonce = part.slice(2);
      else if (part.startsWith('s=')) salt = part.slice(2);
      else if (part.startsWith('i=')) iterations = Number(part.slice(2));
      else if (part.startsWith('m=')) throw new Error(`SCRAM: unsupported mandatory extension in '${serverFirst}'`);
    }
    if (!nonce.startsWith(this.#nonce) || nonce.length === this.#nonce.length || salt === '' || !(iterations > 0 && iterations <= 1_000_000)) {
      throw new Error(`SCRAM: bad server-first-message '${serverFirst}'`);
    }
    lastIterations = iterations;
    const keys = await this.#keys(salt, iterations);
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.#clientFirstBare},${serverFirst},${withoutProof}`;
    const signature = createHmac(this.#hash, keys.storedKey).update(authMessage).digest();
    const proof = Buffer.alloc(signature.length);
    for (let i = 0; i < proof.length; i++) proof[i] = keys.clientKey[i]! ^ signature[i]!;
    this.#serverSignature = createHmac(this.#hash, keys.serverKey).update(authMessage).digest();
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`).toString('base64');
  }

  /** Checks server-final-message (base64 `v=…`); throws if the server does not know the password. */
  verify(serverFinalB64: string): void {
    const text = Buffer.from(serverFinalB64, 'base64').toString('utf8');
    if (this.#serverSignature === null || !text.startsWith('v=')) throw new Error(`SCRAM: bad server-final-message '${text}'`);
    if (!Buffer.from(text.slice(2), 'base64').equals(this.#serverSignature)) throw new Error('SCRAM: server signature mismatch');
  }

  #keys(salt: string, iterations: number): Promise<Keys> | Keys {
    const key = `${this.#hash} ${iterations} ${salt}`;
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    pbkdf2Runs++;
    const hash = this.#hash;
    const p = new Promise<Keys>((resolve, reject) => {
      pbkdf2(this.#password, Buffer.from(salt, 'base64'), iterations, hash === 'sha1' ? 20 : 32, hash, (err, salted) => {
        if (err) return reject(err);
        const clientKey = createHmac(hash, salted).update('Client Key').digest();
        const keys = {
          clientKey,
          storedKey: createHash(hash).update(clientKey).digest(),
          serverKey: createHmac(hash, salted).update('Server Key').digest(),
        };
        cache.set(key, keys);
        resolve(keys);
      });
    });
    cache.set(key, p);
    // A failed derivation is not kept.
    p.catch(() => cache.delete(key));
    return p;
  }
}
