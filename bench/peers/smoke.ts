/**
 * A functional check of one server of the side-by-side benchmark, independent of the load
 * generator: what the benchmark's scenarios rely on, done once, slowly, with every reply
 * checked.
 *
 *   node --import tsx bench/peers/smoke.ts [parley|prosody|ejabberd …] [--port 15900] [--keep DIR]
 *
 * For each server named (all three by default): start it with bench/peers/peers.ts (STARTTLS
 * required), then
 *
 *  1. register two accounts in-band (XEP-0077) over STARTTLS — twice, the second time
 *     expecting `conflict`;
 *  2. log in (STARTTLS → SASL SCRAM-SHA-1 with the server signature verified → bind),
 *     get the roster, send initial presence, ping the server (XEP-0199), check that
 *     disco#items of the domain lists the MUC service;
 *  3. chat: the second account sends a message to the first one's bare JID; it arrives;
 *  4. MUC: create a room (status 201, locked), accept the default configuration (instant
 *     room), let the second account enter, send a groupchat message, both get it;
 *  5. stop; restart with STARTTLS not required and log in without TLS (SCRAM-SHA-1 on the
 *     plain stream);
 *  6. stop, and check that no process of the server is left.
 *
 * Exit status 0 when every step passed for every server.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { attr, login, register, type Conn, type Options } from './client.ts';
import { PEER_NAMES, startPeer, type PeerName } from './peers.ts';

async function iq(c: Conn, id: string, body: string, what: string): Promise<string> {
  c.send(body);
  const r = await c.expect(new RegExp(`^<iq[^>]*id=['"]${id}['"]`), what);
  if (attr(r, 'type') !== 'result') throw new Error(`${what}: ${r}`);
  return r;
}

/** Runs every check against one running server; returns one line per check. */
export async function smoke(o: Options, log: (s: string) => void): Promise<void> {
  const pw = 'smoke-password';
  const run = Date.now().toString(36);
  const a = `smokea${run}`;
  const b = `smokeb${run}`;
  log(`register ${a}: ${await register(o, a, pw)}`);
  log(`register ${b}: ${await register(o, b, pw)}`);
  const again = await register(o, a, pw);
  if (again !== 'conflict') throw new Error(`registering ${a} again: expected conflict, got ${again}`);
  log(`register ${a} again: conflict (as expected)`);

  const A = await login(o, a, pw, 'r1');
  log(`login ${A.jid}: ${A.protocol}; mechanisms ${A.mechanisms.join(' ')}`);
  const roster = await iq(A.c, 'ro1', `<iq type='get' id='ro1'><query xmlns='jabber:iq:roster'/></iq>`, 'roster get');
  log(`roster: ${/<query[^>]*ver=/.test(roster) ? 'ok (versioned)' : 'ok'}`);
  A.c.send(`<presence/>`);
  const t0 = performance.now();
  await iq(A.c, 'p1', `<iq type='get' id='p1' to='${o.domain}'><ping xmlns='urn:xmpp:ping'/></iq>`, 'ping');
  log(`ping: ${(performance.now() - t0).toFixed(1)} ms`);
  const items = await iq(A.c, 'd1', `<iq type='get' id='d1' to='${o.domain}'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`, 'disco#items');
  const muc = `conference.${o.domain}`;
  if (!items.includes(muc)) throw new Error(`disco#items does not list ${muc}: ${items}`);
  log(`disco#items lists ${muc}`);

  const B = await login(o, b, pw, 'r2');
  B.c.send(`<presence/>`);
  await iq(B.c, 'p2', `<iq type='get' id='p2' to='${o.domain}'><ping xmlns='urn:xmpp:ping'/></iq>`, 'ping');
  B.c.send(`<message to='${a}@${o.domain}' type='chat' id='m1'><body>hello</body></message>`);
  const m = await A.c.expect(/^<message[^>]*type=['"]chat['"]/, 'chat message to the bare JID');
  if (!m.includes('<body>hello</body>')) throw new Error(`chat: ${m}`);
  log(`chat to the bare JID: delivered (from ${attr(m, 'from')}) ${process.env.SMOKE_DEBUG ? m : ''}`);

  const room = `smoke${run}@${muc}`;
  A.c.send(`<presence to='${room}/alice'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`);
  const self = await A.c.expect(new RegExp(`^<presence[^>]*from=['"]${room}/alice['"]`), 'room creation');
  if (!/code=['"]110['"]/.test(self) || !/code=['"]201['"]/.test(self)) throw new Error(`room creation: no status 110 + 201: ${self}`);
  log('room created (110, 201)');
  await iq(
    A.c,
    'o1',
    `<iq type='set' id='o1' to='${room}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>`,
    'instant room',
  );
  log('instant room: default configuration accepted');
  B.c.send(`<presence to='${room}/bob'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`);
  await B.c.expect(new RegExp(`^<presence[^>]*from=['"]${room}/bob['"][^>]*>[\\s\\S]*code=['"]110['"]`), 'join');
  log('second occupant joined (110)');
  B.c.send(`<message to='${room}' type='groupchat' id='g1'><body>hi all</body></message>`);
  for (const [who, c] of [['alice', A.c], ['bob', B.c]] as const) {
    const g = await c.expect(new RegExp(`^<message[^>]*from=['"]${room}/bob['"][^>]*type=['"]groupchat['"]|^<message[^>]*type=['"]groupchat['"][^>]*from=['"]${room}/bob['"]`), `groupchat to ${who}`);
    if (!g.includes('hi all')) throw new Error(`groupchat to ${who}: ${g}`);
  }
  log('groupchat message: delivered to both occupants');
  A.c.close();
  B.c.close();
}

/** Processes of a server other than the one we started: its pid's children and, for ejabberd, epmd/beam we may have left. */
function leftovers(name: PeerName, dir: string): string[] {
  try {
    return execFileSync('sh', ['-c', `ps -eo pid,args | grep -F -- ${JSON.stringify(dir)} | grep -v grep || true`], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.includes('smoke.ts'))
      .map((l) => `${name}: ${l.trim()}`);
  } catch {
    return [];
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      port: { type: 'string', default: '15900' },
      keep: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log('Usage: node --import tsx bench/peers/smoke.ts [parley|prosody|ejabberd …] [--port 15900] [--keep DIR]');
    return;
  }
  const names = (positionals.length ? positionals : PEER_NAMES) as PeerName[];
  const dataDir = values.keep ? resolve(values.keep) : mkdtempSync(join(tmpdir(), 'parley-peers-smoke-'));
  const port = Number(values.port);
  let failed = 0;
  for (const name of names) {
    const log = (s: string): void => console.log(`${name}: ${s}`);
    try {
      for (const requireTls of [true, false]) {
        const server = await startPeer(name, { dataDir, c2sPort: port, core: null, requireTls });
        log(`${server.version} started (pid ${server.pid}, STARTTLS ${requireTls ? 'required' : 'optional'})`);
        try {
          if (requireTls) await smoke({ port, domain: server.domain, tls: true }, log);
          else {
            await register({ port, domain: server.domain, tls: true }, 'smokeplain', 'smoke-password');
            const p = await login({ port, domain: server.domain, tls: false }, 'smokeplain', 'smoke-password', 'plain');
            log(`login without TLS: ${p.jid} (${p.protocol}; mechanisms ${p.mechanisms.join(' ')})`);
            p.c.close();
          }
        } finally {
          await server.stop();
        }
        await new Promise((r) => setTimeout(r, 300));
        const left = leftovers(name, server.dir);
        if (left.length) throw new Error(`processes left after stop:\n${left.join('\n')}`);
        log('stopped, no process left');
      }
      log('OK');
    } catch (err) {
      failed++;
      log(`FAILED: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (!values.keep) rmSync(dataDir, { recursive: true, force: true });
  process.exit(failed ? 1 : 0);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  void main();
}
