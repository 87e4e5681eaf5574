import { StanzaError } from './errors.ts';
import { XmlElement, xml } from './xml/element.ts';

/** Scalar types a field can hold. */
type Scalar = 'string' | 'number' | 'boolean';
type ScalarValue<S extends Scalar> = S extends 'number' ? number : S extends 'boolean' ? boolean : string;

/** Where a field lives in the element. */
interface FieldBase<K extends string, V> {
  readonly kind: K;
  /** Phantom: the TypeScript type of the value. */
  readonly _value?: V;
  readonly required: boolean;
}
/** An attribute of the extension element. */
export interface AttrField<V> extends FieldBase<'attr', V> {
  readonly name: string | undefined;
  readonly scalar: Scalar;
}
/** The extension element's own character data. */
export interface TextField<V> extends FieldBase<'text', V> {
  readonly scalar: Scalar;
}
/** The text of a child element (same namespace). */
export interface ChildField<V> extends FieldBase<'child', V> {
  readonly name: string | undefined;
  readonly scalar: Scalar;
}
/** The texts of repeated child elements (same namespace), as an array. */
export interface ChildrenField<V> extends FieldBase<'children', V> {
  readonly name: string | undefined;
  readonly scalar: Scalar;
}
/** A nested extension (its own element and namespace). */
export interface NestedField<V> extends FieldBase<'nested', V> {
  readonly ext: Extension<Record<string, unknown>>;
  readonly many: boolean;
}

export type Field =
  | AttrField<unknown>
  | TextField<unknown>
  | ChildField<unknown>
  | ChildrenField<unknown>
  | NestedField<unknown>;

/** The object type an extension's fields describe: required fields are present, others optional. */
export type ValueOf<F extends Record<string, Field>> = {
  [K in keyof F as F[K]['required'] extends true ? K : never]: NonNullable<F[K]['_value']>;
} & {
  [K in keyof F as F[K]['required'] extends true ? never : K]?: F[K]['_value'];
};

/** Field constructors for {@link defineExtension}. Names default to the property name. */
export const field = {
  /** An attribute: `field.attr('number')`; `{ name }` when the attribute name differs from the property. */
  attr<S extends Scalar = 'string'>(scalar?: S, opts: { name?: string; required?: boolean } = {}): AttrField<ScalarValue<S>> {
    return { kind: 'attr', scalar: scalar ?? 'string', name: opts.name, required: opts.required ?? false };
  },
  /** The element's text. */
  text<S extends Scalar = 'string'>(scalar?: S, opts: { required?: boolean } = {}): TextField<ScalarValue<S>> {
    return { kind: 'text', scalar: scalar ?? 'string', required: opts.required ?? false };
  },
  /** The text of a child element. */
  child<S extends Scalar = 'string'>(scalar?: S, opts: { name?: string; required?: boolean } = {}): ChildField<ScalarValue<S>> {
    return { kind: 'child', scalar: scalar ?? 'string', name: opts.name, required: opts.required ?? false };
  },
  /** The texts of all child elements with one name. */
  children<S extends Scalar = 'string'>(scalar?: S, opts: { name?: string } = {}): ChildrenField<ScalarValue<S>[]> {
    return { kind: 'children', scalar: scalar ?? 'string', name: opts.name, required: false };
  },
  /** A nested extension element (one, or `many`). */
  nested<T extends Record<string, unknown>, M extends boolean = false>(
    ext: Extension<T>,
    opts: { many?: M; required?: boolean } = {},
  ): NestedField<M extends true ? T[] : T> {
    return { kind: 'nested', ext: ext as unknown as Extension<Record<string, unknown>>, many: opts.many ?? false, required: opts.required ?? false };
  },
};

/**
 * A typed extension: an XML element in its own namespace that turns into a
 * typed object and back (ARCHITECTURE §3). Declared once, it serves the server
 * (modules reading and writing application payloads) and the client SDK.
 */
export interface Extension<T> {
  readonly ns: string;
  readonly element: string;
  /** The element → the object. Throws StanzaError `bad-request` for a missing required field or a bad number/boolean. */
  parse(el: XmlElement): T;
  /** The object → a new element. */
  build(value: T): XmlElement;
  /** Finds this extension among a stanza's children and parses it; `undefined` when absent. */
  from(stanza: XmlElement): T | undefined;
  /** Appends the built element to a stanza (replacing an existing one); returns the stanza. */
  attach(stanza: XmlElement, value: T): XmlElement;
  /** `true` when `el` is this extension's element. */
  is(el: XmlElement): boolean;
}

function toScalar(s: string, scalar: Scalar, where: string): unknown {
  if (scalar === 'string') return s;
  if (scalar === 'number') {
    const n = Number(s);
    if (s.trim() === '' || !Number.isFinite(n)) throw new StanzaError('bad-request', `${where}: '${s}' is not a number`);
    return n;
  }
  // XML Schema boolean: true, false, 1, 0.
  if (s === 'true' || s === '1') return true;
  if (s === 'false' || s === '0') return false;
  throw new StanzaError('bad-request', `${where}: '${s}' is not a boolean`);
}

const fromScalar = (v: unknown): string => (typeof v === 'boolean' ? (v ? 'true' : 'false') : String(v));

/**
 * Declares a typed extension:
 *
 * ```ts
 * const Profile = defineExtension({
 *   ns: 'urn:example:profile', element: 'user',
 *   fields: { name: field.child('string', { required: true }), level: field.attr('number'), tags: field.children('string', { name: 'tag' }) },
 * });
 * Profile.attach(presence, { name: 'Alice', level: 3, tags: ['a'] });
 * const p = Profile.from(presence); // { name: 'Alice', level: 3, tags: ['a'] }
 * ```
 * Unknown attributes and children are ignored when parsing, so newer peers can add to it.
 */
export function defineExtension<F extends Record<string, Field>>(def: { ns: string; element: string; fields: F }): Extension<ValueOf<F>> {
  const { ns, element, fields } = def;
  const entries = Object.entries(fields);
  const ext: Extension<ValueOf<F>> = {
    ns,
    element,
    is: (el) => el.name === element && el.ns === ns,
    parse(el) {
      const out: Record<string, unknown> = {};
      for (const [key, f] of entries) {
        const where = `<${element} xmlns='${ns}'> ${key}`;
        let value: unknown;
        switch (f.kind) {
          case 'attr': {
            const raw = el.attrs[f.name ?? key];
            if (raw !== undefined) value = toScalar(raw, f.scalar, where);
            break;
          }
          case 'text': {
            const raw = el.text();
            if (raw !== '' || f.scalar === 'string') value = toScalar(raw, f.scalar, where);
            break;
          }
          case 'child': {
            const c = el.getChild(f.name ?? key, ns);
            if (c) value = toScalar(c.text(), f.scalar, where);
            break;
          }
          case 'children':
            value = el.getChildren(f.name ?? key, ns).map((c) => toScalar(c.text(), f.scalar, where));
            break;
          case 'nested': {
            const found = el.getChildren(f.ext.element, f.ext.ns).map((c) => f.ext.parse(c));
            value = f.many ? found : found[0];
            break;
          }
        }
        if (value === undefined) {
          if (f.required) throw new StanzaError('bad-request', `${where} is required`);
          continue;
        }
        out[key] = value;
      }
      return out as ValueOf<F>;
    },
    build(value) {
      const v = value as Record<string, unknown>;
      const el = xml(element, { xmlns: ns });
      for (const [key, f] of entries) {
        const x = v[key];
        if (x === undefined || x === null) {
          if (f.required) throw new TypeError(`${element}: '${key}' is required`);
          continue;
        }
        switch (f.kind) {
          case 'attr':
            el.attrs[f.name ?? key] = fromScalar(x);
            break;
          case 'text':
            el.append(fromScalar(x));
            break;
          case 'child':
            el.append(new XmlElement(f.name ?? key, ns, {}, [fromScalar(x)]));
            break;
          case 'children':
            for (const item of x as unknown[]) el.append(new XmlElement(f.name ?? key, ns, {}, [fromScalar(item)]));
            break;
          case 'nested':
            for (const item of f.many ? (x as Record<string, unknown>[]) : [x as Record<string, unknown>]) el.append(f.ext.build(item));
            break;
        }
      }
      return el;
    },
    from(stanza) {
      const el = stanza.getChild(element, ns);
      return el ? ext.parse(el) : undefined;
    },
    attach(stanza, value) {
      stanza.removeChildren(element, ns);
      stanza.append(ext.build(value));
      return stanza;
    },
  };
  return ext;
}
