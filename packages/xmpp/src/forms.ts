import { NS } from './namespaces.ts';
import { StanzaError } from './errors.ts';
import { xml, type XmlElement } from './xml/element.ts';

/** Field types (XEP-0004 §3.3). */
export type FormFieldType =
  | 'boolean'
  | 'fixed'
  | 'hidden'
  | 'jid-multi'
  | 'jid-single'
  | 'list-multi'
  | 'list-single'
  | 'text-multi'
  | 'text-private'
  | 'text-single';

const FIELD_TYPES: ReadonlySet<string> = new Set<FormFieldType>([
  'boolean', 'fixed', 'hidden', 'jid-multi', 'jid-single', 'list-multi', 'list-single', 'text-multi', 'text-private', 'text-single',
]);

/** Form types (XEP-0004 §3.1). */
export type DataFormType = 'form' | 'submit' | 'cancel' | 'result';

/** One `<field/>` (XEP-0004 §3.2). `values` holds every `<value/>`, in order. */
export interface FormField {
  var?: string;
  type?: FormFieldType;
  label?: string;
  desc?: string;
  required?: boolean;
  values: string[];
  /** `<option/>`s of a list field (XEP-0004 §3.2). */
  options?: Array<{ label?: string; value: string }>;
}

/** A data form (XEP-0004 §3.1), without reported/item tables (not needed by the server). */
export interface DataForm {
  type: DataFormType;
  title?: string;
  instructions?: string[];
  fields: FormField[];
}

/**
 * Reads a `<x xmlns='jabber:x:data'/>` element (XEP-0004 §3).
 * Throws StanzaError `bad-request` for an unknown form or field type, or a field
 * repeated under one `var` (§3.2: `var` is unique in a form).
 */
export function parseDataForm(x: XmlElement): DataForm {
  if (!x.is('x', NS.DATA_FORMS)) throw new StanzaError('bad-request', 'not a jabber:x:data form (XEP-0004)');
  const type = x.attrs.type ?? 'form';
  if (type !== 'form' && type !== 'submit' && type !== 'cancel' && type !== 'result') {
    throw new StanzaError('bad-request', `form type '${type}' is not form, submit, cancel or result (XEP-0004 §3.1)`);
  }
  const form: DataForm = { type, fields: [] };
  const title = x.getChildText('title');
  if (title !== undefined) form.title = title;
  const instructions = x.getChildren('instructions').map((i) => i.text());
  if (instructions.length > 0) form.instructions = instructions;
  const seen = new Set<string>();
  for (const f of x.getChildren('field')) {
    const field: FormField = { values: f.getChildren('value').map((v) => v.text()) };
    const v = f.attrs.var;
    if (v !== undefined) {
      if (seen.has(v)) throw new StanzaError('bad-request', `field '${v}' appears twice (XEP-0004 §3.2)`);
      seen.add(v);
      field.var = v;
    }
    const t = f.attrs.type;
    if (t !== undefined) {
      if (!FIELD_TYPES.has(t)) throw new StanzaError('bad-request', `field type '${t}' is not defined by XEP-0004 §3.3`);
      field.type = t as FormFieldType;
    }
    if (f.attrs.label !== undefined) field.label = f.attrs.label;
    const desc = f.getChildText('desc');
    if (desc !== undefined) field.desc = desc;
    if (f.getChild('required')) field.required = true;
    const options = f.getChildren('option');
    if (options.length > 0) {
      field.options = options.map((o) => ({ label: o.attrs.label, value: o.getChildText('value') ?? '' }));
    }
    form.fields.push(field);
  }
  return form;
}

/** Builds the `<x xmlns='jabber:x:data'/>` element of a form (XEP-0004 §3). */
export function dataFormElement(form: DataForm): XmlElement {
  return xml(
    'x',
    { xmlns: NS.DATA_FORMS, type: form.type },
    form.title !== undefined ? xml('title', null, form.title) : null,
    (form.instructions ?? []).map((i) => xml('instructions', null, i)),
    form.fields.map((f) =>
      xml(
        'field',
        { var: f.var, type: f.type, label: f.label },
        f.desc !== undefined ? xml('desc', null, f.desc) : null,
        f.required ? xml('required') : null,
        f.values.map((v) => xml('value', null, v)),
        (f.options ?? []).map((o) => xml('option', { label: o.label }, xml('value', null, o.value))),
      ),
    ),
  );
}

/** The form's FORM_TYPE (XEP-0068 §2: the value of the hidden `FORM_TYPE` field), if any. */
export function formTypeOf(form: DataForm): string | undefined {
  return form.fields.find((f) => f.var === 'FORM_TYPE')?.values[0];
}

/** The values of field `name`, or `undefined` when the form has no such field. */
export function fieldValues(form: DataForm, name: string): string[] | undefined {
  return form.fields.find((f) => f.var === name)?.values;
}

/**
 * A boolean field value (XEP-0004 §3.3: `0`/`false` or `1`/`true`). An absent value
 * reads as `undefined`; anything else throws StanzaError `bad-request` naming `field`.
 */
export function parseFormBoolean(value: string | undefined, field = 'field'): boolean | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw new StanzaError('bad-request', `${field}: '${value}' is not a boolean (XEP-0004 §3.3)`);
}
