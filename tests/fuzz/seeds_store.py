# Seed inputs for fuzz_store (see the op_* decoders there):
#   python3 tests/fuzz/seeds_store.py tests/fuzz/corpus/fuzz_store
import struct, sys, os
DEPLOY, BEGIN, WRITE, READ, COMMIT, DROP, EXPIRE = 0, 3, 6, 13, 18, 22, 24
RESTORE, PERSIST, REOPEN, CHECK, HOLD = 25, 27, 28, 29, 30
def deploy(mod, sizesel, how=0): return bytes([DEPLOY, mod | sizesel << 2 | how << 5])
def begin(kind=0, c=0): return bytes([BEGIN, kind, c])
def off16(o): return bytes([0]) + struct.pack('<H', o)
def offpage(p): return bytes([5, p])
def offhuge(x=0): return bytes([7, x])
def len8(n): return bytes([3, n])
def len16(n): return bytes([1]) + struct.pack('<H', n)
def lenpages(p): return bytes([2, p])
def write(s, mod, off, ln, v=1, step=1): return bytes([WRITE, s, mod]) + off + ln + bytes([v, step])
def read(s, mod, off, ln): return bytes([READ, s, mod]) + off + ln
def commit(s, sel=0, c=0): return bytes([COMMIT, s, sel, c])
def drop(s): return bytes([DROP, s])
def restore(sel, c=0): return bytes([RESTORE, sel, c])
P = bytes([PERSIST]); R = bytes([REOPEN]); C = bytes([CHECK])
def hold(mod): return bytes([HOLD, mod])
EXPIRE_ALL = bytes([EXPIRE, 1])
seeds = {
 'walkthrough': deploy(0, 0) + deploy(1, 1) + hold(1) + begin() +
   write(0, 0, off16(100), len16(200)) + read(0, 0, off16(0), lenpages(1)) +
   commit(0) + C + begin() + read(1, 1, off16(0), lenpages(2)) +
   write(1, 1, off16(5 * 4096 - 10), len8(20), 7, 0) +
   read(1, 1, off16(0), lenpages(6)) + hold(1) + commit(1, 1) + hold(1) +
   C + P + R + C +
   restore(0, 0) + C + restore(0, 1) + C,
 'limits': deploy(2, 7) + begin() + begin() + begin() + begin() + begin() +
   drop(0) + begin() + EXPIRE_ALL + begin() +
   write(5, 2, offpage(11), len8(1)) + write(5, 2, off16(45055), len8(2)) +
   write(5, 2, offhuge(3), len8(9)) + write(5, 2, off16(45000), len8(56)) +
   read(5, 2, off16(45000), len8(57)) + read(5, 2, offhuge(0), len8(1)) +
   commit(5, 2, 5) + commit(5, 1) + commit(5) + commit(0) + C,
 'invalid': deploy(0, 4) + deploy(0, 5) + deploy(0, 6) + deploy(0, 0, 7) +
   deploy(1, 3, 6) + deploy(1, 0) + write(5, 1, off16(0), len8(1)) +
   begin(3, 9) + begin(2) + restore(2, 1) + restore(3) + C,
 'from_file': deploy(0, 0) + deploy(3, 2) + begin() +
   write(0, 0, off16(0), lenpages(1), 0, 3) + commit(0) + P + begin() +
   write(1, 3, off16(8000), len16(3000), 9, 2) + commit(1) + R +
   restore(1, 0) + C + restore(1, 1) + C + P + R + restore(0, 0) + C,
 'base_commit': deploy(0, 1) + begin() + write(0, 0, off16(4000), len8(200)) +
   commit(0) + begin() + write(1, 0, off16(0), len8(16), 3, 0) + commit(1) +
   deploy(1, 0) + begin(1, 0) + read(2, 0, off16(3990), len8(220)) +
   read(2, 1, off16(0), lenpages(1)) + write(2, 1, off16(10), len8(5)) +
   deploy(2, 2) + commit(2, 3, 1) + commit(2) + C + begin(1, 1) +
   write(3, 0, off16(0), len8(16), 3, 0) + commit(3) + C,
 'zeros': deploy(3, 0) + begin() + write(0, 3, offpage(3), lenpages(1), 0, 0) +
   commit(0) + begin() + write(1, 3, off16(0), len8(10), 0, 0) + commit(1) +
   C + restore(0, 0) + C + R + C,
}
out = sys.argv[1]
for name, data in seeds.items():
    open(os.path.join(out, name), 'wb').write(data)
