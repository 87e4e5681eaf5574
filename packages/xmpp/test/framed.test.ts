// RFC 7395 framing: one element per WebSocket message, <open/> and <close/> as stream events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FramedStreamParser, NS, StreamError, xml, type StreamHeader, type XmlElement } from '../src/index.ts';

function parser(limits = {}) {
  const events: Array<['start', StreamHeader] | ['stanza', XmlElement] | ['end'] | ['error', StreamError]> = [];
  const p = new FramedStreamParser(
    {
      streamStart: (h) => events.push(['start', h]),
      stanza: (el) => events.push(['stanza', el]),
      streamEnd: () => events.push(['end']),
      streamError: (e) => events.push(['error', e]),
    },
    limits,
  );
  return { p, events };
}

test('<open/> is the stream start, stanzas are elements, <close/> the end', () => {
  const { p, events } = parser();
  p.feed(`<open xmlns='${NS.FRAMING}' to='example.com' version='1.0' xml:lang='en'/>`);
  p.feed(Buffer.from(`<message xmlns='jabber:client' to='a@example.com'><body>hé</body></message>`));
  p.feed(`<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>`);
  p.feed(' ');
  p.feed(`<close xmlns='${NS.FRAMING}'/>`);
  assert.equal(events.length, 4);
  const [start, msg, iq, end] = events;
  assert.deepEqual(start, ['start', { name: 'open', ns: NS.FRAMING, prefix: '', contentNs: NS.CLIENT, attrs: { to: 'example.com', version: '1.0', 'xml:lang': 'en' } }]);
  assert.equal(msg![0], 'stanza');
  assert.equal((msg![1] as XmlElement).ns, NS.CLIENT);
  assert.equal((msg![1] as XmlElement).getChildText('body'), 'hé');
  assert.equal((iq![1] as XmlElement).ns, NS.CLIENT, 'a stanza without xmlns is taken as jabber:client');
  assert.deepEqual(end, ['end']);
  // A second <open/> (the restart after SASL, RFC 7395 §3.7) is another stream start.
  p.feed(`<open xmlns='${NS.FRAMING}' to='example.com' version='1.0'/>`);
  assert.equal(events[4]![0], 'start');
});

test('an unfinished element, text, restricted XML and oversize are stream errors', () => {
  const cases: Array<[string, string]> = [
    [`<message xmlns='jabber:client'>`, 'not-well-formed'],
    [`hello`, 'bad-format'],
    [`<!-- c --><presence/>`, 'restricted-xml'],
    [`<presence>&foo;</presence>`, 'restricted-xml'],
    [`<foo xmlns='${NS.FRAMING}'/>`, 'unsupported-stanza-type'],
    [`<presence><status>${'x'.repeat(20_000)}</status></presence>`, 'policy-violation'],
  ];
  for (const [input, condition] of cases) {
    const { p, events } = parser({ maxStanzaSize: 10_000 });
    p.feed(input);
    const err = events.find((e) => e[0] === 'error');
    assert.ok(err, `no error for ${input.slice(0, 40)}`);
    assert.equal((err[1] as StreamError).condition, condition, input.slice(0, 40));
    assert.ok(p.closed || condition === 'unsupported-stanza-type');
  }
});

test('toDocument() declares jabber:client on stanzas, not on other elements', () => {
  assert.equal(xml('message', { to: 'a@b' }, xml('body', null, 'x')).toDocument(NS.CLIENT), `<message xmlns='jabber:client' to='a@b'><body>x</body></message>`);
  assert.equal(xml('iq', { xmlns: NS.CLIENT, type: 'result', id: '1' }).toDocument(NS.CLIENT), `<iq xmlns='jabber:client' type='result' id='1'/>`);
  assert.equal(xml('success', { xmlns: NS.SASL }).toDocument(NS.CLIENT), `<success xmlns='${NS.SASL}'/>`);
  assert.equal(new StreamError('conflict').toXML(true), `<stream:error xmlns:stream='${NS.STREAM}'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`);
});
