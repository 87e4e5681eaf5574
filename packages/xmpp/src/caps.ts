/**
 * Entity Capabilities (XEP-0115): the verification string of a service
 * discovery `disco#info` answer, for generating one's own `ver` (§5.1) and for
 * checking another entity's (§5.4). Pure computation over node:crypto; no I/O.
 */
import { createHash } from 'node:crypto';
import { NS } from './namespaces.ts';
import type { XmlElement } from './xml/element.ts';

/**
 * Hash functions accepted in the `hash` attribute of `<c/>` (XEP-0115 §4, §8.1, §9.1: names
 * from the IANA Hash Function Textual Names registry; SHA-1 is mandatory to implement) → node:crypto
 * names. MD5 and MD2 are left out on purpose: an answer under them is never cached globally
 * (§5.4 rule 2).
 */
export const CAPS_HASHES: Readonly<Record<string, string>> = {
  'sha-1': 'sha1',
  'sha-224': 'sha224',
  'sha-256': 'sha256',
  'sha-384': 'sha384',
  'sha-512': 'sha512',
};

/** What a disco#info answer says, as XEP-0115 §5 reads it. */
export interface CapsInfo {
  /** `category/type/lang/name` of each identity (XEP-0115 §5.1 rule 2). */
  identities: string[];
  /** Feature `var`s. */
  features: string[];
  /** Extended information forms (XEP-0128) by FORM_TYPE: field var → values (FORM_TYPE itself left out). */
  forms: Map<string, Map<string, string[]>>;
}

/** Why a disco#info answer cannot be used for caps (XEP-0115 §5.4 rule 3.3–3.5). */
export class CapsIllFormed extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'CapsIllFormed';
  }
}

/** Sorts by the "i;octet" collation (RFC 4790 §9.3) that XEP-0115 §5.1 prescribes: UTF-8 bytes. */
function octetSort(values: string[]): string[] {
  return values
    .map((v) => ({ v, b: Buffer.from(v, 'utf8') }))
    .sort((x, y) => Buffer.compare(x.b, y.b))
    .map((e) => e.v);
}

/**
 * Reads a `<query xmlns='http://jabber.org/protocol/disco#info'/>` for caps, applying the
 * checks of XEP-0115 §5.4 rule 3: two identical identities (category/type/lang/name), two
 * identical features, two forms with the same FORM_TYPE, or a FORM_TYPE with several
 * different values make the whole answer ill-formed ({@link CapsIllFormed} is thrown); a
 * form without a FORM_TYPE field, or whose FORM_TYPE is not of type `hidden`, is ignored
 * (rule 3.6). Fields without `var` are ignored.
 */
export function readCapsInfo(query: XmlElement): CapsInfo {
  const identities: string[] = [];
  const features: string[] = [];
  const forms = new Map<string, Map<string, string[]>>();
  for (const el of query.getChildren()) {
    if (el.ns === NS.DISCO_INFO && el.name === 'identity') {
      const a = el.attrs;
      // §5.1 rule 2: CATEGORY '/' [TYPE] '/' [LANG] '/' [NAME], every slash included.
      const id = `${a.category ?? ''}/${a.type ?? ''}/${a['xml:lang'] ?? ''}/${a.name ?? ''}`;
      if (identities.includes(id)) throw new CapsIllFormed(`the identity '${id}' is listed twice`);
      identities.push(id);
    } else if (el.ns === NS.DISCO_INFO && el.name === 'feature') {
      const v = el.attrs.var ?? '';
      if (features.includes(v)) throw new CapsIllFormed(`the feature '${v}' is listed twice`);
      features.push(v);
    } else if (el.ns === NS.DATA_FORMS && el.name === 'x') {
      const fields = el.getChildren('field', NS.DATA_FORMS);
      const formType = fields.find((f) => f.attrs.var === 'FORM_TYPE');
      if (!formType || formType.attrs.type !== 'hidden') continue; // rule 3.6: ignore the form
      const typeValues = new Set(formType.getChildren('value', NS.DATA_FORMS).map((v) => v.text()));
      if (typeValues.size !== 1) {
        if (typeValues.size === 0) continue; // no FORM_TYPE value: as if no FORM_TYPE
        throw new CapsIllFormed('a FORM_TYPE field has several different values');
      }
      const type = [...typeValues][0]!;
      if (forms.has(type)) throw new CapsIllFormed(`two forms have the FORM_TYPE '${type}'`);
      const map = new Map<string, string[]>();
      for (const f of fields) {
        const v = f.attrs.var;
        if (v === undefined || v === 'FORM_TYPE') continue;
        const values = f.getChildren('value', NS.DATA_FORMS).map((x) => x.text());
        map.set(v, [...(map.get(v) ?? []), ...values]);
      }
      forms.set(type, map);
    }
  }
  return { identities, features, forms };
}

/**
 * The string S of XEP-0115 §5.1 (before hashing): identities sorted, each followed by
 * '<'; features sorted, each followed by '<'; then each form sorted by FORM_TYPE: the
 * FORM_TYPE and '<', then each field sorted by var: var '<' and each value sorted, '<'.
 * Character data is used as parsed: a literal "&lt;" in a value stays four characters
 * (the warning of §5.1).
 */
export function capsString(info: CapsInfo): string {
  let s = '';
  for (const id of octetSort(info.identities)) s += id + '<';
  for (const f of octetSort(info.features)) s += f + '<';
  for (const type of octetSort([...info.forms.keys()])) {
    s += type + '<';
    const fields = info.forms.get(type)!;
    for (const v of octetSort([...fields.keys()])) {
      s += v + '<';
      for (const value of octetSort(fields.get(v)!)) s += value + '<';
    }
  }
  return s;
}

/**
 * The verification string (`ver`) of a disco#info `<query/>` (XEP-0115 §5.1): S hashed
 * with `hash` (default `sha-1`, §9.1), base64 (RFC 4648 §4, no whitespace). Throws
 * {@link CapsIllFormed} for an answer §5.4 calls ill-formed, and `Error` for a hash not in
 * {@link CAPS_HASHES}.
 */
export function capsVerification(query: XmlElement, hash = 'sha-1'): string {
  const algorithm = CAPS_HASHES[hash];
  if (algorithm === undefined) throw new Error(`unsupported caps hash '${hash}'`);
  return createHash(algorithm).update(capsString(readCapsInfo(query)), 'utf8').digest('base64');
}

/**
 * Checks a disco#info answer against the `ver` it was asked for (XEP-0115 §5.4 rule 3):
 * returns what it says when it is well-formed and its recomputed verification string is
 * `ver`, otherwise `null`. `hash` must be one of {@link CAPS_HASHES}.
 */
export function verifyCaps(query: XmlElement, hash: string, ver: string): CapsInfo | null {
  const algorithm = CAPS_HASHES[hash];
  if (algorithm === undefined) return null;
  let info: CapsInfo;
  try {
    info = readCapsInfo(query);
  } catch (err) {
    if (err instanceof CapsIllFormed) return null;
    throw err;
  }
  const computed = createHash(algorithm).update(capsString(info), 'utf8').digest('base64');
  return computed === ver ? info : null;
}
