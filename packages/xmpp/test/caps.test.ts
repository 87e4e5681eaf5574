// XEP-0115 §5: the verification string, checked against the examples of the specification.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { capsString, capsVerification, parseXml, readCapsInfo, verifyCaps } from '../src/index.ts';

const INFO = 'http://jabber.org/protocol/disco#info';

/** §5.2 "Simple Generation Example" (Exodus 0.9.1), with the caps feature the S of step 5 lists. */
const SIMPLE = `<query xmlns='${INFO}' node='http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0='>
  <identity category='client' name='Exodus 0.9.1' type='pc'/>
  <feature var='http://jabber.org/protocol/caps'/>
  <feature var='http://jabber.org/protocol/disco#info'/>
  <feature var='http://jabber.org/protocol/disco#items'/>
  <feature var='http://jabber.org/protocol/muc'/>
</query>`;

/** §5.3 "Complex Generation Example" (Psi 0.11), as in the example iq. */
const COMPLEX = `<query xmlns='${INFO}' node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>
  <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
  <identity xml:lang='el' category='client' name='&#936; 0.11' type='pc'/>
  <feature var='http://jabber.org/protocol/caps'/>
  <feature var='http://jabber.org/protocol/disco#info'/>
  <feature var='http://jabber.org/protocol/disco#items'/>
  <feature var='http://jabber.org/protocol/muc'/>
  <x xmlns='jabber:x:data' type='result'>
    <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>
    <field var='ip_version' type='text-multi'><value>ipv4</value><value>ipv6</value></field>
    <field var='os'><value>Mac</value></field>
    <field var='os_version'><value>10.5.1</value></field>
    <field var='software'><value>Psi</value></field>
    <field var='software_version'><value>0.11</value></field>
  </x>
</query>`;

describe('XEP-0115 verification string', () => {
  it('§5.2 simple example: S and ver QgayPKawpkPSDYmwT/WM94uAlu0=', () => {
    const q = parseXml(SIMPLE);
    assert.equal(
      capsString(readCapsInfo(q)),
      'client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<' +
        'http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<',
    );
    assert.equal(capsVerification(q), 'QgayPKawpkPSDYmwT/WM94uAlu0=');
    assert.ok(verifyCaps(q, 'sha-1', 'QgayPKawpkPSDYmwT/WM94uAlu0='));
  });

  it('§5.3 complex example (identities in two languages, an extended form): ver q07IKJEyjvHSyhy//CH0CxmKi8w=', () => {
    const q = parseXml(COMPLEX);
    assert.equal(
      capsString(readCapsInfo(q)),
      'client/pc/el/\u03a8 0.11<client/pc/en/Psi 0.11<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<' +
        'http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<urn:xmpp:dataforms:softwareinfo<' +
        'ip_version<ipv4<ipv6<os<Mac<os_version<10.5.1<software<Psi<software_version<0.11<',
    );
    assert.equal(capsVerification(q), 'q07IKJEyjvHSyhy//CH0CxmKi8w=');
    const info = verifyCaps(q, 'sha-1', 'q07IKJEyjvHSyhy//CH0CxmKi8w=');
    assert.ok(info);
    assert.deepEqual(info.forms.get('urn:xmpp:dataforms:softwareinfo')?.get('ip_version'), ['ipv4', 'ipv6']);
  });

  it('the order of the elements in the answer does not matter (§5.1 sorts everything)', () => {
    const shuffled = `<query xmlns='${INFO}'>
      <x xmlns='jabber:x:data' type='result'>
        <field var='software_version'><value>0.11</value></field>
        <field var='ip_version'><value>ipv6</value><value>ipv4</value></field>
        <field var='os'><value>Mac</value></field>
        <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>
        <field var='software'><value>Psi</value></field>
        <field var='os_version'><value>10.5.1</value></field>
      </x>
      <feature var='http://jabber.org/protocol/muc'/>
      <feature var='http://jabber.org/protocol/disco#items'/>
      <identity xml:lang='el' category='client' name='&#936; 0.11' type='pc'/>
      <feature var='http://jabber.org/protocol/disco#info'/>
      <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
      <feature var='http://jabber.org/protocol/caps'/>
    </query>`;
    assert.equal(capsVerification(parseXml(shuffled)), 'q07IKJEyjvHSyhy//CH0CxmKi8w=');
  });

  it('§5.4: a different ver, or an unsupported hash, does not verify', () => {
    assert.equal(verifyCaps(parseXml(SIMPLE), 'sha-1', 'q07IKJEyjvHSyhy//CH0CxmKi8w='), null);
    assert.equal(verifyCaps(parseXml(SIMPLE), 'md5', 'QgayPKawpkPSDYmwT/WM94uAlu0='), null);
    // sha-256 is supported: the same S under another hash.
    const v256 = capsVerification(parseXml(SIMPLE), 'sha-256');
    assert.ok(verifyCaps(parseXml(SIMPLE), 'sha-256', v256));
  });

  it('§5.4 rules 3.3–3.5: duplicate identities, features or FORM_TYPEs make the answer ill-formed', () => {
    const dupIdentity = SIMPLE.replace("<feature var='http://jabber.org/protocol/caps'/>", "<identity category='client' name='Exodus 0.9.1' type='pc'/>");
    assert.equal(verifyCaps(parseXml(dupIdentity), 'sha-1', capsVerificationUnchecked(dupIdentity)), null);
    const dupFeature = SIMPLE.replace("<feature var='http://jabber.org/protocol/caps'/>", "<feature var='http://jabber.org/protocol/muc'/>");
    assert.equal(verifyCaps(parseXml(dupFeature), 'sha-1', capsVerificationUnchecked(dupFeature)), null);
    const form = (type: string) =>
      `<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>${type}</value></field><field var='a'><value>1</value></field></x>`;
    const dupForm = SIMPLE.replace('</query>', `${form('urn:example:a')}${form('urn:example:a')}</query>`);
    assert.throws(() => capsVerification(parseXml(dupForm)), /FORM_TYPE/);
    const twoTypes = SIMPLE.replace(
      '</query>',
      `<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:a</value><value>urn:b</value></field></x></query>`,
    );
    assert.throws(() => capsVerification(parseXml(twoTypes)), /several different values/);
  });

  it('§5.4 rule 3.6: a form without a hidden FORM_TYPE is ignored, processing continues', () => {
    const notHidden = SIMPLE.replace(
      '</query>',
      `<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE'><value>urn:a</value></field><field var='b'><value>2</value></field></x>` +
        `<x xmlns='jabber:x:data' type='result'><field var='c'><value>3</value></field></x></query>`,
    );
    assert.ok(verifyCaps(parseXml(notHidden), 'sha-1', 'QgayPKawpkPSDYmwT/WM94uAlu0='));
  });

  it('§5.1 warning: a literal "&lt;" in a name stays four characters', () => {
    const q = parseXml(`<query xmlns='${INFO}'><identity category='client' type='pc' name='SomeClient&amp;lt;http://jabber.org/protocol/muc'/></query>`);
    assert.equal(capsString(readCapsInfo(q)), 'client/pc//SomeClient&lt;http://jabber.org/protocol/muc<');
  });
});

/** The hash of S built without the §5.4 checks (what a poisoning entity would announce). */
function capsVerificationUnchecked(xmlText: string): string {
  const q = parseXml(xmlText);
  const ids = q.getChildren('identity').map((i) => `${i.attrs.category}/${i.attrs.type}/${i.attrs['xml:lang'] ?? ''}/${i.attrs.name ?? ''}<`);
  const fs = q.getChildren('feature').map((f) => `${f.attrs.var}<`);
  return createHashB64([...ids.sort(), ...fs.sort()].join(''));
}

function createHashB64(s: string): string {
  return createHash('sha1').update(s, 'utf8').digest('base64');
}
