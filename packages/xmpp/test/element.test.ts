// XmlElement: the fan-out copy (addressedTo) serializes its shared children once and keeps them read-only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NS, xml } from '../src/index.ts';

test('addressedTo: copies differ in `to` only, share frozen children, and serialize like a fresh element', () => {
  const base = xml('message', { from: 'room@muc.example/nick', type: 'groupchat', id: 'x' }, xml('body', null, 'a < b'), xml('stanza-id', { xmlns: NS.SID, id: '1', by: 'room@muc.example' }));
  base.ns = NS.CLIENT;
  const fresh = base.clone();
  const a = base.addressedTo('a@example/r');
  const b = base.addressedTo('b@example/r');
  assert.equal(a.children, b.children);
  assert.ok(Object.isFrozen(base.children));
  assert.throws(() => base.children.push(xml('x')), TypeError, 'shared children are read-only');
  fresh.attrs.to = 'a@example/r';
  assert.equal(a.toString(), fresh.toString());
  assert.equal(a.toDocument(NS.CLIENT), fresh.toDocument(NS.CLIENT), 'another scope is serialized afresh');
  assert.equal(a.toString(), fresh.toString(), 'and back');
  assert.match(b.toString(), /^<message from='room@muc\.example\/nick' type='groupchat' id='x' to='b@example\/r'><body>a &lt; b<\/body><stanza-id xmlns='urn:xmpp:sid:0'/);
  assert.equal(base.attrs.to, undefined, 'the base is not changed');
});
