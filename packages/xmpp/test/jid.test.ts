import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JID, JidError, JID_PART_MAX_OCTETS } from '../src/jid.ts';
import { PrecisError, nickname, nicknameForComparison, opaqueString, usernameCaseMapped } from '../src/precis.ts';
import { StanzaError } from '../src/errors.ts';

function parts(j: JID): [string, string, string] {
  return [j.local, j.domain, j.resource];
}

function assertMalformed(s: string, part?: string, message?: RegExp): void {
  assert.throws(
    () => JID.parse(s),
    (e: unknown) => {
      assert.ok(e instanceof JidError, `expected JidError for ${JSON.stringify(s)}, got ${String(e)}`);
      assert.equal(e.condition, 'jid-malformed');
      if (part !== undefined) assert.equal(e.part, part);
      if (message) assert.match(e.message, message);
      return true;
    },
  );
  assert.equal(JID.tryParse(s), null);
}

test('RFC 7622 §3.5 valid examples parse into their parts', () => {
  const cases: Array<[string, [string, string, string]]> = [
    ['juliet@example.com', ['juliet', 'example.com', '']],
    ['juliet@example.com/foo', ['juliet', 'example.com', 'foo']],
    ['juliet@example.com/foo bar', ['juliet', 'example.com', 'foo bar']],
    ['juliet@example.com/foo@bar', ['juliet', 'example.com', 'foo@bar']],
    ['foo\\20bar@example.com', ['foo\\20bar', 'example.com', '']],
    ['fussball@example.com', ['fussball', 'example.com', '']],
    ['fußball@example.com', ['fußball', 'example.com', '']],
    ['π@example.com', ['π', 'example.com', '']],
    ['Σ@example.com/foo', ['σ', 'example.com', 'foo']],
    ['σ@example.com/foo', ['σ', 'example.com', 'foo']],
    ['ς@example.com/foo', ['ς', 'example.com', 'foo']],
    ['king@example.com/♚', ['king', 'example.com', '♚']],
    ['example.com', ['', 'example.com', '']],
    ['example.com/foobar', ['', 'example.com', 'foobar']],
    ['a.example.com/b@example.net', ['', 'a.example.com', 'b@example.net']],
  ];
  for (const [input, expected] of cases) {
    const jid = JID.parse(input);
    assert.deepEqual(parts(jid), expected, input);
    assert.notEqual(JID.tryParse(input), null, input);
  }
});

test('RFC 7622 §3.5 invalid examples are jid-malformed', () => {
  assertMalformed('"juliet"@example.com', 'localpart', /U\+0022 QUOTATION MARK/);
  assertMalformed('foo bar@example.com', 'localpart', /U\+0020 SPACE is not allowed in a localpart/);
  assertMalformed('juliet@example.com/', 'resourcepart', /empty/);
  assertMalformed('@example.com/', 'localpart', /empty/);
  assertMalformed('henry\u2163@example.com', 'localpart', /U\+2163/);
  assertMalformed('♚@example.com', 'localpart', /U\+265A BLACK CHESS KING.*symbols/);
  assertMalformed('juliet@', 'domainpart', /empty/);
  assertMalformed('/foobar', 'domainpart', /empty/);
});

test('Σ and σ localparts are the same address; ς stays distinct (toLowerCase, RFC 8265 §3.3.3)', () => {
  const upper = JID.parse('Σ@example.com/foo');
  const lower = JID.parse('σ@example.com/foo');
  const final = JID.parse('ς@example.com/foo');
  assert.ok(upper.equals(lower));
  assert.equal(upper.toString(), 'σ@example.com/foo');
  assert.ok(!final.equals(lower));
});

test('fussball and fußball are different localparts (no case folding of ß)', () => {
  assert.ok(!JID.parse('fussball@example.com').equals(JID.parse('fußball@example.com')));
});

test('localpart and domainpart are case-insensitive, the resourcepart is case-preserved', () => {
  const a = JID.parse('Juliet@Example.COM/Balcony');
  assert.deepEqual(parts(a), ['juliet', 'example.com', 'Balcony']);
  assert.ok(a.equals(JID.parse('JULIET@example.com/Balcony')));
  assert.ok(!a.equals(JID.parse('juliet@example.com/balcony')));
  assert.equal(a.toString(), 'juliet@example.com/Balcony');
});

test('the first slash separates the resource, an @ before it the localpart (RFC 7622 §3.1)', () => {
  assert.deepEqual(parts(JID.parse('a@b/c/d@e')), ['a', 'b', 'c/d@e']);
  assert.deepEqual(parts(JID.parse('b/c@d')), ['', 'b', 'c@d']);
  assertMalformed('a@b@c', 'domainpart');
});

test('localpart prohibits " & \' / : < > @ (RFC 7622 §3.3.1)', () => {
  for (const c of ['"', '&', "'", ':', '<', '>']) assertMalformed(`a${c}b@example.com`, 'localpart', /RFC 7622 §3\.3\.1/);
  // A fullwidth commercial at is width-mapped to '@' and then refused.
  assertMalformed('a\uFF20b@example.com', 'localpart', /U\+0040 COMMERCIAL AT/);
});

test('localpart width mapping maps fullwidth letters (RFC 8265 §3.3.1)', () => {
  assert.equal(JID.parse('ＪＵＬＩＥＴ@example.com').toString(), 'juliet@example.com');
});

test('resourcepart maps non-ASCII spaces, keeps width and rejects controls (OpaqueString, RFC 8265 §4.2)', () => {
  assert.equal(JID.parse('a@example.com/foo\u00A0bar').resource, 'foo bar');
  assert.equal(JID.parse('a@example.com/ＡＢ').resource, 'ＡＢ');
  assertMalformed('a@example.com/foo\u0007', 'resourcepart', /U\+0007.*control/);
  assertMalformed('a@example.com/x\u200Bx', 'resourcepart', /U\+200B ZERO WIDTH SPACE/);
});

test('resourcepart is NFC-normalized', () => {
  assert.ok(JID.parse('a@example.com/cafe\u0301').equals(JID.parse('a@example.com/caf\u00E9')));
});

test('localpart Bidi Rule: right-to-left localparts pass, mixed directions fail (RFC 5893 §2)', () => {
  assert.equal(JID.parse('שלום@example.com').local, 'שלום');
  assert.equal(JID.parse('مرحبا@example.com').local, 'مرحبا');
  assertMalformed('שalom@example.com', 'localpart', /Bidi Rule/);
  assertMalformed('abcש@example.com', 'localpart', /Bidi Rule/);
});

test('each part is limited to 1023 octets of UTF-8 after preparation', () => {
  const ok = 'a'.repeat(JID_PART_MAX_OCTETS);
  assert.equal(JID.parse(`${ok}@example.com`).local.length, 1023);
  assertMalformed(`${'a'.repeat(1024)}@example.com`, 'localpart', /1023 octets/);
  // 512 two-octet letters = 1024 octets.
  assertMalformed(`${'é'.repeat(512)}@example.com`, 'localpart', /1023 octets/);
  assert.equal(JID.parse(`${'é'.repeat(511)}@example.com`).local.length, 511);
  assertMalformed(`a@example.com/${'r'.repeat(1024)}`, 'resourcepart', /1023 octets/);
  assert.equal(JID.parse(`a@example.com/${'r'.repeat(1023)}`).resource.length, 1023);
  const longDomain = `${'a.'.repeat(511)}ab`; // 1024 octets
  assertMalformed(`a@${longDomain}`, 'domainpart', /1023 octets/);
});

test('one trailing dot of the domainpart is stripped; empty labels are refused (RFC 7622 §3.2)', () => {
  assert.ok(JID.parse('juliet@example.com.').equals(JID.parse('juliet@example.com')));
  assert.equal(JID.parse('example.com./r').toString(), 'example.com/r');
  assertMalformed('juliet@example.com..', 'domainpart', /empty label/);
  assertMalformed('juliet@.example.com', 'domainpart', /empty label/);
  assertMalformed('juliet@a..b', 'domainpart', /empty label/);
  assertMalformed('juliet@.', 'domainpart', /empty/);
});

test('IP literal domainparts are kept (RFC 7622 §3.2)', () => {
  assert.deepEqual(parts(JID.parse('juliet@[2001:DB8::1]/r')), ['juliet', '[2001:db8::1]', 'r']);
  assert.equal(JID.parse('[::1]').domain, '[::1]');
  assert.equal(JID.parse('[::ffff:192.0.2.1]').domain, '[::ffff:192.0.2.1]');
  assert.equal(JID.parse('romeo@192.0.2.7').domain, '192.0.2.7');
  assertMalformed('juliet@[2001:db8::1', 'domainpart', /IPv6/);
  assertMalformed('juliet@[not-an-ip]', 'domainpart', /IPv6/);
  assertMalformed('juliet@[1:2:3:4:5:6:7:8:9]', 'domainpart', /IPv6/);
});

test('internationalized domainparts become lowercase U-labels (RFC 7622 §3.2, IDNA2008)', () => {
  assert.equal(JID.parse('user@BÜcher.example').toString(), 'user@bücher.example');
  assert.equal(JID.parse('user@xn--bcher-kva.example').toString(), 'user@bücher.example');
  assert.ok(JID.parse('user@XN--BCHER-KVA.example').equals(JID.parse('user@bücher.example')));
  // Ideographic full stops are label separators.
  assert.equal(JID.parse('user@例え。テスト').domain, '例え.テスト');
  assertMalformed('user@exa mple.com', 'domainpart');
  assertMalformed('user@exa_mple.com', 'domainpart');
  assertMalformed('user@xn--zz.example', 'domainpart');
});

test('JidError is a jid-malformed StanzaError with a PrecisError cause', () => {
  try {
    JID.parse('foo bar@example.com');
    assert.fail('should throw');
  } catch (e) {
    assert.ok(e instanceof JidError);
    assert.ok(e instanceof StanzaError);
    assert.equal(e.condition, 'jid-malformed');
    assert.equal(e.type, 'modify');
    assert.ok(e.cause instanceof PrecisError);
    assert.equal((e.cause as PrecisError).codePoint, 0x20);
  }
});

test('bare(), isBare(), bareString(), withResource()', () => {
  const full = JID.parse('juliet@example.com/balcony');
  assert.equal(full.isBare(), false);
  const bare = full.bare();
  assert.equal(bare.isBare(), true);
  assert.equal(bare.toString(), 'juliet@example.com');
  assert.equal(full.bareString(), 'juliet@example.com');
  assert.equal(full.bare(), bare, 'bare() is cached');
  assert.equal(bare.bare(), bare, 'bare() of a bare JID is itself');
  const other = full.withResource('Orchard\u00A0Wall');
  assert.equal(other.toString(), 'juliet@example.com/Orchard Wall');
  assert.equal(other.bare(), bare, 'withResource shares the bare JID');
  assert.equal(full.withResource(''), bare);
  assert.equal(full.withResource('balcony'), full);
  assert.throws(() => full.withResource('a\u0000'), JidError);
  assert.equal(JID.parse('example.com').bareString(), 'example.com');
});

test('JID.of prepares each part', () => {
  const j = JID.of('Juliet', 'EXAMPLE.com.', 'Balcony');
  assert.equal(j.toString(), 'juliet@example.com/Balcony');
  assert.ok(j.equals(JID.parse('juliet@example.com/Balcony')));
  assert.equal(JID.of('', 'example.com').toString(), 'example.com');
  assert.equal(JID.of('romeo', 'example.net').isBare(), true);
  assert.throws(() => JID.of('a b', 'example.com'), JidError);
  assert.throws(() => JID.of('a', ''), JidError);
});

test('equals, toString and toJSON', () => {
  const a = JID.parse('romeo@example.net/orchard');
  assert.ok(a.equals(JID.of('ROMEO', 'example.net', 'orchard')));
  assert.ok(!a.equals(JID.parse('romeo@example.net')));
  assert.ok(!a.equals(null));
  assert.equal(`${a}`, 'romeo@example.net/orchard');
  assert.equal(JSON.stringify({ to: a }), '{"to":"romeo@example.net/orchard"}');
});

test('parse caches repeated addresses', () => {
  const s = 'cache-test@example.com/res';
  assert.equal(JID.parse(s), JID.parse(s));
});

test('PRECIS profiles: UsernameCaseMapped and OpaqueString (RFC 8265)', () => {
  assert.equal(usernameCaseMapped('JuLiEt'), 'juliet');
  assert.throws(() => usernameCaseMapped(''), (e: unknown) => e instanceof PrecisError && e.rule === 'empty');
  assert.throws(
    () => usernameCaseMapped('a b'),
    (e: unknown) => e instanceof PrecisError && e.rule === 'disallowed' && /U\+0020 SPACE is not allowed in a username/.test(e.message),
  );
  assert.throws(() => usernameCaseMapped('a\u00ADb'), /U\+00AD SOFT HYPHEN/);
  assert.throws(() => usernameCaseMapped('\u{E0001}x'), PrecisError);
  assert.equal(opaqueString('Correct Horse\u2003Battery'), 'Correct Horse Battery');
  assert.equal(opaqueString('ΣaΣ ♚'), 'ΣaΣ ♚');
  assert.throws(() => opaqueString(''), (e: unknown) => e instanceof PrecisError && e.rule === 'empty');
  assert.throws(() => opaqueString('a\u0000b'), /U\+0000 NULL/);
  assert.throws(() => opaqueString('\uD800'), PrecisError);
  assert.throws(() => opaqueString('\uE000'), PrecisError, 'private use');
});

test('PRECIS contextual rules (RFC 5892 Appendix A)', () => {
  assert.equal(usernameCaseMapped('l\u00B7l'), 'l\u00B7l'); // Catalan ela geminada
  assert.throws(() => usernameCaseMapped('a\u00B7b'), (e: unknown) => e instanceof PrecisError && e.rule === 'context');
  assert.throws(() => usernameCaseMapped('a\u200Db'), (e: unknown) => e instanceof PrecisError && e.rule === 'context');
  assert.equal(usernameCaseMapped('\u0915\u094D\u200D\u0937'), '\u0915\u094D\u200D\u0937'); // ZWJ after virama
});

test('PRECIS Nickname profile (RFC 8266)', () => {
  assert.equal(nickname('  Foo\u00A0\u00A0Bar  '), 'Foo Bar');
  assert.equal(nicknameForComparison('Foo Bar'), nicknameForComparison('foo  bar '));
  assert.equal(nickname('ﬁ'), 'fi');
  assert.throws(() => nickname('   '), (e: unknown) => e instanceof PrecisError && e.rule === 'empty');
});
