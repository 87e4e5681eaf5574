"""In-band registration (XEP-0077) with an independent client: slixmpp's xep_0077 plugin
(Debian python3-slixmpp), driven by Parley's tests.

Usage: slixmpp_register.py PORT SCENARIO JID PASSWORD [ARGS...]
Scenarios:
  register [--legacy] [--omit=f1,f2] [VAR=VALUE...]
                      connect without an account; on the <register/> stream feature ask for the
                      fields, print them ("form"), submit them — as the data form when there is one
                      (unless --legacy), else as iq:register elements — with the JID's localpart as
                      username, PASSWORD, and the VAR=VALUE pairs, leaving out the --omit ones;
                      print "registered" or "register-error"; after success log in ("session")
  passwd NEWPASSWORD  log in, ask for the registration ("info"), change the password, print
                      "passwd-result" or "passwd-error"
  remove              log in, cancel the registration, print "remove-result" or "remove-error",
                      then the stream error the server ends the stream with ("stream-error")
  login               log in ("session") or fail ("auth-failed")
Every stream's features are printed ("features"). Every result is one JSON line on stdout.
"""
import asyncio
import sys

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

from interop_common import (out, report_auth_failure, report_features, report_stream_errors, run_slixmpp,
                            setup_logging, trust_self_signed)

setup_logging()

NS_REGISTER = 'jabber:iq:register'
NS_XDATA = 'jabber:x:data'


def error_of(e):
    err = e.iq['error']
    return dict(condition=err['condition'], type=err['type'], code=err['code'], text=err['text'])


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, scenario, args):
        # One mechanism: slixmpp offers tls-unique with -PLUS, which Parley does not support (TLS 1.3).
        super().__init__(jid, password, sasl_mech='SCRAM-SHA-256')
        self.scenario, self.args = scenario, args
        self.register_plugin('xep_0030')
        self.register_plugin('xep_0004')
        self.register_plugin('xep_0066')
        self.register_plugin('xep_0077')
        trust_self_signed(self)
        report_features(self)
        self.add_event_handler('session_start', self.on_start)
        report_auth_failure(self)
        report_stream_errors(self)
        if scenario == 'register':
            # The plugin registers on the <register/> stream feature only when this event is handled.
            self.add_event_handler('register', self.on_register)
            # slixmpp 1.8.3 queues every stanza but bind/session until the session starts, its own
            # xep_0077 iqs included ("NOT SENT"), so pre-authentication registration would wait
            # forever; this switch (its test suite's) lets them through. Nothing else is changed.
            self._always_send_everything = True

    async def on_register(self, iq):
        try:
            await self.register_with(iq)
        except Exception as e:  # a driver bug: say so rather than carry on to SASL
            out(event='driver-error', error=repr(e))
            self.disconnect()

    async def register_with(self, iq):
        query = iq.xml.find('{%s}query' % NS_REGISTER)
        x = query.find('{%s}x' % NS_XDATA)
        form_fields = []
        if x is not None:
            for f in iq['register']['form'].get_fields().values():
                form_fields.append(dict(var=f['var'], type=f['type'], label=f['label'], required=f['required'],
                                        value=f['value'] if f['type'] == 'hidden' else None))
        out(event='form', instructions=iq['register']['instructions'], legacy=sorted(iq['register']['fields']),
            form=form_fields if x is not None else None)

        omit, legacy, values = set(), False, {'username': self.boundjid.user, 'password': self.password}
        for a in self.args:
            if a == '--legacy':
                legacy = True
            elif a.startswith('--omit='):
                omit.update(a[len('--omit='):].split(','))
            elif '=' in a:
                k, v = a.split('=', 1)
                values[k] = v
        values = {k: v for k, v in values.items() if k not in omit}

        resp = self.Iq()
        resp['type'] = 'set'
        if x is not None and not legacy:
            form = resp['register']['form']
            form['type'] = 'submit'
            form.add_field(var='FORM_TYPE', ftype='hidden', value=NS_REGISTER)
            for k, v in values.items():
                form.add_field(var=k, value=v)
        else:
            for k, v in values.items():
                resp['register'][k] = v
        try:
            await resp.send(timeout=10)
            out(event='registered')
        except IqError as e:
            out(event='register-error', **error_of(e))
            self.disconnect()
        except IqTimeout:
            out(event='register-timeout')
            self.disconnect()

    async def on_start(self, _event):
        out(event='session', jid=str(self.boundjid))
        try:
            if self.scenario == 'passwd':
                info = await self['xep_0077'].get_registration(timeout=5)
                out(event='info', registered=info['register']['registered'], username=info['register']['username'])
                try:
                    await self['xep_0077'].change_password(self.args[0], timeout=5)
                    out(event='passwd-result')
                except IqError as e:
                    out(event='passwd-error', **error_of(e))
            elif self.scenario == 'remove':
                try:
                    await self['xep_0077'].cancel_registration(timeout=5)
                    out(event='remove-result')
                except IqError as e:
                    out(event='remove-error', **error_of(e))
                # The server ends the stream (XEP-0077 §3.2); leave if it does not.
                await asyncio.sleep(3)
        except IqTimeout:
            out(event='timeout-iq')
        self.disconnect()


def main():
    port, scenario, jid, password = sys.argv[1:5]
    args = [a for a in sys.argv[5:] if a != '--debug']
    run_slixmpp(Client(jid, password, scenario, args), port, 30)


main()
