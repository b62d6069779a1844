#!/usr/bin/python3
"""gen_corpus.py - writes tests/upnp/corpus-soap/: SOAP control requests, each with the
UPnP error code upnp_soap_parse() must answer (0 = accepted).

File format (also the fuzzer's input format, see soap_case.h):
    X-Service: IP1|IP2|PPP1|CIC1|L3F1     the service whose control URL was posted to
    X-Expect: <code>                      0, 401, 402, 716, 732, 733
    SOAPACTION: <value>                   optional; absent = no header
    <empty line>
    <body bytes>

The action/argument lists below are written independently of upnp/actions.c (from the
service templates), so the good requests also cross-check the dispatch table.

Run: /usr/bin/python3 tests/upnp/gen_corpus.py  (rewrites the directory)
"""
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'corpus-soap')
ENV = 'http://schemas.xmlsoap.org/soap/envelope/'
ENC = 'http://schemas.xmlsoap.org/soap/encoding/'

NS = {
    'IP1': 'urn:schemas-upnp-org:service:WANIPConnection:1',
    'IP2': 'urn:schemas-upnp-org:service:WANIPConnection:2',
    'PPP1': 'urn:schemas-upnp-org:service:WANPPPConnection:1',
    'CIC1': 'urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1',
    'L3F1': 'urn:schemas-upnp-org:service:Layer3Forwarding:1',
}

PM_KEY = [('NewRemoteHost', ''), ('NewExternalPort', '40000'), ('NewProtocol', 'TCP')]
PM_VAL = [('NewInternalPort', '40000'), ('NewInternalClient', '192.168.1.10'),
          ('NewEnabled', '1'), ('NewPortMappingDescription', 'corpus'),
          ('NewLeaseDuration', '3600')]
RANGE = [('NewStartPort', '1000'), ('NewEndPort', '2000'), ('NewProtocol', 'UDP'),
         ('NewManage', '0')]
CONN = {
    'SetConnectionType': [('NewConnectionType', 'IP_Routed')],
    'GetConnectionTypeInfo': [],
    'RequestConnection': [], 'RequestTermination': [], 'ForceTermination': [],
    'SetAutoDisconnectTime': [('NewAutoDisconnectTime', '10')],
    'SetIdleDisconnectTime': [('NewIdleDisconnectTime', '10')],
    'SetWarnDisconnectDelay': [('NewWarnDisconnectDelay', '10')],
    'GetStatusInfo': [], 'GetAutoDisconnectTime': [], 'GetIdleDisconnectTime': [],
    'GetWarnDisconnectDelay': [], 'GetNATRSIPStatus': [],
    'GetGenericPortMappingEntry': [('NewPortMappingIndex', '0')],
    'GetSpecificPortMappingEntry': PM_KEY,
    'AddPortMapping': PM_KEY + PM_VAL,
    'DeletePortMapping': PM_KEY,
    'GetExternalIPAddress': [],
}
IP2_ONLY = {
    'DeletePortMappingRange': RANGE,
    'GetListOfPortMappings': RANGE + [('NewNumberOfPorts', '0')],
    'AddAnyPortMapping': PM_KEY + PM_VAL,
}
PPP_ONLY = {
    'GetLinkLayerMaxBitRates': [], 'GetPPPEncryptionProtocol': [],
    'GetPPPCompressionProtocol': [], 'GetPPPAuthenticationProtocol': [],
    'GetUserName': [], 'GetPassword': [],
    'ConfigureConnection': [('NewUserName', 'u'), ('NewPassword', 'p')],
}
ACTIONS = {
    'IP1': dict(CONN),
    'IP2': dict(CONN, **IP2_ONLY),
    'PPP1': dict(CONN, **PPP_ONLY),
    'CIC1': {
        'GetCommonLinkProperties': [], 'GetTotalBytesSent': [], 'GetTotalBytesReceived': [],
        'GetTotalPacketsSent': [], 'GetTotalPacketsReceived': [],
        'GetEnabledForInternet': [],
        'SetEnabledForInternet': [('NewEnabledForInternet', '1')],
        'GetMaximumActiveConnections': [],
        'GetActiveConnection': [('NewActiveConnectionIndex', '0')],
    },
    'L3F1': {
        'GetDefaultConnectionService': [],
        'SetDefaultConnectionService': [('NewDefaultConnectionService',
                                         'uuid:x:WANConnectionDevice:1,urn:upnp-org:serviceId:WANIPConn1')],
    },
}

cases = []


def esc(s):
    return s.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')


def args_xml(args, prefix=''):
    return ''.join('<%s%s>%s</%s%s>' % (prefix, n, esc(v), prefix, n) for n, v in args)


def envelope(ns, action, inner, env=ENV, pre='s', apre='u'):
    return ('<?xml version="1.0"?>\r\n<%s:Envelope xmlns:%s="%s" %s:encodingStyle="%s">'
            '<%s:Body><%s:%s xmlns:%s="%s">%s</%s:%s></%s:Body></%s:Envelope>\r\n' %
            (pre, pre, env, pre, ENC, pre, apre, action, apre, ns, inner, apre, action,
             pre, pre))


def sa(svc, action, ns=None):
    return '"%s#%s"' % (ns or NS[svc], action)


def add(name, svc, expect, body, soapaction=None):
    cases.append((name, svc, expect, soapaction, body if isinstance(body, bytes) else body.encode()))


def req(svc, action, args, ns=None):
    return envelope(ns or NS[svc], action, args_xml(args))


def replace_arg(args, name, value):
    return [(n, value if n == name else v) for n, v in args]


# ---------------------------------------------------------------- good requests
for svc, acts in ACTIONS.items():
    for action, args in acts.items():
        add('ok_%s_%s' % (svc, action), svc, 0, req(svc, action, args), sa(svc, action))
        add('ok_nosa_%s_%s' % (svc, action), svc, 0, req(svc, action, args))
# v1 control point on the v2 service
for action in CONN:
    add('ok_v1ns_on_IP2_%s' % action, 'IP2', 0, req('IP1', action, CONN[action]),
        sa('IP1', action))

# ---------------------------------------------------------------- 401: envelope level
pm_args = PM_KEY + PM_VAL
good_add = req('IP1', 'AddPortMapping', pm_args)
not_envelope = {
    'empty': '',
    'spaces': '   \r\n  ',
    'text': 'hello',
    'lt': '<',
    'decl_only': '<?xml version="1.0"?>',
    'json': '{"action":"AddPortMapping"}',
    'html': '<html><body>AddPortMapping</body></html>',
    'no_ns_envelope': '<Envelope><Body><u:AddPortMapping xmlns:u="%s"/></Body></Envelope>' % NS['IP1'],
    'soap12_envelope': envelope(NS['IP1'], 'AddPortMapping', args_xml(pm_args),
                                env='http://www.w3.org/2003/05/soap-envelope'),
    'wrong_env_ns': envelope(NS['IP1'], 'AddPortMapping', args_xml(pm_args), env='urn:x'),
    'root_is_body': '<s:Body xmlns:s="%s"><u:GetExternalIPAddress xmlns:u="%s"/></s:Body>' % (ENV, NS['IP1']),
    'root_is_action': '<u:GetExternalIPAddress xmlns:u="%s"/>' % NS['IP1'],
    'no_body': '<s:Envelope xmlns:s="%s"></s:Envelope>' % ENV,
    'empty_body': '<s:Envelope xmlns:s="%s"><s:Body></s:Body></s:Envelope>' % ENV,
    'empty_body_selfclosed': '<s:Envelope xmlns:s="%s"><s:Body/></s:Envelope>' % ENV,
    'body_text_only': '<s:Envelope xmlns:s="%s"><s:Body>GetExternalIPAddress</s:Body></s:Envelope>' % ENV,
    'two_bodies': '<s:Envelope xmlns:s="%s"><s:Body><u:GetExternalIPAddress xmlns:u="%s"/></s:Body>'
                  '<s:Body/></s:Envelope>' % (ENV, NS['IP1']),
    'header_after_body': '<s:Envelope xmlns:s="%s"><s:Body><u:GetExternalIPAddress xmlns:u="%s"/>'
                         '</s:Body><s:Header/></s:Envelope>' % (ENV, NS['IP1']),
    'two_headers': '<s:Envelope xmlns:s="%s"><s:Header/><s:Header/><s:Body>'
                   '<u:GetExternalIPAddress xmlns:u="%s"/></s:Body></s:Envelope>' % (ENV, NS['IP1']),
    'foreign_child_of_envelope': '<s:Envelope xmlns:s="%s"><x/><s:Body><u:GetExternalIPAddress '
                                 'xmlns:u="%s"/></s:Body></s:Envelope>' % (ENV, NS['IP1']),
    'body_unqualified': '<s:Envelope xmlns:s="%s"><Body><u:GetExternalIPAddress xmlns:u="%s"/>'
                        '</Body></s:Envelope>' % (ENV, NS['IP1']),
    'two_actions': '<s:Envelope xmlns:s="%s"><s:Body><u:GetExternalIPAddress xmlns:u="%s"/>'
                   '<u:GetStatusInfo xmlns:u="%s"/></s:Body></s:Envelope>' % (ENV, NS['IP1'], NS['IP1']),
    'doctype': '<?xml version="1.0"?><!DOCTYPE s:Envelope><s:Envelope xmlns:s="%s"><s:Body>'
               '<u:GetExternalIPAddress xmlns:u="%s"/></s:Body></s:Envelope>' % (ENV, NS['IP1']),
    'billion_laughs': '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
                      + ''.join('<!ENTITY %s "%s">' % (chr(98 + i), ('&%s;' % chr(97 + i)) * 10)
                                for i in range(8))
                      + ']><s:Envelope xmlns:s="%s"><s:Body>&i;</s:Body></s:Envelope>' % ENV,
    'external_entity': '<?xml version="1.0"?><!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                       '<s:Envelope xmlns:s="%s"><s:Body>&x;</s:Body></s:Envelope>' % ENV,
    'truncated_in_envelope': good_add[:60],
    'truncated_in_body': good_add[:good_add.index('<u:')],
    'truncated_in_action_tag': good_add[:good_add.index('<u:') + 10],
    'garbage_before_root': 'xx' + good_add,
    'two_roots': '<a/><b/>',
    'undeclared_prefix': '<s:Envelope><s:Body/></s:Envelope>',
    'bad_utf8_before_action': b'<s:Envelope xmlns:s="' + ENV.encode() + b'"><s:Body \xff\xfe>'
                              b'</s:Body></s:Envelope>',
    'nul_byte': '<s:Envelope xmlns:s="%s">\x00<s:Body/></s:Envelope>' % ENV,
    'deep_header': '<s:Envelope xmlns:s="%s"><s:Header>%s%s</s:Header><s:Body>'
                   '<u:GetExternalIPAddress xmlns:u="%s"/></s:Body></s:Envelope>'
                   % (ENV, '<h>' * 40, '</h>' * 40, NS['IP1']),
    'utf16_bom_mismatch': b'\xff\xfe<\x00s\x00',
}
for name, body in not_envelope.items():
    add('bad_env_' + name, 'IP1', 401, body if isinstance(body, bytes) else body.encode())

# wrong service namespace / version / action
wrong_ns = {
    'no_ns': None,
    'other_service': NS['PPP1'],
    'version3': 'urn:schemas-upnp-org:service:WANIPConnection:3',
    'version0': 'urn:schemas-upnp-org:service:WANIPConnection:0',
    'version_x': 'urn:schemas-upnp-org:service:WANIPConnection:x',
    'version_11': 'urn:schemas-upnp-org:service:WANIPConnection:11',
    'lowercase_type': 'urn:schemas-upnp-org:service:wanipconnection:1',
    'device_urn': 'urn:schemas-upnp-org:device:WANIPConnection:1',
    'trailing_slash': NS['IP1'] + '/',
    'prefix_only': 'urn:schemas-upnp-org:service:',
    'service_id': 'urn:upnp-org:serviceId:WANIPConn1',
    'control_ns': 'urn:schemas-upnp-org:control-1-0',
    'envelope_ns': ENV,
    'vendor': 'urn:schemas-microsoft-com:service:WANIPConnection:1',
}
for name, ns in wrong_ns.items():
    if ns is None:
        body = ('<s:Envelope xmlns:s="%s"><s:Body><GetExternalIPAddress/></s:Body></s:Envelope>' % ENV)
    else:
        body = envelope(ns, 'GetExternalIPAddress', '')
    add('bad_ns_' + name, 'IP1', 401, body)
for name in ['Foo', 'addportmapping', 'ADDPORTMAPPING', 'AddPortMappingX', 'AddPortMappin',
             'QueryStateVariable', 'AddPinhole',
             'GetFirewallStatus', 'X_Vendor', 'GetUserName', 'AddAnyPortMapping',
             'GetListOfPortMappings', 'DeletePortMappingRange', 'GetCommonLinkProperties',
             'GetDefaultConnectionService']:
    add('bad_action_IP1_' + name, 'IP1', 401, envelope(NS['IP1'], name, ''))
for svc, name in [('IP2', 'GetUserName'), ('PPP1', 'AddAnyPortMapping'), ('CIC1', 'AddPortMapping'),
                  ('L3F1', 'GetExternalIPAddress'), ('PPP1', 'GetListOfPortMappings'),
                  ('CIC1', 'GetDefaultConnectionService'), ('L3F1', 'GetTotalBytesSent')]:
    add('bad_action_%s_%s' % (svc, name), svc, 401, envelope(NS[svc], name, ''))
# v2-only action through the v1 namespace on the v2 service
for action in IP2_ONLY:
    add('bad_v1ns_on_IP2_' + action, 'IP2', 401, req('IP1', action, IP2_ONLY[action]))
# v2 namespace on v1 service
add('bad_v2ns_on_IP1', 'IP1', 401, req('IP2', 'GetExternalIPAddress', []))

# SOAPACTION disagreeing with the body (UDA 1.1 §3.2.1)
get_ip = req('IP1', 'GetExternalIPAddress', [])
soapactions = {
    'other_action': sa('IP1', 'GetStatusInfo'),
    'other_service': sa('PPP1', 'GetExternalIPAddress'),
    'other_version': sa('IP2', 'GetExternalIPAddress'),
    'no_hash': '"%s"' % NS['IP1'],
    'action_only': 'GetExternalIPAddress',
    'hash_only': '"#"',
    'empty_action': '"%s#"' % NS['IP1'],
    'lowercase_action': sa('IP1', 'getexternalipaddress'),
    'trailing_space_in_quotes': '"%s#GetExternalIPAddress "' % NS['IP1'],
    'two_hashes': '"%s#GetExternalIPAddress#GetExternalIPAddress"' % NS['IP1'],
}
for name, value in soapactions.items():
    add('bad_soapaction_' + name, 'IP1', 401, get_ip, value)
add('ok_soapaction_unquoted', 'IP1', 0, get_ip, '%s#GetExternalIPAddress' % NS['IP1'])
add('ok_soapaction_empty_quotes', 'IP1', 0, get_ip, '""')
add('ok_soapaction_spaces', 'IP1', 0, get_ip, '  "%s#GetExternalIPAddress"  ' % NS['IP1'])

# ---------------------------------------------------------------- 402: arguments
for svc in ['IP1', 'IP2', 'PPP1']:
    base = PM_KEY + PM_VAL
    for i, (n, _) in enumerate(base):
        add('bad_args_%s_missing_%s' % (svc, n), svc, 402,
            req(svc, 'AddPortMapping', base[:i] + base[i + 1:]))
        add('bad_args_%s_dup_%s' % (svc, n), svc, 402,
            req(svc, 'AddPortMapping', base + [base[i]]))
    add('bad_args_%s_unknown' % svc, svc, 402, req(svc, 'AddPortMapping', base + [('NewFoo', '1')]))
    add('bad_args_%s_no_args' % svc, svc, 402, req(svc, 'AddPortMapping', []))
    add('bad_args_%s_extra_on_noarg_action' % svc, svc, 402,
        req(svc, 'GetExternalIPAddress', [('NewExternalIPAddress', '1.2.3.4')]))
    add('bad_args_%s_foreign_ns' % svc, svc, 402,
        envelope(NS[svc], 'DeletePortMapping',
                 '<x:NewRemoteHost xmlns:x="urn:x"></x:NewRemoteHost>'
                 '<NewExternalPort>1</NewExternalPort><NewProtocol>TCP</NewProtocol>'))
    add('bad_args_%s_nested' % svc, svc, 402,
        envelope(NS[svc], 'DeletePortMapping',
                 '<NewRemoteHost><b/></NewRemoteHost>'
                 '<NewExternalPort>1</NewExternalPort><NewProtocol>TCP</NewProtocol>'))
    add('bad_args_%s_deep' % svc, svc, 402,
        envelope(NS[svc], 'DeletePortMapping', '<NewRemoteHost>' + '<a>' * 40 + '</a>' * 40 +
                 '</NewRemoteHost><NewExternalPort>1</NewExternalPort><NewProtocol>TCP</NewProtocol>'))

bad_values = {
    'NewExternalPort': ['65536', '-1', 'abc', '', ' ', '1.5', '0x50', '1e2', '+80', '80 80',
                        '99999999999999999999', '８０'],
    'NewInternalPort': ['65536', '-5', 'x', '', '1,000', '0x1F'],
    'NewLeaseDuration': ['4294967296', '-1', 'forever', '', '1.0'],
    'NewEnabled': ['2', 'on', 'off', '', 'True1', 'enabled'],
    'NewProtocol': ['ICMP', '', 'TCPX', 'T CP', 'TCP/UDP', 'ALL', '6'],
    'NewInternalClient': ['', 'host.lan', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '::1',
                          '1.2.3.4 5', '1.2.3.-4', 'localhost', '0x7f.0.0.1'],
    'NewRemoteHost': ['example.com', '1.2.3', '::1', '1.2.3.256', '*'],
}
for svc in ['IP1', 'IP2']:
    for arg, values in bad_values.items():
        for i, v in enumerate(values):
            add('bad_value_%s_%s_%d' % (svc, arg, i), svc, 402,
                req(svc, 'AddPortMapping', replace_arg(PM_KEY + PM_VAL, arg, v)))
for arg, v in [('NewPortMappingIndex', '65536'), ('NewPortMappingIndex', ''),
               ('NewPortMappingIndex', 'first')]:
    add('bad_value_IP1_%s_%s' % (arg, v or 'empty'), 'IP1', 402,
        req('IP1', 'GetGenericPortMappingEntry', [(arg, v)]))
for arg, v in [('NewStartPort', '70000'), ('NewEndPort', 'end'), ('NewManage', 'maybe'),
               ('NewNumberOfPorts', '65536'), ('NewProtocol', 'both')]:
    add('bad_value_IP2_list_%s' % arg, 'IP2', 402,
        req('IP2', 'GetListOfPortMappings', replace_arg(RANGE + [('NewNumberOfPorts', '0')], arg, v)))
add('bad_value_CIC1_enabled', 'CIC1', 402,
    req('CIC1', 'SetEnabledForInternet', [('NewEnabledForInternet', 'sometimes')]))
add('bad_value_CIC1_index', 'CIC1', 402,
    req('CIC1', 'GetActiveConnection', [('NewActiveConnectionIndex', '70000')]))
add('bad_value_IP1_autodisconnect', 'IP1', 402,
    req('IP1', 'SetAutoDisconnectTime', [('NewAutoDisconnectTime', '-3')]))
add('bad_value_PPP1_username_long', 'PPP1', 402,
    req('PPP1', 'ConfigureConnection', [('NewUserName', 'u' * 300), ('NewPassword', 'p')]))
add('bad_value_L3F1_long', 'L3F1', 402,
    req('L3F1', 'SetDefaultConnectionService', [('NewDefaultConnectionService', 'x' * 256)]))
add('bad_value_IP1_connection_type_long', 'IP1', 402,
    req('IP1', 'SetConnectionType', [('NewConnectionType', 'I' * 2000)]))
add('bad_value_IP1_port_huge_text', 'IP1', 402,
    req('IP1', 'DeletePortMapping', replace_arg(PM_KEY, 'NewExternalPort', '1' * 5000)))
add('ok_IP1_description_long_truncated', 'IP1', 0,
    req('IP1', 'AddPortMapping', replace_arg(PM_KEY + PM_VAL, 'NewPortMappingDescription', 'd' * 3000)))
add('ok_IP1_lowercase_protocol', 'IP1', 0,
    req('IP1', 'AddPortMapping', replace_arg(PM_KEY + PM_VAL, 'NewProtocol', 'udp')))
add('ok_IP1_spaced_numbers', 'IP1', 0,
    req('IP1', 'AddPortMapping', replace_arg(PM_KEY + PM_VAL, 'NewExternalPort', '\r\n 8080 \t')))
add('ok_IP1_bool_words', 'IP1', 0,
    req('IP1', 'AddPortMapping', replace_arg(PM_KEY + PM_VAL, 'NewEnabled', 'False')))
add('ok_IP1_remote_host_ipv4', 'IP1', 0,
    req('IP1', 'AddPortMapping', replace_arg(PM_KEY + PM_VAL, 'NewRemoteHost', '198.51.100.7')))

# XML broken after the action element started
broken_inside = {
    'unclosed_arg': envelope(NS['IP1'], 'GetGenericPortMappingEntry', '<NewPortMappingIndex>0')
    .replace('</u:GetGenericPortMappingEntry>', '</u:GetGenericPortMappingEntry>'),
    'mismatched_arg': envelope(NS['IP1'], 'GetGenericPortMappingEntry',
                               '<NewPortMappingIndex>0</NewPortMappingIndx>'),
    'truncated_in_args': good_add[:good_add.index('<NewProtocol>') + 5],
    'truncated_after_action': good_add[:good_add.index('</u:AddPortMapping>')],
    'bad_entity_in_number': envelope(NS['IP1'], 'GetGenericPortMappingEntry',
                                     '<NewPortMappingIndex>1&2</NewPortMappingIndex>'),
    'undefined_entity': envelope(NS['IP1'], 'GetGenericPortMappingEntry',
                                 '<NewPortMappingIndex>&foo;</NewPortMappingIndex>'),
    'bad_charref': envelope(NS['IP1'], 'GetGenericPortMappingEntry',
                            '<NewPortMappingIndex>&#0;</NewPortMappingIndex>'),
    'garbage_after_envelope': good_add + '<extra/>',
    'bad_utf8_in_arg': envelope(NS['IP1'], 'AddPortMapping',
                                args_xml(replace_arg(PM_KEY + PM_VAL, 'NewPortMappingDescription',
                                                     'XBADX'))).encode().replace(b'XBADX', b'\xc3\x28'),
    'arg_open_tag_unclosed': good_add.replace('<NewProtocol>TCP</NewProtocol>', '<NewProtocol TCP</NewProtocol>'),
}
for name, body in broken_inside.items():
    add('bad_xml_in_action_' + name, 'IP1', 402, body)

# ---------------------------------------------------------------- 716 / 732 / 733
for svc in ['IP1', 'IP2', 'PPP1']:
    add('bad_716_%s_wildcard_extport' % svc, svc, 716,
        req(svc, 'AddPortMapping', replace_arg(PM_KEY + PM_VAL, 'NewExternalPort', '0')))
    add('bad_716_%s_wildcard_extport_spaced' % svc, svc, 716,
        req(svc, 'AddPortMapping', replace_arg(PM_KEY + PM_VAL, 'NewExternalPort', ' 00 ')))
add('bad_732_IP2_add_intport0', 'IP2', 732,
    req('IP2', 'AddPortMapping', replace_arg(PM_KEY + PM_VAL, 'NewInternalPort', '0')))
add('bad_732_IP2_addany_intport0', 'IP2', 732,
    req('IP2', 'AddAnyPortMapping', replace_arg(PM_KEY + PM_VAL, 'NewInternalPort', '0')))
add('bad_402_IP1_add_intport0', 'IP1', 402,
    req('IP1', 'AddPortMapping', replace_arg(PM_KEY + PM_VAL, 'NewInternalPort', '0')))
add('bad_402_PPP1_add_intport0', 'PPP1', 402,
    req('PPP1', 'AddPortMapping', replace_arg(PM_KEY + PM_VAL, 'NewInternalPort', '0')))
add('ok_IP2_addany_extport0', 'IP2', 0,
    req('IP2', 'AddAnyPortMapping', replace_arg(PM_KEY + PM_VAL, 'NewExternalPort', '0')))
add('ok_IP1_delete_extport0', 'IP1', 0,
    req('IP1', 'DeletePortMapping', replace_arg(PM_KEY, 'NewExternalPort', '0')))
for action in ['DeletePortMappingRange', 'GetListOfPortMappings']:
    a = IP2_ONLY[action]
    add('bad_733_IP2_%s' % action, 'IP2', 733,
        req('IP2', action, replace_arg(replace_arg(a, 'NewStartPort', '2001'), 'NewEndPort', '2000')))
    add('ok_IP2_%s_single_port' % action, 'IP2', 0,
        req('IP2', action, replace_arg(replace_arg(a, 'NewStartPort', '2000'), 'NewEndPort', '2000')))

# ---------------------------------------------------------------- client dialects (good)
add('ok_dialect_windows_dt', 'IP1', 0,
    ('<?xml version="1.0"?>\r\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="%s" SOAP-ENV:encodingStyle="%s">\r\n'
     '<SOAP-ENV:Body>\r\n<m:DeletePortMapping xmlns:m="%s">\r\n'
     '<NewRemoteHost xmlns:dt="urn:schemas-microsoft-com:datatypes" dt:dt="string"></NewRemoteHost>\r\n'
     '<NewExternalPort xmlns:dt="urn:schemas-microsoft-com:datatypes" dt:dt="ui2">3074</NewExternalPort>\r\n'
     '<NewProtocol xmlns:dt="urn:schemas-microsoft-com:datatypes" dt:dt="string">UDP</NewProtocol>\r\n'
     '</m:DeletePortMapping>\r\n</SOAP-ENV:Body>\r\n</SOAP-ENV:Envelope>\r\n') % (ENV, ENC, NS['IP1']),
    sa('IP1', 'DeletePortMapping'))
add('ok_dialect_default_ns', 'IP2', 0,
    '<Envelope xmlns="%s"><Body><GetListOfPortMappings xmlns="%s">%s</GetListOfPortMappings></Body>'
    '</Envelope>' % (ENV, NS['IP2'], args_xml(RANGE + [('NewNumberOfPorts', '10')])))
add('ok_dialect_qualified_args', 'IP1', 0,
    envelope(NS['IP1'], 'DeletePortMapping', args_xml(PM_KEY, prefix='u:')))
add('ok_dialect_header', 'IP1', 0,
    '<s:Envelope xmlns:s="%s"><s:Header><t:Trans xmlns:t="urn:t" s:mustUnderstand="0">5</t:Trans>'
    '</s:Header><s:Body><u:GetExternalIPAddress xmlns:u="%s"/></s:Body></s:Envelope>' % (ENV, NS['IP1']))
add('ok_dialect_comments_pi', 'IP1', 0,
    '<?xml version="1.0" encoding="UTF-8"?><!-- c --><s:Envelope xmlns:s="%s"><?pi x?><s:Body>'
    '<!-- c --><u:GetExternalIPAddress xmlns:u="%s"><!-- none --></u:GetExternalIPAddress></s:Body>'
    '</s:Envelope>' % (ENV, NS['IP1']))
add('ok_dialect_latin1', 'IP1', 0,
    ('<?xml version="1.0" encoding="ISO-8859-1"?><s:Envelope xmlns:s="%s"><s:Body><u:AddPortMapping '
     'xmlns:u="%s">%s</u:AddPortMapping></s:Body></s:Envelope>' %
     (ENV, NS['IP1'], args_xml(replace_arg(PM_KEY + PM_VAL, 'NewPortMappingDescription', 'caf\xe9'))))
    .encode('latin-1'))
add('ok_dialect_cdata', 'IP1', 0,
    envelope(NS['IP1'], 'AddPortMapping',
             args_xml(replace_arg(PM_KEY + PM_VAL, 'NewPortMappingDescription', 'X'))
             .replace('>X<', '><![CDATA[a<b&c]]><')))
add('ok_dialect_miniupnpc_raw_amp', 'IP1', 0,
    envelope(NS['IP1'], 'AddPortMapping', args_xml(PM_KEY + PM_VAL)).replace('>corpus<', '>R&D <lab><'),
    sa('IP1', 'AddPortMapping'))
add('ok_dialect_selfclosed_empty_remote_host', 'IP1', 0,
    envelope(NS['IP1'], 'DeletePortMapping', '<NewRemoteHost/>' + args_xml(PM_KEY[1:])))

# ---------------------------------------------------------------- compatibility requests
QSV = ('<s:Envelope xmlns:s="%s"><s:Body><u:QueryStateVariable xmlns:u="urn:schemas-upnp-org:'
       'control-1-0"><u:varName>%%s</u:varName></u:QueryStateVariable></s:Body></s:Envelope>' % ENV)
for svc in ['IP1', 'IP2', 'PPP1', 'CIC1', 'L3F1']:
    add('ok_compat_%s_QueryStateVariable' % svc, svc, 0, QSV % 'ExternalIPAddress',
        '"urn:schemas-upnp-org:control-1-0#QueryStateVariable"')
add('ok_compat_IP1_QueryStateVariable_unqualified_arg', 'IP1', 0,
    QSV.replace('<u:varName>%s</u:varName>', '<varName>%s</varName>') % 'ConnectionStatus')
add('bad_compat_IP1_QueryStateVariable_no_arg', 'IP1', 402,
    QSV.replace('<u:varName>%s</u:varName>', ''))
add('bad_compat_IP1_QueryStateVariable_two_args', 'IP1', 402,
    QSV % 'A</u:varName><u:varName>B')
add('bad_compat_IP1_QueryStateVariable_soapaction', 'IP1', 401, QSV % 'ExternalIPAddress',
    sa('IP1', 'QueryStateVariable'))
add('bad_compat_IP1_QueryStateVariable_service_ns', 'IP1', 401,
    envelope(NS['IP1'], 'QueryStateVariable', '<varName>ExternalIPAddress</varName>'))
for svc in ['IP1', 'IP2', 'PPP1']:
    add('ok_compat_%s_GetPortMappingNumberOfEntries' % svc, svc, 0,
        req(svc, 'GetPortMappingNumberOfEntries', []), sa(svc, 'GetPortMappingNumberOfEntries'))
add('bad_compat_CIC1_GetPortMappingNumberOfEntries', 'CIC1', 401,
    req('CIC1', 'GetPortMappingNumberOfEntries', []))


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    names = set()
    for name, svc, expect, soapaction, body in cases:
        assert name not in names, name
        names.add(name)
        head = 'X-Service: %s\nX-Expect: %d\n' % (svc, expect)
        if soapaction is not None:
            head += 'SOAPACTION: %s\n' % soapaction
        with open(os.path.join(OUT, name + '.req'), 'wb') as f:
            f.write(head.encode() + b'\n' + body)
    bad = sum(1 for c in cases if c[2] != 0)
    print('%d cases (%d malformed, %d good)' % (len(cases), bad, len(cases) - bad))


if __name__ == '__main__':
    main()
