// Differential test of the XML stream parser (RFC 6120 §11) against the saxes-based parser it
// replaced (copied below as the oracle, unchanged but for its name): seeded random XMPP-like
// streams, valid and mutated, fed in different chunkings to both; the callback sequences
// (header, stanzas, end, error condition, and depth/closed after every feed) must be the same.
//
// Not compared here (see parser.test.ts): the stanza size limit, which the new parser counts
// exactly in bytes (the old one interpolated byte offsets inside multi-byte chunks), lone
// surrogates in string input, and a reset() made by a handler inside feed().
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_STREAM_LIMITS,
  StreamError,
  XmlElement,
  XmlStreamParser,
  parseXml,
  type XmlAttrs,
  type XmlStreamHandler,
  type XmlStreamLimits,
} from '../src/index.ts';

import { OldXmlStreamParser } from './helpers/saxes-parser.ts';

// ---------------------------------------------------------------------------
// Random input
// ---------------------------------------------------------------------------

/** A small seeded generator (mulberry32), so that a failure names its seed. */
class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
}

const STREAM_NS = 'http://etherx.jabber.org/streams';
const STANZAS = ['message', 'presence', 'iq'];
const LOCALS = ['body', 'x', 'item', 'query', 'status', 'show', 'c', 'bödy', 'x-y.z', '_a1', 'ü', '𝒜b', 'a', 'Ω', 'ping'];
const ATTRS = ['to', 'from', 'id', 'type', 'a', 'b-c', 'd.e', 'node', 'ver', 'é', 'Ωx'];
const NAMESPACES = ['jabber:client', 'urn:xmpp:ping', 'http://jabber.org/protocol/caps', 'urn:p', 'urn:q', 'urn:example:x', ' urn:padded\t', 'urn:é'];
const PREFIXES = ['p', 'q', 'r', 'ns1', 'é'];
const WS = [' ', '  ', '\n', '\t', '\r\n', '\r', ' \n '];
const WORDS = [
  'hello', 'world', 'x', 'héllo', 'Жук', '中文', '☺', '😀', '𝒜', '🏳️‍🌈', ' ', '  ', '\n', '\r\n', '\r', '\t', '\r\r\n',
  '>', ']', ']]', ']>', '] ]>', '-', '--', '?', "'", '"', '=', '/', ':', '0', '\u00a0', '\u0085', '\u2028', '\ufeff', '\ue000',
];
const ENTITIES = ['&amp;', '&lt;', '&gt;', '&quot;', '&apos;', '&#65;', '&#x263A;', '&#x1F600;', '&#9;', '&#10;', '&#13;', '&#xD;', '&#32;', '&#x5D;', '&#0065;', '&#x000041;', '&#x85;', '&#xA0;'];

function textPiece(r: Rng): string {
  const k = r.int(10);
  if (k < 6) return r.pick(WORDS);
  if (k < 9) return r.pick(ENTITIES);
  let c = '';
  for (let n = r.int(4); n > 0; n--) c += r.pick([...WORDS, '<', '&', '<x>', ']]', ']]]', '&amp;']);
  return `<![CDATA[${c.replace(/]]>/g, ']] >')}]]>`;
}

function text(r: Rng, max = 5): string {
  let s = '';
  for (let n = 1 + r.int(max); n > 0; n--) s += textPiece(r);
  return s;
}

function attrValue(r: Rng, q: string): string {
  let s = '';
  for (let n = r.int(4); n > 0; n--) {
    const piece = r.chance(0.7) ? r.pick(WORDS) : r.pick(ENTITIES);
    s += piece.split(q).join(q === "'" ? '&apos;' : '&quot;');
  }
  return s;
}

function element(r: Rng, depth: number, scope: string[], name?: string): string {
  let decls = '';
  const inner = [...scope];
  if (r.chance(0.2)) decls += `${r.pick(WS)}xmlns=${r.chance(0.5) ? `'${r.pick(NAMESPACES)}'` : `"${r.pick(NAMESPACES)}"`}`;
  if (r.chance(0.2)) {
    const p = r.pick(PREFIXES);
    decls += `${r.pick(WS)}xmlns:${p}='${r.pick(NAMESPACES)}'`;
    inner.push(p);
  }
  const prefix = inner.length > 0 && r.chance(0.2) ? r.pick(inner) : '';
  const qname = (prefix ? prefix + ':' : '') + (name ?? r.pick(LOCALS));
  let attrs = '';
  const seen = new Set<string>();
  for (let n = r.int(4); n > 0; n--) {
    let a = r.pick(ATTRS);
    if (inner.length > 0 && r.chance(0.15)) a = `${r.pick(inner)}:${a}`;
    else if (r.chance(0.05)) a = 'xml:lang';
    if (seen.has(a)) continue;
    seen.add(a);
    const q = r.chance(0.7) ? "'" : '"';
    const eq = r.chance(0.9) ? '=' : `${r.pick(WS)}=${r.pick(WS)}`;
    attrs += `${r.pick(WS)}${a}${eq}${q}${attrValue(r, q)}${q}`;
  }
  const open = `<${qname}${decls}${attrs}${r.chance(0.1) ? r.pick(WS) : ''}`;
  if (depth >= 4 || r.chance(0.3)) return `${open}/>`;
  let body = '';
  for (let n = r.int(4); n > 0; n--) body += r.chance(0.5) ? element(r, depth + 1, inner) : text(r);
  return `${open}>${body}</${qname}${r.chance(0.1) ? r.pick(WS) : ''}>`;
}

const XML_DECLS = [
  `<?xml version='1.0'?>`,
  `<?xml version="1.0" encoding="UTF-8"?>`,
  `<?xml version='1.0' encoding='utf-8' standalone='yes'?>`,
  `<?xml  version = '1.0'\n?>`,
  `<?xml version='1.1'?>`,
];

/** A client-to-server stream: header, stanzas and keepalives, maybe its end. */
function stream(r: Rng): string {
  let s = '';
  if (r.chance(0.05)) s += '\ufeff';
  if (r.chance(0.7)) s += r.pick(XML_DECLS);
  else if (r.chance(0.2)) s += r.pick(WS);
  if (r.chance(0.4)) s += r.pick(WS);
  const rootPrefix = r.pick(['stream', 'stream', 'stream', 's', '']);
  const root = rootPrefix ? `${rootPrefix}:stream` : 'stream';
  const attrs = [`to='example.com'`, `version="1.0"`, `xml:lang='en'`, `from='a@example.com'`].filter(() => r.chance(0.8));
  const decls = [rootPrefix ? `xmlns:${rootPrefix}='${STREAM_NS}'` : `xmlns='${STREAM_NS}'`];
  if (rootPrefix) decls.push(r.chance(0.9) ? `xmlns='jabber:client'` : `xmlns="jabber:server"`);
  else if (r.chance(0.5)) decls.push(`xmlns:c='jabber:client'`);
  const all = [...decls, ...attrs].sort(() => r.next() - 0.5);
  s += `<${root} ${all.join(r.pick([' ', '\n', '  ']))}${r.chance(0.1) ? ' ' : ''}>`;
  for (let n = r.int(6); n > 0; n--) {
    if (r.chance(0.4)) s += r.pick(WS);
    if (r.chance(0.05)) s += r.pick(['&#32;', '&#10;', '<![CDATA[ ]]>', '<![CDATA[]]>']);
    s += element(r, 0, [], r.pick(STANZAS));
  }
  if (r.chance(0.3)) s += r.pick(WS);
  if (r.chance(0.5)) s += `</${root}>`;
  if (r.chance(0.1)) s += '<presence/>';
  return s;
}

const SNIPPETS = [
  '<!-- c -->', '<!--', '<!-', '<!x>', '<!--->', '<!DOCTYPE stream>', '<!DOCTYPE x [<!ENTITY a "b"><!-- c --><?p x?>]>',
  '<!DOCTYPE x "a>b" [ "]" ]>', '<!DOCTYPE x [<!-- a -- b -->]>', '<?pi body?>', '<?pi?>', '<?xml version="1.0"?>', '<?XML x?>',
  '<??>', '<?x y ??>', '<?xmlfoo?>', ']]>', '<', '&', '&foo;', '&#0;', '&;', '&#x110000;', '&#xD800;', '&#65', '&a b;',
  '&#X41;', '&#x;', '&#1;', '&nbsp;', '&doctype;', '\x01', '\x0b', '\x00', '\x7f', '\x85', '\u2028', '\ufffe', '\uffff',
  '</foo>', '</>', '</ x>', '<a:b/>', '<doctype:x/>', '<DocType:x/>', "<x a='1' a='2'/>",
  "<x xmlns:p='urn:a' xmlns:q='urn:a' p:a='1' q:a='2'/>", "<x xmlns:p='doctype' xmlns:q='doctype' p:a='1' q:a='2'/>",
  "<x xmlns:p=''/>", '<xmlns:x/>', "<x xmlns:xml='urn:bad'/>", "<x xmlns:xml='http://www.w3.org/XML/1998/namespace'/>",
  "<x xmlns='http://www.w3.org/2000/xmlns/'/>", "<x xmlns:a='http://www.w3.org/XML/1998/namespace'/>",
  "<x xmlns='http://www.w3.org/XML/1998/namespace'/>", "<x xmlns:xmlns='urn:x'/>", "<x p:a='1'/>", '<x a=1/>', "<x a='<'/>",
  '<x a/>', '<x a />', "<x a='1'b='2'/>", '<x/ >', '<:x/>', '<x:/>', '<a:b:c/>', "<x :a='1'/>", "<x a:='1'/>", '<1a/>',
  '< a/>', '<x\x01/>', '<![CDATA[ x ]]>', '<![CDATA[', '<![CDATX[', '<![CDATA[]]>', 'hello', '&amp;', '&#32;', ']]', ']',
  '</stream:stream>', `<stream:stream xmlns:stream='${STREAM_NS}'>`, '\r', '\r\n', '😀', "<x y='&#x1F600;'/>",
  '<é/>', "<x é='1'/>", '<x\u2028/>', '<x\x85/>', "<x\ta='1'\r\nb='2'/>", "<x a='\t\n\r\r\n'/>", "<x __proto__='1'/>",
  "<x a='1' xmlns:p='urn:p' p:a='2' xmlns:q='urn:p' q:b='3'/>", '<presence/>', '<presence>', '</presence>', '<iq>',
  '\ud83d\ude00', '<\ud83d\ude00/>', '<\u{f0000}/>', '<x\u{f0000}/>', '<?xml?>',
];

const CHARS = ['<', '>', '&', "'", '"', '=', '/', ':', ' ', '\x00', '\x01', '\x7f', '\x85', '\u2028', '\ufffe', ']', '!', '?', '-', 'x', ';', '#', '\r', '\t', '\n', 'é', '😀'];

/** One random change to a stream: truncation, an inserted snippet or character, a deletion or a duplication. */
function mutate(r: Rng, s: string): string {
  const at = r.int(s.length + 1);
  switch (r.int(6)) {
    case 0:
      return s.slice(0, at);
    case 1:
    case 2:
      return s.slice(0, at) + r.pick(SNIPPETS) + s.slice(at);
    case 3:
      return s.slice(0, at) + r.pick(CHARS) + s.slice(at + (r.chance(0.5) ? 1 : 0));
    case 4:
      return s.slice(0, at) + s.slice(at + 1 + r.int(8));
    default: {
      const len = 1 + r.int(20);
      return s.slice(0, at + len) + s.slice(at, at + len) + s.slice(at + len);
    }
  }
}

/** The same, at a place in the prolog (XML declaration, DOCTYPE, text before the root, the stream header). */
function mutateStart(r: Rng, s: string): string {
  const at = r.int(Math.min(s.length, 150) + 1);
  const k = r.int(4);
  if (k === 0) return s.slice(0, at) + r.pick(PROLOG) + s.slice(at);
  if (k === 1) return r.pick(PROLOG) + s;
  return mutate(r, s.slice(0, at)) + s.slice(at);
}

const PROLOG = [
  '\ufeff', '\ufeff\ufeff', ' ', '\r\n', '\r', 'x', '&amp;', '&#32;', '<!-- c -->', '<?pi x?>', '<?xml version="1.0"?>',
  "<?xml version='1.1'?>", "<?xml version='1.01'?>", "<?xml version='2.0'?>", '<?xml?>', "<?xml encoding='UTF-8'?>",
  "<?xml version='1.0' standalone='maybe'?>", "<?xml version='1.0' encoding='8bit'?>", "<?xml version='1.0'encoding='x'?>",
  "<?xml version='1.0' ?>", "<?xml version='1.0' version='1.0'?>", '<?xml version=1.0?>', "<?xml version\n=\n'1.0'?>",
  "<?xml version='1.0'? >", "<?xml version='1.0' standalone='yes' encoding='x'?>", '<?xml ?>', "<?xml  version='1.0'\t?>",
  '<!DOCTYPE stream>', "<!DOCTYPE stream SYSTEM 'x>y'>", '<!DOCTYPE s [<!ENTITY e "v">]>', '<!DOCTYPE s [<!-- a -->]>',
  '<!DOCTYPE s [<!-- a -- b -->]>', '<!DOCTYPE s [<?p a ? b?>]>', '<!DOCTYPE s [ "]" \'>\' ]>', '<!DOCTYPE', '<!DOCTYP>',
  '<![CDATA[x]]>', '<![CDATA[ ]]>', '</x>', '</>', '</doctype>', '<?XmL x?>', '<?xml-stylesheet x?>', '<??>', '<?\x01?>',
  '<!-->', '<!x', ']]>', '\x01', '\ud83d\ude00', '<?xml version="1.0"?><?xml version="1.0"?>',
];

/** XML-significant fragments in any order. */
function soup(r: Rng): string {
  const TOKENS = [
    '<', '>', '/', '/>', '</', '<!', '<?', '?>', '-->', '<!--', '[', ']', ']]>', '<![CDATA[', '&', ';', '&#', '&#x', 'x', 'a',
    ':', 'p:', '=', "'", '"', ' ', '\n', '\r', '\t', 'DOCTYPE', 'CDATA', 'xml', 'xmlns', 'xmlns:p', "='urn:p'", 'message',
    '<message>', '</message>', '<presence/>', 'é', '😀', '\x85', '\u2028', 'amp;', 'lt;', '65;', 'version', "'1.0'", '-', '--',
  ];
  let s = r.chance(0.7) ? `<stream:stream xmlns='jabber:client' xmlns:stream='${STREAM_NS}'>` : '';
  for (let n = 5 + r.int(40); n > 0; n--) s += r.pick(TOKENS);
  return s;
}

const BAD_BYTES = [[0xff], [0xfe], [0xc0, 0x80], [0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe0, 0x80], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0xc3], [0xef, 0xbb, 0xbf], [0xf5, 0x80, 0x80, 0x80], [0xc2, 0x41]];

/** The stream as UTF-8, maybe with invalid or truncated sequences or a byte order mark. */
function bytes(r: Rng, s: string, mangle: boolean): Uint8Array {
  let b = Buffer.from(s);
  if (mangle) {
    for (let n = 1 + r.int(2); n > 0; n--) {
      const at = r.int(b.length + 1);
      if (r.chance(0.2)) b = b.subarray(0, at);
      else b = Buffer.concat([b.subarray(0, at), Buffer.from(r.pick(BAD_BYTES)), b.subarray(at)]);
    }
  }
  return b;
}

type Chunking = 'whole' | 'bytes' | 'random' | 'string';

function chunks(r: Rng, input: Uint8Array, how: Chunking): Array<Uint8Array | string> {
  if (how === 'whole') return [input];
  if (how === 'bytes') return Array.from(input, (_, k) => input.subarray(k, k + 1));
  if (how === 'string') {
    // UTF-16 chunks, cut anywhere (also between the halves of a surrogate pair).
    const s = Buffer.from(input).toString();
    const out: string[] = [];
    for (let k = 0; k < s.length; ) {
      const n = 1 + r.int(r.chance(0.5) ? 4 : 64);
      out.push(s.slice(k, k + n));
      k += n;
    }
    if (r.chance(0.1)) out.splice(r.int(out.length + 1), 0, '');
    return out;
  }
  const out: Uint8Array[] = [];
  for (let k = 0; k < input.length; ) {
    const n = 1 + r.int(r.chance(0.5) ? 4 : 64);
    out.push(input.subarray(k, k + n));
    k += n;
  }
  if (r.chance(0.1)) out.splice(r.int(out.length + 1), 0, new Uint8Array(0));
  return out;
}

// ---------------------------------------------------------------------------
// Running both
// ---------------------------------------------------------------------------

type Parser = { feed(c: Uint8Array | string): void; reset(): void; readonly depth: number; readonly closed: boolean };
type ParserClass = new (h: XmlStreamHandler, l?: Partial<XmlStreamLimits>) => Parser;

/** An element with its text nodes as they are (toString() would merge adjacent ones). */
function dump(el: XmlElement): unknown {
  return [el.name, el.ns, Object.entries(el.attrs), el.children.map((c) => (typeof c === 'string' ? c : dump(c)))];
}

/** Every callback, and depth/closed after every feed. `resetBefore`: reset() before that chunk. */
function events(P: ParserClass, input: Array<Uint8Array | string>, limits: Partial<XmlStreamLimits>, resetBefore = -1): string[] {
  const ev: string[] = [];
  const p = new P(
    {
      streamStart: (h) => ev.push(`start ${JSON.stringify([h.name, h.ns, h.prefix, h.contentNs, Object.entries(h.attrs)])}`),
      stanza: (el) => ev.push(`stanza ${el.toString()} ${JSON.stringify(dump(el))}`),
      streamEnd: () => ev.push('end'),
      streamError: (e) => ev.push(`error ${e.condition}`),
    },
    limits,
  );
  input.forEach((c, k) => {
    if (k === resetBefore) {
      p.reset();
      ev.push('reset');
    }
    p.feed(c);
    ev.push(`| ${p.depth} ${p.closed}`);
  });
  return ev;
}

interface Tally {
  runs: number;
  errors: Map<string, number>;
  stanzas: number;
}

function compare(
  tally: Tally,
  what: string,
  input: Array<Uint8Array | string>,
  limits: Partial<XmlStreamLimits> = {},
  resetBefore = -1,
): void {
  const expected = events(OldXmlStreamParser, input, limits, resetBefore);
  const actual = events(XmlStreamParser, input, limits, resetBefore);
  tally.runs++;
  for (const e of expected) {
    if (e.startsWith('error ')) tally.errors.set(e, (tally.errors.get(e) ?? 0) + 1);
    else if (e.startsWith('stanza ')) tally.stanzas++;
  }
  if (expected.length === actual.length && expected.every((e, k) => e === actual[k])) return;
  let k = 0;
  while (k < expected.length && expected[k] === actual[k]) k++;
  const show = (c: Uint8Array | string) => (typeof c === 'string' ? JSON.stringify(c) : `<${Buffer.from(c).toString('hex')}>`);
  const whole = input.map((c) => (typeof c === 'string' ? Buffer.from(c) : c));
  assert.fail(
    `${what}: first difference at event ${k}\n` +
      `input (${input.length} chunks): ${JSON.stringify(Buffer.concat(whole).toString())}\n` +
      `chunks: ${input.slice(0, 400).map(show).join(' ')}\n` +
      `limits: ${JSON.stringify(limits)}\n` +
      `old: ${JSON.stringify(expected.slice(Math.max(0, k - 3), k + 3))}\n` +
      `new: ${JSON.stringify(actual.slice(Math.max(0, k - 3), k + 3))}`,
  );
}

function newTally(): Tally {
  return { runs: 0, errors: new Map(), stanzas: 0 };
}

const HOW: Chunking[] = ['whole', 'random', 'string', 'bytes'];

/** More cases for a longer run: PARSER_DIFF_SCALE=20 node --import tsx --test … */
const SCALE = Number(process.env.PARSER_DIFF_SCALE ?? 1);

describe('differential: XmlStreamParser against the saxes-based parser', () => {
  test('valid streams, every chunking', () => {
    const tally = newTally();
    let clean = 0;
    for (let seed = 1; seed <= 1500 * SCALE; seed++) {
      const r = new Rng(seed);
      const s = stream(r);
      const input = bytes(r, s, false);
      for (const how of HOW) {
        if (how === 'bytes' && seed % 4 !== 0) continue;
        compare(tally, `valid seed ${seed} ${how}`, chunks(r, input, how));
      }
      if (events(XmlStreamParser, [input], {}).every((e) => !e.startsWith('error'))) clean++;
    }
    // The generator aims at valid XML (its rare errors: duplicate expanded attribute names, U+FFFE/U+0085 in 1.1 streams).
    assert.ok(clean > 1300 * SCALE, `only ${clean} of ${1500 * SCALE} generated streams are valid`);
    assert.ok(tally.stanzas > 10_000, `${tally.stanzas} stanzas`);
  });

  test('mutated and invalid streams, every chunking', () => {
    const tally = newTally();
    for (let seed = 1; seed <= 3000 * SCALE; seed++) {
      const r = new Rng(100_000 + seed);
      let s = stream(r);
      for (let n = 1 + r.int(2); n > 0; n--) s = mutate(r, s);
      const input = bytes(r, s, r.chance(0.15));
      for (const how of HOW) {
        if (how === 'bytes' && seed % 5 !== 0) continue;
        if (how === 'string' && !Buffer.from(Buffer.from(input).toString()).equals(input)) continue;
        compare(tally, `mutated seed ${seed} ${how}`, chunks(r, input, how));
      }
    }
    if (process.env.PARSER_DIFF_VERBOSE) console.log(tally);
    // Every condition is met many times.
    for (const c of ['not-well-formed', 'restricted-xml', 'bad-format']) {
      assert.ok((tally.errors.get(`error ${c}`) ?? 0) > 50 * SCALE, `${c}: ${tally.errors.get(`error ${c}`)}`);
    }
  });

  test('mutated prologs and token soup, every chunking', () => {
    const tally = newTally();
    for (let seed = 1; seed <= 3000 * SCALE; seed++) {
      const r = new Rng(500_000 + seed);
      let s = seed % 3 === 0 ? soup(r) : stream(r);
      if (seed % 3 !== 0) for (let n = 1 + r.int(2); n > 0; n--) s = mutateStart(r, s);
      const input = bytes(r, s, r.chance(0.05));
      for (const how of HOW) {
        if (how === 'bytes' && seed % 5 !== 0) continue;
        if (how === 'string' && !Buffer.from(Buffer.from(input).toString()).equals(input)) continue;
        compare(tally, `prolog/soup seed ${seed} ${how}`, chunks(r, input, how));
      }
    }
    if (process.env.PARSER_DIFF_VERBOSE) console.log(tally);
  });

  test('depth and attribute limits', () => {
    const tally = newTally();
    for (let seed = 1; seed <= 1000 * SCALE; seed++) {
      const r = new Rng(200_000 + seed);
      let s = stream(r);
      if (r.chance(0.3)) s = mutate(r, s);
      const limits = { maxDepth: 1 + r.int(4), maxAttributes: r.int(4) };
      compare(tally, `limits seed ${seed}`, chunks(r, bytes(r, s, false), r.pick(['whole', 'random'] as const)), limits);
    }
    assert.ok((tally.errors.get('error policy-violation') ?? 0) > 300 * SCALE);
  });

  test('stanza size limit: at least as strict (ASCII input, where the old byte count was exact)', () => {
    let stricter = 0;
    let same = 0;
    for (let seed = 1; seed <= 1000 * SCALE; seed++) {
      const r = new Rng(600_000 + seed);
      const s = stream(r).replace(/[^\x00-\x7f]/g, 'x');
      const input = chunks(r, Buffer.from(s), r.pick(['whole', 'random', 'bytes'] as const));
      const limits = { maxStanzaSize: 40 + r.int(500) };
      const expected = events(OldXmlStreamParser, input, limits);
      const actual = events(XmlStreamParser, input, limits);
      let k = 0;
      while (k < expected.length && expected[k] === actual[k]) k++;
      if (k === expected.length && k === actual.length) {
        same++;
        continue;
      }
      // The new parser counts from the stanza's `<` (the old one from after `<name `): it may stop earlier, never later.
      assert.equal(actual[k], 'error policy-violation', `seed ${seed} ${JSON.stringify(limits)}: old ${expected[k]}, new ${actual[k]}\n${JSON.stringify(s)}`);
      stricter++;
    }
    if (process.env.PARSER_DIFF_VERBOSE) console.log({ same, stricter });
    assert.ok(same > 500 * SCALE && stricter > 0, `same ${same}, stricter ${stricter}`);
  });

  test('reset() between feeds', () => {
    const tally = newTally();
    for (let seed = 1; seed <= 500 * SCALE; seed++) {
      const r = new Rng(300_000 + seed);
      const first = chunks(r, bytes(r, stream(r), r.chance(0.1)), 'random');
      const second = chunks(r, bytes(r, stream(r), false), r.pick(['whole', 'random', 'string'] as const));
      // Cut the first stream anywhere (also inside a multi-byte character or a CR LF).
      compare(tally, `reset seed ${seed}`, [...first.slice(0, 1 + r.int(first.length)), ...second], {}, -1);
      const cut = 1 + r.int(first.length);
      compare(tally, `reset seed ${seed} (reset)`, [...first.slice(0, cut), ...second], {}, cut);
    }
  });

  test('parseXml', () => {
    let n = 0;
    for (let seed = 1; seed <= 2000 * SCALE; seed++) {
      const r = new Rng(400_000 + seed);
      let s = element(r, 0, [], r.pick(STANZAS));
      if (r.chance(0.5)) s = mutate(r, s);
      // A mutation may cut a surrogate pair: lone surrogates are not compared (see the top).
      if (Buffer.from(s).toString() !== s) continue;
      let expected: string;
      let actual: string;
      try {
        expected = JSON.stringify(dump(parseXml(s, {}, OldXmlStreamParser)));
      } catch (e) {
        expected = `error ${(e as StreamError).condition}`;
      }
      try {
        actual = JSON.stringify(dump(parseXml(s)));
      } catch (e) {
        actual = `error ${(e as StreamError).condition}`;
      }
      assert.equal(actual, expected, `parseXml seed ${seed}: ${JSON.stringify(s)}`);
      if (!expected.startsWith('error')) n++;
    }
    assert.ok(n > 800 * SCALE);
  });
});
