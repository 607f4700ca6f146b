from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC
from cryptography.hazmat.primitives.kdf.kbkdf import KBKDFCMAC, Mode, CounterLocation
h = bytes.fromhex
kdf = KBKDFCMAC(algorithm=algorithms.AES, mode=Mode.CounterMode, length=16, rlen=4, llen=4,
                location=CounterLocation.BeforeFixed, label=b"KPE card key", context=h("0000000000000001"), fixed=None)
print("kdf108", kdf.derive(h("000102030405060708090A0B0C0D0E0F")).hex().upper())
kdf = KBKDFCMAC(algorithm=algorithms.AES, mode=Mode.CounterMode, length=40, rlen=4, llen=4,
                location=CounterLocation.BeforeFixed, label=b"KPE enc", context=h("0102030405060708"), fixed=None)
print("kdf108_40", kdf.derive(h("2B7E151628AED2A6ABF7158809CF4F3C")).hex().upper())
kenc = h("000102030405060708090A0B0C0D0E0F"); kmac = h("F0E0D0C0B0A090807060504030201000")
ssc = (1).to_bytes(16, "big"); ssc = (int.from_bytes(ssc, "big") + 1).to_bytes(16, "big")
def pad(b, n=16):
    b = b + b"\x80"
    while len(b) % n: b += b"\x00"
    return b
e = Cipher(algorithms.AES(kenc), modes.ECB()).encryptor(); iv = e.update(ssc) + e.finalize()
e = Cipher(algorithms.AES(kenc), modes.CBC(iv)).encryptor(); ct = e.update(pad(h("0102"))) + e.finalize()
do87 = bytes([0x87, len(ct) + 1, 1]) + ct
hdr = pad(bytes([0x0C, 0xA4, 0x02, 0x0C]))
c = CMAC(algorithms.AES(kmac)); c.update(pad(ssc + hdr + do87)); mac = c.finalize()[:8]
data = do87 + bytes([0x8E, 8]) + mac
print("aes_wrap", (bytes([0x0C, 0xA4, 0x02, 0x0C, len(data)]) + data).hex().upper())
