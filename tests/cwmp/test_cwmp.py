#!/usr/bin/env python3
"""iwf-cwmp against the test ACS (acs.py) on loopback. One case per invocation:
    test_cwmp.py AGENT_BINARY CASE
Each case starts a fresh ACS and agent (static backend) and checks one acceptance point."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from acs import ACS, rpc, rpc_get_values, rpc_set_values, rpc_set_attributes, rpc_get_attributes  # noqa: E402

AGENT = None
MAP = 'Device.PCP.Client.1.Server.1.InboundMapping.'


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Agent:
    def __init__(self, acs, tmp, *extra, cr=True, periodic=None, auth=None, sock=None):
        self.cr_port = free_port() if cr else 0
        backend = ['--static-backend'] if not sock else ['--control-socket', sock]
        self.args = [AGENT, '--acs-url', acs.url] + backend + ['--foreground',
                     '--state-file', os.path.join(tmp, 'state.json'),
                     '--static-hook', os.path.join(tmp, 'hook'),
                     '--retry-min-wait', '1', '--notify-poll-ms', '200']
        if cr:
            self.args += ['--cr-port', str(self.cr_port), '--cr-bind', '127.0.0.1', '--cr-auth', 'cruser:crpass']
        if periodic:
            self.args += ['--periodic-inform', str(periodic)]
        if auth:
            self.args += ['--acs-auth', auth]
        self.args += list(extra)
        self.log = open(os.path.join(tmp, 'agent.log'), 'ab')
        self.tmp = tmp
        env = dict(os.environ, IWF_CWMP_STDERR='1')
        self.p = subprocess.Popen(self.args, stdout=self.log, stderr=self.log, env=env)

    def hook(self, **changes):
        path = os.path.join(self.tmp, 'hook')
        with open(path + '.tmp', 'w') as f:
            for k, v in changes.items():
                f.write('%s=%s\n' % (k, v))
        os.rename(path + '.tmp', path)

    def stop(self):
        self.p.terminate()
        try:
            rc = self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError('agent did not stop on SIGTERM')
        self.log.flush()
        log = open(self.log.name, errors='replace').read()
        check('Sanitizer' not in log and 'runtime error' not in log, 'no sanitizer report')
        check(rc == 0, 'agent exited 0 on SIGTERM')


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print('ok:', what)


def session(acs, n, timeout=10):
    check(acs.wait_sessions(n, timeout), 'session %d completed' % n)
    return acs.sessions[n - 1]


# ---- cases ---------------------------------------------------------------------------------

def case_bootstrap_boot(acs, tmp):
    a = Agent(acs, tmp)
    s = session(acs, 1)
    check('0 BOOTSTRAP' in s.events and '1 BOOT' in s.events, 'fresh start: BOOTSTRAP + BOOT %s' % s.events)
    check(s.device_id.get('OUI') == '00A0C5' and s.device_id.get('SerialNumber') == 'TEST0001', 'DeviceId')
    check(s.inform_params.get('Device.ManagementServer.ConnectionRequestURL', '').startswith('http://127.0.0.1:'),
          'ConnectionRequestURL in the Inform')
    check(not s.errors, 'cookie returned on every POST')
    a.stop()
    a = Agent(acs, tmp)
    s = session(acs, 2)
    check(s.events == ['1 BOOT'], 'second start: BOOT only %s' % s.events)
    a.stop()
    # another ACS URL: BOOTSTRAP again
    acs2 = ACS().start()
    a = Agent(acs2, tmp)
    s = session(acs2, 1)
    check('0 BOOTSTRAP' in s.events, 'new ACS URL: BOOTSTRAP again')
    a.stop()
    acs2.stop()


def case_periodic(acs, tmp):
    a = Agent(acs, tmp, periodic=2)
    session(acs, 1)
    t0 = time.monotonic()
    s = session(acs, 2, timeout=5)
    t1 = time.monotonic()
    check(s.events == ['2 PERIODIC'], 'periodic inform %s' % s.events)
    s3 = session(acs, 3, timeout=5)
    t2 = time.monotonic()
    check(s3.events == ['2 PERIODIC'] and 1.5 < t2 - t1 < 3.0, 'interval ~2 s (%.2f s)' % (t2 - t1))
    # the ACS changes the interval: it applies from the end of that session
    acs.script([rpc_set_values([('Device.ManagementServer.PeriodicInformInterval', '1', 'xsd:unsignedInt')])])
    session(acs, 4, timeout=5)
    t3 = time.monotonic()
    session(acs, 5, timeout=5)
    t4 = time.monotonic()
    check(t4 - t3 < 1.6, 'new interval 1 s applied (%.2f s)' % (t4 - t3))
    a.stop()


def case_names(acs, tmp):
    acs.script([rpc('GetParameterNames', ParameterPath='Device.', NextLevel='1'),
                rpc('GetParameterNames', ParameterPath='Device.DeviceInfo.', NextLevel='0'),
                rpc('GetParameterNames', ParameterPath='Device.Nope.', NextLevel='1'),
                rpc('GetRPCMethods'),
                rpc_get_values('Device.DeviceInfo.', 'Device.ManagementServer.PeriodicInformEnable')])
    a = Agent(acs, tmp)
    s = session(acs, 1)
    r = s.responses
    check(set(r[0].names) == {'Device.DeviceInfo.', 'Device.PCP.', 'Device.ManagementServer.'},
          'NextLevel on Device. lists its children %s' % sorted(r[0].names))
    check('Device.DeviceInfo.SerialNumber' in r[1].names and r[1].names['Device.DeviceInfo.SerialNumber'] is False
          and 'Device.DeviceInfo.' in r[1].names, 'NextLevel 0 lists the subtree with Writable')
    check(r[2].fault == 9005, 'unknown path: 9005')
    methods = [e.text for e in r[3].el.iter() if e.tag == 'string']
    check('AddObject' in methods and 'Reboot' in methods, 'GetRPCMethods')
    check(r[4].values.get('Device.DeviceInfo.Manufacturer', ('', ''))[0] == 'iwfd project'
          and r[4].values['Device.ManagementServer.PeriodicInformEnable'][1] == 'xsd:boolean',
          'GetParameterValues on a partial path, with types')
    a.stop()


def case_faults(acs, tmp):
    P = 'Device.PCP.Client.1.Server.1.ServerNameOrAddress'
    acs.script([
        rpc_get_values('Device.DeviceInfo.NoSuch'),
        rpc_set_values([('Device.DeviceInfo.NoSuch', 'x', 'xsd:string')]),
        rpc_set_values([('Device.PCP.Client.1.Enable', '1', 'xsd:unsignedInt')]),
        rpc_set_values([('Device.PCP.Client.1.Enable', 'maybe', 'xsd:boolean')]),
        rpc_set_values([('Device.DeviceInfo.SerialNumber', 'X', 'xsd:string')]),
        # partly bad: the good one must not be applied, nor the ParameterKey
        rpc_set_values([(P, '203.0.113.9', 'xsd:string'), ('Device.DeviceInfo.SerialNumber', 'X', 'xsd:string')],
                       key='bad'),
        rpc_get_values(P, 'Device.ManagementServer.ParameterKey'),
        rpc('Download', CommandKey='x'),
        rpc_set_values([(P, '203.0.113.9', 'xsd:string')], key='good'),
        rpc_get_values(P, 'Device.ManagementServer.ParameterKey'),
    ])
    a = Agent(acs, tmp)
    s = session(acs, 1)
    r = s.responses
    check(r[0].fault == 9005, 'GetParameterValues unknown name: 9005')
    check(r[1].fault == 9003 and r[1].param_faults == {'Device.DeviceInfo.NoSuch': 9005}, 'Set unknown: 9003/9005')
    check(r[2].param_faults == {'Device.PCP.Client.1.Enable': 9006}, 'Set wrong type: 9006')
    check(r[3].param_faults == {'Device.PCP.Client.1.Enable': 9007}, 'Set bad value: 9007')
    check(r[4].param_faults == {'Device.DeviceInfo.SerialNumber': 9008}, 'Set read-only: 9008')
    check(r[5].fault == 9003 and r[5].param_faults == {'Device.DeviceInfo.SerialNumber': 9008},
          'partly bad Set: a fault for the bad one only')
    check(r[6].values[P][0] == '192.0.2.1' and r[6].values['Device.ManagementServer.ParameterKey'][0] == '',
          'partly bad Set changed nothing (value, ParameterKey)')
    check(r[7].fault == 9000, 'unsupported method: 9000')
    check(r[8].method == 'SetParameterValuesResponse' and r[8].text('Status') == '0', 'good Set: Status 0')
    check(r[9].values[P][0] == '203.0.113.9' and r[9].values['Device.ManagementServer.ParameterKey'][0] == 'good',
          'good Set applied with its ParameterKey')
    a.stop()


def case_objects(acs, tmp):
    acs.script([
        rpc('AddObject', ObjectName=MAP, ParameterKey='k1'),
        rpc('AddObject', ObjectName=MAP, ParameterKey='k2'),
        rpc_set_values([(MAP + '2.InternalPort', '8080', 'xsd:unsignedInt'), (MAP + '2.Enable', 'true', 'xsd:boolean')]),
        rpc_get_values(MAP, 'Device.PCP.Client.1.Server.1.InboundMappingNumberOfEntries'),
        rpc('DeleteObject', ObjectName=MAP + '1.', ParameterKey='k3'),
        rpc('GetParameterNames', ParameterPath=MAP, NextLevel='1'),
        rpc('DeleteObject', ObjectName=MAP + '7.', ParameterKey='k4'),
        rpc('AddObject', ObjectName='Device.DeviceInfo.', ParameterKey='k5'),
        rpc_get_values('Device.ManagementServer.ParameterKey'),
        rpc_set_attributes([(MAP + '2.Enable', 2)]),
        rpc('DeleteObject', ObjectName=MAP + '2.', ParameterKey='k6'),
    ])
    a = Agent(acs, tmp)
    r = session(acs, 1).responses
    check(r[0].text('InstanceNumber') == '1' and r[1].text('InstanceNumber') == '2', 'AddObject: instances 1, 2')
    check(r[2].method == 'SetParameterValuesResponse', 'Set in a new instance')
    check(r[3].values[MAP + '2.InternalPort'][0] == '8080' and r[3].values[MAP + '2.Enable'][0] == '1'
          and r[3].values['Device.PCP.Client.1.Server.1.InboundMappingNumberOfEntries'][0] == '2',
          'values and NumberOfEntries')
    check(r[4].method == 'DeleteObjectResponse', 'DeleteObject')
    check(set(r[5].names) == {MAP + '2.'}, 'instance 1 gone %s' % sorted(r[5].names))
    check(r[6].fault == 9005 and r[7].fault == 9005, 'DeleteObject/AddObject on bad names: 9005')
    check(r[8].values['Device.ManagementServer.ParameterKey'][0] == 'k3', 'ParameterKey of the last good call')
    check(r[9].method == 'SetParameterAttributesResponse' and r[10].method == 'DeleteObjectResponse',
          'active notification on an instance, then the instance deleted')
    time.sleep(1)
    check(len(acs.sessions) == 1, 'a deletion by the ACS notifies nothing')
    a.stop()


def cr_get(url, user, password):
    pm = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    pm.add_password(None, url, user, password)
    opener = urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(pm))
    try:
        return opener.open(url, timeout=5).status
    except urllib.error.HTTPError as e:
        return e.code


def case_connreq(acs, tmp):
    a = Agent(acs, tmp)
    s = session(acs, 1)
    url = s.inform_params['Device.ManagementServer.ConnectionRequestURL']
    check(cr_get(url, 'cruser', 'wrong') == 401, 'wrong credentials: 401')
    time.sleep(2.5)
    check(len(acs.sessions) == 1, 'no session after wrong credentials')
    try:
        code = urllib.request.urlopen(url, timeout=5).status
    except urllib.error.HTTPError as e:
        code = e.code
    check(code == 401, 'no credentials: 401')
    bad = url.rsplit('/', 1)[0] + '/other'
    check(cr_get(bad, 'cruser', 'crpass') == 404, 'another path: 404')
    t0 = time.monotonic()
    check(cr_get(url, 'cruser', 'crpass') == 200, 'right credentials: 200')
    # the session follows the request (how fast is measured, not asserted: a loaded
    # machine must not fail this test)
    s = session(acs, 2, timeout=15)
    print('connection request -> session: %.2f s' % (time.monotonic() - t0))
    check(s.events == ['6 CONNECTION REQUEST'], 'event 6 CONNECTION REQUEST')
    a.stop()


def case_sock_backend(acs, tmp):
    """The control-socket backend against fake_iwfd.py, which speaks docs/tr069.md's protocol."""
    sock = os.path.join(tmp, 'iwfd.sock')
    reqlog = os.path.join(tmp, 'requests.log')
    fake = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fake_iwfd.py'),
                             sock, reqlog])
    try:
        for _ in range(50):
            if os.path.exists(sock):
                break
            time.sleep(0.1)
        acs.script([
            rpc('GetParameterNames', ParameterPath='Device.', NextLevel='1'),
            rpc('AddObject', ObjectName=MAP, ParameterKey='s1'),
            rpc_set_values([(MAP + '1.InternalPort', '22', 'xsd:unsignedInt'),
                            ('Device.ManagementServer.PeriodicInformInterval', '600', 'xsd:unsignedInt')]),
            rpc_set_values([(MAP + '1.InternalPort', '23', 'xsd:unsignedInt'),
                            ('Device.ManagementServer.PeriodicInformInterval', 'x', 'xsd:unsignedInt')]),
            rpc_set_values([(MAP + '1.InternalPort', '24', 'xsd:unsignedInt'),
                            (MAP + '1.Status', 'x', 'xsd:string')]),
            rpc_get_values(MAP, 'Device.ManagementServer.PeriodicInformInterval'),
            rpc('DeleteObject', ObjectName=MAP + '1.', ParameterKey='s2'),
            rpc_get_values('Device.PCP.Client.1.Server.1.InboundMappingNumberOfEntries', 'Device.Bogus'),
        ])
        a = Agent(acs, tmp, sock=sock)
        s = session(acs, 1)
        r = s.responses
        check(s.device_id.get('Manufacturer') == 'fake iwfd', 'DeviceId from the socket backend')
        check(set(r[0].names) == {'Device.DeviceInfo.', 'Device.PCP.', 'Device.ManagementServer.'},
              'names merged from iwfd and the agent %s' % sorted(r[0].names))
        check(r[1].text('InstanceNumber') == '1', 'dm.add')
        check(r[2].method == 'SetParameterValuesResponse', 'dm.set across iwfd and the agent')
        check(r[3].param_faults == {'Device.ManagementServer.PeriodicInformInterval': 9007}, 'agent-side fault')
        check(r[4].param_faults == {MAP + '1.Status': 9008}, 'iwfd-side fault (param_faults)')
        check(r[5].values[MAP + '1.InternalPort'][0] == '22'
              and r[5].values['Device.ManagementServer.PeriodicInformInterval'][0] == '600',
              'both partly bad Sets changed nothing on either side')
        check(r[6].method == 'DeleteObjectResponse' and r[7].fault == 9005, 'dm.delete; dm.get fault 9005')
        a.stop()
        ops = [json.loads(l)['op'] for l in open(reqlog)]
        check({'dm.get', 'dm.names', 'dm.set', 'dm.add', 'dm.delete'} <= set(ops), 'ops used: %s' % sorted(set(ops)))
    finally:
        fake.terminate()
        fake.wait()


def case_tls(acs, tmp):
    """https to the ACS: the certificate is verified (a CA file that does not sign it fails)."""
    if not shutil.which('openssl'):
        print('skip: no openssl command to make a certificate')
        sys.exit(77)
    cert, key = os.path.join(tmp, 'acs.pem'), os.path.join(tmp, 'acs.key')
    other, okey = os.path.join(tmp, 'other.pem'), os.path.join(tmp, 'other.key')
    for c, k in ((cert, key), (other, okey)):
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
                        '-addext', 'subjectAltName=DNS:localhost', '-keyout', k, '-out', c],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    acs.stop()
    tacs = ACS(tls=(cert, key)).start()
    try:
        a = Agent(tacs, tmp, '--ca-file', other, cr=False)
        time.sleep(2.5)
        log = open(os.path.join(tmp, 'agent.log'), errors='replace').read()
        if 'built without TLS' in log:
            a.stop()
            print('skip: iwf-cwmp built without TLS')
            sys.exit(77)
        check(len(tacs.sessions) == 0, 'a certificate the CA file does not vouch for: no session')
        a.stop()
        a = Agent(tacs, tmp, '--ca-file', cert, cr=False)
        s = session(tacs, 1)
        check('0 BOOTSTRAP' in s.events and not s.errors, 'session over TLS with the ACS certificate verified')
        a.stop()
    finally:
        tacs.stop()


def case_cr_interface(acs, tmp):
    if os.geteuid() != 0:
        print('skip: SO_BINDTODEVICE needs root (CAP_NET_RAW)')
        sys.exit(77)
    a = Agent(acs, tmp, '--cr-interface', 'lo')
    s = session(acs, 1)
    url = s.inform_params['Device.ManagementServer.ConnectionRequestURL']
    check(cr_get(url, 'cruser', 'crpass') == 200, 'listener bound to the device (lo) answers')
    check(session(acs, 2, timeout=3).events == ['6 CONNECTION REQUEST'], 'and starts a session')
    a.stop()


def case_notify(acs, tmp):
    P = 'Device.PCP.Client.1.Server.1.ExternalIPAddress'
    Q = 'Device.PCP.Client.1.Server.1.Status'
    acs.script([rpc_set_attributes([(P, 2), (Q, 1)]), rpc_get_attributes(P, Q, 'Device.DeviceInfo.OUI')])
    a = Agent(acs, tmp)
    r = session(acs, 1).responses
    check(r[0].method == 'SetParameterAttributesResponse', 'SetParameterAttributes')
    check(r[1].attributes == {P: 2, Q: 1, 'Device.DeviceInfo.OUI': 0}, 'GetParameterAttributes %s' % r[1].attributes)
    a.hook(**{Q: 'Error'})  # passive: no session of its own
    time.sleep(1.5)
    check(len(acs.sessions) == 1, 'passive change: no session')
    a.hook(**{P: '198.51.100.99'})
    s = session(acs, 2, timeout=4)
    check(s.events == ['4 VALUE CHANGE'], 'active change: VALUE CHANGE inform %s' % s.events)
    check(s.inform_params.get(P) == '198.51.100.99' and s.inform_params.get(Q) == 'Error',
          'changed parameters (active and passive) in the Inform')
    time.sleep(1)
    check(len(acs.sessions) == 2, 'one notification per change')
    a.stop()
    # attributes survive a restart
    acs.script([rpc_get_attributes(P)])
    a = Agent(acs, tmp)
    check(session(acs, 3).responses[0].attributes == {P: 2}, 'attributes kept across a restart')
    a.stop()


def case_acs_auth(acs, tmp):
    acs.auth = 'digest'
    a = Agent(acs, tmp, auth='acs:acs-secret')
    s = session(acs, 1)
    check('0 BOOTSTRAP' in s.events and acs.auth_failures >= 1, 'digest to the ACS')
    a.stop()
    acs.auth = 'basic'
    a = Agent(acs, tmp, auth='acs:acs-secret')
    session(acs, 2)
    check(True, 'basic to the ACS')
    a.stop()
    acs.auth = 'digest'
    a = Agent(acs, tmp, auth='acs:wrong')
    time.sleep(2.5)
    check(len(acs.sessions) == 2, 'wrong ACS password: no session')
    a.stop()


def case_retry(acs, tmp):
    # two failures with m = 1 s, k = 2: waits within [1, 2] s, then [2, 4] s
    acs.inform_fault = [8002, 8002]
    a = Agent(acs, tmp)
    s = session(acs, 3, timeout=10)
    t = [x.started for x in acs.sessions]
    check(s.retry_count == 2 and '0 BOOTSTRAP' in s.events and '1 BOOT' in s.events,
          'after two failed Informs: RetryCount 2, events kept %s' % s.events)
    check(0.9 <= t[1] - t[0] <= 2.3, 'first wait within [1, 2] s (%.2f)' % (t[1] - t[0]))
    check(1.9 <= t[2] - t[1] <= 4.3, 'second wait within [2, 4] s (%.2f)' % (t[2] - t[1]))
    a.stop()
    # 8005 Retry request: at once (seed 003 A.5.3)
    acs.inform_fault = [8005]
    a = Agent(acs, tmp)
    s = session(acs, 5, timeout=5)
    t = [x.started for x in acs.sessions]
    # "at once": before the shortest retry window (1 s) would allow
    check(t[4] - t[3] < 0.9 and s.retry_count == 1, '8005: retried at once (%.2f s)' % (t[4] - t[3]))
    # a session broken off after its InformResponse: not a failed Inform, no retry of its own
    acs.script(['HTTP500'])
    url = s.inform_params['Device.ManagementServer.ConnectionRequestURL']
    check(cr_get(url, 'cruser', 'crpass') == 200, 'connection request')
    session(acs, 6, timeout=3)
    time.sleep(2.5)
    check(len(acs.sessions) == 6, 'broken-off session not retried without new events')
    check(cr_get(url, 'cruser', 'crpass') == 200, 'connection request')
    s = session(acs, 7, timeout=3)
    check(s.retry_count == 0 and s.events == ['6 CONNECTION REQUEST'], 'next Inform: RetryCount 0 %s' % s.events)
    a.stop()


def case_config_file(acs, tmp):
    import json as _json
    conf = os.path.join(tmp, 'cwmp.json')
    with open(conf, 'w') as f:
        _json.dump({'acs-url': acs.url, 'static-backend': True, 'foreground': True, 'periodic-inform': 1,
                    'state-file': os.path.join(tmp, 'state.json'), 'cr-port': free_port(), 'cr-bind': '127.0.0.1',
                    'cr-auth': 'u:p', 'retry-min-wait': 1}, f)
    log = open(os.path.join(tmp, 'agent.log'), 'ab')
    p = subprocess.Popen([AGENT, '--config', conf], stdout=log, stderr=log, env=dict(os.environ, IWF_CWMP_STDERR='1'))
    s = session(acs, 2, timeout=5)
    check(s.events == ['2 PERIODIC'], 'keys from the configuration file (periodic-inform 1)')
    p.terminate()
    check(p.wait(5) == 0, 'stopped')
    with open(conf, 'w') as f:
        _json.dump({'acs-url': acs.url, 'static-backend': True, 'no-such-key': 1}, f)
    r = subprocess.run([AGENT, '--config', conf], capture_output=True, text=True)
    check(r.returncode == 2 and 'no-such-key' in r.stderr, 'unknown key refused: %s' % r.stderr.strip())
    r = subprocess.run([AGENT, '--acs-url', acs.url, '--static-backend', '--cr-port', '7547'], capture_output=True,
                       text=True)
    check(r.returncode == 2 and 'cr-auth' in r.stderr, 'a listener without credentials refused')


def case_reboot(acs, tmp):
    acs.script([rpc('Reboot', CommandKey='rk1')])
    a = Agent(acs, tmp)
    session(acs, 1)
    s = session(acs, 2, timeout=6)
    check('1 BOOT' in s.events and 'M Reboot' in s.events and s.command_keys['M Reboot'] == 'rk1',
          'after Reboot: 1 BOOT + M Reboot with its CommandKey %s' % s.events)
    acs.script([rpc('FactoryReset')])
    a.p.send_signal(0)
    # a connection request to get the FactoryReset in
    url = s.inform_params['Device.ManagementServer.ConnectionRequestURL']
    check(cr_get(url, 'cruser', 'crpass') == 200, 'connection request')
    session(acs, 3)
    s = session(acs, 4, timeout=6)
    check('0 BOOTSTRAP' in s.events, 'after FactoryReset: BOOTSTRAP %s' % s.events)
    a.stop()


CASES = {k[5:]: v for k, v in globals().items() if k.startswith('case_')}

if __name__ == '__main__':
    AGENT = os.path.abspath(sys.argv[1])
    name = sys.argv[2]
    tmp = tempfile.mkdtemp(prefix='cwmp-')
    acs = ACS().start()
    try:
        CASES[name](acs, tmp)
    except Exception:
        sys.stdout.write(open(os.path.join(tmp, 'agent.log'), errors='replace').read()[-6000:])
        raise
    finally:
        acs.stop()
    shutil.rmtree(tmp, ignore_errors=True)
