/**
 * SessionManager (the online sessions of a node): an account with one session is kept without
 * a per-account Map; these tests walk it through one, two and three resources and back, and
 * check lookups, bind order, replacement (RFC 6120 §7.7.2.2) and counts at every step.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { JID } from '@parley/xmpp';
import { SessionManager, type Session } from '../src/core/session.ts';

function session(full: string): Session {
  return {
    id: full,
    jid: JID.parse(full),
    priority: 0,
    presence: null,
    lastActivity: 0,
    remoteAddress: '127.0.0.1',
    secure: true,
    data: new Map(),
    send: () => {},
    close: () => {},
  } as Session;
}

const bare = JID.parse('alice@localhost');
const ids = (m: SessionManager, of = bare) => m.resources(of).map((s) => s.id);

describe('SessionManager', () => {
  test('one, two, three resources of an account and back: lookups, bind order and counts', () => {
    const m = new SessionManager();
    const a = session('alice@localhost/a');
    const b = session('alice@localhost/b');
    const c = session('alice@localhost/c');
    const bob = session('bob@localhost/x');

    assert.equal(m.add(a), undefined);
    assert.equal(m.add(bob), undefined);
    assert.equal(m.get(a.jid), a);
    assert.equal(m.get(JID.parse('alice@localhost/other')), undefined, 'another resource of a one-session account');
    assert.deepEqual(ids(m), ['alice@localhost/a']);
    assert.equal(m.isOnline(bare), true);
    assert.equal(m.hasAccount('alice@localhost'), true);

    assert.equal(m.add(b), undefined);
    assert.equal(m.add(c), undefined);
    assert.equal(m.size, 4);
    assert.deepEqual(ids(m), ['alice@localhost/a', 'alice@localhost/b', 'alice@localhost/c'], 'bind order');
    assert.equal(m.get(b.jid), b);
    assert.deepEqual([...m.all()].map((s) => s.id).sort(), ['alice@localhost/a', 'alice@localhost/b', 'alice@localhost/c', 'bob@localhost/x']);

    assert.equal(m.remove(b), true);
    assert.equal(m.remove(b), false, 'already gone');
    assert.deepEqual(ids(m), ['alice@localhost/a', 'alice@localhost/c']);
    assert.equal(m.remove(a), true);
    assert.deepEqual(ids(m), ['alice@localhost/c'], 'back to one session');
    assert.equal(m.get(c.jid), c);
    assert.equal(m.get(a.jid), undefined);
    assert.equal(m.remove(a), false);
    assert.equal(m.remove(c), true);
    assert.equal(m.isOnline(bare), false);
    assert.deepEqual(ids(m), []);
    assert.equal(m.size, 1);
    assert.deepEqual([...m.all()].map((s) => s.id), ['bob@localhost/x']);
  });

  test('a session bound to a full JID already online replaces it; removing the old one is a no-op', () => {
    const m = new SessionManager();
    const first = session('alice@localhost/r');
    const second = session('alice@localhost/r');
    m.add(first);
    assert.equal(m.add(second), first, 'one session: replaced');
    assert.equal(m.size, 1);
    assert.equal(m.remove(first), false);
    assert.equal(m.get(first.jid), second);

    const other = session('alice@localhost/o');
    m.add(other);
    const third = session('alice@localhost/r');
    assert.equal(m.add(third), second, 'several sessions: replaced');
    assert.equal(m.size, 2);
    assert.equal(m.remove(second), false);
    assert.deepEqual(ids(m), ['alice@localhost/r', 'alice@localhost/o']);
    assert.equal(m.get(third.jid), third);
  });
});
