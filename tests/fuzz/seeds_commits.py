# Seed inputs for fuzz_commits, beside the store's own file `valid`
# (written by FUZZ_COMMITS_SEED=DIR build/fuzz/fuzz_commits -runs=0):
#   python3 tests/fuzz/seeds_commits.py tests/fuzz/corpus/fuzz_commits
# Ids are computed as in hashing.md, so the crafted commits parse.
import hashlib, os, sys

def H(b): return hashlib.blake2b(b, digest_size=32).digest()

def mth(leaves):
    if not leaves: return H(b'')
    if len(leaves) == 1: return leaves[0]
    k = 1
    while k * 2 < len(leaves): k *= 2
    return H(b'\x01' + mth(leaves[:k]) + mth(leaves[k:]))

def commit_id(pairs):
    return mth([H(b'\x00' + m + c) for m, c in sorted(pairs)])

def hexid(b, lower=False):
    h = b.hex().upper()
    return h.lower() if lower else h

def fmt(commits, lower=False, sep=''):
    out = []
    for pairs in commits:
        body = ','.join('"%s":%s"%s"' % (hexid(m, lower), sep, hexid(c, lower))
                        for m, c in sorted(pairs))
        out.append('"%s":%s{%s}' % (hexid(commit_id(pairs), lower), sep, body))
    return ('{' + (',' + sep).join(out) + '}\n').encode()

out = sys.argv[1]
valid = open(os.path.join(out, 'valid'), 'rb').read()
mod_a, mod_b = H(b'a'), H(b'b')
page0 = H(b'\x00' + bytes(4096))
foreign = [(H(b'not deployed'), page0)]           # unknown module
missing = [(mod_a, H(b'no such file'))]           # no commit file
seeds = {
    'empty': b'',
    'empty_object': b'{}',
    'spaces': b' \t\r\n{ \n } \n',
    'lowercase': valid.lower().replace(b'{', b'{ ').replace(b',', b' ,\t'),
    'duplicate_commit': valid[:-3] + b',' + valid[1:],
    'truncated': valid[:len(valid) // 2],
    'trailing': valid + b'{}',
    'foreign_module': fmt([foreign]),
    'missing_file': fmt([missing, []], sep=' '),
    'duplicate_module': fmt([[(mod_a, page0)]])[:-3] + (
        ',"%s":"%s"}}\n' % (hexid(mod_a), hexid(page0))).encode(),
}
for name, data in seeds.items():
    open(os.path.join(out, name), 'wb').write(data)
