#!/usr/bin/env python3
"""Write the seed corpora of fuzz_http, fuzz_range, fuzz_json and fuzz_query.

Run from anywhere: tests/fuzz/seeds_http.py. The placeholders {A} {B} {U}
{C} {R} {S} {T} are replaced by http_harness.h (hh_expand)."""
import os

here = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def req(method, path, headers=(), body=b"", cl=True):
    h = [f"{method} {path} HTTP/1.1", "Host: x"] + list(headers)
    if body and cl:
        h.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(h) + "\r\n\r\n").encode() + body


AUTH = "Authorization: Bearer {T}"

# --- fuzz_http: first byte = api variant (bit 0 token, bit 1 auto-persist)
http = {
    "health": req("GET", "/health"),
    "root": req("GET", "/root"),
    "root_head": req("HEAD", "/root"),
    "modules": req("GET", "/modules"),
    "module_a": req("GET", "/modules/{A}"),
    "module_unknown": req("GET", "/modules/" + "0" * 64),
    "module_bad_id": req("GET", "/modules/xyz"),
    "memory_b_range": req("GET", "/modules/{B}/memory",
                          ["Range: bytes=100-199"]),
    "memory_u": req("GET", "/modules/{U}/memory"),
    "deploy": req("POST", "/modules?size=8192", body=b"(module $new)"),
    "deploy_existing": req("POST", "/modules?size=4096",
                           body=b"(module $fuzz_a (memory 1))"),
    "deploy_bad_size": req("POST", "/modules?size=100", body=b"x"),
    "deploy_too_big": req("POST", "/modules?size=1048576", body=b"x"),
    "deploy_chunked": req("POST", "/modules",
                          ["Transfer-Encoding: chunked"],
                          b"5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n", cl=False),
    "session_new": req("POST", "/sessions"),
    "session_base": req("POST", "/sessions", body=b'{"base":"{C}"}'),
    "sessions": req("GET", "/sessions"),
    "session_read": req("GET", "/sessions/{S}/modules/{A}/memory"
                        "?offset=10&length=20"),
    "session_write": req("PUT", "/sessions/{S}/modules/{B}/memory?offset=5",
                         body=b"written"),
    "session_write_expect": req("PUT", "/sessions/{S}/modules/{A}/memory",
                                ["Expect: 100-continue"], b"abcd"),
    "session_commit": req("POST", "/sessions/{S}/commit",
                          ['If-Match: "{R}"']),
    "session_write_commit":
        req("PUT", "/sessions/{S}/modules/{U}/memory?offset=4096",
            body=b"grow") + req("POST", "/sessions/{S}/commit"),
    "session_drop": req("DELETE", "/sessions/{S}"),
    "commits": req("GET", "/commits"),
    "commit": req("GET", "/commits/{C}"),
    "commit_memory": req("GET", "/commits/{C}/modules/{A}/memory"),
    "persist": req("POST", "/persist"),
    "restore": req("POST", "/restore/{C}"),
    "metrics": req("GET", "/metrics"),
    "method_not_allowed": req("PATCH", "/modules"),
    "not_found": req("GET", "/nothing/here"),
    "pipelined": req("GET", "/health") + req("GET", "/root") +
    req("GET", "/modules/{A}"),
    "http10": b"GET /health HTTP/1.0\r\n\r\n",
    "garbage": b"\x00\xff GET / HTTP/9.9\r\n\r\n",
    "big_body": req("POST", "/modules", ["Content-Length: 99999999999"]),
    # libmicrohttpd's own 400, its header block sent twice
    "bad_content_length": req("POST", "/sessions", ["Content-Length: t4"],
                              b'v"base":"{C}"}', cl=False),
    # 100 Continue, then no body: the api never answers
    "expect_without_body": req("PUT", "/sessions/{S}/modules/{A}/memory",
                               ["Expect: 100-continue",
                                "Cntient-Length: 4"], b"abcd", cl=False),
    # a NUL in the method: HEAD to the api, not to libmicrohttpd
    "head_with_nul": b"HEAD" + b"\x00" * 8 + b" /root HTTP/1.1\r\n\r\n",
}
for name, data in http.items():
    write("fuzz_http", name, b"\x00" + data)
for name in ("modules", "session_write_commit", "health"):
    data = http[name].replace(b"Host: x", ("Host: x\r\n" + AUTH).encode())
    write("fuzz_http", name + "_token", b"\x01" + data)
write("fuzz_http", "no_token", b"\x01" + http["modules"])
write("fuzz_http", "auto_persist", b"\x02" + http["session_write_commit"])

# --- fuzz_range: byte 0 = module, If-Range, HEAD, no Range (fuzz_range.c)
ranges = {
    "first": (0, b"bytes=0-0"), "middle": (1, b"bytes=100-4195"),
    "open": (1, b"bytes=4096-"), "suffix": (0, b"bytes=-100"),
    "suffix_zero": (0, b"bytes=-0"), "past_end": (1, b"bytes=99999-"),
    "backwards": (0, b"bytes=9-3"), "several": (0, b"bytes=0-1,5-6"),
    "spaces": (1, b"bytes= 1-2 "), "case": (0, b"BYTES=1-2"),
    "huge": (1, b"bytes=0-18446744073709551615"),
    "overflow": (1, b"bytes=18446744073709551616-"),
    "uncommitted": (2, b"bytes=1-10"),
}
for name, (m, v) in ranges.items():
    write("fuzz_range", name, bytes([m]) + v)
write("fuzz_range", "if_range_match", bytes([0 | 1 << 2]) + b"bytes=5-9")
write("fuzz_range", "if_range_date",
      bytes([1 | 2 << 2]) + b"bytes=5-9")
write("fuzz_range", "if_range_fuzzed",
      bytes([1 | 3 << 2]) + b"bytes=5-9\n\"abc\"")
write("fuzz_range", "head", bytes([0 | 1 << 4]) + b"bytes=0-99")
write("fuzz_range", "no_range", bytes([1 | 1 << 5]))

# --- fuzz_json: byte 0 = transfer (fuzz_json.c), then the body
bodies = {
    "empty": b"", "object": b"{}", "base": b'{"base":"{C}"}',
    "base_null": b'{"base":null}', "base_lower":
    b'{"base":"{c}"}',
    "base_unknown": b'{"base":"' + b"AB" * 32 + b'"}',
    "base_short": b'{"base":"ABC"}', "base_number": b'{"base":12}',
    "duplicate": b'{"base":null,"base":null}', "array": b"[1,2]",
    "string": b'"x"', "bad": b"{\"base\":", "extra": b'{"x":1,"base":null}',
    "nul": b'{"base":"\\u0000"}', "deep": b"[" * 100 + b"]" * 100,
}
for name, b in bodies.items():
    write("fuzz_json", name, b"\x00" + b)
write("fuzz_json", "chunked", b"\x01" + bodies["base"])
write("fuzz_json", "chunked_small", b"\x09" + bodies["extra"])

# --- fuzz_query: byte 0 = route (fuzz_query.c), then the query string
queries = {
    "read_all": (0, b""), "read_range": (0, b"offset=10&length=20"),
    "read_end": (0, b"offset=12288&length=0"), "read_past": (0, b"offset=99999"),
    "read_bad": (0, b"offset=-1"), "read_dup": (0, b"length=1&length=2"),
    "read_escaped": (0, b"off%73et=1&length=%32"),
    "read_empty": (0, b"offset=&length"),
    "write": (1, b"offset=4090"), "write_far": (1, b"offset=65530"),
    "write_bad": (1, b"offset=1e3"), "deploy": (2, b"size=8192"),
    "deploy_bad": (2, b"size=4097"), "deploy_big": (2, b"size=131072"),
    "deploy_zero": (2, b"size=0"),
}
for name, (r, q) in queries.items():
    write("fuzz_query", name, bytes([r]) + q)
