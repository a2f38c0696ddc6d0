# Known-answer tests: RFC 4231 (HMAC-SHA-256) and RFC 5869 (HKDF-SHA-256),
# plus the Mac tag/verify API and the constant-time compare.
from mast import crypto
from mast.compat import binascii


def h(text):
    return binascii.unhexlify(text.replace(" ", ""))


def seq(start, n):
    return bytes(range(start, start + n))


# RFC 4231 section 4: (key, data, HMAC-SHA-256)
RFC4231 = (
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (seq(1, 25), b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    # test case 5 is only specified truncated to 128 bits
    (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131,
     b"This is a test using a larger than block-size key and a larger than "
     b"block-size data. The key needs to be hashed before being used by the "
     b"HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
)

# RFC 5869 appendix A.1-A.3: (ikm, salt, info, length, PRK, OKM)
RFC5869 = (
    (b"\x0b" * 22, seq(0x00, 13), seq(0xF0, 10), 42,
     "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
     "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
     "34007208d5b887185865"),
    (seq(0x00, 80), seq(0x60, 80), seq(0xB0, 80), 82,
     "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
     "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
     "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
     "cc30c58179ec3e87c14c01d5c1f3434f1d87"),
    (b"\x0b" * 22, b"", b"", 42,
     "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
     "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
     "9d201395faa4b61a96c8"),
)


def test_hmac_sha256_matches_rfc4231_cases_1_to_7():
    for key, data, want in RFC4231:
        want = h(want)
        assert crypto.Mac(key).digest(data)[: len(want)] == want


def test_mac_digest_of_parts_equals_digest_of_their_concatenation():
    for key, data, want in RFC4231:
        want = h(want)
        m = crypto.Mac(key)
        cut = len(data) // 3
        got = m.digest(data[:cut], memoryview(data)[cut:], b"")
        assert got[: len(want)] == want
        # the precomputed key blocks are reusable
        assert m.digest(data)[: len(want)] == want


def test_mac_tag_is_the_first_16_bytes_of_the_digest():
    key, data, want = RFC4231[4]  # the truncated test case
    assert crypto.TAG_LEN == 16
    assert crypto.Mac(key).tag(data) == h(want)


def test_mac_verify_accepts_the_right_tag_and_refuses_a_flipped_bit():
    m = crypto.Mac(b"k" * 32)
    header, body = b"\x01\x02\x03\x04", b"payload bytes"
    tag = m.tag(header, body)
    assert m.verify(tag, header, body)
    assert m.verify(memoryview(tag), memoryview(header), body)
    for i in range(len(tag) * 8):
        bad = bytearray(tag)
        bad[i // 8] ^= 1 << (i % 8)
        assert not m.verify(bad, header, body)
    assert not m.verify(tag, header, body + b"!")
    assert not m.verify(tag[:15], header, body)
    assert not m.verify(b"", header, body)
    assert not crypto.Mac(b"j" * 32).verify(tag, header, body)


def test_hkdf_matches_rfc5869_cases_1_to_3():
    for ikm, salt, info, length, prk, okm in RFC5869:
        assert crypto.Mac(salt or bytes(32)).digest(ikm) == h(prk)  # (HKDF's extract step)
        assert crypto.hkdf(salt, ikm, info, length) == h(okm)


def test_hkdf_without_salt_means_32_zero_bytes():
    ikm = b"\x0b" * 22
    want = crypto.hkdf(bytes(32), ikm, b"", 42)
    assert crypto.hkdf(None, ikm, b"", 42) == want
    assert crypto.hkdf(b"", ikm, b"", 42) == want


def test_hkdf_output_of_any_length_is_a_prefix_of_the_longer_output():
    ikm = bytes(range(32))
    longest = crypto.hkdf(b"salt", ikm, b"info", 100)
    for n in (0, 1, 31, 32, 33, 64, 65, 99):
        assert crypto.hkdf(b"salt", ikm, b"info", n) == longest[:n]


def test_hkdf_refuses_more_than_255_blocks():
    # 255 * 32 bytes is the RFC 5869 limit (not allocated here: small heaps)
    try:
        crypto.hkdf(None, bytes(32), b"", 255 * 32 + 1)
    except ValueError:
        return
    assert False, "hkdf accepted 8161 bytes"


def test_ct_equal_compares_the_contents_of_any_bytes_like():
    assert crypto.ct_equal(b"", b"")
    assert crypto.ct_equal(b"abc", b"abc")
    assert crypto.ct_equal(b"abc", bytearray(b"abc"))
    assert crypto.ct_equal(memoryview(b"xabc")[1:], b"abc")
    assert not crypto.ct_equal(b"abc", b"abd")
    assert not crypto.ct_equal(b"\x80bc", b"abc")


def test_ct_equal_refuses_unequal_lengths():
    assert not crypto.ct_equal(b"abc", b"abcd")
    assert not crypto.ct_equal(b"abcd", b"abc")
    assert not crypto.ct_equal(b"", b"a")


def test_tag_into_and_check_the_allocation_free_path_agree_with_seal():
    # MicroPython's wire.seal/wire.check run Mac.tag_into/Mac.check (no new object); CPython's
    # run a faster branch. Both must give the same bytes and the same verdict, with and
    # without `extra` (INIT-ACK's nonce), on each runtime.
    from mast import wire

    mac = crypto.Mac(seq(1, 32))
    for ptype, label, sn, body, extra in ((wire.DATA, 7, 1, b"payload", None),
                                         (wire.SET, 0x3FFFFFFF, (1 << 40) + 3, seq(0, 200), None),
                                         (wire.INIT_ACK, 5, 0, seq(9, 44), seq(50, 16))):
        sealed = wire.seal(mac, ptype, label, sn, body, extra)
        hdr = wire.header(ptype, label, sn)
        n = len(hdr) + len(body)
        pkt = bytearray(n + crypto.TAG_LEN)
        pkt[:len(hdr)] = hdr
        pkt[len(hdr):n] = body
        mac.tag_into(pkt, n, hdr, body, extra)
        assert bytes(pkt) == bytes(sealed), ptype
        assert bytes(pkt[n:]) == mac.tag(hdr, body, extra or b"")
        assert mac.check(pkt, hdr, body, extra)
        assert wire.check(mac, sealed, memoryview(sealed)[len(hdr):n], extra)
        for i in (0, len(hdr), n - 1, n, len(pkt) - 1):  # header, body, tag: one bit each
            bad = bytearray(pkt)
            bad[i] ^= 1
            bhdr, bbody = bytes(bad[:len(hdr)]), bytes(bad[len(hdr):n])
            assert not mac.check(bad, bhdr, bbody, extra), (ptype, i)
            assert not wire.check(mac, bad, memoryview(bad)[len(hdr):n], extra), (ptype, i)
        if extra:
            assert not mac.check(pkt, hdr, body, b"\x00" * 16)  # bound to the nonce
