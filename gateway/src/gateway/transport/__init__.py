"""The gateway's own wire clients for the two exchanges every proxied request makes.

- `http1`: HTTP/1.1 to the upstreams, a pool of keep-alive connections per upstream, responses
  parsed by httptools (llhttp).
- `redis`: the per-request Redis batch (denylist lookup and rate-limit script) on one pipelined
  connection, replies parsed by hiredis.

Why ours and not aiohttp's or redis-py's: speed, measured. Each request pays for both exchanges,
and profiled with py-spy the general-purpose clients' per-call layers (URL objects, cookies,
redirects, pool bookkeeping, retry and observability hooks, a task per request) cost more CPU
than the gateway's whole pipeline does with these (gateway/README.md, "What a proxied request
costs"; bench/gateway.py's "proxy CPU" column). The price is owning the framing: `http1` frames
strictly and is held to it by property-based tests against generated hostile upstream responses
(tests/test_transport_http1_framing.py), so that a framing mistake cannot turn into a response
given to the wrong request (response desync, the client side of request smuggling).
Nothing outside this package parses HTTP or RESP off a socket.
"""
