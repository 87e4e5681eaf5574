/**
 * PRECIS string classes and the profiles XMPP needs (RFC 8264, RFC 8265, RFC 8266).
 *
 * The derived property of RFC 8264 §8/§9 is computed from JavaScript's Unicode property
 * escapes (the engine's Unicode version, 15+ on Node 20) instead of the IANA PRECIS tables.
 * Two properties have no escape and are approximated, as documented where they are used:
 * Canonical_Combining_Class=Virama (a fixed list) and Joining_Type (by script), both only
 * for the CONTEXTJ rules of RFC 5892 Appendix A; and Bidi_Class (by script), for the Bidi
 * Rule of RFC 5893 §2.
 *
 * Every function is pure and synchronous; errors are thrown as {@link PrecisError}.
 */

/** Which PRECIS rule a string broke (the `rule` of a {@link PrecisError}). */
export type PrecisRule =
  /** The string is empty after enforcement (RFC 8265 §3.3.3, §4.2.3; RFC 8266 §2.3). */
  | 'empty'
  /** A code point is not allowed in the string class (RFC 8264 §4.2, §4.3, §9). */
  | 'disallowed'
  /** A code point is unassigned in the Unicode version in use (RFC 8264 §9.6). */
  | 'unassigned'
  /** A CONTEXTJ/CONTEXTO code point outside its required context (RFC 5892 Appendix A). */
  | 'context'
  /** The Bidi Rule of RFC 5893 §2 (RFC 8265 §3.3.3 step 5). */
  | 'bidi';

/**
 * A string that a PRECIS profile rejects. `rule` says which rule, `codePoint` the
 * offending code point when there is one (a number, e.g. 0x20), and `message` says both in
 * words, e.g. "U+0020 SPACE is not allowed in a localpart (...)".
 */
export class PrecisError extends Error {
  readonly rule: PrecisRule;
  readonly codePoint: number | undefined;
  constructor(rule: PrecisRule, message: string, codePoint?: number) {
    super(message);
    this.name = 'PrecisError';
    this.rule = rule;
    this.codePoint = codePoint;
  }
}

// ---------------------------------------------------------------------------------------
// Derived property (RFC 8264 §8, §9)
// ---------------------------------------------------------------------------------------

/** The two string classes of RFC 8264 §4. */
export type PrecisStringClass = 'IdentifierClass' | 'FreeformClass';

const enum Prop {
  PVALID,
  /** Valid only in FreeformClass (ID_DIS or FREE_PVAL, RFC 8264 §8). */
  FREE_PVAL,
  CONTEXTJ,
  CONTEXTO,
  DISALLOWED,
  UNASSIGNED,
}

/** Why a code point got its property, for error messages. */
const enum Why {
  ASCII,
  LETTER_DIGIT,
  EXCEPTION,
  CONTEXT,
  UNASSIGNED,
  NONCHARACTER,
  IGNORABLE,
  CONTROL,
  SURROGATE,
  OLD_HANGUL_JAMO,
  COMPAT,
  OTHER_LETTER_DIGIT,
  SPACE,
  SYMBOL,
  PUNCTUATION,
  OTHER,
}

// Exceptions (F), RFC 5892 §2.6 as used by RFC 8264 §9.1.
const EXCEPTION_PVALID = new Set([0x00df, 0x03c2, 0x06fd, 0x06fe, 0x0f0b, 0x3007]);
const EXCEPTION_CONTEXTO = new Set([0x00b7, 0x0375, 0x05f3, 0x05f4, 0x30fb]);
const EXCEPTION_DISALLOWED = new Set([0x0640, 0x07fa, 0x302e, 0x302f, 0x3031, 0x3032, 0x3033, 0x3034, 0x3035, 0x303b]);

const RE_CN = /\p{Cn}/u;
const RE_CS = /\p{Cs}/u;
const RE_CC = /\p{Cc}/u;
const RE_NONCHARACTER = /\p{Noncharacter_Code_Point}/u;
const RE_IGNORABLE = /\p{Default_Ignorable_Code_Point}/u;
const RE_LETTER_DIGITS = /[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}]/u;
const RE_OTHER_LETTER_DIGITS = /[\p{Lt}\p{Nl}\p{No}\p{Me}]/u;
const RE_ZS = /\p{Zs}/u;
const RE_SYMBOL = /[\p{Sm}\p{Sc}\p{Sk}\p{So}]/u;
const RE_PUNCTUATION = /\p{P}/u;

/** Hangul_Syllable_Type L, V or T (RFC 8264 §9.9, OldHangulJamo). */
function isOldHangulJamo(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x11ff) ||
    (cp >= 0xa960 && cp <= 0xa97c) ||
    (cp >= 0xd7b0 && cp <= 0xd7c6) ||
    (cp >= 0xd7cb && cp <= 0xd7fb)
  );
}

/**
 * The derived property of one code point, in the order of RFC 8264 §8. `ch` is the code
 * point as a string (one or two UTF-16 units). Returns [property, reason].
 */
function derive(cp: number, ch: string): [Prop, Why] {
  if (EXCEPTION_PVALID.has(cp)) return [Prop.PVALID, Why.EXCEPTION];
  if (EXCEPTION_CONTEXTO.has(cp)) return [Prop.CONTEXTO, Why.CONTEXT];
  if (EXCEPTION_DISALLOWED.has(cp)) return [Prop.DISALLOWED, Why.EXCEPTION];
  // BackwardCompatible (G) is empty.
  if (RE_CS.test(ch)) return [Prop.DISALLOWED, Why.SURROGATE];
  if (RE_CN.test(ch)) {
    return RE_NONCHARACTER.test(ch) ? [Prop.DISALLOWED, Why.NONCHARACTER] : [Prop.UNASSIGNED, Why.UNASSIGNED];
  }
  if (cp >= 0x21 && cp <= 0x7e) return [Prop.PVALID, Why.ASCII];
  if (cp === 0x200c || cp === 0x200d) return [Prop.CONTEXTJ, Why.CONTEXT];
  if (isOldHangulJamo(cp)) return [Prop.DISALLOWED, Why.OLD_HANGUL_JAMO];
  if (RE_IGNORABLE.test(ch)) return [Prop.DISALLOWED, Why.IGNORABLE];
  if (RE_CC.test(ch)) return [Prop.DISALLOWED, Why.CONTROL];
  if (ch.normalize('NFKC') !== ch) return [Prop.FREE_PVAL, Why.COMPAT];
  if (RE_LETTER_DIGITS.test(ch)) {
    // Arabic-Indic and extended Arabic-Indic digits are CONTEXTO (RFC 5892 §2.6).
    if ((cp >= 0x0660 && cp <= 0x0669) || (cp >= 0x06f0 && cp <= 0x06f9)) return [Prop.CONTEXTO, Why.CONTEXT];
    return [Prop.PVALID, Why.LETTER_DIGIT];
  }
  if (RE_OTHER_LETTER_DIGITS.test(ch)) return [Prop.FREE_PVAL, Why.OTHER_LETTER_DIGIT];
  if (RE_ZS.test(ch)) return [Prop.FREE_PVAL, Why.SPACE];
  if (RE_SYMBOL.test(ch)) return [Prop.FREE_PVAL, Why.SYMBOL];
  if (RE_PUNCTUATION.test(ch)) return [Prop.FREE_PVAL, Why.PUNCTUATION];
  return [Prop.DISALLOWED, Why.OTHER];
}

const WHY_TEXT: Record<Why, string> = {
  [Why.ASCII]: 'ASCII7 (RFC 8264 §9.11)',
  [Why.LETTER_DIGIT]: 'LetterDigits (RFC 8264 §9.1)',
  [Why.EXCEPTION]: 'it is an exception of RFC 5892 §2.6 (RFC 8264 §9.6)',
  [Why.CONTEXT]: 'it needs a context (RFC 5892 Appendix A)',
  [Why.UNASSIGNED]: 'it is unassigned in Unicode (RFC 8264 §9.10)',
  [Why.NONCHARACTER]: 'noncharacters are disallowed (RFC 8264 §9.13)',
  [Why.IGNORABLE]: 'default-ignorable code points are disallowed (RFC 8264 §9.13)',
  [Why.CONTROL]: 'control characters are disallowed (RFC 8264 §9.12)',
  [Why.SURROGATE]: 'surrogate code points are disallowed (RFC 8264 §9.4)',
  [Why.OLD_HANGUL_JAMO]: 'old Hangul jamo are disallowed (RFC 8264 §9.9)',
  [Why.COMPAT]: 'code points with compatibility equivalents are disallowed in the IdentifierClass (RFC 8264 §9.17)',
  [Why.OTHER_LETTER_DIGIT]: 'titlecase letters, letter numbers, other numbers and enclosing marks are disallowed in the IdentifierClass (RFC 8264 §9.18)',
  [Why.SPACE]: 'space characters are disallowed in the IdentifierClass (RFC 8264 §9.14)',
  [Why.SYMBOL]: 'symbols are disallowed in the IdentifierClass (RFC 8264 §9.15)',
  [Why.PUNCTUATION]: 'punctuation is disallowed in the IdentifierClass (RFC 8264 §9.16)',
  [Why.OTHER]: 'it is in no category the PRECIS string classes allow (RFC 8264 §9)',
};

// ---------------------------------------------------------------------------------------
// Describing a code point in messages
// ---------------------------------------------------------------------------------------

const NAMES: ReadonlyMap<number, string> = new Map([
  [0x00, 'NULL'], [0x09, 'CHARACTER TABULATION'], [0x0a, 'LINE FEED'], [0x0d, 'CARRIAGE RETURN'],
  [0x20, 'SPACE'], [0x21, 'EXCLAMATION MARK'], [0x22, 'QUOTATION MARK'], [0x23, 'NUMBER SIGN'],
  [0x24, 'DOLLAR SIGN'], [0x25, 'PERCENT SIGN'], [0x26, 'AMPERSAND'], [0x27, 'APOSTROPHE'],
  [0x2f, 'SOLIDUS'], [0x3a, 'COLON'], [0x3c, 'LESS-THAN SIGN'], [0x3e, 'GREATER-THAN SIGN'],
  [0x40, 'COMMERCIAL AT'], [0x5c, 'REVERSE SOLIDUS'], [0x7f, 'DELETE'],
  [0xa0, 'NO-BREAK SPACE'], [0xad, 'SOFT HYPHEN'], [0xb7, 'MIDDLE DOT'], [0x375, 'GREEK LOWER NUMERAL SIGN'],
  [0x5f3, 'HEBREW PUNCTUATION GERESH'], [0x5f4, 'HEBREW PUNCTUATION GERSHAYIM'], [0x640, 'ARABIC TATWEEL'],
  [0x200b, 'ZERO WIDTH SPACE'], [0x200c, 'ZERO WIDTH NON-JOINER'], [0x200d, 'ZERO WIDTH JOINER'],
  [0x200e, 'LEFT-TO-RIGHT MARK'], [0x200f, 'RIGHT-TO-LEFT MARK'], [0x2028, 'LINE SEPARATOR'],
  [0x2029, 'PARAGRAPH SEPARATOR'], [0x2060, 'WORD JOINER'], [0x2163, 'ROMAN NUMERAL FOUR'],
  [0x2173, 'SMALL ROMAN NUMERAL FOUR'], [0x265a, 'BLACK CHESS KING'], [0x3000, 'IDEOGRAPHIC SPACE'],
  [0x30fb, 'KATAKANA MIDDLE DOT'], [0xfe0f, 'VARIATION SELECTOR-16'], [0xfeff, 'ZERO WIDTH NO-BREAK SPACE'],
  [0xfffd, 'REPLACEMENT CHARACTER'],
]);

/** "U+0020 SPACE", or "U+2164 'Ⅴ'" for a printable code point without a known name. */
export function describeCodePoint(cp: number): string {
  const hex = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  const name = NAMES.get(cp);
  if (name !== undefined) return `${hex} ${name}`;
  const ch = String.fromCodePoint(cp);
  if (/[\p{C}\p{Z}\p{M}\p{Default_Ignorable_Code_Point}]/u.test(ch)) return hex;
  return `${hex} '${ch}'`;
}

// ---------------------------------------------------------------------------------------
// Contextual rules (RFC 5892 Appendix A, applied by RFC 8264 §8 for CONTEXTJ/CONTEXTO)
// ---------------------------------------------------------------------------------------

/** Canonical_Combining_Class=Virama (Unicode 16), which JS regexps cannot query. */
const RE_VIRAMA =
  /[\u094D\u09CD\u0A4D\u0ACD\u0B4D\u0BCD\u0C4D\u0CCD\u0D3B\u0D3C\u0D4D\u0DCA\u0E3A\u0EBA\u0F84\u1039\u103A\u1714\u1715\u1734\u17D2\u1A60\u1B44\u1BAA\u1BAB\u1BF2\u1BF3\u2D7F\uA806\uA82C\uA8C4\uA953\uA9C0\uAAF6\uABED\u{10A3F}\u{11046}\u{11070}\u{1107F}\u{110B9}\u{11133}\u{11134}\u{111C0}\u{11235}\u{112EA}\u{1134D}\u{11442}\u{114C2}\u{115BF}\u{1163F}\u{116B6}\u{1172B}\u{11839}\u{1193D}\u{1193E}\u{119E0}\u{11A34}\u{11A47}\u{11A99}\u{11C3F}\u{11D44}\u{11D45}\u{11D97}]/u;

/**
 * Letters of the scripts that have cursive joining (Joining_Type D/L/R), approximating the
 * Joining_Type test of the ZERO WIDTH NON-JOINER rule (RFC 5892 Appendix A.1).
 */
const RE_JOINING_LETTER =
  /[\p{Script=Arabic}\p{Script=Syriac}\p{Script=Nko}\p{Script=Mongolian}\p{Script=Mandaic}\p{Script=Manichaean}\p{Script=Psalter_Pahlavi}\p{Script=Phags_Pa}\p{Script=Adlam}\p{Script=Hanifi_Rohingya}\p{Script=Sogdian}\p{Script=Old_Uyghur}\p{Script=Chorasmian}]/u;
const RE_MN = /\p{Mn}/u;
const RE_GREEK = /\p{Script=Greek}/u;
const RE_HEBREW = /\p{Script=Hebrew}/u;
const RE_KANA_HAN = /[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]/u;

/** Whether the CONTEXTJ/CONTEXTO code point at `cps[i]` is in its required context. */
function contextAllows(cps: readonly string[], i: number): boolean {
  const cp = cps[i]!.codePointAt(0)!;
  const before = i > 0 ? cps[i - 1]! : '';
  const after = i + 1 < cps.length ? cps[i + 1]! : '';
  switch (cp) {
    case 0x200d: // ZERO WIDTH JOINER, A.2
      return before !== '' && RE_VIRAMA.test(before);
    case 0x200c: {
      // ZERO WIDTH NON-JOINER, A.1
      if (before !== '' && RE_VIRAMA.test(before)) return true;
      let j = i - 1;
      while (j >= 0 && RE_MN.test(cps[j]!)) j--;
      let k = i + 1;
      while (k < cps.length && RE_MN.test(cps[k]!)) k++;
      return j >= 0 && k < cps.length && RE_JOINING_LETTER.test(cps[j]!) && RE_JOINING_LETTER.test(cps[k]!);
    }
    case 0x00b7: // MIDDLE DOT, A.3
      return before === 'l' && after === 'l';
    case 0x0375: // GREEK LOWER NUMERAL SIGN (KERAIA), A.4
      return after !== '' && RE_GREEK.test(after);
    case 0x05f3: // HEBREW PUNCTUATION GERESH, A.5
    case 0x05f4: // HEBREW PUNCTUATION GERSHAYIM, A.6
      return before !== '' && RE_HEBREW.test(before);
    case 0x30fb: // KATAKANA MIDDLE DOT, A.7
      return cps.some((c) => c !== '\u30FB' && RE_KANA_HAN.test(c));
    default:
      if (cp >= 0x0660 && cp <= 0x0669) return !cps.some((c) => c >= '\u06F0' && c <= '\u06F9'); // A.8
      if (cp >= 0x06f0 && cp <= 0x06f9) return !cps.some((c) => c >= '\u0660' && c <= '\u0669'); // A.9
      return false;
  }
}

/**
 * Checks that every code point of `s` is allowed in a string class: PVALID, FREE_PVAL in the
 * FreeformClass only, CONTEXTJ/CONTEXTO only in their context (RFC 8264 §4.2.1, §4.3.1, §8).
 * `slot` names the protocol slot for messages ("localpart", "password", ...).
 * Throws {@link PrecisError} (rule 'disallowed', 'unassigned' or 'context').
 */
export function enforceStringClass(s: string, cls: PrecisStringClass, slot: string): void {
  let cps: string[] | undefined;
  let i = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    const [prop, why] = derive(cp, ch);
    switch (prop) {
      case Prop.PVALID:
        break;
      case Prop.FREE_PVAL:
        if (cls === 'IdentifierClass') {
          throw new PrecisError('disallowed', `${describeCodePoint(cp)} is not allowed in a ${slot}: ${WHY_TEXT[why]}`, cp);
        }
        break;
      case Prop.CONTEXTJ:
      case Prop.CONTEXTO:
        cps ??= Array.from(s);
        if (!contextAllows(cps, i)) {
          throw new PrecisError(
            'context',
            `${describeCodePoint(cp)} is not allowed in a ${slot} here: its contextual rule is not met (RFC 5892 Appendix A, RFC 8264 §8)`,
            cp,
          );
        }
        break;
      case Prop.UNASSIGNED:
        throw new PrecisError('unassigned', `${describeCodePoint(cp)} is not allowed in a ${slot}: ${WHY_TEXT[why]}`, cp);
      case Prop.DISALLOWED:
        throw new PrecisError('disallowed', `${describeCodePoint(cp)} is not allowed in a ${slot}: ${WHY_TEXT[why]}`, cp);
    }
    i++;
  }
}

// ---------------------------------------------------------------------------------------
// Directionality: the Bidi Rule (RFC 5893 §2), approximated by script
// ---------------------------------------------------------------------------------------

/** Strong right-to-left letters (Bidi_Class R or AL), approximated by script. */
const RE_RTL_SCRIPT =
  /[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}\p{Script=Samaritan}\p{Script=Mandaic}\p{Script=Adlam}\p{Script=Hanifi_Rohingya}\p{Script=Mende_Kikakui}\p{Script=Imperial_Aramaic}\p{Script=Phoenician}\p{Script=Kharoshthi}\p{Script=Old_South_Arabian}\p{Script=Old_North_Arabian}\p{Script=Avestan}\p{Script=Inscriptional_Parthian}\p{Script=Inscriptional_Pahlavi}\p{Script=Psalter_Pahlavi}\p{Script=Old_Turkic}\p{Script=Old_Hungarian}\p{Script=Nabataean}\p{Script=Palmyrene}\p{Script=Manichaean}\p{Script=Hatran}\p{Script=Lydian}\p{Script=Cypriot}\p{Script=Sogdian}\p{Script=Old_Sogdian}\p{Script=Elymaic}\p{Script=Chorasmian}\p{Script=Yezidi}\p{Script=Old_Uyghur}\p{Script=Meroitic_Cursive}\p{Script=Meroitic_Hieroglyphs}]/u;
const RE_STRONG = /[\p{L}\p{Mc}]/u;
/** European digits (Bidi_Class EN), approximately. */
const RE_EN = /[0-9\u06F0-\u06F9\u00B2\u00B3\u00B9\u2070-\u2079\u2080-\u2089\u2488-\u249B\uFF10-\uFF19\u{1D7CE}-\u{1D7FF}]/u;
/** Arabic digits (Bidi_Class AN), approximately. */
const RE_AN = /[\u0600-\u0605\u0660-\u0669\u066B\u066C\u06DD\u0890\u0891\u08E2\u{10D30}-\u{10D39}\u{10E60}-\u{10E7E}]/u;

type Dir = 'L' | 'R' | 'EN' | 'AN' | 'NSM' | 'other';

function bidiClass(ch: string): Dir {
  if (RE_STRONG.test(ch)) return RE_RTL_SCRIPT.test(ch) ? 'R' : 'L';
  if (RE_AN.test(ch)) return 'AN';
  if (RE_EN.test(ch)) return 'EN';
  if (RE_MN.test(ch) || /\p{Me}/u.test(ch)) return 'NSM';
  return 'other';
}

/**
 * The Bidi Rule of RFC 5893 §2 for a string that contains right-to-left code points
 * (RFC 8265 §3.3.3 step 5): such a string must start with a right-to-left letter, hold no
 * left-to-right letter, end (before trailing marks) with a right-to-left letter or a digit,
 * and not mix European and Arabic-Indic digits. Strings without right-to-left code points
 * pass unchanged. Bidi classes are approximated by script (JS regexps have no Bidi_Class).
 * Throws {@link PrecisError} with rule 'bidi'.
 */
export function enforceBidiRule(s: string, slot: string): void {
  let hasRtl = false;
  for (const ch of s) {
    const d = bidiClass(ch);
    if (d === 'R' || d === 'AN') {
      hasRtl = true;
      break;
    }
  }
  if (!hasRtl) return;
  const cps = Array.from(s);
  const first = cps[0]!;
  if (bidiClass(first) !== 'R') {
    const cp = first.codePointAt(0)!;
    throw new PrecisError(
      'bidi',
      `a ${slot} with right-to-left characters must start with a right-to-left letter, not ${describeCodePoint(cp)} (Bidi Rule, RFC 5893 §2 condition 1)`,
      cp,
    );
  }
  let en = false;
  let an = false;
  for (const ch of cps) {
    const d = bidiClass(ch);
    if (d === 'L') {
      const cp = ch.codePointAt(0)!;
      throw new PrecisError(
        'bidi',
        `${describeCodePoint(cp)} is a left-to-right character and is not allowed in a right-to-left ${slot} (Bidi Rule, RFC 5893 §2 condition 2)`,
        cp,
      );
    }
    if (d === 'EN') en = true;
    else if (d === 'AN') an = true;
  }
  if (en && an) {
    throw new PrecisError('bidi', `a right-to-left ${slot} must not mix European and Arabic-Indic digits (Bidi Rule, RFC 5893 §2 condition 4)`);
  }
  let k = cps.length - 1;
  while (k > 0 && bidiClass(cps[k]!) === 'NSM') k--;
  const last = bidiClass(cps[k]!);
  if (last !== 'R' && last !== 'EN' && last !== 'AN') {
    const cp = cps[k]!.codePointAt(0)!;
    throw new PrecisError(
      'bidi',
      `a right-to-left ${slot} must end with a right-to-left letter or a digit, not ${describeCodePoint(cp)} (Bidi Rule, RFC 5893 §2 condition 3)`,
      cp,
    );
  }
}

// ---------------------------------------------------------------------------------------
// Profiles
// ---------------------------------------------------------------------------------------

/** Code points with a <wide> or <narrow> decomposition (fullwidth and halfwidth forms). */
const RE_WIDTH = /[\u3000\uFF01-\uFFEE]/u;
const RE_WIDTH_G = /[\u3000\uFF01-\uFFEE]/gu;
const RE_NON_ASCII_SPACE_G = /(?!\u0020)\p{Zs}/gu;
const RE_ASCII_IDENTIFIER = /^[\x21-\x7E]+$/;
const RE_ASCII_FREEFORM = /^[\x20-\x7E]+$/;

function empty(slot: string): PrecisError {
  return new PrecisError('empty', `a ${slot} must not be empty`);
}

/**
 * Width mapping rule of RFC 8265 §3.3.1: maps fullwidth and halfwidth code points to their
 * decomposition mappings (the <wide>/<narrow> decompositions, via NFKC of just those code
 * points). Other compatibility characters are left alone (so "Ⅳ" stays "Ⅳ").
 */
export function widthMap(s: string): string {
  return RE_WIDTH.test(s) ? s.replace(RE_WIDTH_G, (c) => c.normalize('NFKC')) : s;
}

/**
 * Enforces the UsernameCaseMapped profile of the IdentifierClass (RFC 8265 §3.3): width
 * mapping, case mapping (Unicode toLowerCase, locale-independent), NFC, the Bidi Rule, then
 * the IdentifierClass check and non-emptiness. Takes any string, returns the enforced string
 * (used as is for storage and comparison). `slot` names the protocol slot in error messages
 * (default "username"; XMPP uses "localpart", RFC 7622 §3.3).
 * Throws {@link PrecisError}.
 */
export function usernameCaseMapped(s: string, slot = 'username'): string {
  if (RE_ASCII_IDENTIFIER.test(s)) return s.toLowerCase();
  if (s === '') throw empty(slot);
  // Preparation (RFC 8265 §3.3.2): width mapping, then the string class.
  const prepared = widthMap(s);
  enforceStringClass(prepared, 'IdentifierClass', slot);
  // Enforcement (RFC 8265 §3.3.3): case mapping, normalization, directionality, behavioral rule.
  const out = prepared.toLowerCase().normalize('NFC');
  if (out !== prepared) enforceStringClass(out, 'IdentifierClass', slot);
  if (out === '') throw empty(slot);
  enforceBidiRule(out, slot);
  return out;
}

/**
 * Enforces the OpaqueString profile of the FreeformClass (RFC 8265 §4.2): maps non-ASCII
 * space characters (Zs) to U+0020, NFC, then the FreeformClass check and non-emptiness.
 * Case and width are preserved. Returns the enforced string. `slot` names the protocol slot
 * in error messages (default "password"; XMPP uses "resourcepart", RFC 7622 §3.4).
 * Throws {@link PrecisError}.
 */
export function opaqueString(s: string, slot = 'password'): string {
  if (RE_ASCII_FREEFORM.test(s)) return s;
  if (s === '') throw empty(slot);
  enforceStringClass(s, 'FreeformClass', slot); // preparation, RFC 8265 §4.2.2
  const out = s.replace(RE_NON_ASCII_SPACE_G, ' ').normalize('NFC');
  if (out !== s) enforceStringClass(out, 'FreeformClass', slot);
  if (out === '') throw empty(slot);
  return out;
}

/**
 * Enforces the Nickname profile of the FreeformClass (RFC 8266 §2.3): maps non-ASCII spaces
 * to U+0020, trims leading and trailing spaces, collapses runs of spaces to one, NFKC, then
 * the FreeformClass check and non-emptiness. Case is preserved (use
 * {@link nicknameForComparison} to compare). `slot` names the slot in error messages.
 * Throws {@link PrecisError}.
 */
export function nickname(s: string, slot = 'nickname'): string {
  enforceStringClass(s, 'FreeformClass', slot); // preparation, RFC 8266 §2.2
  const mapped = s.replace(RE_NON_ASCII_SPACE_G, ' ').replace(/ {2,}/g, ' ').trim();
  const out = mapped.normalize('NFKC');
  if (out !== s) enforceStringClass(out, 'FreeformClass', slot);
  if (out === '') throw empty(slot);
  return out;
}

/**
 * The comparison form of a nickname (RFC 8266 §2.4): the Nickname profile plus case mapping
 * (toLowerCase), applied before NFKC. Two nicknames are equivalent iff these are equal.
 * Throws {@link PrecisError}.
 */
export function nicknameForComparison(s: string, slot = 'nickname'): string {
  enforceStringClass(s, 'FreeformClass', slot);
  const mapped = s.replace(RE_NON_ASCII_SPACE_G, ' ').replace(/ {2,}/g, ' ').trim();
  const out = mapped.toLowerCase().normalize('NFKC');
  if (out !== s) enforceStringClass(out, 'FreeformClass', slot);
  if (out === '') throw empty(slot);
  return out;
}
