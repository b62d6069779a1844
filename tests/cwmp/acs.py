#!/usr/bin/env python3
"""A scriptable test ACS for iwf-cwmp (TR-069 / CWMP over HTTP), Python standard library only.

Each CPE session is answered from a queue of scripts: a script is a list of RPC requests
(XML bodies made by the rpc_* helpers), sent one per HTTP response after the InformResponse;
the CPE's answer to each is recorded, then an empty response ends the session.

    acs = ACS(auth='digest', user='acs', password='pw')
    acs.script([rpc('GetParameterNames', ParameterPath='Device.', NextLevel='1')])
    acs.start(); ... acs.wait_sessions(1) ... acs.sessions[0].responses

Run as a program it serves forever and prints each session (a manual test peer).
"""
import hashlib
import http.server
import os
import secrets
import socketserver
import sys
import threading
import time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

SOAP_ENV = 'http://schemas.xmlsoap.org/soap/envelope/'
CWMP_NS = 'urn:dslforum-org:cwmp-1-0'


def local(tag):
    return tag.split('}', 1)[-1]


def child(el, name):
    for c in el:
        if local(c.tag) == name:
            return c
    return None


def envelope(body, cwmp_ns=CWMP_NS, msg_id=None, hold=None):
    hdr = ''
    if msg_id is not None:
        hdr += '<cwmp:ID soap-env:mustUnderstand="1">%s</cwmp:ID>' % escape(str(msg_id))
    if hold is not None:
        hdr += '<cwmp:HoldRequests soap-env:mustUnderstand="1">%d</cwmp:HoldRequests>' % hold
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<soap-env:Envelope xmlns:soap-env="%s" xmlns:soap-enc="http://schemas.xmlsoap.org/soap/encoding/" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xmlns:cwmp="%s"><soap-env:Header>%s</soap-env:Header><soap-env:Body>%s</soap-env:Body>'
            '</soap-env:Envelope>' % (SOAP_ENV, cwmp_ns, hdr, body))


def rpc(method, **args):
    """A request body with simple string arguments: rpc('Reboot', CommandKey='k')."""
    inner = ''.join('<%s>%s</%s>' % (k, escape(str(v)), k) for k, v in args.items())
    return '<cwmp:%s>%s</cwmp:%s>' % (method, inner, method)


def rpc_get_values(*names):
    items = ''.join('<string>%s</string>' % escape(n) for n in names)
    return ('<cwmp:GetParameterValues><ParameterNames soap-enc:arrayType="xsd:string[%d]">%s</ParameterNames>'
            '</cwmp:GetParameterValues>' % (len(names), items))


def rpc_get_attributes(*names):
    items = ''.join('<string>%s</string>' % escape(n) for n in names)
    return ('<cwmp:GetParameterAttributes><ParameterNames soap-enc:arrayType="xsd:string[%d]">%s</ParameterNames>'
            '</cwmp:GetParameterAttributes>' % (len(names), items))


def rpc_set_values(params, key='key'):
    """params: [(name, value, xsd_type or None)]"""
    items = ''
    for name, value, typ in params:
        t = ' xsi:type="%s"' % typ if typ else ''
        items += ('<ParameterValueStruct><Name>%s</Name><Value%s>%s</Value></ParameterValueStruct>'
                  % (escape(name), t, escape(value)))
    return ('<cwmp:SetParameterValues><ParameterList soap-enc:arrayType="cwmp:ParameterValueStruct[%d]">%s'
            '</ParameterList><ParameterKey>%s</ParameterKey></cwmp:SetParameterValues>'
            % (len(params), items, escape(key)))


def rpc_set_attributes(params):
    """params: [(name, notification)]"""
    items = ''.join('<SetParameterAttributesStruct><Name>%s</Name><NotificationChange>1</NotificationChange>'
                    '<Notification>%d</Notification><AccessListChange>0</AccessListChange>'
                    '<AccessList soap-enc:arrayType="xsd:string[0]"></AccessList></SetParameterAttributesStruct>'
                    % (escape(n), v) for n, v in params)
    return ('<cwmp:SetParameterAttributes><ParameterList soap-enc:arrayType="cwmp:SetParameterAttributesStruct[%d]">'
            '%s</ParameterList></cwmp:SetParameterAttributes>' % (len(params), items))


class Response:
    """The CPE's answer to one RPC: .method ('GetParameterNamesResponse' or 'Fault'),
    .fault (code or None), .param_faults {name: code}, .values {name: (value, type)},
    .names {name: writable}, .el (the Body child)."""

    def __init__(self, el):
        self.el = el
        self.method = local(el.tag)
        self.fault = None
        self.param_faults = {}
        self.values = {}
        self.names = {}
        self.attributes = {}
        if self.method == 'Fault':
            detail = child(el, 'detail')
            f = child(detail, 'Fault') if detail is not None else None
            if f is not None:
                self.fault = int(child(f, 'FaultCode').text)
                for spf in f:
                    if local(spf.tag) == 'SetParameterValuesFault':
                        self.param_faults[child(spf, 'ParameterName').text] = int(child(spf, 'FaultCode').text)
        plist = child(el, 'ParameterList')
        for s in (plist if plist is not None else []):
            n = child(s, 'Name').text
            if local(s.tag) == 'ParameterValueStruct':
                v = child(s, 'Value')
                t = v.get('{http://www.w3.org/2001/XMLSchema-instance}type')
                self.values[n] = (v.text or '', t)
            elif local(s.tag) == 'ParameterInfoStruct':
                self.names[n] = child(s, 'Writable').text in ('1', 'true')
            elif local(s.tag) == 'ParameterAttributeStruct':
                self.attributes[n] = int(child(s, 'Notification').text)

    def text(self, name):
        el = child(self.el, name)
        return el.text if el is not None else None

    def __repr__(self):
        return '<%s fault=%s>' % (self.method, self.fault)


class Session:
    def __init__(self):
        self.events = []          # ['0 BOOTSTRAP', '1 BOOT']
        self.command_keys = {}
        self.inform_params = {}   # name -> value
        self.device_id = {}
        self.retry_count = None
        self.responses = []       # Response, in order
        self.errors = []          # protocol complaints of the ACS
        self.ended = False
        self.started = time.monotonic()
        self.cwmp_ns = None


class ACS:
    def __init__(self, host='127.0.0.1', port=0, auth=None, user='acs', password='acs-secret', cwmp_ns=CWMP_NS,
                 inform_fault=False, tls=None):
        self.host, self.port = host, port
        self.auth, self.user, self.password = auth, user, password
        self.cwmp_ns = cwmp_ns
        self.sessions = []
        self.scripts = []
        self.lock = threading.Condition()
        self.auth_failures = 0
        self.inform_fault = inform_fault
        self._nonces = set()
        self.server = None
        self.tls = tls  # (certfile, keyfile): serve https on the name 'localhost'

    # -- scripting
    def script(self, requests):
        """Queue a script (list of request bodies) for the next session without one; the
        string 'HTTP500' in it answers that POST with a 500 (a session broken off)."""
        with self.lock:
            self.scripts.append(list(requests))

    @property
    def url(self):
        if self.tls:
            return 'https://localhost:%d/acs' % self.server.server_address[1]
        return 'http://%s:%d/acs' % (self.host, self.server.server_address[1])

    def start(self):
        acs = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, fmt, *args):
                if os.environ.get('ACS_VERBOSE'):
                    sys.stderr.write('acs: ' + fmt % args + '\n')

            def do_POST(self):
                acs._post(self)

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                if not isinstance(sys.exc_info()[1], ConnectionError):  # a CPE going away (Reboot)
                    super().handle_error(request, client_address)

        self.server = Server((self.host, self.port), Handler)
        if self.tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def wait(self, predicate, timeout):
        end = time.monotonic() + timeout
        with self.lock:
            while not predicate():
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(left)
            return True

    def wait_sessions(self, n, timeout=10, ended=True):
        return self.wait(lambda: len(self.sessions) >= n and (not ended or self.sessions[n - 1].ended), timeout)

    # -- HTTP
    def _check_auth(self, h):
        if not self.auth:
            return True
        got = h.headers.get('Authorization', '')
        if self.auth == 'basic':
            import base64
            want = 'Basic ' + base64.b64encode(('%s:%s' % (self.user, self.password)).encode()).decode()
            return got == want
        if not got.startswith('Digest '):
            return False
        p = {}
        for part in _split_params(got[7:]):
            k, _, v = part.partition('=')
            p[k.strip()] = v.strip().strip('"')
        if p.get('nonce') not in self._nonces or p.get('username') != self.user:
            return False
        ha1 = hashlib.md5(('%s:%s:%s' % (self.user, 'acs', self.password)).encode()).hexdigest()
        ha2 = hashlib.md5(('POST:%s' % p.get('uri', '')).encode()).hexdigest()
        if p.get('qop'):
            want = hashlib.md5(('%s:%s:%s:%s:%s:%s' % (ha1, p['nonce'], p.get('nc'), p.get('cnonce'), p['qop'], ha2)).encode()).hexdigest()
        else:
            want = hashlib.md5(('%s:%s:%s' % (ha1, p['nonce'], ha2)).encode()).hexdigest()
        return want == p.get('response')

    def _send(self, h, code, body=b'', headers=()):
        h.send_response(code)
        for k, v in headers:
            h.send_header(k, v)
        if body:
            h.send_header('Content-Type', 'text/xml; charset="utf-8"')
        h.send_header('Content-Length', str(len(body)))
        h.end_headers()
        if body:
            h.wfile.write(body)

    def _post(self, h):
        length = int(h.headers.get('Content-Length') or 0)
        data = h.rfile.read(length) if length else b''
        if not self._check_auth(h):
            self.auth_failures += 1
            if self.auth == 'basic':
                chal = 'Basic realm="acs"'
            else:
                nonce = secrets.token_hex(16)
                self._nonces.add(nonce)
                chal = 'Digest realm="acs", qop="auth", nonce="%s", opaque="xyz"' % nonce
            self._send(h, 401, headers=[('WWW-Authenticate', chal)])
            return
        with self.lock:
            if data:
                env = ET.fromstring(data)
                body = child(env, 'Body')
                msg = body[0]
                name = local(msg.tag)
                if name == 'Inform':
                    self._inform(h, env, msg)
                else:
                    s = self.sessions[-1]
                    if h.headers.get('Cookie', '').find(s.cookie) < 0:
                        s.errors.append('no session cookie')
                    s.responses.append(Response(msg))
                    self._next(h, s)
            else:
                s = self.sessions[-1] if self.sessions else None
                if s is None:
                    self._send(h, 400)
                    return
                if h.headers.get('Cookie', '').find(s.cookie) < 0:
                    s.errors.append('no session cookie')
                self._next(h, s)
            self.lock.notify_all()

    def _inform(self, h, env, msg):
        s = Session()
        s.cookie = 'session=' + secrets.token_hex(8)
        s.cwmp_ns = msg.tag[1:].split('}')[0]
        ev = child(msg, 'Event')
        for e in ev:
            code = child(e, 'EventCode').text
            s.events.append(code)
            s.command_keys[code] = child(e, 'CommandKey').text or ''
        for d in child(msg, 'DeviceId'):
            s.device_id[local(d.tag)] = d.text or ''
        s.retry_count = int(child(msg, 'RetryCount').text)
        for p in child(msg, 'ParameterList'):
            s.inform_params[child(p, 'Name').text] = child(p, 'Value').text or ''
        s.script = self.scripts.pop(0) if self.scripts else []
        self.sessions.append(s)
        hdr = child(env, 'Header')
        idel = child(hdr, 'ID') if hdr is not None else None
        if self.inform_fault:
            # True: one 8002 fault; a list: one fault per Inform with these codes
            codes = self.inform_fault if isinstance(self.inform_fault, list) else [8002]
            code = codes.pop(0)
            self.inform_fault = codes if codes else False
            s.ended = True
            self._send(h, 500, envelope('<soap-env:Fault><faultcode>Server</faultcode><faultstring>CWMP fault'
                                        '</faultstring><detail><cwmp:Fault><FaultCode>%d</FaultCode>'
                                        '<FaultString>fault</FaultString></cwmp:Fault></detail>'
                                        '</soap-env:Fault>' % code, self.cwmp_ns).encode())
            return
        body = envelope('<cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse>', self.cwmp_ns,
                        idel.text if idel is not None else None)
        self._send(h, 200, body.encode(), [('Set-Cookie', s.cookie + '; Path=/')])

    def _next(self, h, s):
        if s.script:
            req = s.script.pop(0)
            if req == 'HTTP500':  # break the session off
                s.ended = True
                self._send(h, 500)
                return
            self._send(h, 200, envelope(req, self.cwmp_ns, msg_id=secrets.token_hex(4)).encode())
        else:
            s.ended = True
            self._send(h, 204)


def _split_params(text):
    out, cur, q = [], '', False
    for ch in text:
        if ch == '"':
            q = not q
        if ch == ',' and not q:
            out.append(cur.strip())
            cur = ''
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


if __name__ == '__main__':
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 7547
    acs = ACS(port=port).start()
    print('ACS at', acs.url, flush=True)
    seen = 0
    while True:
        acs.wait(lambda: len(acs.sessions) > seen and acs.sessions[seen].ended, 3600)
        s = acs.sessions[seen]
        print('session', seen, s.events, s.device_id, s.inform_params, flush=True)
        seen += 1
