// Data forms (XEP-0004): reading and writing jabber:x:data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StanzaError, dataFormElement, fieldValues, formTypeOf, parseDataForm, parseFormBoolean, parseXml } from '../src/index.ts';

const LIMITS = { maxStanzaSize: 65536, maxDepth: 20, maxAttributes: 50 };

test('a form round-trips: type, title, instructions, fields with types, labels, options, required, values', () => {
  const x = parseXml(
    `<x xmlns='jabber:x:data' type='form'><title>Config</title><instructions>Fill</instructions>` +
      `<field var='FORM_TYPE' type='hidden'><value>urn:example</value></field>` +
      `<field var='who' type='list-single' label='Who'><desc>pick</desc><required/><value>a</value><option label='A'><value>a</value></option><option><value>b</value></option></field>` +
      `<field var='many' type='jid-multi'><value>a@b</value><value>c@d</value></field></x>`,
    LIMITS,
  );
  const form = parseDataForm(x);
  assert.equal(form.type, 'form');
  assert.equal(form.title, 'Config');
  assert.deepEqual(form.instructions, ['Fill']);
  assert.equal(formTypeOf(form), 'urn:example');
  assert.deepEqual(fieldValues(form, 'many'), ['a@b', 'c@d']);
  assert.equal(fieldValues(form, 'absent'), undefined);
  const who = form.fields[1]!;
  assert.deepEqual(who, { var: 'who', type: 'list-single', label: 'Who', desc: 'pick', required: true, values: ['a'], options: [{ label: 'A', value: 'a' }, { label: undefined, value: 'b' }] });
  assert.deepEqual(parseDataForm(parseXml(dataFormElement(form).toString(), LIMITS)), form);
});

test('a form with no type is a form; bad types and repeated vars are bad-request', () => {
  assert.equal(parseDataForm(parseXml(`<x xmlns='jabber:x:data'/>`, LIMITS)).type, 'form');
  const bad = (s: string) =>
    assert.throws(() => parseDataForm(parseXml(s, LIMITS)), (e: unknown) => e instanceof StanzaError && e.condition === 'bad-request');
  bad(`<x xmlns='jabber:x:data' type='nonsense'/>`);
  bad(`<x xmlns='jabber:x:data' type='submit'><field var='a' type='colour'/></x>`);
  bad(`<x xmlns='jabber:x:data' type='submit'><field var='a'/><field var='a'/></x>`);
  bad(`<x xmlns='urn:other'/>`);
});

test('booleans: 1/true/0/false (XEP-0004 §3.3), absent is undefined, anything else bad-request', () => {
  assert.equal(parseFormBoolean('1'), true);
  assert.equal(parseFormBoolean('true'), true);
  assert.equal(parseFormBoolean('0'), false);
  assert.equal(parseFormBoolean(' false '), false);
  assert.equal(parseFormBoolean(undefined), undefined);
  assert.throws(() => parseFormBoolean('yes', 'f'), (e: unknown) => e instanceof StanzaError && e.condition === 'bad-request' && /f: 'yes'/.test(e.message));
});
