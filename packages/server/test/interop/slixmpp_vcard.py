"""An independent XMPP client (slixmpp, Debian python3-slixmpp) for Parley's vCard (XEP-0054)
and private XML storage (XEP-0049) tests.

Usage: slixmpp_vcard.py PORT JID PASSWORD STEPS_JSON
Logs in (SCRAM-SHA-256 over STARTTLS), runs the steps in order, prints one JSON line per
step, then disconnects. Steps (a JSON list of objects):
  {"op": "vcard-set", "fn": ..., "nickname": ..., "desc": ..., "photo_type": ..., "photo_file": PATH}
        builds a vCard with the xep_0054 plugin (PHOTO/BINVAL from the file's bytes) and
        publishes it (an IQ set with no 'to', XEP-0054 §3.2)
  {"op": "vcard-set", "to": JID, ...}      the same, addressed to JID
  {"op": "vcard-get", "jid": JID|null}     gets a vCard (null: no 'to', XEP-0054 §3.1)
  {"op": "private-set", "xml": [XML, ...], "to": JID|absent}
        stores the elements with the xep_0049 plugin (raw IQ when 'to' is given)
  {"op": "private-get", "ns": NS, "name": NAME, "to": JID|absent}
        retrieves one element (XEP-0049 §2.3)
  {"op": "disco-info"}                     the server's disco#info features
Each step prints {"event": OP, "ok": true, ...} or {"event": OP, "ok": false, "condition": ..., "text": ...}.
"""
import base64
import hashlib
import json
import sys
from xml.etree import ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

from interop_common import out, run_slixmpp, setup_logging, trust_self_signed

setup_logging()

VCARD = 'vcard-temp'


def vcard_summary(el):
    """The fields the tests compare, read from the raw XML (the plugin's BINVAL getter is broken in 1.8)."""
    def text(path):
        node = el.find(path)
        return None if node is None else (node.text or '')
    binval = text(f'{{{VCARD}}}PHOTO/{{{VCARD}}}BINVAL')
    photo = base64.b64decode(''.join(binval.split())) if binval else None
    return {
        'children': len(list(el)),
        'fn': text(f'{{{VCARD}}}FN'),
        'nickname': text(f'{{{VCARD}}}NICKNAME'),
        'desc': text(f'{{{VCARD}}}DESC'),
        'photo_type': text(f'{{{VCARD}}}PHOTO/{{{VCARD}}}TYPE'),
        'photo_sha256': hashlib.sha256(photo).hexdigest() if photo is not None else None,
        'photo_len': len(photo) if photo is not None else None,
    }


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, steps):
        super().__init__(jid, password, sasl_mech='SCRAM-SHA-256')
        self.steps = steps
        self.register_plugin('xep_0030')
        self.register_plugin('xep_0054')
        self.register_plugin('xep_0049')
        trust_self_signed(self)
        self.add_event_handler('session_start', self.on_start)
        self.add_event_handler('failed_all_auth', lambda _e: (out(event='auth-failed'), self.disconnect()))

    async def on_start(self, _event):
        out(event='session', jid=str(self.boundjid))
        for step in self.steps:
            op = step['op']
            try:
                res = await getattr(self, 'op_' + op.replace('-', '_'))(step)
                out(event=op, ok=True, **(res or {}))
            except IqError as e:
                out(event=op, ok=False, condition=e.condition, text=e.text, etype=e.etype)
            except IqTimeout:
                out(event=op, ok=False, condition='timeout')
        self.disconnect()

    async def op_vcard_set(self, step):
        vcard = self['xep_0054'].make_vcard()
        if 'fn' in step:
            vcard['FN'] = step['fn']
        if 'nickname' in step:
            vcard['NICKNAME'] = step['nickname']
        if 'desc' in step:
            vcard['DESC'] = step['desc']
        if 'photo_file' in step:
            with open(step['photo_file'], 'rb') as f:
                vcard['PHOTO']['TYPE'] = step.get('photo_type', 'image/png')
                vcard['PHOTO']['BINVAL'] = f.read()
        await self['xep_0054'].publish_vcard(vcard, jid=step.get('to'), timeout=10)
        return {'size': len(ET.tostring(vcard.xml, encoding='utf-8'))}

    async def op_vcard_get(self, step):
        if step.get('jid'):
            iq = await self['xep_0054'].get_vcard(step['jid'], local=False, timeout=10)
        else:
            iq = self.make_iq_get()
            iq.enable('vcard_temp')
            iq = await iq.send(timeout=10)
        el = iq.xml.find(f'{{{VCARD}}}vCard')
        return {'frm': str(iq['from']), 'vcard': vcard_summary(el) if el is not None else None}

    async def op_private_set(self, step):
        els = [ET.fromstring(x) for x in step['xml']]
        if 'to' in step:
            iq = self.make_iq_set(ito=step['to'])
            for el in els:
                iq['private'].append(el)
            await iq.send(timeout=10)
        else:
            await self['xep_0049'].store(els, timeout=10)
        return {}

    async def op_private_get(self, step):
        iq = self.make_iq_get(ito=step.get('to'))
        iq['private'].xml.append(ET.Element(f"{{{step['ns']}}}{step['name']}"))
        iq = await iq.send(timeout=10)
        query = iq.xml.find('{jabber:iq:private}query')
        children = [ET.tostring(c, encoding='unicode') for c in query] if query is not None else []
        items = [{'ns': c.tag[1:].split('}')[0], 'name': c.tag.split('}')[1], 'children': len(list(c)),
                  'text': ''.join(c.itertext())} for c in query] if query is not None else []
        return {'items': items, 'xml': children}

    async def op_disco_info(self, _step):
        info = await self['xep_0030'].get_info(jid=self.boundjid.domain, timeout=10)
        return {'features': sorted(info['disco_info']['features'])}


def main():
    port, jid, password, steps = sys.argv[1:5]
    run_slixmpp(Client(jid, password, json.loads(steps)), port, 30)


main()
