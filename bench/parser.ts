/**
 * The XML stream parser: the saxes-based parser it replaced (copied below) against the
 * current one (packages/xmpp/src/xml/parser.ts), on the same input.
 *
 *   node --import tsx --expose-gc bench/parser.ts [--rounds 7]
 *
 * Figures (median of the rounds; CPU time of the process, the parsers alternating):
 * - messages: µs per stanza for 100,000 typical ~300-byte message stanzas on one stream,
 *   one chunk per stanza (one socket read each), then the same in 16 KiB chunks;
 * - login: µs per login-like sequence on a new parser (stream header, SASL auth and
 *   response, restart, header, bind, roster get, presence, ping result, stream end);
 * - idle memory: retained heap bytes per parser, for 10,000 parsers each fed a stream header
 *   and one stanza (gc before and after; heapUsed delta, and with external memory).
 */
import { parseArgs } from 'node:util';
import {
  DEFAULT_STREAM_LIMITS,
  StreamError,
  XmlElement,
  XmlStreamParser,
  type XmlAttrs,
  type XmlStreamHandler,
  type XmlStreamLimits,
} from '../packages/xmpp/src/index.ts';

// The saxes-based parser as it was: the differential test's oracle.
import { OldXmlStreamParser } from '../packages/xmpp/test/helpers/saxes-parser.ts';

// ---------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, verbose: { type: 'boolean', default: false } } });
const ROUNDS = Number(args.rounds);

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('run with --expose-gc: node --import tsx --expose-gc bench/parser.ts');
  process.exit(1);
}

type Parser = { feed(c: Uint8Array | string): void; reset(): void };
type ParserClass = new (h: XmlStreamHandler, l?: Partial<XmlStreamLimits>) => Parser;
const PARSERS: Array<[string, ParserClass]> = [
  ['old (saxes)', OldXmlStreamParser],
  ['new', XmlStreamParser],
];

const STREAM_NS = 'http://etherx.jabber.org/streams';
const header = (to: string, id = '') =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${STREAM_NS}' to='${to}' version='1.0' xml:lang='en'${id}>`;

const BODIES = [
  'Art thou not Romeo, and a Montague?',
  'Neither, fair saint, if either thee dislike. With love’s light wings did I o’erperch these walls.',
  'How cam’st thou hither, tell me, and wherefore? The orchard walls are high &amp; hard to climb.',
  'Wie geht’s? Ça va très bien, merci — und dir? 😀',
];

/** A typical chat message with receipts, chat state and origin-id, about 300 bytes. */
function message(k: number): string {
  const id = `${(k * 2654435761) >>> 0}`.padStart(10, '0');
  return (
    `<message to='juliet@capulet.example/balcony' from='romeo@montague.example/orchard' type='chat' id='m${id}' xml:lang='en'>` +
    `<body>${BODIES[k % BODIES.length]}</body>` +
    `<active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/>` +
    `<origin-id xmlns='urn:xmpp:sid:0' id='o${id}'/></message>`
  );
}

const N_MESSAGES = 100_000;
const messages = Array.from({ length: N_MESSAGES }, (_, k) => Buffer.from(message(k)));
const avgBytes = messages.reduce((n, b) => n + b.length, 0) / N_MESSAGES;
const joined = Buffer.concat(messages);
const chunks16k: Buffer[] = [];
for (let k = 0; k < joined.length; k += 16384) chunks16k.push(joined.subarray(k, k + 16384));

/** One client login as the server's parser sees it, one chunk per client write. */
const LOGIN: Array<Buffer | 'reset'> = [
  header('capulet.example'),
  `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1qdWxpZXQscj1vTXNUQUF3QUFBQU1BQUFBTlAwVEFBQUFBQUJQVTBBQQ==</auth>`,
  `<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>Yz1iaXdzLHI9b01zVEFBd0FBQUFNQUFBQU5QMFRBQUFBQUFCUFUwQUFlMTI0Njk1Yi02OWE5LTRkZTYtOWMzMC1iNTFiMzgwOGM1OWUscD1VQTU3dE0vU3ZwQVRCa0gyRlhzMFdEWHZKWXc9</response>`,
  'reset',
  header('capulet.example'),
  `<iq type='set' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource></bind></iq>`,
  `<iq type='get' id='roster_1'><query xmlns='jabber:iq:roster'/></iq>`,
  `<presence><priority>5</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='QJDbD9O0p1uu7/HXx4p8zGQLRdE='/></presence>`,
  `<iq type='result' id='ping_1' to='capulet.example'/>`,
  '</stream:stream>',
].map((c) => (c === 'reset' ? c : Buffer.from(c)));
const LOGIN_STANZAS = 6;

let count = 0;
const handler: XmlStreamHandler = {
  streamStart: () => {},
  stanza: () => {
    count++;
  },
  streamEnd: () => {},
  streamError: (e) => {
    throw new Error(`unexpected stream error: ${e.message}`);
  },
};

// ---------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------

/**
 * CPU time (user + system) in µs: steadier than wall time on a shared machine (another
 * process's load shows less; the rounds alternate between the parsers besides).
 */
function cpuMicros(f: () => void): number {
  const t0 = process.cpuUsage();
  f();
  const t = process.cpuUsage(t0);
  return t.user + t.system;
}

function messagesPerStanza(P: ParserClass, input: Buffer[]): number {
  const p = new P(handler);
  p.feed(header('capulet.example'));
  count = 0;
  const us = cpuMicros(() => {
    for (let k = 0; k < input.length; k++) p.feed(input[k]!);
  });
  if (count !== N_MESSAGES) throw new Error(`${count} stanzas parsed of ${N_MESSAGES}`);
  return us / N_MESSAGES;
}

function loginSequence(P: ParserClass, n: number): number {
  count = 0;
  const us = cpuMicros(() => {
    for (let k = 0; k < n; k++) {
      const p = new P(handler);
      for (let j = 0; j < LOGIN.length; j++) {
        const c = LOGIN[j]!;
        if (c === 'reset') p.reset();
        else p.feed(c);
      }
    }
  });
  if (count !== n * LOGIN_STANZAS) throw new Error(`${count} stanzas parsed of ${n * LOGIN_STANZAS}`);
  return us / n;
}

/** Retained bytes per parser that has read a stream header and one stanza (input not shared). */
function idleMemory(P: ParserClass, n: number): { heap: number; total: number } {
  const parsers: Parser[] = new Array(n);
  const inputs = Array.from({ length: n }, (_, k) => [
    Buffer.from(header(`capulet${k}.example`, ` id='s${k}'`)),
    Buffer.from(message(k)),
  ]);
  gc!();
  gc!();
  const m0 = process.memoryUsage();
  for (let k = 0; k < n; k++) {
    const p = new P(handler);
    p.feed(inputs[k]![0]!);
    p.feed(inputs[k]![1]!);
    parsers[k] = p;
  }
  gc!();
  gc!();
  const m1 = process.memoryUsage();
  // The input buffers are alive at both measurements (and not counted): what is counted is
  // what the parsers keep, decoded strings and decoders included.
  if (parsers.length !== n || inputs.length !== n) throw new Error('lost parsers');
  return {
    heap: (m1.heapUsed - m0.heapUsed) / n,
    total: (m1.heapUsed + m1.external - m0.heapUsed - m0.external) / n,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const fmt = (x: number, d = 2) => x.toFixed(d);

type Figures = { perStanza: number[]; perStanza16k: number[]; login: number[]; heap: number[]; total: number[] };
const results: Record<string, Figures> = {};
for (const [name] of PARSERS) results[name] = { perStanza: [], perStanza16k: [], login: [], heap: [], total: [] };

/**
 * One figure at a time, the parsers alternating round by round (which goes first alternates
 * too), after a warm-up of both. No gc() before the timed runs: a forced full collection
 * shrinks V8's young generation, and the run after it pays for extra scavenges (steady
 * state is what a server sees). The memory figure comes last, as it collects garbage.
 */
function phase(measure: (P: ParserClass) => number, key: 'perStanza' | 'perStanza16k' | 'login'): void {
  for (const [, P] of PARSERS) measure(P);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, P] of round % 2 === 0 ? PARSERS : [...PARSERS].reverse()) results[name]![key].push(measure(P));
  }
}
phase((P) => messagesPerStanza(P, messages), 'perStanza');
phase((P) => messagesPerStanza(P, chunks16k), 'perStanza16k');
phase((P) => loginSequence(P, 10_000), 'login');
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, P] of PARSERS) {
    const m = idleMemory(P, 10_000);
    results[name]!.heap.push(m.heap);
    results[name]!.total.push(m.total);
  }
}

console.log(`node ${process.version}, ${ROUNDS} rounds (median); messages ${fmt(avgBytes, 0)} bytes on average`);
console.log('');
console.log('| | µs/stanza, 1 chunk per stanza | µs/stanza, 16 KiB chunks | µs/login sequence | idle parser: heap bytes | heap + external bytes |');
console.log('|---|---|---|---|---|---|');
for (const [name] of PARSERS) {
  const r = results[name]!;
  console.log(
    `| ${name} | ${fmt(median(r.perStanza))} | ${fmt(median(r.perStanza16k))} | ${fmt(median(r.login), 1)} | ${fmt(median(r.heap), 0)} | ${fmt(median(r.total), 0)} |`,
  );
}
if (args.verbose) for (const [name] of PARSERS) console.log(name, JSON.stringify(results[name], (_, v: unknown) => (typeof v === 'number' ? Math.round(v * 100) / 100 : v)));
const o = results[PARSERS[0]![0]]!;
const nw = results[PARSERS[1]![0]]!;
console.log(
  `| new / old | ${fmt(median(nw.perStanza) / median(o.perStanza))} | ${fmt(median(nw.perStanza16k) / median(o.perStanza16k))} | ${fmt(median(nw.login) / median(o.login))} | ${fmt(median(nw.heap) / median(o.heap))} | ${fmt(median(nw.total) / median(o.total))} |`,
);
