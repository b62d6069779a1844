-- bench/soap.lua: wrk script for the IGD benchmarks.
--
--   wrk -t1 -c4 -d5s -s bench/soap.lua URL -- KIND CLOSE [ARGS...]
--
-- KIND:
--   get                      GET of URL (the root description)
--   specific ST PORT         SOAP GetSpecificPortMappingEntry(TCP, PORT)
--   generic ST N             SOAP GetGenericPortMappingEntry(index), index cycling 0..N-1
--   list ST N                SOAP GetListOfPortMappings(TCP, 1..65535, Manage 0, N ports)
--   extip ST                 SOAP GetExternalIPAddress
-- CLOSE: "close" adds "Connection: close" (a new TCP connection per request), "keep" does not.
--
-- done() prints one line "BENCHJSON {...}" that bench.py parses: requests, seconds, socket
-- errors and non-2xx/3xx statuses (wrk's own counters), latency percentiles in µs.  There is no
-- response() hook (it would make wrk parse every body); bench.py checks one answer of each
-- workload with curl before the timed runs instead.

local kind, close, st, arg3
local n = 1
local idx = -1

local function envelope(action, args)
  return '<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"'
    .. ' s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:' .. action
    .. ' xmlns:u="' .. st .. '">' .. args .. '</u:' .. action .. '></s:Body></s:Envelope>\r\n'
end

local function soap_headers(action)
  local h = { ["Content-Type"] = 'text/xml; charset="utf-8"',
              ["SOAPAction"] = '"' .. st .. '#' .. action .. '"' }
  if close == "close" then h["Connection"] = "close" end
  return h
end

function init(args)
  kind = args[1]
  close = args[2]
  st = args[3]
  arg3 = args[4]
  if kind == "generic" or kind == "list" then n = tonumber(arg3) end
  if kind == "get" then
    wrk.method = "GET"
    wrk.body = nil
    wrk.headers = {}
    if close == "close" then wrk.headers["Connection"] = "close" end
  elseif kind == "specific" then
    wrk.method = "POST"
    wrk.headers = soap_headers("GetSpecificPortMappingEntry")
    wrk.body = envelope("GetSpecificPortMappingEntry",
      '<NewRemoteHost></NewRemoteHost><NewExternalPort>' .. arg3 ..
      '</NewExternalPort><NewProtocol>TCP</NewProtocol>')
  elseif kind == "list" then
    wrk.method = "POST"
    wrk.headers = soap_headers("GetListOfPortMappings")
    wrk.body = envelope("GetListOfPortMappings",
      '<NewStartPort>1</NewStartPort><NewEndPort>65535</NewEndPort><NewProtocol>TCP</NewProtocol>'
      .. '<NewManage>0</NewManage><NewNumberOfPorts>' .. n .. '</NewNumberOfPorts>')
  elseif kind == "extip" then
    wrk.method = "POST"
    wrk.headers = soap_headers("GetExternalIPAddress")
    wrk.body = envelope("GetExternalIPAddress", "")
  elseif kind == "generic" then
    wrk.method = "POST"
    wrk.headers = soap_headers("GetGenericPortMappingEntry")
  end
end

function request()
  if kind == "generic" then
    idx = (idx + 1) % n
    return wrk.format(nil, nil, nil, envelope("GetGenericPortMappingEntry",
      '<NewPortMappingIndex>' .. idx .. '</NewPortMappingIndex>'))
  end
  return wrk.format()
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %d, "seconds": %.6f, "err_connect": %d, "err_read": %d, ' ..
    '"err_write": %d, "err_status": %d, "err_timeout": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
