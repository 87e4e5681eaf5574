// Typed extensions (ARCHITECTURE §3): one declaration turns an element into an object and back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StanzaError, defineExtension, field, parseXml, xml } from '../src/index.ts';

const Avatar = defineExtension({
  ns: 'urn:example:game',
  element: 'avatar',
  fields: { hash: field.attr('string', { required: true }), size: field.attr('number') },
});

const Profile = defineExtension({
  ns: 'urn:example:profile',
  element: 'user',
  fields: {
    name: field.child('string', { required: true }),
    level: field.attr('number'),
    online: field.attr('boolean'),
    tags: field.children('string', { name: 'tag' }),
    avatar: field.nested(Avatar),
    bio: field.child(),
  },
});

test('build then parse gives the same object; the XML is what a peer expects', () => {
  const value = { name: 'Alice & Co', level: 3, online: true, tags: ['a', 'b<c'], avatar: { hash: 'abc', size: 64 } };
  const el = Profile.build(value);
  assert.equal(
    el.toString(),
    "<user xmlns='urn:example:profile' level='3' online='true'><name>Alice &amp; Co</name><tag>a</tag><tag>b&lt;c</tag><avatar xmlns='urn:example:game' hash='abc' size='64'/></user>",
  );
  assert.deepEqual(Profile.parse(parseXml(el.toString())), value);
});

test('from() finds the extension in a stanza; attach() replaces it', () => {
  const presence = xml('presence', null, xml('show', null, 'away'));
  assert.equal(Profile.from(presence), undefined);
  Profile.attach(presence, { name: 'A', tags: [] });
  Profile.attach(presence, { name: 'B', tags: [] });
  assert.equal(presence.getChildren('user', 'urn:example:profile').length, 1);
  assert.deepEqual(Profile.from(presence), { name: 'B', tags: [] });
  assert.equal(presence.getChildText('show'), 'away');
});

test('bad input is a bad-request StanzaError naming the field; unknown parts are ignored', () => {
  assert.throws(
    () => Profile.parse(parseXml("<user xmlns='urn:example:profile' level='high'><name>x</name></user>")),
    (e: unknown) => e instanceof StanzaError && e.condition === 'bad-request' && /level/.test(e.message),
  );
  assert.throws(
    () => Profile.parse(parseXml("<user xmlns='urn:example:profile'/>")),
    (e: unknown) => e instanceof StanzaError && /name is required/.test(e.message),
  );
  const v = Profile.parse(parseXml("<user xmlns='urn:example:profile' extra='1'><name>x</name><future xmlns='urn:x'/></user>"));
  assert.deepEqual(v, { name: 'x', tags: [] });
});
