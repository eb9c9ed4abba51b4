#!/usr/bin/env python3
"""Builds signed.eif and signed.json without any Go code of this repository.

A signed enclave image file written the way nitro-cli build-enclave
--signing-certificate release-cert.pem --private-key release-key.pem writes
one (aws-nitro-enclaves-image-format: EifBuilder, serde_cbor, the COSE crate),
from this script's own CBOR encoder, Python's hashlib and zlib, and the
openssl command line for the ECDSA signature and the certificate's DER. The
Go tests read the image with the eif package and compare its PCRs with the
values here.

    cd eif/testdata && python3 mkfixture.py

release-key.pem / release-cert.pem were made with
    openssl ecparam -name secp384r1 -genkey -out release-key.pem
    openssl req -new -x509 -key release-key.pem -sha384 -days 36500 \
        -subj "/O=nitro-signer/CN=nitro-signer test release (not secret, tests only)" -out release-cert.pem
The key is a test key, published here: never a release key.
"""

import hashlib
import json
import struct
import subprocess
import tempfile
import zlib


def head(major, n):
    m = major << 5
    if n < 24:
        return bytes([m | n])
    if n < 0x100:
        return bytes([m | 24, n])
    if n < 0x10000:
        return bytes([m | 25]) + struct.pack(">H", n)
    return bytes([m | 26]) + struct.pack(">I", n)


def text(s):
    b = s.encode()
    return head(3, len(b)) + b


def bstr(b):
    return head(2, len(b)) + b


def vec_u8(b):  # serde's Vec<u8>: an array of unsigned integers
    return head(4, len(b)) + b"".join(head(0, x) for x in b)


def pcr(*parts):
    inner = hashlib.sha384(b"".join(parts)).digest()
    return hashlib.sha384(bytes(48) + inner).digest()


def der_ecdsa_to_raw(der, size=48):
    # SEQUENCE { INTEGER r, INTEGER s }
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\0")
        out += bytes(size - len(v)) + v
        i += 2 + n
    return out


kernel = b"fixture kernel: not a bzImage\n" * 300
cmdline = b"reboot=k panic=30 pci=off nomodules console=ttyS0 random.trust_cpu=on"
metadata = json.dumps({"ImageName": "fixture", "ImageVersion": "1"}).encode()
ramdisks = [b"fixture bootstrap ramdisk\n" * 200, b"fixture customer ramdisk\n" * 400]

pcr0 = pcr(kernel, cmdline, *ramdisks)
pcr1 = pcr(kernel, cmdline, ramdisks[0])
pcr2 = pcr(*ramdisks[1:])

cert_pem = open("release-cert.pem", "rb").read()
cert_der = subprocess.run(["openssl", "x509", "-in", "release-cert.pem", "-outform", "DER"],
                          check=True, capture_output=True).stdout
pcr8 = pcr(cert_der)

protected = bytes([0xA1, 0x01, 0x38, 0x22])  # {1: -35}
payload = head(5, 2) + text("register_index") + head(0, 0) + text("register_value") + vec_u8(pcr0)
to_sign = head(4, 4) + text("Signature1") + bstr(protected) + bstr(b"") + bstr(payload)
with tempfile.NamedTemporaryFile() as f:
    f.write(to_sign)
    f.flush()
    der = subprocess.run(["openssl", "dgst", "-sha384", "-sign", "release-key.pem", f.name],
                         check=True, capture_output=True).stdout
cose = head(4, 4) + bstr(protected) + head(5, 0) + bstr(payload) + bstr(der_ecdsa_to_raw(der))
signature = head(4, 1) + head(5, 2) + text("signing_certificate") + vec_u8(cert_pem) + text("signature") + vec_u8(cose)

sections = [(1, kernel), (2, cmdline), (5, metadata), (3, ramdisks[0]), (3, ramdisks[1]), (4, signature)]
offsets, sizes, body, off = [], [], b"", 548
for typ, data in sections:
    offsets.append(off)
    sizes.append(len(data))
    body += struct.pack(">HHQ", typ, 0, len(data)) + data
    off += 12 + len(data)
pad = [0] * (32 - len(sections))
header = b".eif" + struct.pack(">HHQQHH", 4, 0, 512 << 20, 2, 0, len(sections))
header += struct.pack(">32Q", *(offsets + pad)) + struct.pack(">32Q", *(sizes + pad)) + struct.pack(">I", 0)
crc = zlib.crc32(header + body)
open("signed.eif", "wb").write(header + struct.pack(">I", crc) + body)
json.dump({"source": "mkfixture.py (python hashlib, zlib, openssl " +
           subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.split()[1] + ")",
           "pcr0": pcr0.hex(), "pcr1": pcr1.hex(), "pcr2": pcr2.hex(), "pcr8": pcr8.hex(),
           "signature_section_sha256": hashlib.sha256(signature).hexdigest()},
          open("signed.json", "w"), indent=2)
print(open("signed.json").read())
