// The XML stream parser (RFC 6120 §4, §11): chunking, namespaces, restricted XML, limits.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NS, XmlStreamParser, parseXml, xml, type StreamHeader, type XmlElement, type XmlStreamLimits } from '../src/index.ts';

const HEADER = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS.STREAM}' to='localhost' version='1.0'>`;

interface Run {
  headers: StreamHeader[];
  stanzas: XmlElement[];
  ended: boolean;
  error: { condition: string; text: string | undefined } | null;
}

function run(chunks: Array<string | Uint8Array>, limits: Partial<XmlStreamLimits> = {}): Run {
  const r: Run = { headers: [], stanzas: [], ended: false, error: null };
  const p = new XmlStreamParser(
    {
      streamStart: (h) => r.headers.push(h),
      stanza: (el) => r.stanzas.push(el),
      streamEnd: () => (r.ended = true),
      streamError: (e) => (r.error = { condition: e.condition, text: e.text }),
    },
    limits,
  );
  for (const c of chunks) p.feed(typeof c === 'string' ? Buffer.from(c) : c);
  return r;
}

/** Splits a string into chunks of `n` bytes (so multi-byte characters are cut too). */
function bytes(s: string, n: number): Uint8Array[] {
  const b = Buffer.from(s);
  const out: Uint8Array[] = [];
  for (let i = 0; i < b.length; i += n) out.push(b.subarray(i, i + n));
  return out;
}

describe('stream parsing', () => {
  const doc = `${HEADER}<message to='bob@localhost' type='chat'><body>héllo &amp; &lt;world&gt; &#x263A;</body><x xmlns='urn:example:x'><y a='1'/></x></message> \n\t<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq></stream:stream>`;

  test('header, stanzas and end are reported; namespaces resolved', () => {
    const r = run([doc]);
    assert.equal(r.error, null);
    assert.equal(r.headers.length, 1);
    assert.deepEqual(
      { name: r.headers[0]!.name, ns: r.headers[0]!.ns, prefix: r.headers[0]!.prefix, content: r.headers[0]!.contentNs, to: r.headers[0]!.attrs.to },
      { name: 'stream', ns: NS.STREAM, prefix: 'stream', content: NS.CLIENT, to: 'localhost' },
    );
    assert.equal(r.stanzas.length, 2);
    const m = r.stanzas[0]!;
    assert.equal(m.ns, NS.CLIENT);
    assert.equal(m.getChildText('body'), 'héllo & <world> ☺');
    assert.equal(m.getChild('x', 'urn:example:x')?.getChild('y')?.ns, 'urn:example:x');
    assert.equal(r.stanzas[1]!.getChild('ping', NS.PING)?.name, 'ping');
    assert.equal(r.ended, true);
  });

  test('the same result whatever the chunking, including inside multi-byte characters', () => {
    const whole = run([doc]).stanzas.map((s) => s.toString());
    for (const n of [1, 2, 3, 7, 64]) {
      const r = run(bytes(doc, n));
      assert.equal(r.error, null, `chunk size ${n}`);
      assert.deepEqual(r.stanzas.map((s) => s.toString()), whole, `chunk size ${n}`);
    }
  });

  test('serialization round-trips and escapes', () => {
    const s = run([doc]).stanzas[0]!.toString();
    assert.equal(
      s,
      "<message to='bob@localhost' type='chat'><body>héllo &amp; &lt;world&gt; ☺</body><x xmlns='urn:example:x'><y a='1'/></x></message>",
    );
    assert.equal(parseXml(s).toString(), s);
    assert.equal(xml('a', { v: `'"<&` }, 'x<y').toString(), "<a v='&apos;&quot;&lt;&amp;'>x&lt;y</a>");
  });

  test('prefixed elements are normalized to default namespaces; prefixed attributes keep their declaration', () => {
    const r = run([HEADER, "<m:message xmlns:m='jabber:client'><p:q xmlns:p='urn:p' p:a='1' xml:lang='en'/></m:message>"]);
    assert.equal(r.error, null);
    assert.equal(r.stanzas[0]!.toString(), "<message><q xmlns='urn:p' p:a='1' xmlns:p='urn:p' xml:lang='en'/></message>");
  });

  test('whitespace keepalives between stanzas are accepted', () => {
    const r = run([HEADER, ' ', '\n', '<presence/>', '   \r\n', '<presence/>']);
    assert.equal(r.error, null);
    assert.equal(r.stanzas.length, 2);
  });

  test('reset() starts a new stream (restart after STARTTLS/SASL)', () => {
    const r: StreamHeader[] = [];
    const p = new XmlStreamParser({ streamStart: (h) => r.push(h), stanza: () => {}, streamEnd: () => {}, streamError: () => {} });
    p.feed(HEADER);
    p.reset();
    p.feed(HEADER);
    assert.equal(r.length, 2);
  });
});

describe('restricted XML (RFC 6120 §11.1) and malformed input', () => {
  const cases: Array<[string, string, string]> = [
    ['a DTD', `<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY x 'y'>]>${HEADER.slice(21)}`, 'restricted-xml'],
    ['a comment', `${HEADER}<!-- hi -->`, 'restricted-xml'],
    ['a comment inside a stanza', `${HEADER}<message><!-- hi --></message>`, 'restricted-xml'],
    ['a processing instruction', `${HEADER}<?foo bar?>`, 'restricted-xml'],
    ['an undefined entity reference', `${HEADER}<message><body>&nbsp;</body></message>`, 'restricted-xml'],
    ['mismatched tags', `${HEADER}<message><body></message>`, 'not-well-formed'],
    ['a bad attribute', `${HEADER}<message to=bob/>`, 'not-well-formed'],
    ['a duplicate attribute', `${HEADER}<message to='a' to='b'/>`, 'not-well-formed'],
    ['an unbound prefix', `${HEADER}<foo:bar/>`, 'not-well-formed'],
    ['text at stream level', `${HEADER}hello<presence/>`, 'bad-format'],
  ];
  for (const [what, input, condition] of cases) {
    test(`${what} → ${condition}`, () => {
      const r = run([input]);
      assert.equal(r.error?.condition, condition, JSON.stringify(r.error));
      assert.equal(r.stanzas.length, 0);
    });
  }

  test('invalid UTF-8 → not-well-formed', () => {
    const r = run([HEADER, new Uint8Array([0x3c, 0x61, 0xff, 0xfe, 0x2f, 0x3e])]);
    assert.equal(r.error?.condition, 'not-well-formed');
  });

  test('nothing is reported after an error', () => {
    const r = run([`${HEADER}<!-- x -->`, '<message/>']);
    assert.equal(r.stanzas.length, 0);
  });
});

describe('limits → policy-violation', () => {
  test('a stanza larger than maxStanzaSize, in one chunk or many', () => {
    const big = `<message><body>${'x'.repeat(20_000)}</body></message>`;
    assert.equal(run([HEADER, big], { maxStanzaSize: 10_000 }).error?.condition, 'policy-violation');
    assert.equal(run([HEADER, ...bytes(big, 1000)], { maxStanzaSize: 10_000 }).error?.condition, 'policy-violation');
    assert.equal(run([HEADER, big], { maxStanzaSize: 30_000 }).error, null);
  });

  test('an unterminated entity reference cannot grow without bound', () => {
    const r = run([HEADER, '<message><body>&', ...bytes('a'.repeat(50_000), 4096)], { maxStanzaSize: 10_000 });
    assert.ok(r.error, 'an error is reported');
    assert.ok(['policy-violation', 'restricted-xml', 'not-well-formed'].includes(r.error.condition));
  });

  test('many small stanzas are not one big one', () => {
    const many = '<presence/>'.repeat(5000);
    const r = run([HEADER, many], { maxStanzaSize: 10_000 });
    assert.equal(r.error, null);
    assert.equal(r.stanzas.length, 5000);
  });

  test('nesting deeper than maxDepth', () => {
    assert.equal(run([HEADER, '<a>'.repeat(10)], { maxDepth: 8 }).error?.condition, 'policy-violation');
    assert.equal(run([HEADER, `${'<a>'.repeat(8)}${'</a>'.repeat(8)}`], { maxDepth: 8 }).error, null);
  });

  test('more attributes than maxAttributes', () => {
    const attrs = Array.from({ length: 20 }, (_, i) => `a${i}='v'`).join(' ');
    assert.equal(run([HEADER, `<message ${attrs}/>`], { maxAttributes: 16 }).error?.condition, 'policy-violation');
  });
});

describe('the stanza size limit counts bytes', () => {
  test('a stanza of 4-byte characters is measured in bytes, not characters', () => {
    const emoji = '😀'.repeat(3000); // 12,000 bytes, 6,000 UTF-16 units
    const stanza = `<message><body>${emoji}</body></message>`;
    assert.equal(run([HEADER, stanza], { maxStanzaSize: 10_000 }).error?.condition, 'policy-violation');
    assert.equal(run([HEADER, ...bytes(stanza, 999)], { maxStanzaSize: 10_000 }).error?.condition, 'policy-violation');
    assert.equal(run([HEADER, stanza], { maxStanzaSize: 13_000 }).error, null);
  });
});

describe('the stanza size limit is exact and counts everything buffered', () => {
  const stanza = `<message to='a@b'><body>${'é😀x'.repeat(500)}</body></message>`;
  const size = Buffer.byteLength(stanza);

  test('a stanza of exactly maxStanzaSize bytes passes, one byte more does not, whatever the chunking', () => {
    for (const n of [1, 7, 999, 1 << 20]) {
      assert.equal(run([HEADER, ' \n', ...bytes(stanza, n)], { maxStanzaSize: size }).error, null, `chunks of ${n}`);
      assert.equal(run([HEADER, ...bytes(stanza, n)], { maxStanzaSize: size - 1 }).error?.condition, 'policy-violation', `chunks of ${n}`);
    }
  });

  test('many stanzas with multi-byte text in one chunk are each measured exactly', () => {
    const many = Array.from({ length: 40 }, () => stanza).join('\n');
    const r = run([HEADER, many], { maxStanzaSize: size });
    assert.equal(r.error, null);
    assert.equal(r.stanzas.length, 40);
  });

  test('exact also when a handler parses other XML in between (a parser inside a callback)', () => {
    const r = run([HEADER, [stanza, stanza, stanza].join('')], { maxStanzaSize: size });
    assert.equal(r.error, null);
    let inner = 0;
    const p = new XmlStreamParser(
      {
        streamStart: () => {},
        stanza: () => {
          inner += parseXml(`<x>${'ü'.repeat(100)}</x>`).text().length;
        },
        streamEnd: () => {},
        streamError: (e) => assert.fail(e.message),
      },
      { maxStanzaSize: size },
    );
    p.feed(HEADER);
    p.feed(Buffer.from([stanza, stanza, stanza].join('')));
    assert.equal(inner, 300);
  });

  test('an unfinished stream header, start tag or stanza counts', () => {
    const header = HEADER.replace("to='localhost'", `to='${'a'.repeat(2000)}'`);
    assert.equal(run([header.slice(0, 1500)], { maxStanzaSize: 1000 }).error?.condition, 'policy-violation');
    assert.equal(run([HEADER, `<message to='${'a'.repeat(2000)}`], { maxStanzaSize: 1000 }).error?.condition, 'policy-violation');
    assert.equal(run([HEADER, `<message>${'<a/>'.repeat(300)}`], { maxStanzaSize: 1000 }).error?.condition, 'policy-violation');
  });
});

describe('reset() by a handler during feed() (restart after <starttls/> or SASL success)', () => {
  function restarting(chunks: string[]): { events: string[] } {
    const events: string[] = [];
    const p: XmlStreamParser = new XmlStreamParser({
      streamStart: (h) => events.push(`start ${h.attrs.to}`),
      stanza: (el) => {
        events.push(`stanza ${el.name}`);
        if (el.name === 'starttls') p.reset();
      },
      streamEnd: () => events.push('end'),
      streamError: (e) => events.push(`error ${e.condition}`),
    });
    for (const c of chunks) p.feed(Buffer.from(c));
    return { events };
  }

  test('the rest of the chunk starts the new stream', () => {
    const { events } = restarting([`${HEADER}<starttls/>${HEADER.replace('localhost', 'two')}<presence/>`]);
    assert.deepEqual(events, ['start localhost', 'stanza starttls', 'start two', 'stanza presence']);
  });

  test('white space after the restarting stanza does not spoil the next XML declaration', () => {
    const { events } = restarting([`${HEADER}<starttls/>\r\n`, `${HEADER.replace('localhost', 'two')}<presence/>`]);
    assert.deepEqual(events, ['start localhost', 'stanza starttls', 'start two', 'stanza presence']);
  });
});

describe('XML normalization, as the saxes-based parser did it', () => {
  test('line breaks in text become \\n (CR LF split across chunks too); char references are kept', () => {
    for (const n of [1, 2, 1000]) {
      const r = run([HEADER, ...bytes("<message><body>a\r\nb\rc\nd&#13;e&#xD;&#10;</body></message>", n)]);
      assert.equal(r.stanzas[0]!.getChildText('body'), 'a\nb\nc\nd\re\r\n', `chunks of ${n}`);
    }
  });

  test('tabs and line breaks in attribute values become spaces', () => {
    const r = run([HEADER, ...bytes("<message id='a\tb\r\nc\rd\ne&#9;f'/>", 3)]);
    assert.equal(r.stanzas[0]!.attrs.id, 'a b c d e\tf');
  });

  test('a byte order mark may start the stream (bytes or text)', () => {
    assert.equal(run([new Uint8Array([0xef, 0xbb, 0xbf]), HEADER]).headers.length, 1);
    assert.equal(run([Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(HEADER)])]).error, null);
    const r: StreamHeader[] = [];
    const p = new XmlStreamParser({ streamStart: (h) => r.push(h), stanza: () => {}, streamEnd: () => {}, streamError: () => {} });
    p.feed(`\ufeff${HEADER}`);
    assert.equal(r.length, 1);
  });

  test('a lone surrogate in text input is not well-formed', () => {
    for (const s of ['\ud800x', 'x\udc00', '\ud800\ud800']) {
      const errors: string[] = [];
      const p = new XmlStreamParser({ streamStart: () => {}, stanza: () => {}, streamEnd: () => {}, streamError: (e) => errors.push(e.condition) });
      p.feed(`${HEADER}<message><body>${s}</body></message>`);
      assert.deepEqual(errors, ['not-well-formed'], JSON.stringify(s));
    }
  });
});

describe('chunk boundaries', () => {
  test('two streams cut inside their start tags, interleaved, parse as alone', () => {
    const stanza = `<message to='a@b' from='c@d/e' xmlns:p='urn:p' p:x='1' xml:lang='en' id='abc'><body>hi</body></message>`;
    const results: string[][] = [[], []];
    const parsers = results.map(
      (out) => new XmlStreamParser({ streamStart: () => {}, stanza: (el) => out.push(el.toString()), streamEnd: () => {}, streamError: (e) => out.push(e.condition) }),
    );
    const chunks = bytes(HEADER + stanza.repeat(3), 5);
    for (const c of chunks) for (const p of parsers) p.feed(c);
    assert.deepEqual(results[0], results[1]);
    assert.equal(results[0]!.length, 3);
    assert.equal(results[0]![0], run([HEADER, stanza]).stanzas[0]!.toString());
  });

  test('depth counts open elements; a partial start tag is not one yet', () => {
    const p = new XmlStreamParser({ streamStart: () => {}, stanza: () => {}, streamEnd: () => {}, streamError: () => {} });
    p.feed(HEADER);
    p.feed("<message to='x'><body");
    assert.equal(p.depth, 1);
    p.feed('>hi</body>');
    assert.equal(p.depth, 1);
    p.feed('</message>');
    assert.equal(p.depth, 0);
  });
});
