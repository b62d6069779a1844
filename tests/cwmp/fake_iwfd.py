#!/usr/bin/env python3
"""A stand-in for iwfd's control socket speaking the data-model protocol of docs/tr069.md
("Backend protocol"): one JSON object per line each way, ops dm.get, dm.names, dm.set,
dm.add, dm.delete, dm.reboot, dm.factory_reset. It serves a small Device.PCP. tree and
is the reference the iwfd side can compare against.

    fake_iwfd.py SOCKET_PATH [LOG_FILE]
"""
import json
import os
import re
import socket
import sys
import threading

TABLE = 'Device.PCP.Client.1.Server.1.InboundMapping.'
FIELDS = {'Enable': ('boolean', '0', True), 'Status': ('string', 'Disabled', False),
          'InternalPort': ('unsignedInt', '0', True), 'ProtocolNumber': ('unsignedInt', '6', True),
          'Description': ('string', '', True)}


class Tree:
    def __init__(self):
        # name -> [type, value, writable]; objects end with '.'
        self.p = {
            'Device.': ['object', None, False],
            'Device.DeviceInfo.': ['object', None, False],
            'Device.DeviceInfo.Manufacturer': ['string', 'fake iwfd', False],
            'Device.DeviceInfo.OUI': ['string', '0000FF', False],
            'Device.DeviceInfo.ProductClass': ['string', 'fake', False],
            'Device.DeviceInfo.SerialNumber': ['string', 'FAKE1', False],
            'Device.DeviceInfo.SoftwareVersion': ['string', '0.1.0', False],
            'Device.PCP.': ['object', None, False],
            'Device.PCP.Client.': ['object', None, False],
            'Device.PCP.Client.1.': ['object', None, False],
            'Device.PCP.Client.1.Enable': ['boolean', '1', True],
            'Device.PCP.Client.1.Server.': ['object', None, False],
            'Device.PCP.Client.1.Server.1.': ['object', None, False],
            'Device.PCP.Client.1.Server.1.InboundMappingNumberOfEntries': ['unsignedInt', '0', False],
            TABLE: ['object', None, True],
        }
        self.next_instance = 1
        self.lock = threading.Lock()

    def count(self):
        n = len([k for k in self.p if re.fullmatch(re.escape(TABLE) + r'\d+\.', k)])
        self.p['Device.PCP.Client.1.Server.1.InboundMappingNumberOfEntries'][1] = str(n)

    def get(self, req):
        out = []
        for path in req['paths']:
            if path == '' or path.endswith('.'):
                if path and path not in self.p:
                    return {'ok': False, 'fault': 9005}
                out += [{'name': k, 'type': v[0], 'value': v[1]} for k, v in self.p.items()
                        if k.startswith(path) and v[0] != 'object']
            elif path in self.p and self.p[path][0] != 'object':
                v = self.p[path]
                out.append({'name': path, 'type': v[0], 'value': v[1]})
            else:
                return {'ok': False, 'fault': 9005}
        return {'ok': True, 'params': out}

    def names(self, req):
        path, nl = req['path'], req['next_level']
        if path and path not in self.p:
            return {'ok': False, 'fault': 9005}
        if path and not path.endswith('.'):
            return {'ok': False, 'fault': 9003} if nl else {'ok': True, 'names': [{'name': path, 'writable': self.p[path][2]}]}
        out = []
        for k, v in self.p.items():
            if not k.startswith(path):
                continue
            rest = k[len(path):]
            if nl and (not rest or '.' in rest[:-1]):
                continue
            out.append({'name': k, 'writable': v[2]})
        return {'ok': True, 'names': out}

    def set(self, req):
        faults = []
        for p in req['params']:
            v = self.p.get(p['name'])
            if v is None or v[0] == 'object':
                faults.append({'name': p['name'], 'fault': 9005})
            elif not v[2]:
                faults.append({'name': p['name'], 'fault': 9008})
            elif 'type' in p and p['type'] != v[0]:
                faults.append({'name': p['name'], 'fault': 9006})
            elif v[0] == 'boolean' and p['value'] not in ('0', '1', 'true', 'false'):
                faults.append({'name': p['name'], 'fault': 9007})
            elif v[0] == 'unsignedInt' and not p['value'].isdigit():
                faults.append({'name': p['name'], 'fault': 9007})
        if faults:
            return {'ok': False, 'fault': 9003, 'param_faults': faults}
        for p in req['params']:
            val = p['value']
            if self.p[p['name']][0] == 'boolean':
                val = '1' if val in ('1', 'true') else '0'
            self.p[p['name']][1] = val
        return {'ok': True}

    def add(self, req):
        if req['path'] != TABLE:
            return {'ok': False, 'fault': 9005}
        i = self.next_instance
        self.next_instance += 1
        self.p['%s%d.' % (TABLE, i)] = ['object', None, True]
        for f, (t, v, w) in FIELDS.items():
            self.p['%s%d.%s' % (TABLE, i, f)] = [t, v, w]
        self.count()
        return {'ok': True, 'instance': i}

    def delete(self, req):
        path = req['path']
        if not re.fullmatch(re.escape(TABLE) + r'\d+\.', path) or path not in self.p:
            return {'ok': False, 'fault': 9005}
        for k in [k for k in self.p if k.startswith(path)]:
            del self.p[k]
        self.count()
        return {'ok': True}

    def handle(self, req):
        op = req.get('op')
        fn = {'dm.get': self.get, 'dm.names': self.names, 'dm.set': self.set, 'dm.add': self.add,
              'dm.delete': self.delete, 'dm.reboot': lambda r: {'ok': True},
              'dm.factory_reset': lambda r: {'ok': True}}.get(op)
        if fn is None:
            return {'ok': False, 'fault': 9000, 'message': 'unknown op'}
        with self.lock:
            return fn(req)


def serve(path, log):
    tree = Tree()
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(8)
    while True:
        c, _ = srv.accept()
        f = c.makefile('rwb')
        for line in f:
            req = json.loads(line)
            rep = tree.handle(req)
            rep['id'] = req.get('id')
            if log:
                log.write(json.dumps(req) + '\n')
                log.flush()
            f.write((json.dumps(rep, separators=(',', ':')) + '\n').encode())
            f.flush()
        c.close()


if __name__ == '__main__':
    serve(sys.argv[1], open(sys.argv[2], 'a') if len(sys.argv) > 2 else None)
