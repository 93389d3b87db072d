"""The firmware's SHA-256 and HMAC-SHA256 (targets/firmware/hmac_sha256.c), compiled for the host
through cffi: RFC 4231's test vectors, and Python's hashlib/hmac on random keys and messages,
fed whole and in pieces (the link MACs a header, a body and a trailer one after another)."""
import hashlib
import hmac
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgelearn import buildcache
from edgelearn.resources import FIRMWARE_DIR

CDEF = """
typedef struct { uint32_t h[8]; uint64_t length; uint8_t block[64]; uint32_t used; } el_sha256_t;
typedef struct { el_sha256_t inner, outer; } el_hmac_key_t;
void el_sha256_init(el_sha256_t *s);
void el_sha256_update(el_sha256_t *s, const uint8_t *p, size_t n);
void el_sha256_final(el_sha256_t *s, uint8_t out[32]);
void el_hmac_key(el_hmac_key_t *k, const uint8_t *key, size_t n);
void el_hmac_start(el_sha256_t *s, const el_hmac_key_t *k);
void el_hmac_final(el_sha256_t *s, const el_hmac_key_t *k, uint8_t out[32]);
int el_equal_ct(const uint8_t *a, const uint8_t *b, size_t n);
"""

# RFC 4231 §4.2-4.8: key, data, HMAC-SHA-256 (test case 5 is truncated to 128 bits)
RFC4231 = [
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131, b"This is a test using a larger than block-size key and a larger than block-size data. "
                    b"The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


@pytest.fixture(scope="module")
def lib():
    import importlib.util

    import cffi

    src = FIRMWARE_DIR / "hmac_sha256.c"
    digest = buildcache.key(files=[src, FIRMWARE_DIR / "hmac_sha256.h"], flags=["-std=c99", "-O2"],
                            tools=[buildcache.python_cc()], texts=[CDEF, cffi.__version__])
    name = f"_el_hmac_{digest}"

    def build(out: Path) -> None:
        ffi = cffi.FFI()
        ffi.cdef(CDEF)
        ffi.set_source(name, '#include "hmac_sha256.h"', sources=[str(src)], include_dirs=[str(FIRMWARE_DIR)],
                       extra_compile_args=["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"])
        so = Path(ffi.compile(tmpdir=str(out / "work")))
        os.replace(so, out / so.name)
        shutil.rmtree(out / "work")

    out = buildcache.cached("tests/hmac", digest, build)
    spec = importlib.util.spec_from_file_location(name, next(out.glob(f"{name}*.so")))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def c_hmac(lib, key: bytes, pieces) -> bytes:
    ffi, c = lib.ffi, lib.lib
    k = ffi.new("el_hmac_key_t *")
    s = ffi.new("el_sha256_t *")
    out = ffi.new("uint8_t[32]")
    c.el_hmac_key(k, key, len(key))
    c.el_hmac_start(s, k)
    for p in pieces:
        c.el_sha256_update(s, p, len(p))
    c.el_hmac_final(s, k, out)
    return bytes(out)


def c_sha256(lib, data: bytes) -> bytes:
    ffi, c = lib.ffi, lib.lib
    s = ffi.new("el_sha256_t *")
    out = ffi.new("uint8_t[32]")
    c.el_sha256_init(s)
    c.el_sha256_update(s, data, len(data))
    c.el_sha256_final(s, out)
    return bytes(out)


@pytest.mark.parametrize("case", range(len(RFC4231)), ids=[f"rfc4231-{i + 1}" for i in range(len(RFC4231))])
def test_rfc4231_vectors(lib, case):
    key, data, want = RFC4231[case]
    assert c_hmac(lib, key, [data]).hex()[:len(want)] == want


def test_sha256_of_the_fips_examples_and_every_padding_length(lib):
    assert c_sha256(lib, b"abc").hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert c_sha256(lib, b"").hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    for n in range(0, 200):                    # every tail length around one and two blocks
        data = bytes((i * 7 + n) & 0xFF for i in range(n))
        assert c_sha256(lib, data) == hashlib.sha256(data).digest(), n


@settings(max_examples=300, deadline=None)
@given(key=st.binary(max_size=200), data=st.binary(max_size=700), cuts=st.lists(st.integers(0, 700), max_size=4))
def test_hmac_equals_pythons_whole_and_in_pieces(lib, key, data, cuts):
    points = sorted({min(c, len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]
    assert c_hmac(lib, key, pieces) == hmac.new(key, data, hashlib.sha256).digest()


def test_constant_time_equality(lib):
    eq = lib.lib.el_equal_ct
    assert eq(b"a" * 16, b"a" * 16, 16) == 1
    for at in range(16):
        other = bytearray(b"a" * 16)
        other[at] ^= 0x80
        assert eq(b"a" * 16, bytes(other), 16) == 0
